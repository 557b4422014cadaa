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
and rewrites the range, so running it twice, or after a restart, gives the same rows. The scan calls
it for the last few hours every time (late items land in older buckets).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from storage.models import Article, ArticleTopic, SeriesBucket, Story

BUCKET = timedelta(minutes=15)
OUTLET_CAP = 2
#: An article's label as a topic counts it: its tone for that topic (scored without the
#: topic's own terms), else its story's, else its own (links stored before migration 0002).
TOPIC_LABEL = sa.func.coalesce(
    ArticleTopic.sentiment_label, Story.sentiment_label, Article.sentiment_label
)
STORY_LOOKBACK = timedelta(hours=72)  # the story clustering TTL: older copies start new stories
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


def _rows(
    session: Session, start: datetime, end: datetime, topic_ids: Sequence[int] | None
) -> list[_Row]:
    stmt = (
        sa.select(  # type: ignore[call-overload]
            ArticleTopic.topic_id,
            Article.id,
            Article.story_id,
            Article.outlet,
            Article.source_id,
            Article.published_at,
            TOPIC_LABEL,
        )
        .join(Article, Article.id == ArticleTopic.article_id)
        .outerjoin(Story, Story.id == Article.story_id)
        .where(Article.published_at >= start, Article.published_at < end)
    )
    if topic_ids is not None:
        stmt = stmt.where(ArticleTopic.topic_id.in_(list(topic_ids)))  # type: ignore[attr-defined]
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


def count_buckets(
    rows: Iterable[tuple[int, int, str, datetime, str]],
    *,
    cap: int = OUTLET_CAP,
    bucket: timedelta = BUCKET,
    skip: set[tuple[int, int]] | None = None,
) -> dict[tuple[int, datetime], SeriesBucket]:
    """Bucket ``(topic_id, story_key, outlet, published_at, label)`` rows into SeriesBuckets.

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
    out: dict[tuple[int, datetime], SeriesBucket] = {}
    for key in articles:
        out[key] = SeriesBucket(
            topic_id=key[0], bucket_start=key[1], outlets=len(outlets[key]), articles=articles[key]
        )
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
) -> list[SeriesBucket]:
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
    session.add_all(written)
    session.flush()
    return written


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
