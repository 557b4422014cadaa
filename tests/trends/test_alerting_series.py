"""Series rebuild (idempotent, restart-safe), alert dedupe/cool-down/escalation, replay output."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from news_words import SYLLABLES
from seeding import add_topic
from sqlmodel import Session, SQLModel

from scanner.alerting import Finding, record_finding, severity_for
from scanner.replay import cmd_replay
from scanner.sentiment import LexiconScorer
from scanner.series import BUCKET, count_buckets, load_series, rebuild_buckets
from storage.db import Database, make_engine
from storage.models import Alert, Article, ArticleTopic, SeriesBucket, Story, Topic

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _db(tmp_path: Path) -> Database:
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    return Database(engine)


def _seed(session: Session) -> int:
    topic = add_topic(session, "t", '"x"', code="A", agency_name="A")
    assert topic.id is not None
    return topic.id


def _article(
    session: Session, topic_id: int, story: Story, outlet: str, at: datetime, n: int
) -> None:
    a = Article(
        canonical_url=f"u{n}",
        url=f"u{n}",
        outlet=outlet,
        title="t",
        published_at=at,
        fetched_at=at,
        story_id=story.id,
        sentiment_label=story.sentiment_label,
    )
    session.add(a)
    session.flush()
    assert a.id is not None
    session.add(ArticleTopic(article_id=a.id, topic_id=topic_id))


def test_count_rules_copies_once_outlet_cap_and_reach() -> None:
    rows = [(1, 10, f"o{i}", T0 + timedelta(minutes=i), "negative") for i in range(12)]  # 12 copies
    rows += [
        (1, 100 + i, "flood", T0 + timedelta(minutes=i), "neutral") for i in range(9)
    ]  # one outlet
    rows += [(1, 200, "o1", T0 + timedelta(minutes=20), "positive")]  # next bucket
    out = count_buckets(rows)
    first = out[(1, T0)]
    assert first.stories == 1 + 2  # the syndicated story once, the flooding outlet capped at 2
    assert first.outlets == 13 and first.articles == 21 and first.negative == 1
    assert out[(1, T0 + BUCKET)].positive == 1


def test_rebuild_is_idempotent_and_survives_a_restart(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.session() as s:
        tid = _seed(s)
        for i in range(6):
            story = Story(
                title=f"s{i}",
                first_seen_at=T0,
                last_seen_at=T0,
                sentiment_label="negative" if i % 2 else "neutral",
            )
            s.add(story)
            s.flush()
            for j, outlet in enumerate(["A", "B", "C"][: 1 + i % 3]):
                _article(s, tid, story, outlet, T0 + timedelta(minutes=5 * i + j), i * 10 + j)
        first = [
            (b.bucket_start, b.stories, b.outlets, b.negative)
            for b in rebuild_buckets(s, T0, T0 + 4 * BUCKET)
        ]
    with db.session() as s:  # a later rebuild of an overlapping range changes nothing
        rebuild_buckets(s, T0 + BUCKET, T0 + 3 * BUCKET)
        rebuild_buckets(s, T0, T0 + 4 * BUCKET)
    db.dispose()
    db = _db(tmp_path)  # "restart": a new engine over the same file
    with db.session() as s:
        rows = (
            s.execute(sa.select(SeriesBucket).order_by(SeriesBucket.bucket_start)).scalars().all()
        )  # type: ignore[arg-type]
        assert [(b.bucket_start, b.stories, b.outlets, b.negative) for b in rows] == first
        series = load_series(s, [tid], T0, T0 + 4 * BUCKET)[tid]
        assert (
            series.stories.sum() == 4 and len(series) == 4
        )  # outlet A first-published all 6: capped 2+2
    db.dispose()


def _finding(
    tid: int, at: datetime, strength: float, outlets: int = 3, neg: float = 0.1
) -> Finding:
    return Finding(
        topic_id=tid,
        kind="volume_burst",
        window_start=at - BUCKET,
        window_end=at,
        volume=8,
        baseline=1.0,
        score=3 * strength,
        strength=strength,
        outlets=outlets,
        negative_share=neg,
    )


def test_one_story_one_alert_escalation_and_cool_down(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.session() as s:
        tid = _seed(s)
    changes = []
    with db.session() as s:
        changes.append(record_finding(s, _finding(tid, T0, 1.1), T0))
    with db.session() as s:
        changes.append(record_finding(s, _finding(tid, T0 + BUCKET, 1.2), T0 + BUCKET))
        changes.append(
            record_finding(
                s, _finding(tid, T0 + 2 * BUCKET, 4.0, outlets=12, neg=0.8), T0 + 2 * BUCKET
            )
        )
        changes.append(record_finding(s, _finding(tid, T0 + 3 * BUCKET, 1.0), T0 + 3 * BUCKET))
        later = T0 + 3 * BUCKET + timedelta(hours=4)
        changes.append(record_finding(s, _finding(tid, later, 1.1), later))
    assert [c.change for c in changes] == ["new", "updated", "escalated", "updated", "new"]
    assert [c.notify for c in changes] == [True, False, True, False, True]
    assert changes[2].alert.severity == "critical" and changes[2].previous_severity == "info"
    assert changes[3].alert.severity == "critical"  # severity never drops within one alert
    with db.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Alert)).scalar() == 2
    db.dispose()


def test_severity_escalates_only_on_material_new_evidence(tmp_path: Path) -> None:
    """A live alert whose numbers wobble across a severity threshold is not news again."""
    db = _db(tmp_path)
    with db.session() as s:
        tid = _seed(s)
    with db.session() as s:
        first = record_finding(s, _finding(tid, T0, 1.1, outlets=8), T0)
        # 8 -> 10 outlets would make it a warning, but that is a wobble: updated, nobody told.
        wobble = record_finding(s, _finding(tid, T0 + BUCKET, 1.2, outlets=10), T0 + BUCKET)
        # The negative share creeping up from 0.1 to 0.25 is not material either.
        creep = record_finding(
            s, _finding(tid, T0 + 2 * BUCKET, 1.3, outlets=10, neg=0.25), T0 + 2 * BUCKET
        )
        # Twice the reach people were told about: it escalates, and says why.
        spread = record_finding(s, _finding(tid, T0 + 3 * BUCKET, 1.2, outlets=16), T0 + 3 * BUCKET)
    assert [c.change for c in (first, wobble, creep, spread)] == [
        "new",
        "updated",
        "updated",
        "escalated",
    ]
    assert spread.previous_severity == "info"  # the wobbles did not raise it silently
    told = spread.alert.details["told"]
    assert told["reason"] == "severity" and told["severity"] == ["info", "warning"]
    assert told["families"] == ["volume"] and told["outlets"] == 16
    db.dispose()


def test_a_fading_story_is_not_told_again(tmp_path: Path) -> None:
    """Hours-long evidence (the 4-bucket window, the CUSUM) and reach keep growing after a story
    peaked: a finding that is not ``current`` updates the alert silently, whatever it adds up to;
    it still tells people when it brings a new family."""
    db = _db(tmp_path)
    with db.session() as s:
        tid = _seed(s)
    with db.session() as s:
        first = record_finding(s, _finding(tid, T0, 1.1, outlets=4), T0)
        late = _finding(tid, T0 + BUCKET, 4.0, outlets=16, neg=0.8)
        late.current = False
        fading = record_finding(s, late, T0 + BUCKET)
        turned = _finding(tid, T0 + 2 * BUCKET, 1.0)
        turned.kind, turned.current = "negative_turn", False
        family = record_finding(s, turned, T0 + 2 * BUCKET)
        assert family.alert.details["told"]["reason"] == "family"
        again = _finding(tid, T0 + 3 * BUCKET, 4.0, outlets=16, neg=0.8)
        growing = record_finding(s, again, T0 + 3 * BUCKET)
    assert [c.change for c in (first, fading, family, growing)] == [
        "new",
        "updated",
        "escalated",
        "escalated",
    ]
    assert fading.alert.outlets == 16 and fading.previous_severity == "info"  # kept, not told
    assert growing.alert.details["told"]["severity"] == ["info", "critical"]
    db.dispose()


def test_severity_uses_strength_reach_and_negativity() -> None:
    assert severity_for(_finding(1, T0, 1.0)) == "info"
    assert severity_for(_finding(1, T0, 1.0, outlets=10)) == "warning"
    assert severity_for(_finding(1, T0, 3.0, outlets=10, neg=0.8)) == "critical"


def test_replay_writes_one_line_per_alert(tmp_path: Path, make_settings) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[agencies]]\ncode = "A"\nname = "A"\n\n[[topics]]\nagency = "A"\nname = "Lũ"\n'
        "query = '\"lũ quét\"'\n",
        encoding="utf-8",
    )
    settings = make_settings(config=str(cfg))
    lines = []
    rng = random.Random(7)
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    n = 0
    for b in range(60):  # a calm start, then a burst in bucket 36 across many outlets
        count = 1 if b % 4 == 0 else 0
        if b == 56:
            count = 12
        for i in range(count):
            n += 1
            lines.append(
                {
                    "published_at": (
                        start + b * BUCKET + timedelta(seconds=30 * i + 1)
                    ).isoformat(),
                    "outlet": f"outlet{i % 6}",
                    "url": f"https://e{i % 6}.vn/{n}",
                    "title": "Lũ quét " + " ".join(rng.sample(SYLLABLES, 8)),
                    "lead": " ".join(rng.sample(SYLLABLES, 12)),
                }
            )
    stream = tmp_path / "s.jsonl"
    stream.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert cmd_replay(stream, settings, out, err, scorer=LexiconScorer()) == 0
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rows, err.getvalue()
    for row in rows:
        assert set(row) >= {
            "at",
            "topic",
            "kind",
            "severity",
            "score",
            "stories",
            "outlets",
            "negative_share",
            "terms",
            "forecast",
        }
        assert row["topic"] == "Lũ" and isinstance(row["terms"], list)
        assert set(row["forecast"]) == {"hours", "expected", "low", "high"}
        assert datetime.fromisoformat(row["at"]).utcoffset() is not None
        assert row["change"] in ("new", "escalated") and row["families"]
    bursts = [r for r in rows if r["kind"] == "volume_burst"]
    assert bursts, rows
    assert datetime.fromisoformat(bursts[0]["at"]) == start + 57 * BUCKET  # the bucket that fired
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_replay_rejects_naive_timestamps(tmp_path: Path, make_settings) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[agencies]]\ncode = "A"\nname = "A"\n\n'
        '[[topics]]\nagency = "A"\nname = "x"\nquery = "x"\n',
        encoding="utf-8",
    )
    stream = tmp_path / "s.jsonl"
    stream.write_text('{"published_at": "2026-03-02T08:00:00", "title": "x"}\n', encoding="utf-8")
    err = io.StringIO()
    assert cmd_replay(stream, make_settings(config=str(cfg)), io.StringIO(), err) == 2
    assert "offset" in err.getvalue()


def test_a_turn_during_a_burst_joins_its_alert_as_an_escalation(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.session() as s:
        tid = _seed(s)
        first = record_finding(s, _finding(tid, T0, 1.1), T0)
        turn = _finding(tid, T0 + BUCKET, 1.2)
        turn.kind = "negative_turn"
        merged = record_finding(s, turn, T0 + BUCKET)
        again = record_finding(s, turn, T0 + 2 * BUCKET)
        assert merged.alert.id == first.alert.id == again.alert.id
        assert merged.change == "escalated" and merged.notify  # it turned: people must hear it
        assert again.change == "updated" and not again.notify
        assert merged.alert.details["kinds"] == ["volume_burst", "negative_turn"]
        assert s.execute(sa.select(sa.func.count()).select_from(Alert)).scalar() == 1
    db.dispose()


def test_replay_series_equal_a_rebuild_from_the_rows(tmp_path: Path, make_settings) -> None:  # type: ignore[no-untyped-def]
    """Replay counts buckets in memory; the stored rows rebuilt the live way must agree."""
    from bench.streams import config_toml, generate
    from scanner.replay import read_stream, replay

    items, _events, topics = generate(5, days=3)
    cfg = tmp_path / "c.toml"
    cfg.write_text(config_toml(topics), encoding="utf-8")
    parsed = read_stream(json.dumps(it, ensure_ascii=False) for it in items)
    keep = tmp_path / "replay.sqlite3"
    report = replay(parsed, make_settings(config=str(cfg)), None, ingest="truth", keep=keep)
    engine = make_engine(f"sqlite:///{keep}")
    db = Database(engine)
    with db.session() as s:
        for name, series in report.series.items():
            tid = s.execute(sa.select(Topic.id).where(Topic.name == name)).scalar_one()
            stored = load_series(s, [tid], series.start, series.end)[tid]
            for field_name in ("stories", "outlets", "negative", "positive", "articles"):
                assert (getattr(stored, field_name) == getattr(series, field_name)).all(), (
                    name,
                    field_name,
                )
            assert series.stories.sum() > 50
    db.dispose()


def test_replay_quiet_night_floods_stay_silent(tmp_path: Path, make_settings) -> None:  # type: ignore[no-untyped-def]
    """Through the real scanner: a syndicated story copied by 12 outlets (small edits, tracking
    parameters) and one outlet posting 16 stories in half an hour, at 02:00, raise nothing."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[agencies]]\ncode = "A"\nname = "A"\n\n[[topics]]\nagency = "A"\nname = "Lũ"\n'
        "query = '\"lũ quét\"'\n",
        encoding="utf-8",
    )
    rng = random.Random(11)
    start = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # Monday 00:00 in Hà Nội
    lines: list[dict[str, str]] = []

    def add(at: datetime, outlet: str, title: str, url: str, lead: str = "") -> None:
        lead = lead or " ".join(rng.sample(SYLLABLES, 12))
        lines.append(
            {
                "published_at": at.isoformat(),
                "outlet": outlet,
                "url": url,
                "title": title,
                "lead": lead,
            }
        )

    for b in range(3 * 96):  # three ordinary days: ~1 story an hour by day, none at night
        hour = (b // 4) % 24
        if 7 <= hour < 21 and rng.random() < 0.3:
            add(
                start + b * BUCKET + timedelta(minutes=3),
                f"o{rng.randrange(8)}",
                "Lũ quét " + " ".join(rng.sample(SYLLABLES, 8)),
                f"https://n.vn/{b}",
            )
    night = start + timedelta(days=3, hours=2)
    wire = "Lũ quét " + " ".join(rng.sample(SYLLABLES, 10))
    wire_lead = " ".join(rng.sample(SYLLABLES, 12))
    for i in range(12):
        title = wire if i % 3 else wire.replace(" ", "  ") + f" - outlet{i}"
        add(
            night + timedelta(minutes=i),
            f"outlet{i}",
            title,
            f"https://outlet{i}.vn/tin-1.html?utm_source=facebook&fbclid={i}",
            wire_lead,
        )
    for i in range(16):
        add(
            night + timedelta(minutes=2 * i),
            "flooder",
            "Lũ quét " + " ".join(rng.sample(SYLLABLES, 8)),
            f"https://flood.vn/{i}",
        )
    stream = tmp_path / "s.jsonl"
    stream.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert cmd_replay(stream, make_settings(config=str(cfg)), out, err, scorer=LexiconScorer()) == 0
    assert out.getvalue() == "", out.getvalue()
