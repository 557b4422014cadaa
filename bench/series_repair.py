"""Time the series upkeep on a big database: the start-up repair and a scan's backfill rebuild.

    .venv/bin/python bench/series_repair.py [--articles 300000] [--topics 20] [--days 180]
                                            [--url postgresql+psycopg://...]

Fills a fresh database (a temporary SQLite file unless ``--url`` names an empty PostgreSQL
schema) with ``--articles`` articles spread over ``--days`` days, each matching one or two of
``--topics`` topics, and builds their series. Then it times what a start and a scan cost:

* ``repair, nothing stale``: ``series.repair_series`` on the consistent database — what every
  start of the bot pays (two grouped counts);
* ``repair, one bucket lost``: the same after one topic's bucket row was deleted (that topic's
  buckets are compared one by one and the bucket rebuilt);
* ``repair, a topic never built``: every bucket row of one topic deleted (a database from
  before the series followed backfills, at its worst);
* ``backfill rebuild``: ``series.rebuild_for_articles`` for a new source's first scan, 14 days of
  its items (one every 20 minutes) stored at once — what the scan adds for them.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from sqlmodel import SQLModel

from scanner.series import rebuild_buckets, rebuild_for_articles, repair_series
from storage.db import Database, make_engine
from storage.models import Agency, Article, ArticleTopic, SeriesBucket, Topic

END = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def fill(db: Database, articles: int, topics: int, days: int, seed: int) -> list[int]:
    """Articles, links and their full series; returns the topic ids."""
    rng = random.Random(seed)
    span = days * 86400
    with db.session() as s:
        agency = Agency(code="B", name="Bench")
        s.add(agency)
        s.flush()
        rows = [Topic(agency_id=agency.id or 0, name=f"t{i}", query='"x"') for i in range(topics)]
        s.add_all(rows)
        s.flush()
        ids = [t.id for t in rows if t.id is not None]
    batch = 20_000
    for lo in range(0, articles, batch):
        n = min(batch, articles - lo)
        with db.session() as s:
            times = [END - timedelta(seconds=rng.randrange(span)) for _ in range(n)]
            s.execute(
                sa.insert(Article),
                [
                    {
                        "canonical_url": f"https://b.vn/{lo + i}",
                        "url": f"https://b.vn/{lo + i}",
                        "outlet": f"o{(lo + i) % 40}",
                        "title": "t",
                        "published_at": at,
                        "fetched_at": at,
                    }
                    for i, at in enumerate(times)
                ],
            )
            first = s.execute(sa.select(sa.func.max(Article.id))).scalar_one() - n + 1
            links = []
            for k in range(n):
                for t in rng.sample(ids, 1 + (rng.random() < 0.5)):
                    links.append({"article_id": first + k, "topic_id": t})
            s.execute(sa.insert(ArticleTopic), links)
    with db.session() as s:
        rebuild_buckets(s, END - timedelta(days=days + 1), END + timedelta(hours=1), ids)
    return ids


def backfill(db: Database, topic_id: int) -> list[int]:
    """A new source's first scan: 14 days of its items, one every 20 minutes."""
    with db.session() as s:
        times = [END - timedelta(minutes=20 * k + 3) for k in range(14 * 72)]
        rows = [
            Article(
                canonical_url=f"https://new.vn/{k}",
                url=f"https://new.vn/{k}",
                outlet="new",
                title="t",
                published_at=at,
                fetched_at=END,
            )
            for k, at in enumerate(times)
        ]
        s.add_all(rows)
        s.flush()
        s.add_all(ArticleTopic(article_id=a.id or 0, topic_id=topic_id) for a in rows)
        return [a.id for a in rows if a.id is not None]


def timed(label: str, fn: object) -> float:
    started = time.perf_counter()
    result = fn()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"  {label:<26} {seconds * 1000:9.1f} ms   ({result})")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=300_000)
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="an empty database to fill (default: temporary SQLite)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'repair.sqlite3'}"
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        db = Database(engine)
        started = time.perf_counter()
        ids = fill(db, args.articles, args.topics, args.days, args.seed)
        with db.session() as s:
            links = s.execute(sa.select(sa.func.count()).select_from(ArticleTopic)).scalar_one()
            buckets = s.execute(sa.select(sa.func.count()).select_from(SeriesBucket)).scalar_one()
        print(
            f"{engine.dialect.name}: {args.articles} articles, {links} topic links, "
            f"{buckets} series buckets, {args.topics} topics over {args.days} days "
            f"(filled in {time.perf_counter() - started:.0f} s)"
        )

        def repair() -> int:
            with db.session() as s:
                return repair_series(s)

        timed("repair, nothing stale", repair)
        with db.session() as s:
            victim = s.execute(
                sa.select(SeriesBucket.id).where(SeriesBucket.topic_id == ids[0]).limit(1)
            ).scalar_one()
            s.execute(sa.delete(SeriesBucket).where(SeriesBucket.id == victim))  # type: ignore[arg-type]
        timed("repair, one bucket lost", repair)
        with db.session() as s:
            s.execute(sa.delete(SeriesBucket).where(SeriesBucket.topic_id == ids[2]))  # type: ignore[arg-type]
        timed("repair, a topic never built", repair)
        new = backfill(db, ids[1])

        def rebuild() -> int:
            with db.session() as s:
                return rebuild_for_articles(s, new)

        timed(f"backfill rebuild ({len(new)} items)", rebuild)
        timed("repair after it", repair)
        db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
