"""Severity reflects harm as well as surprise (issue 18): real-looking cases, end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from chart_scene import crisis_rows, local, store_crisis
from seeding import add_topic
from sqlmodel import SQLModel

from bot.services.alerts import ESCALATION_KIND, plan_delivery
from scanner.alerting import Finding, record_finding, severity_for, severity_points
from scanner.harm import assess, lexicon
from scanner.series import BUCKET
from scanner.trends import window_facts
from storage.db import Database, make_engine
from storage.models import Due

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội

#: A routine announcement every outlet reprints: a real burst, nothing harmful in it.
ANNOUNCEMENTS = [
    "Bộ Y tế công bố kế hoạch tiêm chủng mở rộng năm 2027",
    "Hội nghị tổng kết công tác y tế năm 2026 và triển khai nhiệm vụ năm 2027",
    "Bộ trưởng Bộ Y tế trao bằng khen cho 40 tập thể xuất sắc",
    "Khai trương trung tâm dữ liệu y tế quốc gia",
    "Ra mắt ứng dụng đặt lịch khám bệnh trực tuyến cho người dân",
    "Học sinh Trường Tiểu học Sao Mai đạt giải nhất cuộc thi vẽ tranh",
]


def _stories(rows: list[dict[str, str]]) -> list[tuple[str, set[str]]]:
    stories: dict[str, tuple[str, set[str]]] = {}
    for r in rows:
        _text, outlets = stories.setdefault(r["story"], (f"{r['title']}. {r['lead']}", set()))
        outlets.add(r["outlet"])
    return list(stories.values())


def _finding(strength: float, outlets: int, neg: float, harm: float, kind: str = "volume_burst"):  # type: ignore[no-untyped-def]
    return Finding(
        topic_id=1,
        kind=kind,
        window_start=T0,
        window_end=T0 + 4 * BUCKET,
        volume=8,
        baseline=2.0,
        score=3 * strength,
        strength=strength,
        outlets=outlets,
        negative_share=neg,
        harm=harm,
    )


def test_the_lexicon_matches_without_tones_and_only_whole_syllables() -> None:
    lex = lexicon()
    assert lex.categories("HAI NGƯỜI TỬ VONG") == {"death"}
    assert lex.categories("hai nguoi tu vong trong vu sap nha") == {"death", "collapse"}
    # Folded "sắp" (soon) is "sap" too: collapse is only listed inside unambiguous phrases.
    assert lex.categories("Sắp khai trương cầu mới") == set()
    assert lex.categories("Nhập viện") == {"hospital"}
    assert lex.categories("nhậpviện") == set()  # not a syllable boundary
    # Children are a harm's victims, not a harm: a school prize is not a crisis.
    assert lex.categories("Học sinh đạt giải nhất cuộc thi vẽ") == set()
    assert lex.categories("Học sinh nhập viện") == {"vulnerable", "hospital"}


def test_harm_counts_each_category_once_by_the_outlets_that_carry_it() -> None:
    one = assess([("Một người tử vong", {"a"})])
    three = assess([("Một người tử vong", {"a", "b"}), ("Thêm người chết", {"c", "a"})])
    assert one.score == pytest.approx(1.0) and one.outlets == {"death": 1}
    assert three.score == pytest.approx(3.0) and three.outlets == {"death": 3}
    many = assess([("Một người tử vong", {f"o{i}" for i in range(9)})])
    assert many.score == pytest.approx(3.0)  # reach counts in full from three outlets on


def test_childrens_poisoning_carried_by_many_outlets_is_critical() -> None:
    rows = crisis_rows("10:30")  # 34, then 52 children in hospital
    harm = assess(_stories(rows))
    assert {"vulnerable", "hospital", "poisoning"} <= harm.outlets.keys()
    assert harm.score >= 6
    outlets = len({r["outlet"] for r in rows})
    assert outlets == 4
    # Statistically only just notable, few outlets yet, and the sentiment model calling a
    # quarter of the stories negative: this is how it arrived as "ℹ️ Thông tin".
    assert severity_for(_finding(1.1, outlets, 0.25, 0.0)) == "info"  # surprise alone
    assert severity_for(_finding(1.1, outlets, 0.25, harm.score)) == "critical"
    assert severity_for(_finding(1.1, outlets, 1.0, harm.score)) == "critical"


def test_first_report_from_one_outlet_is_not_yet_critical() -> None:
    rows = crisis_rows("09:20")  # one outlet: "Hàng chục học sinh nhập viện"
    harm = assess(_stories(rows))
    assert 0 < harm.score < 3
    assert severity_for(_finding(1.1, 1, 1.0, harm.score)) != "critical"


def test_routine_announcement_burst_is_not_critical() -> None:
    outlets = [f"o{i}" for i in range(12)]
    harm = assess((t, set(outlets[i::3])) for i, t in enumerate(ANNOUNCEMENTS))
    assert harm.score == 0
    strong = _finding(strength=4.0, outlets=12, neg=0.1, harm=harm.score)
    assert severity_points(strong)["evidence"] == 2 and severity_points(strong)["reach"] == 2
    assert severity_for(strong) == "warning"  # surprising and wide, not a crisis
    assert severity_for(_finding(1.0, 3, 0.1, 0.0)) == "info"


def test_a_positive_turn_is_never_critical_on_harm_words() -> None:
    good = _finding(4.0, 12, 0.0, 6.0, kind="positive_turn")  # "40 em được xuất viện"
    assert severity_for(good) == "warning"


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    database = Database(engine)
    yield database
    database.dispose()


def test_stored_poisoning_story_is_critical_and_escalation_is_scheduled(db: Database) -> None:
    """window_facts reads the harm from stored articles; the critical alert schedules escalation."""
    with db.session() as s:
        topic = add_topic(s)
        assert topic.id is not None
        store_crisis(s, topic.id, "10:45")
        s.flush()
        start, end = local("09:00"), local("11:00")
        facts = window_facts(s, topic.id, start, end)
        assert facts.harm.score >= 6 and facts.outlets == 4
        finding = _finding(1.1, facts.outlets, 0.25, facts.harm.score)
        finding.topic_id, finding.window_start, finding.window_end = topic.id, start, end
        change = record_finding(s, finding, end)
        assert change.alert.severity == "critical"
        assert change.alert.details["told"]["points"]["harm"] == 4
        plan_delivery(s, change.alert, end, escalate_after=timedelta(minutes=15))
        due = s.execute(sa.select(Due).where(Due.kind == ESCALATION_KIND)).scalars().all()  # type: ignore[arg-type]
        assert [d.ref_id for d in due] == [change.alert.id]
