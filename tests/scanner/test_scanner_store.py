"""Processor → database on SQLite and PostgreSQL: what ``process`` returns is what it stored.

The rows are written by storage.bulk: on SQLite numbered by the batch and inserted by the
driver's executemany, on PostgreSQL by multi-row INSERTs whose ids are matched back to the rows
by value (canonical URL for articles, the whole row for stories), so these tests check that
every article lands in the story built for it, on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from scanner_feeds import NOW

from bench.scanner_corpus import add_topics, generate_with_truth
from scanner.parse import FeedItem
from scanner.pipeline import Incoming, Processor, load_topics
from scanner.sentiment import LexiconScorer, Sentiment
from storage.db import Database
from storage.models import Article, ArticleTopic, Story


@pytest.fixture
def both_db(db_url: str) -> Iterator[Database]:
    """A migrated database on each backend, with the bench's topics."""
    database = Database.from_url(db_url)
    with database.session() as s:
        add_topics(s)
    yield database
    database.dispose()


def _rows(db: Database, table: Any) -> dict[Any, dict[str, Any]]:
    with db.session() as s:
        return {
            tuple(row[c.name] for c in table.primary_key.columns): dict(row)
            for row in s.execute(sa.select(table)).mappings()
        }


def _dump(models: Sequence[Any]) -> list[dict[str, Any]]:
    return [m.model_dump() for m in models]


def test_process_returns_the_rows_it_stored(both_db: Database) -> None:
    corpus = generate_with_truth(600, seed=5)
    items = [Incoming(item, outlet) for item, outlet, _story in corpus]
    with both_db.session() as s:
        processor = Processor(load_topics(s), scorer=LexiconScorer())
    results = []
    for n, start in enumerate(range(0, len(items), 200)):  # later batches grow older stories
        with both_db.session() as s:
            results.append(
                processor.process(s, items[start : start + 200], NOW + timedelta(minutes=n))
            )

    stored_articles = _rows(both_db, Article.__table__)  # type: ignore[attr-defined]
    returned = [a for r in results for a in _dump(r.articles)]
    assert len(returned) == len(stored_articles) > 500
    assert {(a["id"],): a for a in returned} == stored_articles

    stored_links = _rows(both_db, ArticleTopic.__table__)  # type: ignore[attr-defined]
    links = [link for r in results for link in _dump(r.links)]
    assert len(links) == len(stored_links) > 0
    assert {(x["article_id"], x["topic_id"]): x for x in links} == stored_links
    first = results[0].articles[0]
    assert results[0].topics_of(first.id or 0) == [
        (x["topic_id"], x["weight"]) for x in links if x["article_id"] == first.id
    ]

    # Each story is the last version returned for it (new, then updated), and its title is
    # that of the first article clustered into it: the ids went to the right rows.
    stored_stories = _rows(both_db, Story.__table__)  # type: ignore[attr-defined]
    latest = {}
    for r in results:
        latest.update({s["id"]: s for s in _dump(r.new_stories) + _dump(r.updated_stories)})
    assert {(k,): v for k, v in latest.items()} == stored_stories
    assert sum(len(r.updated_stories) for r in results) > 0
    first_title: dict[int, str] = {}
    for article in returned:
        first_title.setdefault(article["story_id"], article["title"])
    assert {k: v["title"] for k, v in latest.items()} == first_title


def test_items_already_stored_are_skipped_by_url_and_by_content(both_db: Database) -> None:
    """The stored URLs and (outlet, fingerprint) pairs are looked up per batch (a JSON array
    on SQLite, an expanding IN elsewhere): a second batch stores only what is new."""
    corpus = generate_with_truth(300, seed=7)
    items = [Incoming(item, outlet) for item, outlet, _story in corpus]
    with both_db.session() as s:
        processor = Processor(load_topics(s), scorer=LexiconScorer())
        first = processor.process(s, items[:200], NOW)
    stored = first.articles[0]
    copy = next(i for i in items[:200] if i.item.url == stored.url)
    same_content = Incoming(replace(copy.item, url="https://ban-sao.vn/1"), copy.outlet)
    with both_db.session() as s:
        second = processor.process(s, [*items[100:], same_content], NOW + timedelta(minutes=5))
    new_urls = {a.url for a in second.articles}
    assert not new_urls & {a.url for a in first.articles}
    assert same_content.item.url not in new_urls
    assert len(new_urls) + second.duplicates == 201 and second.duplicates > 101


class _Flat:
    """Every item neutral: two unrelated items with the same headline make equal story rows."""

    name = "flat"

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[Sentiment]:
        return [Sentiment(0.0, "neutral") for _ in items]


def test_equal_new_stories_get_ids_in_order_of_first_sight(both_db: Database) -> None:
    leads = [
        "Mưa lớn kéo dài khiến nhiều tuyến đường ngập sâu, giao thông ùn tắc nhiều giờ liền",
        "Giá cà phê xuất khẩu tăng mạnh nhờ nhu cầu từ châu Âu phục hồi sau mùa thu hoạch",
        "Đội tuyển bóng đá nữ giành chiến thắng thuyết phục trong trận mở màn vòng loại",
        "Sân bay quốc tế mở thêm đường bay thẳng tới các nước Bắc Âu từ đầu tháng sau",
    ]
    published = [NOW, NOW, NOW, NOW - timedelta(hours=1)]  # the last row differs: its date
    items = [
        Incoming(FeedItem("Tin nhanh", f"https://o{n}.vn/{n}", lead, at), f"o{n}")
        for n, (lead, at) in enumerate(zip(leads, published, strict=True))
    ]
    with both_db.session() as s:
        result = Processor([], scorer=_Flat()).process(s, items, NOW)
    rows = [{k: v for k, v in row.items() if k != "id"} for row in _dump(result.new_stories)]
    assert len(rows) == 4 and rows[0] == rows[1] == rows[2] != rows[3]
    story_ids = [a.story_id or 0 for a in result.articles]
    assert story_ids == sorted(story_ids) and len(set(story_ids)) == 4
    assert [s.id for s in result.new_stories] == story_ids
    stored = _rows(both_db, Story.__table__)  # type: ignore[attr-defined]
    assert [stored[(i,)]["first_seen_at"] for i in story_ids] == published


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["negative", "neutral", "positive"]), min_size=1, max_size=9))
def test_story_label_is_the_most_common_first_seen_on_ties(labels: list[str]) -> None:
    from collections import Counter

    from scanner.pipeline import _aggregate

    articles = [
        {"published_at": NOW, "outlet": "o", "sentiment": 0.0, "sentiment_label": label}
        for label in labels
    ]
    assert _aggregate(articles, NOW)["sentiment_label"] == Counter(labels).most_common(1)[0][0]


def test_each_topic_gets_the_articles_tone_without_its_own_name(db_url: str) -> None:
    """A landslide story that says the road is open again is good news for the landslide topic,
    although "sạt lở" reads negative; for a topic about the road itself, the rest of the story
    is the landslide. Links keep the tone per topic and the series counts it."""
    from scanner.series import rebuild_buckets
    from storage.models import Agency, Topic

    db = Database.from_url(db_url)
    with db.session() as s:
        agency = Agency(code="BXD", name="Bộ Xây dựng")
        s.add(agency)
        s.flush()
        for name, query in (("Sạt lở", '"sạt lở"'), ("Thông xe", '"thông xe"')):
            s.add(Topic(agency_id=agency.id or 0, name=name, query=query))
    item = FeedItem("Sạt lở ở Quảng Nam, đường đã thông xe", "https://o.vn/1", "Đèo Lò Xo", NOW)
    with db.session() as s:
        processor = Processor(load_topics(s), scorer=LexiconScorer())
        result = processor.process(s, [Incoming(item, "o")], NOW)
        names = {t.id: t.name for t in processor.topics}
    article = result.articles[0]
    assert article.sentiment_label == "neutral"  # both names read at once cancel out
    tone = {names[link["topic_id"]]: link["sentiment_label"] for link in result.link_rows}
    assert tone == {"Sạt lở": "positive", "Thông xe": "negative"}
    stored = _rows(db, ArticleTopic.__table__)  # type: ignore[attr-defined]
    assert {names[k[1]]: v["sentiment_label"] for k, v in stored.items()} == tone
    with db.session() as s:
        buckets = {
            names[b.topic_id]: b
            for b in rebuild_buckets(s, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
        }
    assert (buckets["Sạt lở"].positive, buckets["Sạt lở"].negative) == (1, 0)
    assert (buckets["Thông xe"].positive, buckets["Thông xe"].negative) == (0, 1)
    db.dispose()
