"""History that reaches the baseline: items with past publication times enter the series,
start-up repairs missing or stale buckets, and the detectors see only a topic's real history
(the cold-start rules run on a short one, and the alert says so)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alert_desk import OUTLETS, FeedServer, add_sources, feeds
from news_words import SYLLABLES
from sqlmodel import Session

from bot.clock import SimulatedClock
from bot.runtime import Runtime
from bot.services.alerts import facts
from bot.services.delivery import alert_text
from bot.services.scanning import scan_and_alert
from bot.templating import Renderer
from scanner import series, trends
from scanner.charts import ChartLabels, render_chart
from scanner.parse import FeedItem
from scanner.pipeline import Incoming, Processor, run_scan
from scanner.series import BUCKET, bucket_floor, rebuild_buckets
from scanner.trends import detect_for_topics, run_detection
from storage.db import Database
from storage.models import Agency, SeriesBucket, Source, Topic

__all__ = ["feeds"]  # the local feed server fixture

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội, a Monday
QUERY = '"ngộ độc"'


def _topic(session: Session, created_at: datetime = NOW) -> Topic:
    agency = Agency(code="BYT", name="Bộ Y tế")
    session.add(agency)
    session.flush()
    assert agency.id is not None
    topic = Topic(agency_id=agency.id, name="Ngộ độc", query=QUERY, created_at=created_at)
    session.add(topic)
    session.flush()
    return topic


def _headline(rng: random.Random) -> tuple[str, str]:
    """A distinct story about the topic: no two share enough words to be one story."""
    words = rng.sample(SYLLABLES, 7)
    return f"Ngộ độc {' '.join(words[:4])}", f"Vụ việc {' '.join(words[4:])} đang được xác minh."


def _incoming(times: Sequence[datetime], seed: int) -> list[Incoming]:
    rng = random.Random(seed)
    out = []
    for i, at in enumerate(times):
        title, lead = _headline(rng)
        url = f"https://tin.example.vn/{seed}/{i}"
        out.append(Incoming(FeedItem(title, url, lead, at), OUTLETS[i % len(OUTLETS)]))
    return out


def _store(session: Session, times: Sequence[datetime], now: datetime, seed: int) -> list[int]:
    """Store items through the scanner's Processor (dedupe, matching, sentiment), no series."""
    result = Processor.from_db(session, now).process(session, _incoming(times, seed), now)
    return [a.id for a in result.articles if a.id is not None]


def _stored(session: Session, topic_id: int) -> dict[datetime, tuple[float, int]]:
    rows = session.execute(
        sa.select(SeriesBucket.bucket_start, SeriesBucket.stories, SeriesBucket.articles).where(
            SeriesBucket.topic_id == topic_id  # type: ignore[arg-type]
        )
    )
    return {b: (s, a) for b, s, a in rows}


async def test_backfilled_history_reaches_the_series(
    sqlite_db: Database, make_settings: object, feeds: FeedServer
) -> None:
    """A new source's first scan carries items of 2 and 9 days ago: they are in the series
    after the scan, and a late copy published before its story's first article moves the
    story's count to its own (older) bucket."""
    clock = SimulatedClock(NOW)
    settings = make_settings({"CRISISDESK_ALLOW_PRIVATE_FEEDS": "true"})  # type: ignore[operator]
    with sqlite_db.session() as s:
        topic_id = _topic(s).id
    assert topic_id is not None
    rng = random.Random(3)
    two_days = NOW - timedelta(days=2, minutes=7)
    nine_days = NOW - timedelta(days=9, minutes=7)
    copied, copied_lead = _headline(rng)
    for i, outlet in enumerate(OUTLETS[:3]):
        title, lead = _headline(rng)
        feeds.items.setdefault(outlet, []).append((title, f"https://a.vn/{i}", lead, two_days))
    for i, outlet in enumerate(OUTLETS[3:5]):
        title, lead = _headline(rng)
        feeds.items.setdefault(outlet, []).append((title, f"https://b.vn/{i}", lead, nine_days))
    first_seen = NOW - timedelta(hours=5, minutes=7)
    feeds.items[OUTLETS[5]] = [(copied, "https://c.vn/0", copied_lead, first_seen)]
    add_sources(sqlite_db, feeds)
    await run_scan(sqlite_db, settings, clock)
    run_detection(sqlite_db, clock.now())

    with sqlite_db.session() as s:
        stored = _stored(s, topic_id)
    assert stored[bucket_floor(two_days)] == (3.0, 3)
    assert stored[bucket_floor(nine_days)] == (2.0, 2)
    assert stored[bucket_floor(first_seen)] == (1.0, 1)

    # A copy of that story, published an hour before it, arrives in the next scan.
    earlier = first_seen - timedelta(hours=1)
    feeds.items[OUTLETS[0]].append((copied, "https://d.vn/0", copied_lead, earlier))
    clock.advance(timedelta(minutes=30))
    with sqlite_db.session() as s:
        s.execute(sa.update(Source).values(next_fetch_after=None))
    await run_scan(sqlite_db, settings, clock)
    with sqlite_db.session() as s:
        stored = _stored(s, topic_id)
    assert stored[bucket_floor(earlier)] == (1.0, 1)
    assert stored[bucket_floor(first_seen)] == (0.0, 1)  # a copy adds reach, not a story


def _seeded(db: Database) -> int:
    """A topic with articles over three days, stored without their series."""
    with db.session() as s:
        topic_id = _topic(s, created_at=NOW - timedelta(days=4)).id
        times = [NOW - timedelta(hours=3 * k, minutes=4) for k in range(1, 25)]
        _store(s, times, NOW, seed=11)
    assert topic_id is not None
    return topic_id


async def test_start_up_repairs_missing_and_stale_buckets(
    db: Database, make_settings: object
) -> None:
    """Articles whose buckets were never written (an older version, a scan that died) and a
    bucket left wrong are rebuilt before the first detection of a started bot; a second
    start with nothing stale changes nothing."""
    topic_id = _seeded(db)
    with db.session() as s:
        expected = _stored(s, topic_id)
        assert expected == {}  # nothing was counted yet
        rebuild_buckets(s, NOW - timedelta(days=4), NOW, [topic_id])
        expected = _stored(s, topic_id)
        assert sum(a for _s, a in expected.values()) == 24
        wrong, gone = sorted(expected)[3], sorted(expected)[7]
        s.execute(
            sa.update(SeriesBucket)
            .where(SeriesBucket.bucket_start == wrong)  # type: ignore[arg-type]
            .values(stories=9, articles=9)
        )
        s.execute(sa.delete(SeriesBucket).where(SeriesBucket.bucket_start == gone))  # type: ignore[arg-type]
        s.add(SeriesBucket(topic_id=topic_id, bucket_start=NOW - BUCKET * 3, stories=4, articles=4))
    settings = make_settings()  # type: ignore[operator]
    runtime = Runtime(settings, db, SimulatedClock(NOW), Renderer(), notifier=None)  # type: ignore[arg-type]
    assert await scan_and_alert(runtime) is None  # no sources: nothing to scan, series repaired
    with db.session() as s:
        assert _stored(s, topic_id) == expected
        assert series.repair_series(s) == 0  # nothing stale: the cheap path


def _burst(session: Session, now: datetime, stories: int, seed: int) -> None:
    """Stories in the current bucket, and the series of the last day rebuilt."""
    times = [now - timedelta(minutes=12 - i % 10) for i in range(stories)]
    _store(session, times, now, seed)
    rebuild_buckets(session, now - timedelta(days=1), now)


def _alert_text(db: Database, alert_id: int, lang: str) -> str:
    with db.session() as s:
        f = facts(s, alert_id)
    return alert_text(Renderer("Asia/Ho_Chi_Minh"), lang, f)


def test_short_history_takes_the_cold_start_path_and_says_so(sqlite_db: Database) -> None:
    """Ten hours of real history: no seasonal model fitted on weeks of invented zeros, but the
    documented cold start (the bucket against the past hours' average), and the alert says
    how little history it stands on."""
    with sqlite_db.session() as s:
        topic = _topic(s)
        times = [NOW - timedelta(hours=h, minutes=20) for h in range(1, 11)]
        _store(s, times, NOW, seed=5)
        _burst(s, NOW, 9, seed=6)
        changes = detect_for_topics(s, [topic], NOW)
    assert [c.change for c in changes] == ["new"]
    alert = changes[0].alert
    assert alert.details["detector"]["method"] == "ewma"
    assert alert.details["history"]["cold_start"] is True
    assert 10 <= alert.details["history"]["hours"] < 12
    assert alert.id is not None
    vi = _alert_text(sqlite_db, alert.id, "vi")
    assert "chủ đề này mới có dữ liệu 10 giờ" in vi and "chưa đủ để biết nhịp tin" in vi
    assert "only 10 hours of history" in _alert_text(sqlite_db, alert.id, "en")
    with sqlite_db.session() as s:  # the chart shows the real hours, its baseline fitted on them
        chart = trends.chart_data(s, topic, NOW)
    # Never a bar before the real history (no invented zeros), and an expected level fitted on it.
    assert chart.bucket_starts[0] >= NOW - 42 * BUCKET
    assert sum(chart.stories) == 10 + 9 - sum(t < chart.bucket_starts[0] for t in times)
    assert chart.window_expected > 0
    labels = ChartLabels(
        "t", "stories", "other", "negative", "baseline", "alert", "note", "fc", "now"
    )
    assert render_chart(chart, labels, UTC).startswith(b"\x89PNG")


def test_days_of_real_silence_are_history(sqlite_db: Database) -> None:
    """A topic watched for days (its sources were scanned) with no article until now has a
    real zero history: the seasonal model runs, and the alert says the history is short."""
    days = 5
    with sqlite_db.session() as s:
        topic = _topic(s, created_at=NOW - timedelta(days=days))
        s.add(Source(name="x", outlet="x", url="https://x.vn/rss", created_at=topic.created_at))
        s.flush()
        _burst(s, NOW, 9, seed=7)
        changes = detect_for_topics(s, [topic], NOW)
        starts = series.history_starts(s, [topic], NOW, timedelta(days=28))
    assert starts == {topic.id: bucket_floor(NOW - timedelta(days=days))}
    alert = changes[0].alert
    assert alert.details["detector"]["method"] == "seasonal"
    assert alert.details["history"] == {"hours": days * 24.0, "short": True, "cold_start": False}
    assert alert.id is not None
    assert f"mới có dữ liệu {days} ngày" in _alert_text(sqlite_db, alert.id, "vi")


def test_zeros_before_anybody_looked_are_not_history(sqlite_db: Database) -> None:
    """A topic created 20 days ago whose first source came 2 days ago: its history starts with
    the source (not 20 or 28 days of invented zeros); with no source and no article, it is
    only the current bucket."""
    with sqlite_db.session() as s:
        topic = _topic(s, created_at=NOW - timedelta(days=20))
        assert series.history_starts(s, [topic], NOW, timedelta(days=28)) == {
            topic.id: NOW - BUCKET
        }
        _store(s, [NOW - timedelta(days=1, minutes=3)], NOW, seed=9)
        rebuild_buckets(s, NOW - timedelta(days=2), NOW)
        assert series.history_starts(s, [topic], NOW, timedelta(days=28)) == {
            topic.id: bucket_floor(NOW - timedelta(days=1, minutes=3))
        }
        s.add(
            Source(name="x", outlet="x", url="https://x.vn/rss", created_at=NOW - timedelta(days=2))
        )
        s.flush()
        assert series.history_starts(s, [topic], NOW, timedelta(days=28)) == {
            topic.id: NOW - timedelta(days=2)
        }
        assert series.history_starts(s, [topic], NOW, timedelta(days=1)) == {
            topic.id: NOW - timedelta(days=1)
        }


def _quiet_topic_with_a_burst(db: Database, burst_at: datetime) -> Topic:
    """A topic watched for 5 quiet days, and 9 stories in one bucket at ``burst_at``: what a
    scan stores when it reads, after an outage, the news published while the bot was down."""
    with db.session() as s:
        topic = _topic(s, created_at=NOW - timedelta(days=5))
        s.add(Source(name="x", outlet="x", url="https://x.vn/rss", created_at=topic.created_at))
        s.flush()
        times = [burst_at - timedelta(minutes=12 - i % 10) for i in range(9)]
        _store(s, times, NOW, seed=8)
        rebuild_buckets(s, NOW - timedelta(days=1), NOW)
    return topic


def test_a_burst_missed_while_the_bot_was_down_is_alerted_late_and_says_so(
    db: Database,
) -> None:
    """Detection last ran 8 hours ago; the burst of 6 hours ago arrives in the first scan after
    the outage. Judged only at "now" it is old news (no alert, as before this change); the
    missed buckets are judged first, so it raises one alert, stamped with its own window, whose
    text says it is late and since when nothing was scanned."""
    down_since = NOW - timedelta(hours=8)
    assert run_detection(db, down_since) == []  # the last detection before the outage
    burst_at = NOW - timedelta(hours=6)
    _quiet_topic_with_a_burst(db, burst_at)

    changes = run_detection(db, NOW)

    assert [c.change for c in changes] == ["new"]
    alert = changes[0].alert
    assert alert.window_start <= bucket_floor(burst_at) < alert.window_end
    assert alert.window_end <= burst_at + timedelta(hours=1)  # its own hour, not now
    assert alert.details["caught_up"]["since"] == down_since.isoformat()
    assert alert.id is not None
    vi = _alert_text(db, alert.id, "vi")
    assert "Cảnh báo muộn: hệ thống không quét tin từ 00:00 02/11/2026 đến 08:00" in vi, vi
    assert "Dự báo" not in vi  # a forecast of hours already past would mislead
    assert "Late alert: no scan ran from" in _alert_text(db, alert.id, "en")
    assert run_detection(db, NOW + timedelta(minutes=5)) == []  # told once


def test_a_scan_that_fetched_before_a_stall_leaves_the_stall_to_be_judged(
    sqlite_db: Database,
) -> None:
    """A scan read its feeds (nothing new) before the machine stalled for hours and detected
    after; the stall's news, read by the next scan, is still judged (the detection is recorded
    as of the fetch). Recorded as of its end, the burst was never alerted (the sandbox's drill
    saw it under load: a clock jump between a scan's fetch and its detection)."""
    fetched = NOW - timedelta(hours=8)
    assert run_detection(sqlite_db, fetched) == []  # the usual pace before the stall
    assert run_detection(sqlite_db, NOW, fetched_at=fetched + timedelta(minutes=1)) == []
    _quiet_topic_with_a_burst(sqlite_db, NOW - timedelta(hours=6))
    changes = run_detection(sqlite_db, NOW + timedelta(minutes=5))
    assert [c.change for c in changes] == ["new"]
    assert (
        changes[0].alert.details["caught_up"]["since"]
        == (fetched + timedelta(minutes=1)).isoformat()
    )


def test_no_catch_up_at_the_usual_pace_nor_on_a_first_run(sqlite_db: Database) -> None:
    """Detections minutes apart judge only "now" (the burst of 6 hours ago stays history), and so
    does the first detection of a new installation: its feeds' past is baseline, not news."""
    _quiet_topic_with_a_burst(sqlite_db, NOW - timedelta(hours=6))
    assert run_detection(sqlite_db, NOW - timedelta(minutes=10)) == []  # first run: no marker
    assert run_detection(sqlite_db, NOW) == []  # 10 minutes later: the usual pace
    assert trends.missed_bucket_ends(NOW - 2 * BUCKET, NOW) == []
    assert trends.missed_bucket_ends(NOW - timedelta(days=3), NOW)[0] == NOW - timedelta(hours=24)
