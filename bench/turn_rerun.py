"""The turn detector rerun on the series of kept replays, with other settings, in seconds.

    .venv/bin/python bench/turn_rerun.py --keep DIR --seeds 1 2 3 [--style office]
        [--ingest scanner] [--set '{"turn_h_extra": 0.0}']

``bench/detect_eval.py --keep DIR`` leaves each replay's SQLite database; its series are what
the detectors saw. Here ``detectors.sentiment_turn`` is asked at every bucket with a story from
day 2 on, both directions, with ``DetectorConfig.for_sensitivity("medium", **SET)``; an alarm is
told unless the same topic and direction fired in the 3 hours before (the alert's cool-down),
and scored as detect_eval scores the negative and positive families (an event of that family
and topic between its start and two buckets after its end). Volume alerts are not rerun, so
this compares turn settings side by side without replays of minutes each; on the analysis
seeds it gives the replays' turn misses exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.streams import BUCKET, LOCAL, START, Event, generate
from bench.turn_separability import FAMILY_OF, N, bucket_of, load
from scanner.detectors import DAY, DetectorConfig, sentiment_turn

COOLDOWN = 12  # buckets (3 h)


def told_turns(database: Path, cfg: DetectorConfig) -> list[tuple[str, str, int]]:
    """(topic, family, bucket) of every turn alarm that would be told."""
    told = []
    for topic, s in load(database).items():
        for family in ("negative", "positive"):
            last = -(10**9)
            for b in range(2 * DAY, N):
                if s.stories[b] == 0:
                    continue
                if sentiment_turn(
                    s.head(b + 1), cfg, negative=family == "negative", tz=LOCAL
                ).fired:
                    if b - last > COOLDOWN:
                        told.append((topic, family, b))
                    last = b
    return told


def scored(
    told: list[tuple[str, str, int]], events: list[Event]
) -> tuple[list[Event], list[tuple[str, str, int]]]:
    """The turn events missed and the alarms that match no event."""
    wanted = [e for e in events if e.kind in FAMILY_OF]

    def on(e: Event, topic: str, family: str, b: int) -> bool:
        return (
            e.topic == topic
            and FAMILY_OF[e.kind] == family
            and bucket_of(e.start) <= b <= bucket_of(e.end) + 1
        )

    missed = [e for e in wanted if not any(on(e, *t) for t in told)]
    false = [t for t in told if not any(on(e, *t) for e in wanted)]
    return missed, false


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--style", default="office")
    parser.add_argument("--ingest", default="scanner")
    parser.add_argument("--set", default="{}", help="DetectorConfig overrides, as JSON")
    args = parser.parse_args(argv)
    cfg = DetectorConfig.for_sensitivity("medium", **json.loads(args.set))
    found = wanted = false_total = 0
    for seed in args.seeds:
        _items, events, _topics = generate(seed, style=args.style)
        db = args.keep / f"replay-{args.style}-{args.ingest}-{seed}.sqlite3"
        missed, false = scored(told_turns(db, cfg), events)
        n = sum(e.kind in FAMILY_OF for e in events)
        found, wanted, false_total = found + n - len(missed), wanted + n, false_total + len(false)
        print(
            f"{args.style} seed {seed} {args.ingest}: turns found {n - len(missed)}/{n}, "
            f"false turns {len(false)}"
        )
        for e in missed:
            print(
                f"    MISS {e.topic} {e.kind} {(START + BUCKET * bucket_of(e.start)):%a %d %H:%M}"
            )
        for topic, family, b in false:
            print(f"    FA   {topic} {family} {(START + BUCKET * b):%a %d %H:%M}")
    print(f"total {args.set}: turns found {found}/{wanted}, false turns {false_total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
