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
import gc
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

import aiohttp
from sqlalchemy import JSON, bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from scanner import parse_pool
from scanner.dedupe import StoryIndex, canonical_url, content_fingerprint
from scanner.parse import FeedItem
from scanner.sentiment import ModelScorer, Scorer, Sentiment, default_scorer
from scanner.series import rebuild_for_articles
from scanner.sources import (
    MAX_ERROR_LENGTH,
    FeedFetcher,
    FetchPolicy,
    FetchResult,
    due_sources,
    record_failure,
    record_success,
)
from scanner.textnorm import tokens
from scanner.tone import TopicVocabulary, mask
from scanner.topics import MatchDoc, Query, QueryError, TopicMatcher, parse_query
from storage.bulk import execute_many, insert_returning_ids, insert_rows
from storage.db import Database, begin_write
from storage.models import Article, ArticleTopic, Setting, Source, Story, Topic

log = logging.getLogger(__name__)


class Clock(Protocol):
    """Where a scan takes "now" from: ``bot.clock``'s clocks fit (the scanner sits below bot/
    and never imports it), so tests and the sandbox scan on simulated time."""

    def now(self) -> datetime: ...


__all__ = [
    "LAST_SCAN_KEY",
    "REPORT_AFTER_FAILURES",
    "CompiledTopic",
    "HealthHook",
    "Incoming",
    "ProcessResult",
    "Processor",
    "ScanReport",
    "run_scan",
]

LAST_SCAN_KEY = "last_scan"
#: A source failing this many scans in a row (fetch, parse or store) is reported once.
REPORT_AFTER_FAILURES = 3
_FAILURES_BEFORE_GIVING_UP = 3  # items in a row the database refuses: the source fails
#: Called inside the scan's transaction with the Source row and "down" or "up".
HealthHook = Callable[[Session, Source, str], object]
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
    """What one :meth:`Processor.process` call stored.

    Holds the rows as the dicts that were written; the model objects (``articles``,
    ``new_stories``, ``updated_stories``, ``links``) are built on first access and kept.
    ``model_construct`` of about three objects per item cost 5–10 % of a batch, and callers
    such as the sandbox runner and the benches only count the articles or read nothing.
    """

    article_rows: Sequence[dict[str, Any]] = ()
    story_rows: Sequence[dict[str, Any]] = ()
    updated_rows: Sequence[dict[str, Any]] = ()
    link_rows: Sequence[dict[str, Any]] = ()
    duplicates: int = 0

    @cached_property
    def articles(self) -> list[Article]:
        return [Article.model_construct(**row) for row in self.article_rows]

    @cached_property
    def new_stories(self) -> list[Story]:
        return [Story.model_construct(**row) for row in self.story_rows]

    @cached_property
    def updated_stories(self) -> list[Story]:
        return [Story.model_construct(**row) for row in self.updated_rows]

    @cached_property
    def links(self) -> list[ArticleTopic]:
        return [ArticleTopic.model_construct(**row) for row in self.link_rows]

    def topics_of(self, article_id: int) -> list[tuple[int, float]]:
        return [
            (link["topic_id"], link["weight"])
            for link in self.link_rows
            if link["article_id"] == article_id
        ]


@dataclass(slots=True)
class _Prepared:
    """An incoming item with its canonical URL and folded text, computed once."""

    incoming: Incoming
    canonical: str
    title_f: str
    summary_f: str
    fingerprint: str
    #: exact title, exact lead, folded title, folded lead syllables (sentiment features)
    tokens: tuple[list[str], list[str], list[str], list[str]]


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
        self.vocabulary = TopicVocabulary()

    @property
    def topics(self) -> list[CompiledTopic]:
        return self._topics

    @topics.setter
    def topics(self, topics: Sequence[CompiledTopic]) -> None:
        self._topics = list(topics)
        self._matcher = TopicMatcher((t.id, t.query) for t in self._topics)
        self._queries = {t.id: t.query for t in self._topics}

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
                col(Article.published_at),
                col(Article.fetched_at),
            )
            .join(Story, col(Story.id) == col(Article.story_id))
            .where(col(Story.last_seen_at) >= cutoff)
            .order_by(col(Article.id))
        ).all()
        # The same time as _cluster gave each article: published, never after the fetch.
        return self.index.rebuild(
            ((r[0], r[1], r[2], min(r[3], r[4])) for r in rows if r[0] is not None), now
        )

    # ---------------------------------------------------------------- the work

    def process(self, session: Session, items: Sequence[Incoming], now: datetime) -> ProcessResult:
        """Store the new items of ``items``; duplicates (by URL or content) are skipped.

        ``now`` is the fetch time (simulated in a replay). Flushes but does not commit: the
        caller's unit of work decides.

        Every item is folded once; the folded title and lead feed the content fingerprint,
        the topic matcher and the MinHash shingles. Rows are written with one statement per
        table (:mod:`storage.bulk`: the driver's executemany on SQLite, a multi-row INSERT …
        RETURNING elsewhere): building thousands of validated ORM objects and flushing them
        cost more than everything else together.

        The cyclic garbage collector is paused for the call (reference counting still frees
        everything): a batch allocates enough short-lived containers to trigger several full
        collections, each walking every object of the process (the sentiment model, the
        story index, SQLAlchemy's caches) — 10–25 % of the CPU time, for nothing, since
        the batch creates no reference cycles worth collecting early.
        """
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._process(session, items, now)
        finally:
            if paused:
                gc.enable()

    def _process(self, session: Session, items: Sequence[Incoming], now: datetime) -> ProcessResult:
        prepared = self._prepare(items)
        fresh = self._drop_known(session, prepared)
        duplicates = len(prepared) - len(fresh)
        if not fresh:
            return ProcessResult(duplicates=duplicates)
        articles = self._article_rows(fresh, now)
        matcher = self._matcher
        # Copies of one headline and lead in the batch match the same topics: matched once.
        matched: dict[tuple[str, str], list[tuple[int, float]]] = {}
        matches = []
        for p in fresh:
            found = matched.get((p.title_f, p.summary_f))
            if found is None:
                doc = MatchDoc(p.title_f, p.summary_f, folded=True)
                found = matched[p.title_f, p.summary_f] = matcher.match(doc)
            matches.append(found)
        story_keys, touched = self._cluster(fresh, now)
        stories = self._insert_new_stories(session, articles, story_keys, now)
        ids = insert_returning_ids(session, _ARTICLE, articles, _ARTICLE_KEY)
        for article_id, article in zip(ids, articles, strict=True):
            article["id"] = article_id
        if any(matches):
            self.vocabulary.refresh(session, now)
        links = self._link_rows(fresh, articles, matches)
        insert_rows(session, _ARTICLE_TOPIC, links)
        updated = self._refresh_stories(session, touched, now)
        return ProcessResult(articles, stories, updated, links, duplicates)

    def _article_rows(self, fresh: list[_Prepared], now: datetime) -> list[dict[str, Any]]:
        """The Article rows of ``fresh`` (no ``story_id`` yet), with their sentiment."""
        scores = self._score(
            [(p.incoming.item.title, p.incoming.item.summary) for p in fresh],
            [p.tokens for p in fresh],
        )
        return [
            {
                "canonical_url": p.canonical,
                "url": p.incoming.item.url[:2048],
                "source_id": p.incoming.source_id,
                "outlet": p.incoming.outlet[:255],
                "title": p.incoming.item.title,
                "summary": p.incoming.item.summary,
                "published_at": p.incoming.item.published_at.astimezone(UTC),
                "fetched_at": now,
                "fingerprint": p.fingerprint,
                "sentiment": sentiment.score,
                "sentiment_label": sentiment.label,
            }
            for p, sentiment in zip(fresh, scores, strict=True)
        ]

    def _link_rows(
        self,
        fresh: list[_Prepared],
        articles: list[dict[str, Any]],
        matches: list[list[tuple[int, float]]],
    ) -> list[dict[str, Any]]:
        """The ArticleTopic rows, each with the article's sentiment *for that topic*: scored
        without the topic's own terms (:meth:`scanner.topics.Query.without_subject`) and its
        everyday vocabulary (:mod:`scanner.tone`), so that the name of a crisis topic ("sạt
        lở", "ngộ độc") and the words all its stories carry ("mưa lớn", "ngập") do not make its
        every story read negative. One batch for all links; an article left unchanged keeps
        its own score."""
        links: list[dict[str, Any]] = []
        todo: list[tuple[int, tuple[list[str], list[str], list[str], list[str]]]] = []
        for p, article, found in zip(fresh, articles, matches, strict=True):
            title_x, lead_x, title_f, lead_f = p.tokens
            for topic_id, weight in found:
                link = {
                    "article_id": article["id"],
                    "topic_id": topic_id,
                    "weight": weight,
                    "sentiment": article["sentiment"],
                    "sentiment_label": article["sentiment_label"],
                }
                query = self._queries[topic_id]
                everyday = self.vocabulary.of(topic_id)
                tx, tf = mask(*query.without_subject(title_x, title_f), everyday)
                lx, lf = mask(*query.without_subject(lead_x, lead_f), everyday)
                if len(tx) + len(lx) < len(title_x) + len(lead_x):
                    todo.append((len(links), (tx, lx, tf, lf)))
                links.append(link)
        if todo:
            pairs = [(" ".join(tk[0]), " ".join(tk[1])) for _, tk in todo]
            scores = self._score(pairs, [tk for _, tk in todo])
            for (at, _), sentiment in zip(todo, scores, strict=True):
                links[at]["sentiment"] = sentiment.score
                links[at]["sentiment_label"] = sentiment.label
        return links

    def _score(
        self,
        pairs: list[tuple[str, str]],
        tokens: list[tuple[list[str], list[str], list[str], list[str]]],
    ) -> list[Sentiment]:
        """Sentiment of (title, lead) pairs; the model reuses the syllables made for matching
        (``tokens``, aligned with ``pairs``), other scorers read the text."""
        if isinstance(self.scorer, ModelScorer):
            return self.scorer.score_many(pairs, tokens=tokens)
        return self.scorer.score_many(pairs)

    def _cluster(self, fresh: list[_Prepared], now: datetime) -> tuple[list[int], set[int]]:
        """Each item's story: an existing story id (> 0) or a new story's placeholder (< 0,
        numbered in order of first appearance); and the existing stories that grew.

        Items are looked up and added one by one, so a later copy in the same batch joins the
        new story of an earlier one. An item's time for the index is its publication time
        (never later than ``now``): a story's lifetime runs from its first article's.
        """
        fingerprints = self.index.syllable_fingerprints(
            [(p.incoming.item.title, p.incoming.item.summary, *p.tokens[2:]) for p in fresh]
        )
        times = [min(p.incoming.item.published_at, now) for p in fresh]
        # Pruned as of the batch's earliest item: a batch of older items (a new source's
        # first fetch) still finds the stories that were open at their time.
        self.index.prune(min(times))
        keys: list[int] = []
        touched: set[int] = set()
        next_placeholder = -1
        for at, fp in zip(times, fingerprints, strict=True):
            story_key = self.index.find(fp, at)
            if story_key is None:
                story_key = next_placeholder
                next_placeholder -= 1
            elif story_key > 0:
                touched.add(story_key)
            self.index.add(story_key, fp, at)
            keys.append(story_key)
        return keys, touched

    def _insert_new_stories(
        self,
        session: Session,
        articles: list[dict[str, Any]],
        story_keys: list[int],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Insert the batch's new stories with their final aggregates (all their articles are
        in this batch) and set every article's ``story_id``; the inserted rows, with ids."""
        members: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for article, story_key in zip(articles, story_keys, strict=True):
            if story_key < 0:
                members[story_key].append(article)
        rows = [
            {"title": group[0]["title"], **_aggregate(group, now)} for group in members.values()
        ]
        real_ids: dict[int, int] = {}
        if rows:
            ids = insert_returning_ids(session, _STORY, rows, _story_key(rows))
            real_ids = dict(zip(members, ids, strict=True))
            self.index.relabel(real_ids)
            for row, story_id in zip(rows, ids, strict=True):
                row["id"] = story_id
        for article, story_key in zip(articles, story_keys, strict=True):
            article["story_id"] = real_ids[story_key] if story_key < 0 else story_key
        return rows

    def _prepare(self, items: Sequence[Incoming]) -> list[_Prepared]:
        out = []
        # A text's syllables, made once per batch: syndicated copies in one scan repeat a
        # headline or a lead (a sixth of the texts of a 500-item batch in the throughput
        # bench). The lists are shared by those items; nothing downstream changes them.
        read: dict[str, tuple[list[str], list[str], str]] = {}
        for incoming in items:
            item = incoming.item
            # One pass per text (cached per word) gives both the toned and the folded
            # syllables; the folded strings equal textnorm.fold(text).
            title = read.get(item.title)
            if title is None:
                exact, folded = tokens(item.title)
                title = read[item.title] = (exact, folded, " ".join(folded))
            summary = read.get(item.summary)
            if summary is None:
                exact, folded = tokens(item.summary)
                summary = read[item.summary] = (exact, folded, " ".join(folded))
            title_x, title_fs, title_f = title
            summary_x, summary_fs, summary_f = summary
            out.append(
                _Prepared(
                    incoming,
                    canonical_url(item.url)[:2048],
                    title_f,
                    summary_f,
                    content_fingerprint(title_f, summary_f, folded=True),
                    (title_x, summary_x, title_fs, summary_fs),
                )
            )
        return out

    def _drop_known(self, session: Session, items: list[_Prepared]) -> list[_Prepared]:
        """Items whose canonical URL (and outlet+content) is new, first occurrence only.

        The database is asked once per chunk of 500 URLs (and fingerprints), not per item.
        The queries run on the connection, which does not autoflush: the caller's pending ORM
        changes are flushed first, as the session would have before its first query.
        """
        session.flush()
        connection = session.connection()
        candidates: list[_Prepared] = []
        seen_urls: set[str] = set()
        seen_content: set[tuple[str, str]] = set()
        for prepared in items:
            key = (prepared.incoming.outlet, prepared.fingerprint)
            if prepared.canonical in seen_urls or key in seen_content:
                continue
            seen_urls.add(prepared.canonical)
            seen_content.add(key)
            candidates.append(prepared)
        known_urls: set[str] = set()
        known_content: set[tuple[str, str]] = set()
        for chunk in _chunks([p.canonical for p in candidates], _IN_CHUNK):
            known_urls.update(_KNOWN_URLS(connection, chunk).scalars())
        for chunk in _chunks([p.fingerprint for p in candidates], _IN_CHUNK):
            known_content.update((outlet, fp) for outlet, fp in _KNOWN_CONTENT(connection, chunk))
        return [
            prepared
            for prepared in candidates
            if prepared.canonical not in known_urls
            and (prepared.incoming.outlet, prepared.fingerprint) not in known_content
        ]

    def _refresh_stories(
        self, session: Session, story_ids: Iterable[int], now: datetime
    ) -> list[dict[str, Any]]:
        """Recount articles, distinct outlets and sentiment of existing stories from the rows.

        Only stories that gained an article in this batch and existed before it; new stories
        were inserted with their final numbers.
        """
        ids = sorted(story_ids)
        if not ids:
            return []
        connection = session.connection()
        per_story: dict[int, list[dict[str, Any]]] = defaultdict(list)
        stored: dict[int, Any] = {}
        for chunk in _chunks(ids, _IN_CHUNK):
            for story_id, outlet, score, label, published in _STORY_ARTICLES(connection, chunk):
                per_story[story_id].append(
                    {
                        "outlet": outlet,
                        "sentiment": score,
                        "sentiment_label": label,
                        "published_at": published,
                    }
                )
            for row in _STORY_TIMES(connection, chunk):
                stored[row[0]] = row
        updates = []
        stories = []
        for story_id in ids:
            if story_id not in stored or not per_story.get(story_id):
                continue
            _id, title, first_seen, last_seen = stored[story_id]
            values = _aggregate(per_story[story_id], now)
            values["first_seen_at"] = min(first_seen, values["first_seen_at"])
            values["last_seen_at"] = max(last_seen, values["last_seen_at"])
            updates.append({"story_id": story_id, **values})
            stories.append({"id": story_id, "title": title, **values})
        execute_many(session, _STORY_UPDATE, updates)
        return stories


_STORY: Any = Story.__table__  # type: ignore[attr-defined]
_ARTICLE: Any = Article.__table__  # type: ignore[attr-defined]
_ARTICLE_TOPIC: Any = ArticleTopic.__table__  # type: ignore[attr-defined]
_ARTICLE_KEY = ("canonical_url",)  # unique: what matches an inserted article to its id

# The batch's queries, built once and run on the session's connection (Core): statement
# construction and the ORM's execute path cost more than SQLite's own work for these queries.
_KEYS: Any = bindparam("keys", expanding=True)
#: On SQLite the keys go as one JSON array parameter, read by ``json_each``: one statement,
#: parsed once and kept by the driver, where an expanding IN is a new statement of hundreds of
#: placeholders on every batch, for SQLAlchemy to expand and SQLite to parse (about half the
#: cost of the URL check). The index on the column is searched either way.
_KEY_ARRAY: Any = select(
    func.json_each(bindparam("keys", type_=JSON)).table_valued("value").c.value
).scalar_subquery()


class _KeyQuery:
    """A query over the rows whose column is one of a list of keys (the ``keys`` parameter):
    an expanding IN, and on SQLite the same query over a JSON array (:data:`_KEY_ARRAY`)."""

    def __init__(self, build: Callable[[Any], Any]) -> None:
        self._generic = build(_KEYS)
        self._sqlite = build(_KEY_ARRAY)

    def __call__(self, connection: Connection, keys: list[Any]) -> Any:
        sqlite = connection.dialect.name == "sqlite"
        return connection.execute(self._sqlite if sqlite else self._generic, {"keys": keys})


_KNOWN_URLS = _KeyQuery(
    lambda keys: select(_ARTICLE.c.canonical_url).where(_ARTICLE.c.canonical_url.in_(keys))
)
_KNOWN_CONTENT = _KeyQuery(
    lambda keys: select(_ARTICLE.c.outlet, _ARTICLE.c.fingerprint).where(
        _ARTICLE.c.fingerprint.in_(keys)
    )
)
_STORY_ARTICLES = _KeyQuery(
    lambda keys: (
        select(
            _ARTICLE.c.story_id,
            _ARTICLE.c.outlet,
            _ARTICLE.c.sentiment,
            _ARTICLE.c.sentiment_label,
            _ARTICLE.c.published_at,
        )
        .where(_ARTICLE.c.story_id.in_(keys))
        .order_by(_ARTICLE.c.id)
    )
)
_STORY_TIMES = _KeyQuery(
    lambda keys: select(
        _STORY.c.id, _STORY.c.title, _STORY.c.first_seen_at, _STORY.c.last_seen_at
    ).where(_STORY.c.id.in_(keys))
)
#: Executed with one parameter set per story: SET takes the columns named in the sets.
_STORY_UPDATE = update(_STORY).where(_STORY.c.id == bindparam("story_id"))


def _story_key(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The columns that match new stories to their ids: the title when the batch's new stories
    all have different titles (the usual case: nothing else to return and compare, no dates to
    parse back), else the whole row."""
    if len({row["title"] for row in rows}) == len(rows):
        return ("title",)
    return tuple(rows[0])


def _aggregate(articles: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """A story's numbers from its articles: counts, mean sentiment, most common label, times.

    Publication times are clamped to the fetch time: a feed dating an item in the future
    must not push a story's first sighting ahead of when it was seen.
    """
    published = [min(a["published_at"], now) for a in articles]
    labels = [a["sentiment_label"] for a in articles]
    return {
        "article_count": len(articles),
        "outlet_count": len({a["outlet"] for a in articles}),
        "sentiment": round(sum(a["sentiment"] for a in articles) / len(articles), 4),
        # The most common label, the first seen on a tie: Counter.most_common(1) without
        # building a Counter (most stories have one article).
        "sentiment_label": max(dict.fromkeys(labels), key=labels.count),
        "first_seen_at": min(published),
        "last_seen_at": max(published),
    }


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


def parse_workers(settings: Any) -> int:
    """Parser processes: the ``parse_workers`` setting, else one per core (at most four)."""
    workers = getattr(settings, "parse_workers", None)
    return parse_pool.default_workers() if workers is None else int(workers)


async def run_scan(
    db: Database,
    settings: Any,
    clock: Clock,
    *,
    session: aiohttp.ClientSession | None = None,
    policy: FetchPolicy | None = None,
    processor: Processor | None = None,
    on_health: HealthHook | None = None,
) -> ScanReport:
    """One scan of every due, active source. One bad source never stops the others.

    Sources are stored in short transactions (:func:`_store_slice`), so the chats' writes are
    never kept waiting for a whole scan. Each source's items are stored in a savepoint of
    their own (:func:`_store_items`): an item
    the database refuses costs that item, not the source, and never the scan. A source whose
    fetch, parse or store has failed ``REPORT_AFTER_FAILURES`` times in a row, and later one
    that recovers from that, is passed to ``on_health`` inside that source's transaction (the
    bot schedules its messages there; the scanner knows nothing of people).
    """
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

    # Each feed is parsed as soon as it arrives, while the others are still on the wire, in
    # the parser pool (``scanner.parse_pool``: one process per core, off the event loop).
    workers = parse_workers(settings)

    async def _fetch_and_parse(
        fetcher: FeedFetcher, url: str, etag: str | None, modified: str | None
    ) -> tuple[FetchResult, list[FeedItem], str | None, str | None]:
        res = await fetcher.fetch(url, etag, modified)
        if res.status != "ok":
            return res, [], None, res.error
        items, warning, error = await parse_pool.parse_in(
            workers, res.body, dict(res.headers), res.final_url, clock.now()
        )
        res.body = b""  # parsed: let the bytes go
        return res, items, warning, error

    async with FeedFetcher(policy, session=session) as fetcher:
        fetched = await asyncio.gather(
            *(_fetch_and_parse(fetcher, url, etag, lm) for _i, _n, _o, url, etag, lm in targets)
        )

    fetched_at = clock.now()

    def _cpu_and_store() -> None:
        with db.session() as s:
            proc = processor or Processor.from_db(s, fetched_at)
            if processor is not None:
                proc.reload_topics(s)
        report.topics = {t.id: t.name for t in proc.topics}
        pending = list(zip(targets, fetched, strict=True))
        results: list[ProcessResult] = []
        while pending:
            with db.session() as s:
                _store_slice(s, proc, pending, results, report, fetched_at, policy, on_health)
        articles = [a for r in results for a in r.articles]
        per_source = Counter(a.source_id for a in articles)
        for outcome in report.sources:
            outcome.new_articles = per_source.get(outcome.source_id, 0)
        report.new_articles = articles
        report.new_stories = [st for r in results for st in r.new_stories]
        # A story grown by two sources' batches: its last state counts.
        updated = {st.id: st for r in results for st in r.updated_stories}
        report.updated_stories = list(updated.values())
        report.links = [link for r in results for link in r.links]
        report.stories = {
            st.id: st for st in report.new_stories + report.updated_stories if st.id is not None
        }
        report.finished_at = clock.now()
        report.duration_s = time.perf_counter() - started
        with db.session() as s:
            # Once more over every article of the scan: a story grown by a later slice has
            # changed buckets an earlier slice rebuilt (its outlets, its tone), and detection
            # must see what one transaction over the whole scan would have written.
            rebuild_for_articles(s, [a.id for a in articles if a.id is not None])
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


# A due source as read at the scan's start, and what fetching and parsing it gave.
_Target = tuple[int, str, str, str, str | None, str | None]  # id, name, outlet, url, etag, modified
_Fetched = tuple[FetchResult, list[FeedItem], str | None, str | None]  # items, warning, error

# How long one scan transaction may hold SQLite's write lock before it commits what it has and
# lets the chats' writes in (a whole scan of hundreds of feeds in one transaction held it for
# tens of seconds, beyond the handlers' busy timeout).
WRITE_SLICE_SECONDS = 0.5


def _store_slice(
    session: Session,
    proc: Processor,
    pending: list[
        tuple[tuple[Any, ...], tuple[FetchResult, list[FeedItem], str | None, str | None]]
    ],
    results: list[ProcessResult],
    report: ScanReport,
    fetched_at: datetime,
    policy: FetchPolicy,
    on_health: HealthHook | None,
) -> None:
    """Store fetched sources from the front of ``pending`` in one short transaction: at least
    one, and more while the transaction is younger than ``WRITE_SLICE_SECONDS``.

    Each source's items, its health and the series buckets its articles touch commit together,
    so stored articles and their series never disagree; a kill between two slices leaves the
    later sources unfetched as far as the database knows (fetched again at the next scan).
    """
    # Savepoints nest only in an open transaction (pysqlite would otherwise let each RELEASE
    # commit on its own): take SQLite's write lock first, waiting if need be.
    begin_write(session)
    opened = time.perf_counter()
    ids = [target[0] for target, _fetched in pending]
    rows = {
        src.id: src
        for src in session.execute(select(Source).where(col(Source.id).in_(ids))).scalars()
    }
    article_ids: list[int] = []
    taken = 0
    while pending and (taken == 0 or time.perf_counter() - opened < WRITE_SLICE_SECONDS):
        taken += 1
        (source_id, name, outlet, url, _e, _l), (res, items, warning, error) = pending.pop(0)
        row = rows[source_id]
        outcome = SourceOutcome(source_id, name, url, res.status, items=len(items), warning=warning)
        report.sources.append(outcome)
        if error is None and items:
            stored, error, skipped = _store_items(
                session, proc, [Incoming(item, outlet, source_id) for item in items], fetched_at
            )
            results.extend(stored)
            article_ids.extend(a.id for r in stored for a in r.articles if a.id is not None)
            if skipped:
                note = f"{skipped} of {len(items)} items could not be stored"
                warning = f"{warning}; {note}" if warning else note
                outcome.warning = warning
        if error is not None:
            outcome.status, outcome.error = "error", error
            record_failure(row, error, fetched_at, policy)
            if on_health is not None and row.consecutive_failures == REPORT_AFTER_FAILURES:
                on_health(session, row, "down")
        else:
            recovered = (row.consecutive_failures or 0) >= REPORT_AFTER_FAILURES
            record_success(row, res, fetched_at, warning=warning)
            if on_health is not None and recovered:
                on_health(session, row, "up")
    # Their buckets, however old (a new source's first scan, a scan after an outage), in the
    # same transaction as the articles.
    rebuild_for_articles(session, article_ids)


def _store_items(
    session: Session, processor: Processor, items: list[Incoming], now: datetime
) -> tuple[list[ProcessResult], str | None, int]:
    """Store one source's items in a savepoint: (results, error or None, items skipped).

    When the batch fails, it is rolled back and retried item by item, each in its own
    savepoint, so only the items the database refuses are lost. Several failures in a row mean
    the trouble is not one item: the source fails this scan and is retried at its next turn.
    A failed batch leaves the in-memory story index holding stories that were rolled back, so
    it is rebuilt from the database after each failure.
    """
    try:
        with session.begin_nested():
            return [processor.process(session, items, now)], None, 0
    except Exception as exc:  # any refusal of the database, or a bug on one odd item
        log.warning("storing %d items failed, retrying one by one: %s", len(items), exc)
        first_error = f"store error: {type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        _restore_index(session, processor, now)
    results: list[ProcessResult] = []
    skipped = failed_in_row = 0
    for incoming in items:
        try:
            with session.begin_nested():
                results.append(processor.process(session, [incoming], now))
            failed_in_row = 0
        except Exception as exc:
            log.warning("item %s not stored: %s", incoming.item.url[:200], exc)
            _restore_index(session, processor, now)
            skipped += 1
            failed_in_row += 1
            if failed_in_row >= _FAILURES_BEFORE_GIVING_UP:
                return results, first_error, skipped
    return results, None, skipped


def _restore_index(session: Session, processor: Processor, now: datetime) -> None:
    """The story index as the database has it, after a rolled-back batch."""
    processor.index.clear()
    processor.rebuild_index(session, now)


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
