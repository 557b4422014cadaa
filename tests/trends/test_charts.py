"""Alert charts (issue 18): the hours that matter, the alert's own numbers, one negative share."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.numbers import format_percent
from chart_scene import local, poisoning_scene
from sqlmodel import Session, SQLModel

from bot.templating import Renderer
from scanner.charts import ChartLabels, render_chart
from scanner.series import BUCKET, bucket_ceil, load_series
from scanner.trends import HISTORY, ChartData, chart_data, negative_share
from storage.db import Database, make_engine
from storage.models import Alert

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    db = Database(engine)
    with db.session() as s:
        yield s
    db.dispose()


def _in_window(data: ChartData, alert: Alert) -> list[int]:
    return [
        i
        for i, (a, b) in enumerate(zip(data.bucket_starts, data.bar_ends, strict=True))
        if a >= alert.window_start and b <= alert.window_end
    ]


def test_the_chart_shows_the_hours_around_the_alert(session: Session) -> None:
    topic, alert, now = poisoning_scene(session, "10:45", own=True, mixed=True)
    # The alert's window starts with its first story (09:20), not with empty buckets before it.
    assert alert.window_start == local("09:15")
    data = chart_data(session, topic, now, tz=TZ, alert=alert)
    end = bucket_ceil(now)
    assert data.bucket in (BUCKET, 2 * BUCKET, 4 * BUCKET)
    assert 8 <= len(data.stories) <= 24  # bars a phone shows, not 192 slivers
    span = data.bar_ends[-1] - data.bucket_starts[0]
    assert timedelta(hours=8) <= span <= timedelta(hours=24)  # hours, not 48
    assert data.bucket_starts[0] <= alert.window_start - timedelta(hours=4)  # a baseline to compare
    assert data.bar_ends[-1] == end and data.forecast_starts[0] == end  # forecast continues
    # No bar straddles the window's edges, so the window's bars are exactly its stories.
    for a, b in zip(data.bucket_starts, data.bar_ends, strict=True):
        assert not (a < alert.window_start < b) and not (a < alert.window_end < b)


def test_the_numbers_drawn_are_the_alerts(session: Session) -> None:
    topic, alert, now = poisoning_scene(session, "10:45", own=True, mixed=True)
    assert alert.kind == "volume_burst" and 0 < alert.negative_share < 1
    data = chart_data(session, topic, now, tz=TZ, alert=alert)
    inside = _in_window(data, alert)
    stories = sum(data.stories[i] for i in inside)
    negative = sum(data.negative[i] for i in inside)
    assert stories == alert.volume == data.window_stories
    assert round(negative / stories, 3) == alert.negative_share == round(data.negative_share, 3)
    # The expected line over the window adds up to the baseline the alert text quotes.
    assert sum(data.expected[i] for i in inside) == pytest.approx(alert.baseline, abs=1e-3)
    assert data.window_expected == pytest.approx(alert.baseline, abs=1e-3)
    # Outside the window each bar has its own expected level and band around it.
    assert all(lo <= hi for lo, hi in zip(data.band_low, data.band_high, strict=True))
    assert all(0 <= n <= s for n, s in zip(data.negative, data.stories, strict=True))
    assert sum(data.forecast_expected) == pytest.approx(alert.forecast["expected"], rel=1e-6)
    # The words drawn quote the same numbers as the alert text.
    renderer = Renderer()
    label = renderer.render("chart_alert_line", "vi", topic=topic.name, a=alert)
    text = renderer.render("chart_window_note", "vi", topic=topic.name, a=alert)
    share = format_percent(alert.negative_share, locale="vi")
    assert f"{int(alert.volume)} tin" in label and share in label and share in text


def test_one_negative_share_after_findings_of_other_windows(session: Session) -> None:
    """A burst, then more findings that update the alert silently over other windows: the row
    (read by the alert text and the crisis room card) keeps its window's share and counts."""
    topic, alert, now = poisoning_scene(session, "12:30", own=True, mixed=True)
    assert topic.id is not None
    series = load_series(session, [topic.id], bucket_ceil(now) - HISTORY, bucket_ceil(now))[
        topic.id
    ]
    assert len(alert.details["kinds"]) >= 1 and alert.window_end > alert.window_start
    share = negative_share(series, alert.window_start, alert.window_end)
    assert alert.negative_share == round(share, 3)
    i0 = int((alert.window_start - series.start) / series.bucket)
    i1 = int((alert.window_end - series.start) / series.bucket)
    assert alert.volume == series.stories[i0:i1].sum()
    data = chart_data(session, topic, now, tz=TZ, alert=alert)
    assert round(data.negative_share, 3) == alert.negative_share


def test_the_chart_is_a_1280x720_png_and_deterministic(session: Session) -> None:
    topic, alert, now = poisoning_scene(session, "11:30")
    # A negative turn: its CUSUM run began in the empty night; the window says 09:15.
    assert alert.kind == "negative_turn" and alert.window_start == local("09:15")
    data = chart_data(session, topic, now, tz=TZ, alert=alert)
    renderer = Renderer()
    labels = ChartLabels.build(
        lambda name: renderer.render(f"chart_{name}", "vi", topic=topic.name, a=alert)
    )
    png = render_chart(data, labels, TZ)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 720)
    assert render_chart(data, labels, TZ) == png
