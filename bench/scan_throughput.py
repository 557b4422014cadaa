"""Scanner throughput per core (CPU seconds of this process, so other load on the machine
does not count against it): feedparser, parsed entries → stored rows, the whole pipeline,
and the sentiment scorers.

Run: ``.venv/bin/python bench/scan_throughput.py [--items 5000] [--dump rows.jsonl]``

``--dump`` writes what the "entries → stored rows" run stored, one article per line (URL, story
id, topics with weights and the tone for each, sentiment label and score), so two versions of
the scanner can be compared for identical results with ``cmp``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select
from sqlmodel import Session, SQLModel, col

from bench.scanner_corpus import (
    TOPICS,
    add_topics,
    cluster_quality,
    generate_with_truth,
    rss_document,
)
from bench.story_counts import story_counts
from scanner.cli_commands import score_stream
from scanner.parse import parse_feed
from scanner.pipeline import Incoming, Processor
from scanner.sentiment import LexiconScorer, default_scorer
from storage.db import Database, make_engine
from storage.models import Article, ArticleTopic, Topic

PER_FEED = 50


def fresh_db(directory: str, name: str) -> Database:
    db = Database(make_engine(f"sqlite:///{directory}/{name}.db"))
    SQLModel.metadata.create_all(db.engine)
    with db.session() as s:
        add_topics(s)
    return db


def dump_rows(session: Session, path: Path) -> None:
    """Every stored article as a JSON line: URL, story id, topics (name, weight and the
    article's tone for that topic), sentiment label and score."""
    topics: dict[int, list[tuple[str, float, str | None, float | None]]] = {}
    for article_id, name, weight, link_label, link_score in session.execute(
        select(
            col(ArticleTopic.article_id),
            col(Topic.name),
            col(ArticleTopic.weight),
            col(ArticleTopic.sentiment_label),
            col(ArticleTopic.sentiment),
        )
        .join(Topic, col(Topic.id) == col(ArticleTopic.topic_id))
        .order_by(col(ArticleTopic.article_id), col(Topic.name))
    ):
        topics.setdefault(article_id, []).append((name, weight, link_label, link_score))
    rows = session.execute(
        select(
            col(Article.id),
            col(Article.url),
            col(Article.story_id),
            col(Article.sentiment_label),
            col(Article.sentiment),
        ).order_by(col(Article.id))
    )
    with path.open("w", encoding="utf-8") as out:
        for article_id, url, story_id, label, score in rows:
            line = [url, story_id, topics.get(article_id, []), label, score]
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--dump", type=Path, help="write the stored articles here (JSON lines)")
    args = parser.parse_args()
    now = datetime(2026, 11, 3, tzinfo=UTC)
    truth_corpus = generate_with_truth(args.items)
    corpus = [(item, outlet) for item, outlet, _story in truth_corpus]
    truth_by_url = {item.url: story for item, _o, story in truth_corpus}
    feeds = [
        ([item for item, _ in corpus[i : i + PER_FEED]], corpus[i][1])
        for i in range(0, len(corpus), PER_FEED)
    ]
    documents = [(rss_document(items), outlet) for items, outlet in feeds]
    print(
        f"corpus: {len(corpus)} items in {len(documents)} RSS documents, "
        f"{len(TOPICS)} topics; items per CPU-second"
    )

    started = time.process_time()
    parsed = [(parse_feed(body, fetched_at=now).items, outlet) for body, outlet in documents]
    elapsed = time.process_time() - started
    print(f"feedparser + cleaning (parse_feed):          {len(corpus) / elapsed:8.0f} items/s")
    incoming = [Incoming(item, outlet) for items, outlet in parsed for item in items]

    scorer = default_scorer()
    with tempfile.TemporaryDirectory() as tmp:
        for label, batch in (("entries → stored rows (model sentiment)", 500),):
            db = fresh_db(tmp, "process")
            with db.session() as s:
                processor = Processor.from_db(s, now, scorer=scorer)
            started = time.process_time()
            for i in range(0, len(incoming), batch):
                with db.session() as s:
                    processor.process(s, incoming[i : i + batch], now + timedelta(seconds=i))
            elapsed = time.process_time() - started
            print(
                f"{label}: {len(incoming) / elapsed:8.0f} items/s"
                "  (normalise, dedupe, match, score, store)"
            )
            with db.session() as s:
                again = processor.process(s, incoming[:batch], now)
            assert not again.articles, "re-processing stored nothing new"
            with db.session() as s:
                stored = s.execute(
                    select(col(Article.url), col(Article.story_id)).order_by(col(Article.id))
                ).all()
            predicted = [story_id for _url, story_id in stored]
            truth = [truth_by_url[url] for url, _story_id in stored]
            precision, recall = cluster_quality(predicted, truth)
            counts = story_counts(list(zip(truth, predicted, strict=True)))
            print(
                f"clustering: {len(stored)} articles, {len(set(truth))} true stories, "
                f"{len(set(predicted))} found; pairwise precision {precision:.3f}, "
                f"recall {recall:.3f}; {counts.row()}"
            )
            if args.dump:
                with db.session() as s:
                    dump_rows(s, args.dump)

        db = fresh_db(tmp, "whole")
        with db.session() as s:
            processor = Processor.from_db(s, now, scorer=scorer)
        started = time.process_time()
        for body, outlet in documents:
            items = parse_feed(body, fetched_at=now).items
            with db.session() as s:
                processor.process(s, [Incoming(item, outlet) for item in items], now)
        elapsed = time.process_time() - started
        print(f"whole pipeline (bytes → rows, per feed):     {len(corpus) / elapsed:8.0f} items/s")

    pairs = [(item.title, item.summary) for item, _ in corpus]
    for name, sc in (("model", scorer), ("lexicon", LexiconScorer())):
        started = time.process_time()
        sc.score_many(pairs)
        elapsed = time.process_time() - started
        print(f"sentiment {name:<8} score_many:              {len(pairs) / elapsed:8.0f} lines/s")
    text = (
        "\n".join(json.dumps({"title": t, "lead": ld}, ensure_ascii=False) for t, ld in pairs)
        + "\n"
    )
    started = time.process_time()
    score_stream(io.StringIO(text), io.StringIO(), "model")
    elapsed = time.process_time() - started
    print(f"sentiment score CLI path (JSON in/out):      {len(pairs) / elapsed:8.0f} lines/s")


if __name__ == "__main__":
    main()
