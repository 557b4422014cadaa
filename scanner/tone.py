"""A topic's everyday vocabulary, left out when its stories' tone is read for that topic.

A topic's own query terms are already removed before its tone is scored
(:meth:`scanner.topics.Query.without_subject`): "lũ lụt" is a flood topic's subject, not a
judgement. But a flood topic's stories carry more than its name — "mưa lớn", "ngập", "nước
dâng", "cảnh báo" are on most of them, and the sentiment scorers read them as negative, so
the topic's every ordinary story (roads reopened, water receding, aid delivered) read
negative and its negative norm sat so high that a real turn barely lifted it. What every story
of a topic says does not tell one story of it from another: here a topic's *everyday
vocabulary* is the syllable 1-2-grams found in at least :data:`MIN_SHARE` of its stories over
the week before today (:data:`SPAN`) and at least :data:`MIN_LIFT` times as often as in general news
(:func:`scanner.terms.general_rate`: "người", "tỉnh" are everywhere, not the topic's), learned
from the stored stories and refreshed once a day, and the topic's tone is scored without them.
A story's *other* words ("thiệt mạng", "mất tích", "thông xe") still speak.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select
from sqlmodel import Session, col

from scanner.terms import general_rate
from scanner.textnorm import STOPWORDS, syllables
from storage.models import Article, ArticleTopic

#: Stories of the topic read to learn its vocabulary: the week before today, at most this many.
SPAN = timedelta(days=7)
MAX_STORIES = 500
#: A topic needs this many stories before it has a vocabulary of its own.
MIN_STORIES = 30
#: A term is everyday when this share of the topic's stories carries it ...
MIN_SHARE = 0.3
#: ... and that share is this many times its share of general news.
MIN_LIFT = 3.0


def _grams(tokens: Sequence[str]) -> set[str]:
    """The 1-2-grams of a story that neither start nor end with a stopword."""
    out = {t for t in tokens if t not in STOPWORDS and not t.isdigit()}
    out.update(
        f"{a} {b}"
        for a, b in itertools.pairwise(tokens)
        if a not in STOPWORDS and b not in STOPWORDS
    )
    return out


def everyday_terms(stories: Iterable[str]) -> frozenset[str]:
    """The everyday vocabulary of a topic from its stories' texts (exact, toned form)."""
    df: Counter[str] = Counter()
    n = 0
    for text in stories:
        df.update(_grams(syllables(text, folded=False)))
        n += 1
    if n < MIN_STORIES:
        return frozenset()
    return frozenset(
        term
        for term, count in df.items()
        if count >= MIN_SHARE * n and count / n >= MIN_LIFT * general_rate(term)
    )


def mask(exact: list[str], folded: list[str], terms: frozenset[str]) -> tuple[list[str], list[str]]:
    """Syllables (toned and folded, aligned) without the runs that spell one of ``terms``
    (a bigram before a unigram); the same lists when none is there.

    On the scanner's hot path (every link of a topic with a vocabulary): only syllables that
    begin some term are looked at, found in one pass (most syllables begin none).
    """
    if not terms:
        return exact, folded
    starts = _starts(terms)
    hits = list(itertools.compress(itertools.count(), map(starts.__contains__, exact)))
    if not hits:
        return exact, folded
    drop: set[int] = set()
    last = len(exact) - 1
    for i in hits:
        if i in drop:
            continue
        if i < last and f"{exact[i]} {exact[i + 1]}" in terms:
            drop.update((i, i + 1))
        elif exact[i] in terms:
            drop.add(i)
    if not drop:
        return exact, folded
    keep = [i for i in range(len(exact)) if i not in drop]
    return [exact[i] for i in keep], [folded[i] for i in keep]


@lru_cache(maxsize=256)
def _starts(terms: frozenset[str]) -> frozenset[str]:
    """The first syllables of ``terms`` (cached: a topic's vocabulary changes once a day)."""
    return frozenset(term.split(" ", 1)[0] for term in terms)


class TopicVocabulary:
    """Every topic's everyday vocabulary, learned from the stored stories of the week before
    today (UTC; the first article of each story), relearned when the day changes."""

    def __init__(self) -> None:
        self.terms: dict[int, frozenset[str]] = {}
        self.day: datetime | None = None

    def refresh(self, session: Session, now: datetime) -> None:
        """Learn every topic's vocabulary for the day of ``now`` (once a day).

        Only stories published before today are read: the day's own stories (a turn in
        progress) do not become the norm its tone is read against.
        """
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if day == self.day:
            return
        self.day = day
        rows = session.execute(
            select(
                col(ArticleTopic.topic_id),
                col(Article.story_id),
                col(Article.id),
                col(Article.title),
                col(Article.summary),
            )
            .join(Article, col(Article.id) == col(ArticleTopic.article_id))
            .where(col(Article.published_at) >= day - SPAN, col(Article.published_at) < day)
            .order_by(col(Article.published_at).desc())
        )
        texts: dict[int, dict[int, str]] = {}
        for topic_id, story_id, article_id, title, summary in rows:
            stories = texts.setdefault(topic_id, {})
            key = story_id if story_id is not None else -article_id
            if key in stories or len(stories) < MAX_STORIES:
                # Newest first: a story's earlier article overwrites its later copies.
                stories[key] = f"{title}. {summary}"
        self.terms = {
            topic_id: found
            for topic_id, stories in texts.items()
            if (found := everyday_terms(stories.values()))
        }

    def of(self, topic_id: int) -> frozenset[str]:
        return self.terms.get(topic_id, frozenset())
