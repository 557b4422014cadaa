"""The scan: fetch → parse → dedupe → match topics → score sentiment → store.

Two entry points:

* :func:`run_scan` — one scan of every due, active Source row (the scheduled job, the sandbox and
  ``crisisdesk scan --once`` call it). Network work is async; the CPU work (parsing, folding,
  MinHash, TF-IDF) runs in a worker thread so the bot's event loop stays responsive.
* :class:`Processor` — from already-parsed items to stored rows, with no network: the trends
  replay feeds recorded items through it on a simulated clock. It holds the story index, the
  compiled topic queries and the sentiment scorer, so a long-lived caller builds it once.

Idempotent: articles are unique by canonical URL (and by content per outlet), so re-running a
scan over the same feeds stores nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import insert, select
from sqlmodel import Session, col

from bot.clock import Clock
from scanner.dedupe import StoryIndex, canonical_url, content_fingerprint
from scanner.parse import FeedError, FeedItem, parse_feed
from scanner.sentiment import Scorer, default_scorer
from scanner.sources import (
    FeedFetcher,
    FetchPolicy,
    FetchResult,
    due_sources,
    record_failure,
    record_success,
)
from scanner.textnorm import fold
from scanner.topics import MatchDoc, Query, QueryError, parse_query
from storage.db import Database
from storage.models import Article, ArticleTopic, Setting, Source, Story, Topic

log = logging.getLogger(__name__)

__all__ = [
    "LAST_SCAN_KEY",
    "CompiledTopic",
    "Incoming",
    "ProcessResult",
    "Processor",
    "ScanReport",
    "run_scan",
]

LAST_SCAN_KEY = "last_scan"
_IN_CHUNK = 500  # SQLite's bound-parameter limit is far above this; keeps statements small


@dataclass(frozen=True)
class CompiledTopic:
    id: int
    name: str
    query: Query


@dataclass(frozen=True)
class Incoming:
    """A parsed item and where it came from."""

    item: FeedItem
    outlet: str
    source_id: int | None = None


@dataclass
class ProcessResult:
    """What one :meth:`Processor.process` call stored."""

    articles: list[Article] = field(default_factory=list)
    new_stories: list[Story] = field(default_factory=list)
    updated_stories: list[Story] = field(default_factory=list)
    links: list[ArticleTopic] = field(default_factory=list)
    duplicates: int = 0

    def topics_of(self, article_id: int) -> list[tuple[int, float]]:
        return [
            (link.topic_id, link.weight) for link in self.links if link.article_id == article_id
        ]


class Processor:
    """Parsed items → Article/Story/ArticleTopic rows. Reusable across scans and replays."""

    def __init__(
        self,
        topics: Sequence[CompiledTopic],
        *,
        scorer: Scorer | None = None,
        index: StoryIndex | None = None,
    ) -> None:
        self.topics = list(topics)
        self.scorer: Scorer = scorer if scorer is not None else default_scorer()
        self.index = index if index is not None else StoryIndex()

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_db(cls, session: Session, now: datetime, *, scorer: Scorer | None = None) -> Processor:
        """Active topics from the DB and a story index rebuilt from the recent window."""
        processor = cls(load_topics(session), scorer=scorer)
        processor.rebuild_index(session, now)
        return processor

    def reload_topics(self, session: Session) -> None:
        self.topics = load_topics(session)

    def rebuild_index(self, session: Session, now: datetime) -> int:
        """Refill the story index from articles of stories seen within the window."""
        cutoff = now - self.index.window
        rows = session.execute(
            select(
                col(Article.story_id),
                col(Article.title),
                col(Article.summary),
                col(Article.fetched_at),
            )
            .join(Story, col(Story.id) == col(Article.story_id))
            .where(col(Story.last_seen_at) >= cutoff)
            .order_by(col(Article.id))
        ).all()
        return self.index.rebuild(((r[0], r[1], r[2], r[3]) for r in rows if r[0] is not None), now)

    # ---------------------------------------------------------------- the work

    def process(self, session: Session, items: Sequence[Incoming], now: datetime) -> ProcessResult:
        """Store the new items of ``items``; duplicates (by URL or content) are skipped.

        ``now`` is the fetch time (simulated in a replay). Flushes but does not commit: the
        caller's unit of work decides.
        """
        result = ProcessResult()
        fresh = self._drop_known(session, items, result)
        if not fresh:
            return result
        scores = self.scorer.score_many(
            [(inc.item.title, inc.item.summary) for inc, _u, _f in fresh]
        )

        placeholder_stories: dict[int, Story] = {}
        touched: set[int] = set()
        pending: list[tuple[dict[str, Any], int, list[tuple[int, float]]]] = []
        next_placeholder = -1
        self.index.prune(now)
        for (incoming, canonical, fingerprint), sentiment in zip(fresh, scores, strict=True):
            item = incoming.item
            title_f, summary_f = fold(item.title), fold(item.summary)
            published = min(item.published_at.astimezone(UTC), now)
            # Plain dicts, inserted with one executemany below: constructing thousands of
            # validated SQLModel objects and flushing them costs more than everything else here.
            article: dict[str, Any] = {
                "canonical_url": canonical,
                "url": item.url[:2048],
                "source_id": incoming.source_id,
                "outlet": incoming.outlet[:255],
                "title": item.title,
                "summary": item.summary,
                "published_at": item.published_at.astimezone(UTC),
                "fetched_at": now,
                "fingerprint": fingerprint,
                "sentiment": sentiment.score,
                "sentiment_label": sentiment.label,
            }
            doc = MatchDoc(title_f, summary_f, folded=True)
            matches = [(t.id, w) for t in self.topics if (w := t.query.match_doc(doc)) > 0]
            fp = self.index.fingerprint(title_f, summary_f, folded=True)
            story_key = self.index.find(fp)
            if story_key is None:
                story_key = next_placeholder
                next_placeholder -= 1
                placeholder_stories[story_key] = Story(
                    title=item.title,
                    first_seen_at=published,
                    last_seen_at=published,
                    article_count=0,
                    outlet_count=0,
                    sentiment=sentiment.score,
                    sentiment_label=sentiment.label,
                )
            elif story_key > 0:
                touched.add(story_key)
            self.index.add(story_key, fp, now)
            pending.append((article, story_key, matches))

        # New stories first (their ids are needed by the articles), then the articles.
        session.add_all(placeholder_stories.values())
        session.flush()
        real_ids = {key: story.id for key, story in placeholder_stories.items()}
        self.index.relabel({k: v for k, v in real_ids.items() if v is not None})
        for article, story_key, _m in pending:
            article["story_id"] = real_ids[story_key] if story_key < 0 else story_key
        rows = [article for article, _k, _m in pending]
        ids = session.execute(
            insert(Article).returning(col(Article.id), sort_by_parameter_order=True), rows
        ).scalars().all()
        links: list[dict[str, Any]] = []
        for article_id, (article, _k, matches) in zip(ids, pending, strict=True):
            article["id"] = article_id
            result.articles.append(Article.model_construct(**article))
            links.extend(
                {"article_id": article_id, "topic_id": topic_id, "weight": weight}
                for topic_id, weight in matches
            )
        if links:
            session.execute(insert(ArticleTopic), links)
        result.links = [ArticleTopic.model_construct(**link) for link in links]
        result.new_stories = list(placeholder_stories.values())
        story_ids = {s.id for s in result.new_stories if s.id is not None} | touched
        result.updated_stories = [
            s for s in self._refresh_stories(session, story_ids) if s.id in touched
        ]
        session.flush()
        return result

    def _drop_known(
        self, session: Session, items: Sequence[Incoming], result: ProcessResult
    ) -> list[tuple[Incoming, str, str]]:
        """Items whose canonical URL (and outlet+content) is new, first occurrence only."""
        candidates: list[tuple[Incoming, str, str]] = []
        seen_urls: set[str] = set()
        seen_content: set[tuple[str, str]] = set()
        for incoming in items:
            canonical = canonical_url(incoming.item.url)[:2048]
            fingerprint = content_fingerprint(incoming.item.title, incoming.item.summary)
            key = (incoming.outlet, fingerprint)
            if canonical in seen_urls or key in seen_content:
                result.duplicates += 1
                continue
            seen_urls.add(canonical)
            seen_content.add(key)
            candidates.append((incoming, canonical, fingerprint))
        known_urls: set[str] = set()
        known_content: set[tuple[str, str]] = set()
        for chunk in _chunks([c for _i, c, _f in candidates], _IN_CHUNK):
            known_urls.update(
                session.execute(
                    select(col(Article.canonical_url)).where(col(Article.canonical_url).in_(chunk))
                ).scalars()
            )
        for chunk in _chunks([f for _i, _c, f in candidates], _IN_CHUNK):
            known_content.update(
                (outlet, fp)
                for outlet, fp in session.execute(
                    select(col(Article.outlet), col(Article.fingerprint)).where(
                        col(Article.fingerprint).in_(chunk)
                    )
                ).all()
            )
        fresh = []
        for incoming, canonical, fingerprint in candidates:
            if canonical in known_urls or (incoming.outlet, fingerprint) in known_content:
                result.duplicates += 1
            else:
                fresh.append((incoming, canonical, fingerprint))
        return fresh

    def _refresh_stories(self, session: Session, story_ids: Iterable[int]) -> list[Story]:
        """Recount articles and distinct outlets, and the stories' sentiment, from the rows."""
        ids = sorted(story_ids)
        if not ids:
            return []
        per_story: dict[int, list[tuple[str, float, str, datetime]]] = defaultdict(list)
        for chunk in _chunks(ids, _IN_CHUNK):
            rows = session.execute(
                select(
                    col(Article.story_id),
                    col(Article.outlet),
                    col(Article.sentiment),
                    col(Article.sentiment_label),
                    col(Article.published_at),
                ).where(col(Article.story_id).in_(chunk))
            ).all()
            for story_id, outlet, score, label, published in rows:
                per_story[story_id].append((outlet, score, label, published))
        stories: list[Story] = []
        for chunk in _chunks(ids, _IN_CHUNK):
            stories.extend(session.execute(select(Story).where(col(Story.id).in_(chunk))).scalars())
        for story in stories:
            rows_of = per_story.get(story.id or 0, [])
            if not rows_of:
                continue
            story.article_count = len(rows_of)
            story.outlet_count = len({o for o, _s, _l, _p in rows_of})
            story.sentiment = round(sum(s for _o, s, _l, _p in rows_of) / len(rows_of), 4)
            labels = Counter(label for _o, _s, label, _p in rows_of).most_common()
            story.sentiment_label = labels[0][0]
            story.first_seen_at = min(story.first_seen_at, *(p for _o, _s, _l, p in rows_of))
            story.last_seen_at = max(story.last_seen_at, *(p for _o, _s, _l, p in rows_of))
            session.add(story)
        return stories


def _chunks(values: Sequence[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def load_topics(session: Session) -> list[CompiledTopic]:
    """Active topics with their queries compiled; a bad query is logged and skipped."""
    compiled = []
    for topic in session.execute(select(Topic).where(col(Topic.active).is_(True))).scalars():
        try:
            compiled.append(CompiledTopic(topic.id or 0, topic.name, parse_query(topic.query)))
        except QueryError as exc:
            log.error("topic %s (%s) has an invalid query, skipped: %s", topic.id, topic.name, exc)
    return compiled


# --------------------------------------------------------------------------- the scan


@dataclass
class SourceOutcome:
    source_id: int
    name: str
    url: str
    status: str  # ok | not_modified | error | skipped
    items: int = 0
    new_articles: int = 0
    error: str | None = None
    warning: str | None = None


@dataclass
class ScanReport:
    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float = 0.0
    sources: list[SourceOutcome] = field(default_factory=list)
    new_articles: list[Article] = field(default_factory=list)
    new_stories: list[Story] = field(default_factory=list)
    updated_stories: list[Story] = field(default_factory=list)
    links: list[ArticleTopic] = field(default_factory=list)
    topics: dict[int, str] = field(default_factory=dict)
    stories: dict[int, Story] = field(default_factory=dict)

    @property
    def failing(self) -> list[SourceOutcome]:
        return [s for s in self.sources if s.status == "error"]

    def summary(self) -> dict[str, Any]:
        """The JSON stored under Setting ``last_scan`` (read by /scanstatus)."""
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": round(self.duration_s, 3),
            "sources": len(self.sources),
            "sources_ok": sum(1 for s in self.sources if s.status == "ok"),
            "sources_not_modified": sum(1 for s in self.sources if s.status == "not_modified"),
            "new_articles": len(self.new_articles),
            "new_stories": len(self.new_stories),
            "failing_sources": [
                {"id": s.source_id, "name": s.name, "url": s.url, "error": s.error}
                for s in self.failing
            ],
        }

    def by_topic(self) -> dict[str, Any]:
        """Per topic: its new articles and the stories (clusters) they belong to, with sentiment."""
        articles = {a.id: a for a in self.new_articles}
        out: dict[str, Any] = {}
        for topic_id, name in sorted(self.topics.items()):
            topic_articles = [
                (articles[link.article_id], link.weight)
                for link in self.links
                if link.topic_id == topic_id and link.article_id in articles
            ]
            story_ids = sorted({a.story_id for a, _w in topic_articles if a.story_id is not None})
            out[name] = {
                "topic_id": topic_id,
                "articles": [
                    {
                        "id": a.id,
                        "title": a.title,
                        "url": a.url,
                        "outlet": a.outlet,
                        "published_at": a.published_at.isoformat(),
                        "story_id": a.story_id,
                        "weight": w,
                        "sentiment": a.sentiment,
                        "label": a.sentiment_label,
                    }
                    for a, w in topic_articles
                ],
                "stories": [
                    {
                        "id": sid,
                        "title": self.stories[sid].title,
                        "article_count": self.stories[sid].article_count,
                        "outlet_count": self.stories[sid].outlet_count,
                        "first_seen_at": self.stories[sid].first_seen_at.isoformat(),
                        "sentiment": self.stories[sid].sentiment,
                        "label": self.stories[sid].sentiment_label,
                    }
                    for sid in story_ids
                    if sid in self.stories
                ],
            }
        return out


def policy_from_settings(settings: Any) -> FetchPolicy:
    return FetchPolicy(allow_private=bool(getattr(settings, "allow_private_feeds", False)))


async def run_scan(
    db: Database,
    settings: Any,
    clock: Clock,
    *,
    session: aiohttp.ClientSession | None = None,
    policy: FetchPolicy | None = None,
    processor: Processor | None = None,
) -> ScanReport:
    """One scan of every due, active source. One bad source never stops the others."""
    policy = policy or policy_from_settings(settings)
    now = clock.now()
    report = ScanReport(started_at=now)
    started = time.perf_counter()
    with db.session() as s:
        sources = due_sources(s.execute(select(Source)).scalars().all(), now)
        targets = [
            (src.id or 0, src.name, src.outlet, src.url, src.etag, src.last_modified)
            for src in sources
        ]

    async with FeedFetcher(policy, session=session) as fetcher:
        fetched = await fetcher.fetch_many(
            [(url, etag, lm) for _i, _n, _o, url, etag, lm in targets]
        )

    fetched_at = clock.now()

    def _cpu_and_store() -> None:
        parsed: list[tuple[int, FetchResult, list[FeedItem], str | None, str | None]] = []
        for (source_id, _n, _o, _u, _e, _l), res in zip(targets, fetched, strict=True):
            if res.status != "ok":
                parsed.append((source_id, res, [], None, res.error))
                continue
            try:
                feed = parse_feed(
                    res.body, fetched_at=fetched_at, headers=res.headers, base_url=res.final_url
                )
            except FeedError as exc:
                parsed.append((source_id, res, [], None, str(exc)))
            else:
                parsed.append((source_id, res, feed.items, feed.warning, None))
        with db.session() as s:
            proc = processor or Processor.from_db(s, fetched_at)
            if processor is not None:
                proc.reload_topics(s)
            report.topics = {t.id: t.name for t in proc.topics}
            rows = {
                src.id: src
                for src in s.execute(
                    select(Source).where(col(Source.id).in_([t[0] for t in targets]))
                ).scalars()
            }
            incoming: list[Incoming] = []
            for (source_id, name, outlet, url, _e, _l), (_sid, res, items, warning, error) in zip(
                targets, parsed, strict=True
            ):
                row = rows[source_id]
                outcome = SourceOutcome(
                    source_id,
                    name,
                    url,
                    res.status if error is None else "error",
                    items=len(items),
                    error=error,
                    warning=warning,
                )
                report.sources.append(outcome)
                if error is not None:
                    record_failure(row, error, fetched_at, policy)
                else:
                    record_success(row, res, fetched_at, warning=warning)
                    incoming.extend(Incoming(item, outlet, source_id) for item in items)
            result = proc.process(s, incoming, fetched_at)
            per_source = Counter(a.source_id for a in result.articles)
            for outcome in report.sources:
                outcome.new_articles = per_source.get(outcome.source_id, 0)
            report.new_articles = result.articles
            report.new_stories = result.new_stories
            report.updated_stories = result.updated_stories
            report.links = result.links
            report.stories = {
                st.id: st for st in result.new_stories + result.updated_stories if st.id is not None
            }
            report.finished_at = clock.now()
            report.duration_s = time.perf_counter() - started
            _store_summary(s, report)

    await asyncio.to_thread(_cpu_and_store)
    for outcome in report.failing:
        log.warning("source %s (%s) failed: %s", outcome.name, outcome.url, outcome.error)
    log.info(
        "scan: %d sources, %d new articles, %d new stories, %d failing, %.2f s",
        len(report.sources),
        len(report.new_articles),
        len(report.new_stories),
        len(report.failing),
        report.duration_s,
    )
    return report


def _store_summary(session: Session, report: ScanReport) -> None:
    row = session.get(Setting, LAST_SCAN_KEY)
    value = report.summary()
    at = report.finished_at or report.started_at
    if row is None:
        session.add(Setting(key=LAST_SCAN_KEY, value=value, updated_at=at))
    else:
        row.value = value
        row.updated_at = at
        session.add(row)
