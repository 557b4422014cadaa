"""Scanner throughput per core: feedparser, parsed entries → stored rows, the whole pipeline,
and the sentiment scorers.

Run: ``.venv/bin/python bench/scan_throughput.py [--items 5000] [--passes 5] [--dump rows.jsonl]``

Instructions per pass (the figure that does not move with the machine's load)::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.out \
        .venv/bin/python bench/scan_throughput.py --callgrind
    callgrind_annotate cg.out | head

``--callgrind`` switches callgrind's counting on for the entries → stored rows loop only
(``callgrind_control -i on|off``: corpus, model and index are built uncounted) and stops after
the digest and the clustering figures.

Each figure is items per CPU-second of this process (``time.process_time``: every thread, the
SQLite file included; nothing here runs in another process), printed beside items per
wall-clock second. On a shared machine the wall figure counts other processes' turns on the
cores; the CPU figure does not, though it still grows somewhat under load (caches shared with
other processes, more context switches), so the entries → stored rows loop can be run
``--passes`` times, each on a fresh database and index, and its best pass is the figure least
disturbed by the rest of the machine.

The digest printed after the entries → stored rows run is a hash of every stored row as
``--dump`` writes it: two versions of the scanner store the same results when it is equal.

``--dump`` writes what the (last) "entries → stored rows" pass stored, one article per line
(URL, story id, topics with weights and the tone for each, sentiment label and score), so two
versions of the scanner can be compared for identical results with ``cmp``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

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
from scanner.evidence import forget_texts
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


class Clock:
    """CPU seconds of this process and wall-clock seconds since it was started."""

    def __init__(self) -> None:
        self.cpu = time.process_time()
        self.wall = time.perf_counter()

    def rates(self, items: int) -> tuple[float, float]:
        """``items`` per CPU-second and per wall-clock second since the start."""
        cpu = time.process_time() - self.cpu
        wall = time.perf_counter() - self.wall
        return items / cpu, items / wall


def report(label: str, rates: tuple[float, float], unit: str = "items/s", note: str = "") -> None:
    cpu, wall = rates
    print(f"{label:<44} {cpu:8.0f} {unit} per CPU-second  (wall {wall:6.0f}){note}")


def stored_lines(session: Session) -> list[str]:
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
    return [
        json.dumps([url, story_id, topics.get(article_id, []), label, score], ensure_ascii=False)
        for article_id, url, story_id, label, score in rows
    ]


def callgrind_counting(on: bool) -> None:
    """Switch callgrind's instruction counting for this process (run under
    ``valgrind --tool=callgrind --instr-atstart=no``)."""
    state = "on" if on else "off"
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True)


def process_pass(
    tmp: str,
    name: str,
    incoming: list[Incoming],
    batch: int,
    now: datetime,
    scorer: Any,
    count: bool = False,
) -> tuple[Database, Processor, tuple[float, float]]:
    """One run of parsed entries → stored rows on a fresh database, story index and memory of
    read headlines and leads (:func:`scanner.evidence.forget_texts`), in batches
    of ``batch``; the database, the processor and the rates. ``count``: callgrind counts the
    loop only."""
    db = fresh_db(tmp, name)
    forget_texts()  # no pass finds the headlines and leads read by the one before
    with db.session() as s:
        processor = Processor.from_db(s, now, scorer=scorer)
    if count:
        callgrind_counting(True)
    clock = Clock()
    for i in range(0, len(incoming), batch):
        with db.session() as s:
            processor.process(s, incoming[i : i + batch], now + timedelta(seconds=i))
    rates = clock.rates(len(incoming))
    if count:
        callgrind_counting(False)
    return db, processor, rates


def timed(work: Callable[[], object], items: int) -> tuple[float, float]:
    clock = Clock()
    work()
    return clock.rates(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument(
        "--passes",
        type=int,
        default=1,
        help="runs of entries → stored rows, each on a fresh database (best and median shown)",
    )
    parser.add_argument("--dump", type=Path, help="write the stored articles here (JSON lines)")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="under callgrind: count the first entries → stored rows pass only, then stop",
    )
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
        f"corpus: {len(corpus)} items in {len(documents)} RSS documents, {len(TOPICS)} topics; "
        "items per CPU-second of this process (wall-clock in brackets)"
    )

    clock = Clock()
    parsed = [(parse_feed(body, fetched_at=now).items, outlet) for body, outlet in documents]
    report("feedparser + cleaning (parse_feed):", clock.rates(len(corpus)))
    incoming = [Incoming(item, outlet) for items, outlet in parsed for item in items]

    scorer = default_scorer()
    batch = 500
    with tempfile.TemporaryDirectory() as tmp:
        passes = []
        for n in range(args.passes):
            db, processor, rates = process_pass(
                tmp, f"process{n}", incoming, batch, now, scorer, count=args.callgrind and n == 0
            )
            passes.append(rates)
            report(
                "entries → stored rows (model sentiment):",
                rates,
                note=f"  pass {n + 1}"
                if args.passes > 1
                else "  (normalise, dedupe, match, score, store)",
            )
        if args.passes > 1:
            cpu = sorted(r[0] for r in passes)
            print(
                f"entries → stored rows, {args.passes} passes: best {cpu[-1]:.0f}, median "
                f"{statistics.median(cpu):.0f}, worst {cpu[0]:.0f} items/s per CPU-second"
            )
        with db.session() as s:
            again = processor.process(s, incoming[:batch], now)
        assert not again.articles, "re-processing stored nothing new"
        with db.session() as s:
            stored = s.execute(
                select(col(Article.url), col(Article.story_id)).order_by(col(Article.id))
            ).all()
            lines = stored_lines(s)
        digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]
        print(f"stored rows: {len(lines)} articles, digest {digest}")
        if args.dump:
            args.dump.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        predicted = [story_id for _url, story_id in stored]
        truth = [truth_by_url[url] for url, _story_id in stored]
        precision, recall = cluster_quality(predicted, truth)
        counts = story_counts(list(zip(truth, predicted, strict=True)))
        print(
            f"clustering: {len(stored)} articles, {len(set(truth))} true stories, "
            f"{len(set(predicted))} found; pairwise precision {precision:.3f}, "
            f"recall {recall:.3f}; {counts.row()}"
        )
        if args.callgrind:
            return

        db = fresh_db(tmp, "whole")
        forget_texts()
        with db.session() as s:
            processor = Processor.from_db(s, now, scorer=scorer)
        clock = Clock()
        for body, outlet in documents:
            items = parse_feed(body, fetched_at=now).items
            with db.session() as s:
                processor.process(s, [Incoming(item, outlet) for item in items], now)
        report("whole pipeline (bytes → rows, per feed):", clock.rates(len(corpus)))

    pairs = [(item.title, item.summary) for item, _ in corpus]
    for name, sc in (("model", scorer), ("lexicon", LexiconScorer())):
        report(
            f"sentiment {name} score_many:",
            timed(partial(sc.score_many, pairs), len(pairs)),
            "lines/s",
        )
    text = (
        "\n".join(json.dumps({"title": t, "lead": ld}, ensure_ascii=False) for t, ld in pairs)
        + "\n"
    )
    report(
        "sentiment score CLI path (JSON in/out):",
        timed(lambda: score_stream(io.StringIO(text), io.StringIO(), "model"), len(pairs)),
        "lines/s",
    )


if __name__ == "__main__":
    main()
