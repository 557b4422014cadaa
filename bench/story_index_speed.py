"""The story index alone: fingerprints, lookup and insert per item, on the bench corpus.

Run: ``.venv/bin/python bench/story_index_speed.py [--items 5000] [--repeat 5]``

The evidence that confirms a candidate (scanner/evidence.py) is the part of the scanner that
issue 15 added; this isolates it from sentiment, matching and SQLite, whose noise on a shared
machine hides a change of a few tens of microseconds per item in bench/scan_throughput.py.
Process time (this process's CPU only), in batches of 500 like the pipeline; the minimum and
the median of the repeats, and the story-count errors (identical results are the point of
any speed-up: compare the printed digest between two versions).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scanner_corpus import generate_with_truth
from bench.story_counts import story_counts
from scanner.dedupe import StoryIndex
from scanner.evidence import forget_texts
from scanner.textnorm import tokens

BATCH = 500


def run(items: list[tuple[str, str, list[str], list[str]]]) -> tuple[float, list[int]]:
    """Seconds of CPU for one pass over ``items`` and each item's story (a fresh index, no
    headline or lead remembered from an earlier pass)."""
    forget_texts()
    index = StoryIndex()
    start = datetime(2026, 11, 3, tzinfo=UTC)
    stories: list[int] = []
    began = time.process_time()
    for offset in range(0, len(items), BATCH):
        at = start + timedelta(seconds=offset)
        for fp in index.syllable_fingerprints(items[offset : offset + BATCH]):
            story = index.find(fp, at)
            if story is None:
                story = len(stories) + 1
            index.add(story, fp, at)
            stories.append(story)
    return time.process_time() - began, stories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    corpus = generate_with_truth(args.items)
    items = [
        (item.title, item.summary, tokens(item.title)[1], tokens(item.summary)[1])
        for item, _outlet, _story in corpus
    ]
    truth = [story for _item, _outlet, story in corpus]
    times: list[float] = []
    stories: list[int] = []
    for _ in range(args.repeat):
        gc.collect()
        elapsed, stories = run(items)
        times.append(elapsed / len(items) * 1e6)
    times.sort()
    digest = hashlib.blake2b(repr(stories).encode(), digest_size=8).hexdigest()
    print(
        f"story index, {len(items)} items: {times[0]:.1f} µs/item (min of {args.repeat}), "
        f"median {times[len(times) // 2]:.1f}; stories digest {digest}"
    )
    print(story_counts(list(zip(truth, stories, strict=True))).row())


if __name__ == "__main__":
    main()
