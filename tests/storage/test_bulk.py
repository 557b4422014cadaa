"""storage.bulk on both backends: what it stores is what SQLAlchemy's own inserts store.

SQLite takes the driver's executemany with rows numbered by the batch; PostgreSQL a multi-row
INSERT … RETURNING. Either way the ids name the rows they were given for, the times are stored
as SQLAlchemy stores them, and text is cleaned by the same hook.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from bench.scanner_corpus import add_topics
from storage.bulk import execute_many, insert_returning_ids, insert_rows
from storage.db import Database
from storage.models import Article, ArticleTopic, Story, Topic

STORY: Any = Story.__table__  # type: ignore[attr-defined]
ARTICLE: Any = Article.__table__  # type: ignore[attr-defined]
LINK: Any = ArticleTopic.__table__  # type: ignore[attr-defined]
NOW = datetime(2026, 11, 2, 1, 0, 0, 250_000, tzinfo=UTC)


def _story(title: str, at: datetime = NOW) -> dict[str, Any]:
    return {
        "title": title,
        "first_seen_at": at,
        "last_seen_at": at + timedelta(hours=1),
        "article_count": 1,
        "outlet_count": 1,
        "sentiment": -0.25,
        "sentiment_label": "negative",
    }


def test_ids_name_the_rows_they_were_given_for(db: Database) -> None:
    rows = [_story("Lũ quét"), _story("Sạt lở"), _story("Lũ quét"), _story("Bão số 3")]
    rows[3]["sentiment_label"] = "neg\x00"
    with db.session() as s:
        before = insert_returning_ids(s, STORY, [_story("trước")], ("title",))
        ids = insert_returning_ids(s, STORY, rows, ("title",))
    assert ids == list(range(before[0] + 1, before[0] + 5))
    with db.session() as s:
        stored = {r.id: r for r in s.execute(sa.select(STORY).where(STORY.c.id.in_(ids)))}
    for story_id, row in zip(ids, rows, strict=True):
        got = stored[story_id]
        assert got.title == row["title"]
        assert got.first_seen_at == row["first_seen_at"]
        assert got.last_seen_at == row["last_seen_at"]
        assert got.sentiment == -0.25
        assert got.sentiment_label == row["sentiment_label"].replace("\x00", "")  # cleaned


def test_sqlite_numbers_from_the_largest_id_as_sqlite_would(tmp_path: Any) -> None:
    """The numbers are the ones SQLite gives itself: after the largest id was deleted, it is
    taken again, and the rows stored through SQLAlchemy and through storage.bulk are equal,
    times in the same DATETIME text."""
    own, bulk = (Database.from_url(f"sqlite:///{tmp_path / n}.sqlite3") for n in ("own", "bulk"))
    for database in (own, bulk):
        Story.metadata.create_all(database.engine, tables=[STORY])
        with database.session() as s:
            s.execute(sa.insert(STORY), [_story(f"s{i}") for i in range(3)])
            s.execute(sa.delete(STORY).where(STORY.c.id == 3))
    rows = [_story("mới", NOW + timedelta(minutes=i)) for i in range(3)]
    with own.session() as s:
        own_ids = [s.execute(sa.insert(STORY).values(r)).inserted_primary_key[0] for r in rows]
    with bulk.session() as s:
        assert insert_returning_ids(s, STORY, rows, ("title",)) == own_ids == [3, 4, 5]
    raw = sa.text("select id, title, first_seen_at, last_seen_at from story order by id")
    with own.session() as s, bulk.session() as t:
        assert s.execute(raw).all() == t.execute(raw).all()
    own.dispose()
    bulk.dispose()


def test_a_rolled_back_savepoint_gives_its_numbers_back(db: Database) -> None:
    with db.session() as s:
        [first] = insert_returning_ids(s, STORY, [_story("a")], ("title",))
        savepoint = s.begin_nested()
        insert_returning_ids(s, STORY, [_story("b"), _story("c")], ("title",))
        savepoint.rollback()
        again = insert_returning_ids(s, STORY, [_story("d")], ("title",))
    with db.session() as s:
        titles = dict(s.execute(sa.select(STORY.c.id, STORY.c.title)).all())
    if db.engine.dialect.name == "sqlite":
        assert again == [first + 1]
    assert titles == {first: "a", again[0]: "d"}


def test_insert_rows_stores_every_row(db: Database) -> None:
    with db.session() as s:
        add_topics(s)
        topic_id = s.execute(sa.select(sa.func.min(col(Topic.id)))).scalar_one()
        [story_id] = insert_returning_ids(s, STORY, [_story("x")], ("title",))
        articles = [
            {
                "canonical_url": f"https://a.vn/{i}",
                "url": f"https://a.vn/{i}",
                "outlet": "a.vn",
                "title": "x",
                "summary": "",
                "published_at": NOW,
                "fetched_at": NOW,
                "fingerprint": f"f{i}",
                "sentiment": 0.0,
                "sentiment_label": "neutral",
                "story_id": story_id,
            }
            for i in range(3)
        ]
        article_ids = insert_returning_ids(s, ARTICLE, articles, ("canonical_url",))
        links = [
            {
                "article_id": a,
                "topic_id": topic_id,
                "weight": 1.5,
                "sentiment": None,
                "sentiment_label": "Bão\x00" if a == article_ids[1] else "Bão",
            }
            for a in article_ids
        ]
        insert_rows(s, LINK, links)
        insert_rows(s, LINK, [])
    with db.session() as s:
        stored = s.execute(sa.select(LINK).order_by(LINK.c.article_id)).all()
        urls = dict(s.execute(sa.select(ARTICLE.c.id, ARTICLE.c.canonical_url)).all())
    assert [(r.article_id, r.weight, r.sentiment, r.sentiment_label) for r in stored] == [
        (a, 1.5, None, "Bão") for a in article_ids
    ]
    assert [urls[a] for a in article_ids] == [a["canonical_url"] for a in articles]


UPDATE_STORY = sa.update(STORY).where(STORY.c.id == sa.bindparam("story_id"))


def test_execute_many_updates_each_row_by_its_key(db: Database) -> None:
    later = NOW + timedelta(days=1, microseconds=5)
    with db.session() as s:
        ids = insert_returning_ids(s, STORY, [_story("a"), _story("b"), _story("c")], ("title",))
        execute_many(
            s,
            UPDATE_STORY,
            [
                {"story_id": ids[2], "last_seen_at": later, "article_count": 3},
                {"story_id": ids[0], "last_seen_at": later, "article_count": 2},
            ],
        )
        execute_many(s, UPDATE_STORY, [])
    with db.session() as s:
        stored = s.execute(
            sa.select(STORY.c.title, STORY.c.last_seen_at, STORY.c.article_count).order_by(
                STORY.c.id
            )
        ).all()
    assert [tuple(r) for r in stored] == [
        ("a", later, 2),
        ("b", NOW + timedelta(hours=1), 1),
        ("c", later, 3),
    ]
