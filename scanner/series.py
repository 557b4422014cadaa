"""Per-topic time series of distinct stories: the only input the trend detectors see.

Raw article counts lie about news: one wire story copied by a dozen outlets, or one outlet
re-posting its own feed, looks like a burst. So each bucket counts

* ``stories``: distinct stories whose *first* matching article falls in the bucket (syndicated
  copies count once, in the bucket where the story first appeared for that topic), with each
  outlet's contribution capped at ``cap`` stories per bucket (a flooding outlet counts as ``cap``);
* ``outlets``: distinct outlets (not feeds) that published any article of the topic in the bucket,
  copies included: reach, a virality signal;
* ``negative`` / ``positive``: how many of the counted stories carry that sentiment label;
* ``articles``: the raw article count, kept only for the naive baselines and for charts.

Buckets are rebuilt from Article/Story/ArticleTopic rows by :func:`rebuild_buckets`, which deletes
and rewrites the range, so running it twice gives the same rows. The scan rebuilds exactly the
buckets its new articles touch (:func:`rebuild_for_articles`), however old: a new source's first
scan, or a scan after an outage, brings days of items with past publication times, and they are the
history the detectors' baselines learn from. At start-up :func:`repair_series` rebuilds whatever a
crash, an older version or a hand edit left missing or stale.

Where a topic's real history begins (:func:`history_starts`) matters as much as the counts: zeros
before a topic was watched, or before any article of it was stored, are not a quiet past, and a
seasonal model fitted on them expects nothing.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from storage.models import Article, ArticleTopic, SeriesBucket, Source, Story, Topic

BUCKET = timedelta(minutes=15)
OUTLET_CAP = 2
#: An article's label as a topic counts it: its tone for that topic (scored without the
#: topic's own terms), else its story's, else its own (links stored before migration 0002).
TOPIC_LABEL = sa.func.coalesce(
    ArticleTopic.sentiment_label, Story.sentiment_label, Article.sentiment_label
)
STORY_LOOKBACK = timedelta(hours=72)  # the story clustering TTL: older copies start new stories
#: Touched buckets closer than this are rebuilt as one range: reading a gap's few rows is cheaper
#: than another round of queries.
MERGE_GAP = timedelta(hours=6)
_CHUNK = 500  # ids per IN (...) list
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_floor(at: datetime, bucket: timedelta = BUCKET) -> datetime:
    """Start of the bucket containing ``at`` (buckets are aligned on the UTC epoch)."""
    if at.tzinfo is None:
        raise ValueError("bucket_floor needs an aware datetime; use bot.clock")
    step = int(bucket.total_seconds())
    seconds = int((at - _EPOCH).total_seconds() // step) * step
    return _EPOCH + timedelta(seconds=seconds)


def bucket_ceil(at: datetime, bucket: timedelta = BUCKET) -> datetime:
    """Smallest bucket boundary at or after ``at``."""
    floor = bucket_floor(at, bucket)
    return floor if floor == at else floor + bucket


@dataclass
class TopicSeries:
    """Dense (zero-filled) bucket arrays for one topic; index ``-1`` is the current bucket."""

    topic_id: int
    start: datetime
    bucket: timedelta = BUCKET
    stories: np.ndarray = field(default_factory=lambda: np.zeros(0))
    outlets: np.ndarray = field(default_factory=lambda: np.zeros(0))
    negative: np.ndarray = field(default_factory=lambda: np.zeros(0))
    positive: np.ndarray = field(default_factory=lambda: np.zeros(0))
    articles: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.stories.shape[0])

    @classmethod
    def empty(
        cls, topic_id: int, start: datetime, n: int, bucket: timedelta = BUCKET
    ) -> TopicSeries:
        return cls(
            topic_id=topic_id,
            start=start,
            bucket=bucket,
            stories=np.zeros(n),
            outlets=np.zeros(n),
            negative=np.zeros(n),
            positive=np.zeros(n),
            articles=np.zeros(n),
        )

    @property
    def end(self) -> datetime:
        """End of the last bucket."""
        return self.start + self.bucket * len(self)

    def bucket_start(self, index: int) -> datetime:
        return self.start + self.bucket * (index if index >= 0 else len(self) + index)

    def head(self, n: int) -> TopicSeries:
        """The first ``n`` buckets: the series as it was known when bucket ``n - 1`` was current."""
        return TopicSeries(
            self.topic_id,
            self.start,
            self.bucket,
            self.stories[:n],
            self.outlets[:n],
            self.negative[:n],
            self.positive[:n],
            self.articles[:n],
        )

    def tail(self, n: int) -> TopicSeries:
        """The last ``n`` buckets (fewer if the series is shorter)."""
        n = min(n, len(self))
        cut = len(self) - n
        return TopicSeries(
            self.topic_id,
            self.bucket_start(cut) if len(self) else self.start,
            self.bucket,
            self.stories[cut:],
            self.outlets[cut:],
            self.negative[cut:],
            self.positive[cut:],
            self.articles[cut:],
        )

    def slots(self, tz: tzinfo) -> np.ndarray:
        """Seasonal slot of every bucket: local hour of day (0-23) + 24 on Saturday and Sunday.

        News follows the office day of its readers, so seasonality is taken in the configured
        time zone, not UTC. Offsets are computed per distinct UTC offset, so DST zones work too.
        """
        n = len(self)
        step = self.bucket.total_seconds()
        base = (self.start - _EPOCH).total_seconds()
        utc_seconds = base + step * np.arange(n)
        first = self.start.astimezone(tz).utcoffset() or timedelta(0)
        last = self.bucket_start(n - 1).astimezone(tz).utcoffset() if n else first
        if last == first:
            offsets = np.full(n, first.total_seconds())
        else:  # a DST change inside the window: rare, do it per bucket
            offsets = np.array(
                [
                    (
                        self.bucket_start(i).astimezone(tz).utcoffset() or timedelta(0)
                    ).total_seconds()
                    for i in range(n)
                ]
            )
        local = utc_seconds + offsets
        hour = ((local // 3600) % 24).astype(int)
        weekday = ((local // 86400 + 3) % 7).astype(int)  # 1970-01-01 was a Thursday (3)
        return hour + 24 * (weekday >= 5)


@dataclass(frozen=True)
class _Row:
    topic_id: int
    story_key: int
    outlet: str
    published_at: datetime
    label: str


def topic_articles(
    columns: Sequence[Any], start: datetime, end: datetime, topic_ids: Sequence[int] | None
) -> Any:
    """A select of ``columns`` over the articles matched to ``topic_ids`` (None: every topic)
    and published in [start, end), each with its story (if any) for the story's columns.

    The one query shape behind the series, their repair and the facts of a window."""
    stmt = (
        sa.select(*columns)
        .select_from(ArticleTopic)
        .join(Article, Article.id == ArticleTopic.article_id)  # type: ignore[arg-type]
        .outerjoin(Story, Story.id == Article.story_id)  # type: ignore[arg-type]
        .where(Article.published_at >= start, Article.published_at < end)  # type: ignore[arg-type]
    )
    if topic_ids is not None:
        stmt = stmt.where(ArticleTopic.topic_id.in_(list(topic_ids)))  # type: ignore[attr-defined]
    return stmt


def _rows(
    session: Session, start: datetime, end: datetime, topic_ids: Sequence[int] | None
) -> list[_Row]:
    columns = (
        ArticleTopic.topic_id,
        Article.id,
        Article.story_id,
        Article.outlet,
        Article.source_id,
        Article.published_at,
        TOPIC_LABEL,
    )
    stmt = topic_articles(columns, start, end, topic_ids)
    out = []
    for topic_id, article_id, story_id, outlet, source_id, published_at, lab in session.execute(
        stmt
    ):
        # An article without a story is its own story; negative keys never clash with story ids.
        key = story_id if story_id is not None else -article_id
        name = outlet or (
            f"source:{source_id}" if source_id is not None else f"article:{article_id}"
        )
        out.append(_Row(topic_id, key, name, published_at, lab or "neutral"))
    return out


def _seen_before(
    session: Session, rows: Iterable[_Row], start: datetime, lookback: timedelta
) -> set[tuple[int, int]]:
    """(topic, story) pairs that already had a matching article before ``start``."""
    story_ids = sorted({r.story_key for r in rows if r.story_key > 0})
    seen: set[tuple[int, int]] = set()
    for i in range(0, len(story_ids), 500):
        chunk = story_ids[i : i + 500]
        stmt = (
            sa.select(ArticleTopic.topic_id, Article.story_id)  # type: ignore[call-overload]
            .join(Article, Article.id == ArticleTopic.article_id)
            .where(
                Article.story_id.in_(chunk),  # type: ignore[union-attr]
                Article.published_at < start,
                Article.published_at >= start - lookback,
            )
            .distinct()
        )
        seen.update((t, s) for t, s in session.execute(stmt))
    return seen


@dataclass(slots=True)
class BucketCount:
    """One bucket's counts: a SeriesBucket row before it is written (plain, so that a rebuild
    of weeks of buckets does not pay for an ORM object per bucket)."""

    topic_id: int
    bucket_start: datetime
    stories: float = 0.0
    outlets: int = 0
    negative: int = 0
    positive: int = 0
    articles: int = 0


_FIELDS = tuple(f.name for f in fields(BucketCount))


def count_buckets(
    rows: Iterable[tuple[int, int, str, datetime, str]],
    *,
    cap: int = OUTLET_CAP,
    bucket: timedelta = BUCKET,
    skip: set[tuple[int, int]] | None = None,
) -> dict[tuple[int, datetime], BucketCount]:
    """Bucket ``(topic_id, story_key, outlet, published_at, label)`` rows into bucket counts.

    Pure (no database), so the benchmark and the tests can check the counting rules directly.
    ``skip`` holds (topic, story) pairs first seen before the range: their copies add reach
    (outlets, articles) but not stories.
    """
    skip = skip or set()
    ordered = sorted(rows, key=lambda r: r[3])
    first: dict[tuple[int, int], tuple[str, datetime, str]] = {}
    outlets: dict[tuple[int, datetime], set[str]] = defaultdict(set)
    articles: dict[tuple[int, datetime], int] = defaultdict(int)
    for topic_id, story_key, outlet, published_at, label in ordered:
        b = bucket_floor(published_at, bucket)
        outlets[(topic_id, b)].add(outlet)
        articles[(topic_id, b)] += 1
        if (topic_id, story_key) not in skip and (topic_id, story_key) not in first:
            first[(topic_id, story_key)] = (outlet, published_at, label)
    per_outlet: dict[tuple[int, datetime, str], int] = defaultdict(int)
    out: dict[tuple[int, datetime], BucketCount] = {}
    for key in articles:
        out[key] = BucketCount(key[0], key[1], outlets=len(outlets[key]), articles=articles[key])
    for (topic_id, _story), (outlet, published_at, label) in sorted(
        first.items(), key=lambda kv: kv[1][1]
    ):
        b = bucket_floor(published_at, bucket)
        per_outlet[(topic_id, b, outlet)] += 1
        if per_outlet[(topic_id, b, outlet)] > cap:
            continue
        row = out[(topic_id, b)]
        row.stories += 1
        if label == "negative":
            row.negative += 1
        elif label == "positive":
            row.positive += 1
    return out


def rebuild_buckets(
    session: Session,
    start: datetime,
    end: datetime,
    topic_ids: Sequence[int] | None = None,
    *,
    cap: int = OUTLET_CAP,
    bucket: timedelta = BUCKET,
    lookback: timedelta = STORY_LOOKBACK,
) -> list[BucketCount]:
    """Recompute the SeriesBucket rows of ``[start, end)`` (widened to whole buckets).

    Idempotent: existing rows of the range are deleted and rewritten from the article rows, so
    the function is both the live update after each scan and the repair after a restart. Returns
    the rows written (empty buckets are not stored; :func:`load_series` fills zeros).
    """
    start, end = bucket_floor(start, bucket), bucket_ceil(end, bucket)
    rows = _rows(session, start, end, topic_ids)
    skip = _seen_before(session, rows, start, lookback)
    counted = count_buckets(
        ((r.topic_id, r.story_key, r.outlet, r.published_at, r.label) for r in rows),
        cap=cap,
        bucket=bucket,
        skip=skip,
    )
    delete = sa.delete(SeriesBucket).where(
        SeriesBucket.bucket_start >= start,  # type: ignore[arg-type]
        SeriesBucket.bucket_start < end,  # type: ignore[arg-type]
    )
    if topic_ids is not None:
        delete = delete.where(SeriesBucket.topic_id.in_(list(topic_ids)))  # type: ignore[attr-defined]
    session.execute(delete)
    written = [counted[k] for k in sorted(counted)]
    if written:
        session.execute(
            sa.insert(SeriesBucket.__table__),  # type: ignore[attr-defined]
            [{f: getattr(b, f) for f in _FIELDS} for b in written],
        )
    return written


def _chunked(values: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(values))
    for i in range(0, len(ordered), _CHUNK):
        yield ordered[i : i + _CHUNK]


def touched_buckets(
    session: Session, article_ids: Iterable[int], bucket: timedelta = BUCKET
) -> dict[int, set[datetime]]:
    """Per topic, the buckets whose counts the articles ``article_ids`` can change.

    Those are the articles' own buckets, and the buckets of the other articles of their stories
    that match the same topic: a copy stored late but published earlier than its story's first
    article moves the story's count to its own bucket and out of the later one.
    """
    touched: dict[int, set[datetime]] = defaultdict(set)
    stories: set[int] = set()
    for chunk in _chunked(article_ids):
        stmt = (
            sa.select(ArticleTopic.topic_id, Article.published_at, Article.story_id)  # type: ignore[call-overload]
            .join(Article, Article.id == ArticleTopic.article_id)
            .where(Article.id.in_(chunk))  # type: ignore[union-attr]
        )
        for topic_id, published_at, story_id in session.execute(stmt):
            touched[topic_id].add(bucket_floor(published_at, bucket))
            if story_id is not None:
                stories.add(story_id)
    for chunk in _chunked(stories):
        stmt = (
            sa.select(ArticleTopic.topic_id, Article.published_at)  # type: ignore[call-overload]
            .join(Article, Article.id == ArticleTopic.article_id)
            .where(Article.story_id.in_(chunk))  # type: ignore[union-attr]
        )
        for topic_id, published_at in session.execute(stmt):
            if topic_id in touched:
                touched[topic_id].add(bucket_floor(published_at, bucket))
    return dict(touched)


def _runs(
    starts: Iterable[datetime], bucket: timedelta, gap: timedelta
) -> list[tuple[datetime, datetime]]:
    """Sorted bucket starts as ``[start, end)`` ranges, neighbours within ``gap`` joined."""
    runs: list[tuple[datetime, datetime]] = []
    for b in sorted(set(starts)):
        if runs and b - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], b + bucket)
        else:
            runs.append((b, b + bucket))
    return runs


def rebuild_touched(
    session: Session,
    touched: dict[int, set[datetime]],
    *,
    bucket: timedelta = BUCKET,
    gap: timedelta = MERGE_GAP,
) -> int:
    """Rebuild the given buckets of each topic (as a few ranges); returns the ranges rebuilt.

    The buckets of all topics are joined into ranges and each range is rebuilt once for the
    topics that touch it, so a scan's usual case (a handful of recent buckets across all topics)
    is one :func:`rebuild_buckets` call.
    """
    everything = _runs((b for bs in touched.values() for b in bs), bucket, gap)
    starts = [r[0] for r in everything]
    by_range: dict[int, list[int]] = defaultdict(list)  # range index -> its topics
    for topic_id, buckets in touched.items():
        for i in {bisect.bisect_right(starts, b) - 1 for b in buckets}:
            by_range[i].append(topic_id)
    for i, topic_ids in sorted(by_range.items()):
        rebuild_buckets(session, *everything[i], sorted(topic_ids), bucket=bucket)
    return len(by_range)


def rebuild_for_articles(session: Session, article_ids: Iterable[int]) -> int:
    """After storing ``article_ids``: rebuild every bucket they touch (see
    :func:`touched_buckets`), however old. Returns the number of ranges rebuilt."""
    return rebuild_touched(session, touched_buckets(session, article_ids))


def stale_buckets(session: Session, bucket: timedelta = BUCKET) -> dict[int, set[datetime]]:
    """Per topic, the buckets whose stored row is missing or disagrees with the article rows.

    Cheap when nothing is stale: each topic's link count is compared with the sum of its
    buckets' ``articles`` first (two grouped counts, no join); only a topic whose totals differ
    has its buckets compared one by one. A bucket whose article count is right but whose story
    counts are not (a label rescored by hand) is not seen: the counts are what a lost or skipped
    rebuild leaves wrong.
    """
    links: dict[int, int] = dict(
        session.execute(
            sa.select(ArticleTopic.topic_id, sa.func.count()).group_by(ArticleTopic.topic_id)  # type: ignore[call-overload]
        ).all()
    )
    stored: dict[int, int | None] = dict(
        session.execute(
            sa.select(SeriesBucket.topic_id, sa.func.sum(SeriesBucket.articles)).group_by(  # type: ignore[call-overload]
                SeriesBucket.topic_id
            )
        ).all()
    )
    out: dict[int, set[datetime]] = {}
    for topic_id in set(links) | set(stored):
        if int(links.get(topic_id, 0)) == int(stored.get(topic_id) or 0):
            continue
        want: dict[datetime, int] = defaultdict(int)
        stmt = (
            sa.select(Article.published_at)  # type: ignore[call-overload]
            .join(ArticleTopic, ArticleTopic.article_id == Article.id)
            .where(ArticleTopic.topic_id == topic_id)
        )
        for (published_at,) in session.execute(stmt):
            want[bucket_floor(published_at, bucket)] += 1
        have: dict[datetime, int] = dict(
            session.execute(
                sa.select(SeriesBucket.bucket_start, SeriesBucket.articles).where(  # type: ignore[call-overload]
                    SeriesBucket.topic_id == topic_id
                )
            ).all()
        )
        bad = {b for b in set(want) | set(have) if want.get(b, 0) != have.get(b, 0)}
        if bad:
            out[topic_id] = bad
    return out


def repair_series(session: Session) -> int:
    """Rebuild every bucket that stored articles touch and whose row is missing or stale
    (:func:`stale_buckets`), with the buckets of the same stories; returns the buckets found
    stale. Run once at start-up: articles stored by an older version, or by a scan that died
    before its series was written, reach the detectors."""
    stale = stale_buckets(session)
    if not stale:
        return 0
    touched: dict[int, set[datetime]] = {t: set(bs) for t, bs in stale.items()}
    for topic_id, buckets in stale.items():
        ids: list[int] = []
        for start, end in _runs(buckets, BUCKET, MERGE_GAP):  # a few queries, not one a bucket
            rows = session.execute(
                topic_articles([Article.id, Article.published_at], start, end, [topic_id])
            )
            ids.extend(i for i, at in rows if bucket_floor(at) in buckets)
        touched[topic_id] |= touched_buckets(session, ids).get(topic_id, set())
    rebuild_touched(session, touched)
    return sum(len(bs) for bs in stale.values())


def history_starts(
    session: Session,
    topics: Sequence[Topic],
    end: datetime,
    horizon: timedelta,
    bucket: timedelta = BUCKET,
) -> dict[int, datetime]:
    """Per topic, the first bucket of its real history before ``end`` (at most ``horizon``).

    Real history starts at the topic's first stored article (its first series row), or earlier
    when the topic was already watched: from the later of its creation and the first source's,
    every stored article was matched against it, so a quiet spell there is a real zero. Before
    that, zeros would only say that nobody was looking.
    """
    end = bucket_ceil(end, bucket)
    floor = end - horizon
    ids = [t.id for t in topics if t.id is not None]
    first: dict[int, datetime] = {}
    if ids:
        first = dict(
            session.execute(
                sa.select(SeriesBucket.topic_id, sa.func.min(SeriesBucket.bucket_start))  # type: ignore[call-overload]
                .where(SeriesBucket.topic_id.in_(ids))  # type: ignore[attr-defined]
                .group_by(SeriesBucket.topic_id)
            ).all()
        )
    sources_from = session.execute(sa.select(sa.func.min(Source.created_at))).scalar()
    out: dict[int, datetime] = {}
    for topic in topics:
        if topic.id is None:
            continue
        candidates = [end - bucket]
        if (b := first.get(topic.id)) is not None:
            candidates.append(b)
        if sources_from is not None:
            candidates.append(bucket_floor(max(topic.created_at, sources_from), bucket))
        out[topic.id] = max(floor, bucket_floor(min(candidates), bucket))
    return out


def load_series(
    session: Session,
    topic_ids: Sequence[int],
    start: datetime,
    end: datetime,
    bucket: timedelta = BUCKET,
) -> dict[int, TopicSeries]:
    """Dense series of ``[start, end)`` per topic from the stored buckets (one query)."""
    start, end = bucket_floor(start, bucket), bucket_ceil(end, bucket)
    n = int((end - start) / bucket)
    out = {t: TopicSeries.empty(t, start, n, bucket) for t in topic_ids}
    if not topic_ids:
        return out
    stmt = sa.select(  # type: ignore[call-overload]
        SeriesBucket.topic_id,
        SeriesBucket.bucket_start,
        SeriesBucket.stories,
        SeriesBucket.outlets,
        SeriesBucket.negative,
        SeriesBucket.positive,
        SeriesBucket.articles,
    ).where(
        SeriesBucket.topic_id.in_(list(topic_ids)),  # type: ignore[attr-defined]
        SeriesBucket.bucket_start >= start,
        SeriesBucket.bucket_start < end,
    )
    for topic_id, b, stories, outlets, negative, positive, articles in session.execute(stmt):
        i = int((b - start) / bucket)
        s = out[topic_id]
        s.stories[i], s.outlets[i], s.negative[i] = stories, outlets, negative
        s.positive[i], s.articles[i] = positive, articles
    return out
