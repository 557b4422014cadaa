"""Migration 0013 on a database with articles in it: ``ix_article_source_id`` goes, the rows and
the foreign key to their source stay, and the downgrade makes the index again, on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from migration_rows import reflect

from storage.migrate import downgrade, upgrade

BEFORE = "0012_room_identity"
AFTER = "0013_article_source_unindexed"
AT = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


def _indexes(engine: sa.Engine) -> set[str]:
    return {str(i["name"]) for i in sa.inspect(engine).get_indexes("article")}


def _article(n: int, source_id: int | None) -> dict[str, object]:
    return {
        "canonical_url": f"https://a.vn/{n}",
        "url": f"https://a.vn/{n}",
        "source_id": source_id,
        "outlet": "a.vn",
        "title": f"tin {n}",
        "summary": "",
        "published_at": AT,
        "fetched_at": AT,
        "fingerprint": f"f{n}",
        "sentiment": 0.0,
        "sentiment_label": "neutral",
    }


def test_article_source_index_dropped_and_back(empty_db: tuple[str, sa.Engine]) -> None:
    url, db = empty_db
    upgrade(url, BEFORE)
    source = {"name": "A", "outlet": "a.vn", "owner": "chat", "active": True}
    source |= {"consecutive_failures": 0, "created_at": AT}
    with db.begin() as conn:
        conn.execute(
            sa.insert(reflect(db, "source")), [{**source, "id": 1, "url": "https://a.vn/rss"}]
        )
        conn.execute(sa.insert(reflect(db, "article")), [_article(1, 1), _article(2, None)])
    assert "ix_article_source_id" in _indexes(db)

    upgrade(url, AFTER)
    indexes = _indexes(db)
    assert "ix_article_source_id" not in indexes
    assert {"ix_article_story_id", "ix_article_fingerprint", "ix_article_published_at"} <= indexes
    article = reflect(db, "article")
    with db.connect() as conn:
        rows = conn.execute(sa.select(article.c.canonical_url, article.c.source_id)).all()
    assert sorted(tuple(r) for r in rows) == [("https://a.vn/1", 1), ("https://a.vn/2", None)]
    # The foreign key still holds.
    with pytest.raises(sa.exc.IntegrityError), db.begin() as conn:
        conn.execute(sa.insert(article), [_article(3, 99)])

    downgrade(url, BEFORE)
    assert "ix_article_source_id" in _indexes(db)
