"""``crisisdesk trends replay``: backtest the detectors on a recorded stream, offline.

Items (JSON lines: ``published_at`` ISO-8601 with offset, ``outlet``, ``url``, ``title``, ``lead``)
go bucket by bucket, on a simulated clock, through the scanner's own dedupe, topic matching and
sentiment (:class:`scanner.pipeline.Processor`) into a temporary SQLite database, then through the
same series rebuild, detectors and alert logic as the live scan. The topics are those of the
current config. Nothing touches the configured database, the network or any chat.

One JSON line is written per alert raised or escalated, stamped with the end of the bucket that
fired. Speed: the bucket arrays are kept in memory and each bucket is counted from the rows the
ingest just stored, with the same counting rules as :func:`scanner.series.rebuild_buckets`
(:func:`scanner.series.count_buckets`; a test checks that both give the same series), instead of
re-reading the database every bucket; the SeriesBucket rows are written once at the end. So 14
days of 25,000 items replay in well under a minute.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from scanner.alerting import FAMILY, AlertChange
from scanner.series import (
    BUCKET,
    STORY_LOOKBACK,
    TopicSeries,
    bucket_floor,
    count_buckets,
    rebuild_buckets,
)
from scanner.trends import HISTORY, detect_topic
from storage.db import Database, make_engine
from storage.models import Article, ArticleTopic, Story, Topic
from storage.sync import ConfigEntries, sync_config


class ReplayError(ValueError):
    """A stream line that cannot be replayed; the message names the line and the fix."""


@dataclass(frozen=True)
class StreamItem:
    published_at: datetime
    outlet: str
    url: str
    title: str
    lead: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def story(self) -> str:
        """The story the stream puts it in (``extra["story"]``); alone, its own URL."""
        return str(self.extra.get("story", self.url))

    @property
    def sentiment(self) -> str:
        """The sentiment label the stream gives it (``extra["sentiment"]``), else neutral."""
        return str(self.extra.get("sentiment", "neutral"))


def read_stream(lines: Iterable[str]) -> list[StreamItem]:
    """Parse JSON lines, sorted by publication time (stable for equal times)."""
    items = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            published = datetime.fromisoformat(raw["published_at"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ReplayError(
                f"line {n}: need JSON with an ISO-8601 'published_at' ({exc})"
            ) from None
        if published.tzinfo is None:
            raise ReplayError(f"line {n}: published_at {raw['published_at']!r} has no UTC offset")
        items.append(
            StreamItem(
                published_at=published,
                outlet=str(raw.get("outlet") or ""),
                url=str(raw.get("url") or f"replay:{n}"),
                title=str(raw.get("title") or ""),
                lead=str(raw.get("lead") or ""),
                extra={
                    k: v
                    for k, v in raw.items()
                    if k not in {"published_at", "outlet", "url", "title", "lead"}
                },
            )
        )
    items.sort(key=lambda it: it.published_at)
    return items


Row = tuple[int, int, str, datetime, str]  # topic_id, story_key, outlet, published_at, label


class Ingest(Protocol):
    """Stores one bucket's items as Article/Story/ArticleTopic rows; returns their series rows."""

    def __call__(
        self, session: Session, items: Sequence[StreamItem], now: datetime
    ) -> list[Row]: ...


def _series_rows(
    articles: Sequence[Article],
    links: Iterable[tuple[int, int, str | None]],
    labels: dict[int, str],
) -> list[Row]:
    """The (topic, story, outlet, time, label) rows of stored articles, as ``rebuild_buckets``
    reads them: the link's label (the article's tone for that topic), else the story's, else
    the article's; an article without a story is its own."""
    by_id = {a.id: a for a in articles}
    out: list[Row] = []
    for article_id, topic_id, link_label in links:
        a = by_id[article_id]
        assert a.id is not None
        key = a.story_id if a.story_id is not None else -a.id
        label = link_label or labels.get(a.story_id or 0) or a.sentiment_label or "neutral"
        out.append((topic_id, key, a.outlet, a.published_at, label))
    return out


class ScannerIngest:
    """The production path: the scanner's Processor (dedupe, matching, sentiment)."""

    def __init__(self, session: Session, scorer: Any = None) -> None:
        from scanner.pipeline import Processor, load_topics

        self.processor = Processor(load_topics(session), scorer=scorer)

    def __call__(self, session: Session, items: Sequence[StreamItem], now: datetime) -> list[Row]:
        from scanner.parse import FeedItem
        from scanner.pipeline import Incoming

        incoming = [
            Incoming(
                FeedItem(title=it.title, url=it.url, summary=it.lead, published_at=it.published_at),
                it.outlet,
            )
            for it in items
        ]
        result = self.processor.process(session, incoming, now)
        labels = {
            s.id: s.sentiment_label
            for s in [*result.new_stories, *result.updated_stories]
            if s.id is not None and s.sentiment_label
        }
        links = [
            (link["article_id"], link["topic_id"], link.get("sentiment_label"))
            for link in result.link_rows
        ]
        return _series_rows(result.articles, links, labels)


class TruthIngest:
    """Benchmark only: store the stream's own labels (``story``, ``topics``, ``sentiment``).

    Separates the detectors' quality from the scanner's: with perfect dedupe, matching and
    sentiment, what do the detectors find?
    """

    def __init__(self, session: Session) -> None:
        self.topic_ids = {t.name: t.id for t in session.execute(sa.select(Topic)).scalars()}
        self.stories: dict[str, int] = {}
        self.seen: set[str] = set()

    def __call__(self, session: Session, items: Sequence[StreamItem], now: datetime) -> list[Row]:
        fresh = []
        for it in items:
            if it.url not in self.seen:
                self.seen.add(it.url)
                fresh.append(it)
        new: dict[str, Story] = {}
        for it in fresh:
            key = it.story
            if key not in self.stories and key not in new:
                new[key] = Story(
                    title=it.title,
                    first_seen_at=it.published_at,
                    last_seen_at=it.published_at,
                    sentiment_label=it.sentiment,
                )
        session.add_all(new.values())
        session.flush()
        self.stories.update({k: s.id for k, s in new.items() if s.id is not None})
        articles = []
        for it in fresh:
            articles.append(
                Article(
                    canonical_url=it.url,
                    url=it.url,
                    outlet=it.outlet,
                    title=it.title,
                    summary=it.lead,
                    published_at=it.published_at,
                    fetched_at=now,
                    sentiment_label=it.sentiment,
                    story_id=self.stories[it.story],
                )
            )
        session.add_all(articles)
        session.flush()
        links = [
            ArticleTopic(article_id=a.id, topic_id=self.topic_ids[name])
            for a, it in zip(articles, fresh, strict=True)
            if a.id is not None
            for name in it.extra.get("topics", [])
            if name in self.topic_ids
        ]
        session.add_all(links)
        session.flush()
        labels = {sid: str(s.sentiment_label) for s in new.values() if (sid := s.id) is not None}
        for it in fresh:
            labels.setdefault(self.stories[it.story], it.sentiment)
        return _series_rows(articles, [(x.article_id, x.topic_id, None) for x in links], labels)


@dataclass
class ReplayReport:
    items: int = 0
    buckets: int = 0
    alerts: int = 0
    seconds: float = 0.0
    changes: list[dict[str, Any]] = field(default_factory=list)
    series: dict[str, TopicSeries] = field(default_factory=dict)  # by topic name


def _buckets(items: Sequence[StreamItem]) -> Iterator[tuple[datetime, list[StreamItem]]]:
    if not items:
        return
    start = bucket_floor(items[0].published_at)
    end = bucket_floor(items[-1].published_at) + BUCKET
    i = 0
    b = start
    while b < end:
        nxt = b + BUCKET
        j = i
        while j < len(items) and items[j].published_at < nxt:
            j += 1
        yield b, list(items[i:j])
        i, b = j, nxt


def change_line(change: AlertChange, topic_name: str, tz: tzinfo) -> dict[str, Any]:
    """The JSON object written for one raised or escalated alert."""
    a = change.alert
    kinds = [str(k) for k in a.details.get("kinds", [a.kind])]
    told = a.details.get("told") or {}
    families = [str(f) for f in told.get("families", [])] or [FAMILY.get(str(a.kind), "volume")]
    return {
        "at": a.window_end.astimezone(tz).isoformat(),
        "topic": topic_name,
        "kind": a.kind if change.change == "new" else str(told.get("kind", kinds[-1])),
        "kinds": kinds,
        "families": families,
        "reason": str(told.get("reason", change.change)),
        "alert": a.id,
        "severity": a.severity,
        "previous_severity": change.previous_severity,
        "change": change.change,
        "score": round(a.score, 3),
        "stories": a.volume,
        "outlets": a.outlets,
        "negative_share": a.negative_share,
        "terms": list(a.details.get("terms", [])),
        "forecast": dict(a.forecast),
    }


class ReplaySettings(ConfigEntries, Protocol):
    """What a replay reads of the settings (``bot.config.Settings`` fits): the TOML's agencies,
    topics and sources, and the zone of the printed times."""

    @property
    def tz(self) -> tzinfo: ...


def replay(
    items: Sequence[StreamItem],
    settings: ReplaySettings,
    out: TextIO | None = None,
    *,
    ingest: str = "scanner",
    scorer: Any = None,
    keep: Path | None = None,
) -> ReplayReport:
    """Replay ``items`` with the topics of ``settings`` in a throw-away database.

    ``keep`` names a new SQLite file to replay into instead, left for inspection (tests).
    """
    report = ReplayReport(items=len(items))
    started = time.perf_counter()
    tz = settings.tz
    with tempfile.TemporaryDirectory(prefix="crisisdesk-replay-") as tmp:
        if keep is not None and keep.exists():
            raise ReplayError(f"{keep} exists; replay only writes to a new database file")
        path = keep if keep is not None else Path(tmp) / "replay.sqlite3"
        engine = make_engine(f"sqlite:///{path}")
        SQLModel.metadata.create_all(engine)
        db = Database(engine)
        try:
            with db.session() as session:
                sync_config(session, settings)
            with db.session() as session:
                _run(session, items, tz, ingest, out, report, scorer)
        finally:
            db.dispose()
    report.seconds = time.perf_counter() - started
    return report


def _run(
    session: Session,
    items: Sequence[StreamItem],
    tz: tzinfo,
    ingest: str,
    out: TextIO | None,
    report: ReplayReport,
    scorer: Any,
) -> None:
    topics = [t for t in session.execute(sa.select(Topic)).scalars() if t.active]
    ids = [t.id for t in topics if t.id is not None]
    store: Ingest = TruthIngest(session) if ingest == "truth" else ScannerIngest(session, scorer)
    if not items or not topics:
        return
    first = bucket_floor(items[0].published_at)
    n_total = int((bucket_floor(items[-1].published_at) - first) / BUCKET) + 1
    arrays = {
        t: {
            k: np.zeros(n_total) for k in ("stories", "outlets", "negative", "positive", "articles")
        }
        for t in ids
    }
    history = int(HISTORY / BUCKET)
    last_seen: dict[tuple[int, int], datetime] = {}  # (topic, story) -> last article time
    for index, (start, batch) in enumerate(_buckets(items)):
        now = (start + BUCKET).astimezone(UTC)  # each bucket is scanned as it closes
        rows = store(session, batch, now) if batch else []
        # Same rule as rebuild_buckets: a story already seen for the topic within the lookback
        # adds reach, not a story.
        skip = {
            (t, k)
            for t, k, _o, _p, _l in rows
            if (seen := last_seen.get((t, k))) is not None and seen >= start - STORY_LOOKBACK
        }
        for t, k, _o, published, _l in rows:
            last_seen[(t, k)] = max(published, last_seen.get((t, k), published))
        counted = count_buckets(rows, skip=skip)
        active: set[int] = set()
        for (topic_id, _b), row in counted.items():
            a = arrays[topic_id]
            for field_name in ("stories", "outlets", "negative", "positive", "articles"):
                a[field_name][index] = getattr(row, field_name)
            active.add(topic_id)
        for topic in topics:
            if topic.id not in active:
                continue  # nothing new for this topic: nothing can newly fire
            lo = max(index + 1 - history, 0)
            a = arrays[topic.id]
            series = TopicSeries(
                topic.id,
                first + BUCKET * lo,
                BUCKET,
                a["stories"][lo : index + 1],
                a["outlets"][lo : index + 1],
                a["negative"][lo : index + 1],
                a["positive"][lo : index + 1],
                a["articles"][lo : index + 1],
            )
            for change in detect_topic(session, topic, series, now, tz=tz):
                if not change.notify:
                    continue
                line = change_line(change, topic.name, tz)
                report.changes.append(line)
                report.alerts += 1
                if out is not None:
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
        report.buckets += 1
        if index % 16 == 15:
            session.commit()  # the alert rows are durable before the lines are read downstream
    # The stored series, as the live scan would have it (one pass instead of one per bucket).
    rebuild_buckets(session, first, first + BUCKET * n_total, ids)
    session.commit()
    for topic in topics:
        assert topic.id is not None
        a = arrays[topic.id]
        report.series[topic.name] = TopicSeries(
            topic.id,
            first,
            BUCKET,
            a["stories"],
            a["outlets"],
            a["negative"],
            a["positive"],
            a["articles"],
        )


def cmd_replay(
    stream: Path,
    settings: ReplaySettings,
    out: TextIO,
    err: TextIO,
    *,
    ingest: str = "scanner",
    scorer: Any = None,
) -> int:
    """CLI body of ``crisisdesk trends replay``; returns the exit code."""
    if not settings.topics:
        err.write(
            "crisisdesk: no topics in the config; set CRISISDESK_CONFIG to a TOML with [[topics]]\n"
        )
        return 2
    try:
        with stream.open(encoding="utf-8") as fh:
            items = read_stream(fh)
    except OSError as exc:
        err.write(f"crisisdesk: cannot read {stream}: {exc.strerror}\n")
        return 2
    except ReplayError as exc:
        err.write(f"crisisdesk: {stream}: {exc}\n")
        return 2
    report = replay(items, settings, out, ingest=ingest, scorer=scorer)
    err.write(
        f"crisisdesk: replayed {report.items} items in {report.buckets} buckets, "
        f"{report.alerts} alerts raised or escalated, {report.seconds:.1f} s\n"
    )
    return 0
