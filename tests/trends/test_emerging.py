"""Emerging-term alerts: the signal (pure), suggested queries, and the alert's rate limit."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from seeding import add_topic
from sqlmodel import SQLModel

from scanner.alerting import Finding, record_emerging, record_finding
from scanner.terms import emerging_signal, general_rate, suggested_queries
from scanner.topics import parse_query
from storage.db import Database, make_engine

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
FILLER = [
    "giá vàng hôm nay",
    "thời tiết miền Bắc",
    "giao thông cuối tuần",
    "lịch thi đấu bóng đá",
    "tỷ giá ngoại tệ",
    "chứng khoán phiên sáng",
    "du lịch hè sôi động",
    "nông sản xuất khẩu",
    "điểm chuẩn đại học",
    "nhà ở xã hội",
]
PLACES = ["Hà Nội", "Huế", "Cần Thơ", "Đà Nẵng", "Nghệ An", "Lâm Đồng", "Gia Lai", "Sóc Trăng"]


def _story(rng: random.Random, extra: str = "") -> str:
    a, b = rng.sample(FILLER, 2)
    return f"Ngộ độc {a} {extra} {b} ở {rng.choice(PLACES)}"


def _background(rng: random.Random, n: int = 120) -> list[str]:
    return [_story(rng) for _ in range(n)]


def test_a_new_term_in_several_outlets_emerges_at_flat_volume() -> None:
    rng = random.Random(1)
    bg = _background(rng)
    fg = [(_story(rng), f"o{i % 7}") for i in range(20)]
    fg += [(_story(rng, "bán trú"), f"o{i}") for i in range(5)]  # 5 stories, 5 outlets
    found = emerging_signal(fg, bg, alpha=1e-3, exclude=["ngộ độc"])
    assert found and "bán trú" in found[0].term
    assert found[0].stories == 5 and found[0].outlets == 5 and found[0].p < 1e-3


def test_one_outlet_or_too_few_stories_or_a_usual_term_do_not_emerge() -> None:
    rng = random.Random(2)
    bg = _background(rng)
    one_outlet = [(_story(rng), f"o{i}") for i in range(20)]
    one_outlet += [(_story(rng, "bán trú"), "flood") for _ in range(8)]
    assert not any("bán trú" in e.term for e in emerging_signal(one_outlet, bg, alpha=1e-3))
    few = [(_story(rng), f"o{i}") for i in range(20)]
    few += [(_story(rng, "bán trú"), f"o{i}") for i in range(3)]
    assert not any("bán trú" in e.term for e in emerging_signal(few, bg, alpha=1e-3))
    # Ordinary background words (each in ~20 % of stories) never emerge from a like window.
    same = [(_story(rng), f"o{i % 9}") for i in range(30)]
    assert emerging_signal(same, bg, alpha=1e-3) == []
    # The topic's own query term is on every story: excluded.
    assert not any("ngộ" in e.term.lower() for e in emerging_signal(same, bg, alpha=1.0))


def test_no_background_no_alert() -> None:
    rng = random.Random(3)
    fg = [(_story(rng, "bán trú"), f"o{i}") for i in range(10)]
    assert emerging_signal(fg, _background(rng, 10), alpha=1e-3) == []


def test_suggested_queries_parse_and_pair_co_occurring_terms() -> None:
    stories = ["ngộ độc ở trường bán trú", "ngộ độc bán trú tại Huế", "bán trú ngộ độc lan rộng"]
    qs = suggested_queries(["ngộ độc", "bán trú"], stories)
    assert qs[0] == '"ngộ độc" AND "bán trú"' and '"bán trú"' in qs
    for q in qs:
        parse_query(q)
    assert suggested_queries(['bad"quote'], stories) == []


def _db(tmp_path: Path) -> tuple[Database, int]:
    engine = make_engine(f"sqlite:///{tmp_path / 'e.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    db = Database(engine)
    with db.session() as s:
        topic = add_topic(s, "t", '"x"', code="A", agency_name="A")
        assert topic.id is not None
        tid = topic.id
    return db, tid


def _finding(tid: int, at: datetime, terms: list[str], kind: str = "emerging") -> Finding:
    return Finding(
        topic_id=tid,
        kind=kind,
        window_start=at - timedelta(hours=6),
        window_end=at,
        volume=5,
        baseline=0.3,
        score=4.0,
        strength=1.3,
        outlets=5,
        negative_share=0.0,
        details={"terms": terms, "suggested_queries": [f'"{terms[0]}"']},
    )


def test_emerging_alert_is_info_rate_limited_per_term_and_apart_from_trend_alerts(
    tmp_path: Path,
) -> None:
    db, tid = _db(tmp_path)
    with db.session() as s:
        c1 = record_emerging(s, _finding(tid, T0, ["bán trú", "suất ăn"]), "bán trú", T0)
        assert c1.change == "new" and c1.alert.severity == "info" and c1.alert.kind == "emerging"
        assert c1.alert.dedupe_key == f"emerging:{tid}:bán trú"
        assert c1.alert.details["terms"] == ["bán trú", "suất ăn"]
        assert c1.alert.details["told"]["families"] == ["emerging"]
        later = T0 + timedelta(hours=5)
        c2 = record_emerging(s, _finding(tid, later, ["bán trú"]), "bán trú", later)
        assert c2.change == "updated" and c2.alert.id == c1.alert.id and not c2.notify
        # A term already shown as a companion term updates that alert too.
        c3 = record_emerging(s, _finding(tid, later, ["suất ăn"]), "suất ăn", later)
        assert c3.change == "updated" and c3.alert.id == c1.alert.id
        # A volume alert of the topic is its own alert: emerging never joins it.
        v = record_finding(s, _finding(tid, later, ["x"], kind="volume_burst"), later)
        assert v.change == "new" and v.alert.id != c1.alert.id
        # After a day, the same term may be told again.
        day = T0 + timedelta(hours=30)
        c4 = record_emerging(s, _finding(tid, day, ["bán trú"]), "bán trú", day)
        assert c4.change == "new" and c4.alert.id != c1.alert.id
    db.dispose()


def test_a_word_common_in_all_news_does_not_emerge_on_a_topic_that_never_carried_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A topic's own background is small, so an everyday word it never carried ("tiếp tục")
    would look as rare as a new event; it is tested against its rate in general news too."""
    assert general_rate("tiếp tục") > 10 * general_rate("bán trú")
    rng = random.Random(1)
    bg = _background(rng)
    fg = [(_story(rng), f"o{i % 7}") for i in range(20)]
    fg += [(_story(rng, "tiếp tục"), f"o{i}") for i in range(6)]  # 6 stories, 6 outlets
    assert not any("tiếp tục" in e.term for e in emerging_signal(fg, bg, alpha=1e-3))
    # The same window judged on the topic's background alone would call it news.
    monkeypatch.setattr("scanner.terms.general_rate", lambda term: 0.0)
    assert any("tiếp tục" in e.term for e in emerging_signal(fg, bg, alpha=1e-3))


def test_attribution_boilerplate_and_outlet_names_never_emerge() -> None:
    """Four or more stories from several outlets that share only how they were written ("cho
    biết", "theo thông tin", "phóng viên") or who wrote them ("VnExpress", an outlet's credit
    line "- Thanh Niên") hold no emerging term; a real new term among them still emerges."""
    rng = random.Random(5)
    bg = _background(rng)
    credits = ["VnExpress", "Thanh Niên", "Tiền Phong", "Dân trí", "Tuổi Trẻ"]
    fg = [(_story(rng), f"o{i % 7}") for i in range(20)]
    fg += [
        (
            f"{_story(rng)}, theo thông tin phóng viên cho biết - {outlet}",
            outlet,
        )
        for outlet in credits
        for _ in range(2)
    ]
    found = emerging_signal(fg, bg, alpha=1e-3, exclude=["ngộ độc"])
    words = {"biết", "thông", "tin", "phóng", "viên", "vnexpress", "thanh", "niên", "trẻ"}
    assert not [e.term for e in found if words & set(e.term.lower().split())]
    fg += [(_story(rng, "bán trú"), f"p{i}") for i in range(6)]
    found = emerging_signal(fg, bg, alpha=1e-3, exclude=["ngộ độc"])
    assert found and "bán trú" in found[0].term
    assert not [e.term for e in found if words & set(e.term.lower().split())]
