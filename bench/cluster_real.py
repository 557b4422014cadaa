"""Story clustering on real headlines: every merge the story index makes, listed for reading.

    .venv/bin/python bench/cluster_real.py [--data FILE] [--spacing-minutes 1] [--out FILE.md]

Feeds the real DANeS headlines and leads (``scanner/data/danes-sentiment-train.jsonl`` by
default, the same file as ``../shared/data``; CC BY 4.0, DATASET JSC and AIV Group) to
:class:`scanner.dedupe.StoryIndex` in file order (DANeS id order), one item every
``--spacing-minutes`` (0.5 by default: the 1,206 items span 10 hours, so nearly every pair is
inside a story's lifetime and only the evidence keeps stories apart — the hardest setting).
Every item that joins an existing story is a merge; each is listed with the story's first
headline and lead, to be read and judged by a person (same event or not). The DANeS items
carry no publication time, which is why the times are made up.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scanner.dedupe import StoryIndex

DEFAULT_DATA = Path(__file__).resolve().parent.parent / "scanner/data/danes-sentiment-train.jsonl"


def load(path: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return [(str(r["title"]).strip(), str(r.get("lead") or "").strip()) for r in rows]


def cluster(
    items: list[tuple[str, str]], spacing: timedelta
) -> tuple[list[int], list[tuple[int, int]]]:
    """Each item's story (the index of the story's first item) and the merges: (item, first
    item of the story it joined)."""
    index = StoryIndex()
    start = datetime(2021, 10, 1, tzinfo=UTC)
    fingerprints = index.fingerprints(items)
    stories: list[int] = []
    merges: list[tuple[int, int]] = []
    for n, fp in enumerate(fingerprints):
        at = start + spacing * n
        found = index.find(fp, at)
        story = n if found is None else found
        if found is not None:
            merges.append((n, found))
        index.add(story, fp, at)
        stories.append(story)
    return stories, merges


def report(items: list[tuple[str, str]], merges: list[tuple[int, int]], source: str) -> str:
    lines = [
        f"# Story merges on real headlines ({source})",
        "",
        f"{len(items)} items fed in file order; {len(merges)} merges (an item joining an "
        "existing story). Command: `.venv/bin/python bench/cluster_real.py --out "
        "docs/clustering-merges-danes.md`. Each merge shows the joining item and the first item "
        "of the story it joined (headline, then lead).",
        "",
    ]
    for k, (n, first) in enumerate(merges, 1):
        lines += [
            f"## {k}. item {n} → story of item {first}",
            "",
            f"- joined: **{items[n][0]}** — {items[n][1][:300] or '(no lead)'}",
            f"- story:  **{items[first][0]}** — {items[first][1][:300] or '(no lead)'}",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--spacing-minutes", type=float, default=0.5)
    parser.add_argument("--out", type=Path, help="write the merge list here (Markdown)")
    args = parser.parse_args(argv)
    items = load(args.data)
    stories, merges = cluster(items, timedelta(minutes=args.spacing_minutes))
    print(f"{len(items)} items, {len(set(stories))} stories, {len(merges)} merges")
    text = report(items, merges, args.data.name)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
