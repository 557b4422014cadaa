"""Can the missed sentiment turns be told from ordinary days? The evidence of each, measured.

    .venv/bin/python bench/turn_separability.py --keep DIR --seeds 1 2 3 [--style office]
        [--ingest scanner truth] [--misses FILE ...]

Reads the SQLite databases that ``bench/detect_eval.py --keep DIR`` leaves
(``replay-STYLE-INGEST-SEED.sqlite3``: the series the detectors saw) and regenerates each
seed's stream (``bench/streams.generate``: what the generator put in). For every topic, local
day and direction (negative, positive) whose topic has a norm (``turn_min_reference`` earlier
stories), the strongest turn evidence any window of that day holds: the exact beta-binomial
tail of the window's labelled stories under the norm of the 14 days before the day
(``detectors.day_turn_tail``, with its Bonferroni factor for the day's looks), minimised over
every start and end bucket inside the day. A detector that looks at windows of one day cannot
have more evidence than that, so it is an oracle's statistic: if no threshold on it separates
the missed turns from days without a turn, no detector of this kind will.

A topic-day is an *event* day when a turn (or the negative side of a negative burst) of that
direction starts on it, *touched* when one started the day before and runs into it (left out),
and *ordinary* otherwise. For each event the generator's input is printed (stories it put in
the turn's window, the share it drew, duration) beside what the detector saw (the series'
stories and labelled stories in the window: true labels with ``truth`` ingest, the sentiment
model's through the scanner). ``--misses`` takes detect_eval ``--verbose`` outputs and marks
the events they list as missed.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.streams import BUCKET, EVENT_WORDS, START, Event, generate
from scanner.detectors import DAY, DetectorConfig, day_turn_tail, reference_share
from scanner.series import TopicSeries

N = 14 * DAY
FAMILY_OF = {"negative_turn": "negative", "negative_burst": "negative", "positive_turn": "positive"}
PRIOR = {"negative": 0.2, "positive": 0.25}  # sentiment_turn's prior shares


@dataclass
class TopicDay:
    seed: int
    ingest: str
    topic: str
    day: int
    family: str
    status: str  # event | touched | ordinary
    tail: float  # best window's corrected exact tail
    window: tuple[int, int]  # its buckets (absolute indices, inclusive)
    n: float  # its stories
    k: float  # its labelled stories
    norm: float
    event: Event | None = None
    burst: str = ""  # a volume event of the topic that day (its extra stories carry an event word)


def bucket_of(at: str) -> int:
    return int((datetime.fromisoformat(at) - START) / BUCKET)


def load(database: Path) -> dict[str, TopicSeries]:
    """Each topic's series over the stream's 14 days, indexed as the stream's buckets."""
    engine = sa.create_engine(f"sqlite:///{database}")
    out: dict[str, TopicSeries] = {}
    try:
        with engine.connect() as c:
            names = dict(c.execute(sa.text("SELECT id, name FROM topic")).all())
            for name in names.values():
                out[name] = TopicSeries.empty(0, START, N)
            rows = c.execute(
                sa.text(
                    "SELECT topic_id, bucket_start, stories, negative, positive FROM seriesbucket"
                )
            )
            for topic_id, at, stories, negative, positive in rows:
                when = datetime.fromisoformat(str(at) + "+00:00")  # stored naive, UTC
                i = int((when - START) / BUCKET)
                if 0 <= i < N:
                    s = out[names[topic_id]]
                    s.stories[i], s.negative[i], s.positive[i] = stories, negative, positive
    finally:
        engine.dispose()
    return out


def best_window(
    m: np.ndarray, k: np.ndarray, mean: float, ref_n: float, cfg: DetectorConfig
) -> tuple[float, int, int, float, float]:
    """The smallest corrected exact tail over windows [a, b] of one day's buckets that hold
    the minimum evidence of a turn (``turn_min_stories``, ``turn_min_hits``, the lift): what
    no detector may tell without is left out."""
    best = (1.0, 0, 0, 0.0, 0.0)
    starts = np.flatnonzero(m > 0)
    for a in starts.tolist():
        cn, ck = np.cumsum(m[a:]), np.cumsum(k[a:])
        tails = day_turn_tail(ck, cn, mean, ref_n, cfg)
        ok = (
            (cn >= cfg.turn_min_stories)
            & (ck >= cfg.turn_min_hits)
            & (ck >= (mean + cfg.turn_min_lift) * cn)
        )
        tails = np.where(ok, tails, 1.0)
        j = int(np.argmin(tails))
        if tails[j] < best[0]:
            best = (float(tails[j]), a, a + j, float(cn[j]), float(ck[j]))
    return best


def topic_days(
    seed: int, ingest: str, series: dict[str, TopicSeries], events: list[Event]
) -> list[TopicDay]:
    cfg = DetectorConfig()
    out = []
    for topic, s in series.items():
        for family in ("negative", "positive"):
            hits = s.negative if family == "negative" else s.positive
            mine = [e for e in events if e.topic == topic and FAMILY_OF.get(e.kind) == family]
            for day in range(1, 14):
                lo, hi = day * DAY, (day + 1) * DAY
                mean, _p0, ref_n = reference_share(s, lo, cfg, hits, PRIOR[family])
                if ref_n < cfg.turn_min_reference:
                    continue
                bursts = [
                    f"{e.kind} '{EVENT_WORDS[bucket_of(e.start) % len(EVENT_WORDS)]}'"
                    for e in events
                    if e.topic == topic
                    and e.kind in ("spike", "step", "ramp")
                    and lo <= bucket_of(e.start) < hi
                ]
                starting = [e for e in mine if lo <= bucket_of(e.start) < hi]
                running = [e for e in mine if bucket_of(e.start) < lo <= bucket_of(e.end)]
                status = "event" if starting else "touched" if running else "ordinary"
                m = s.stories[lo:hi]
                k = np.minimum(hits[lo:hi], m)
                tail, a, b, n, kk = best_window(m, k, mean, ref_n, cfg)
                out.append(
                    TopicDay(
                        seed,
                        ingest,
                        topic,
                        day,
                        family,
                        status,
                        tail,
                        (lo + a, lo + b),
                        n,
                        kk,
                        mean,
                        starting[0] if starting else None,
                        ",".join(bursts),
                    )
                )
    return out


def generator_input(e: Event, items: list[dict[str, object]]) -> tuple[int, int, float]:
    """Stories the generator put in the event's window, those labelled its way, hours."""
    lo, hi = bucket_of(e.start), bucket_of(e.end)
    label = "negative" if FAMILY_OF[e.kind] == "negative" else "positive"
    first: dict[str, str] = {}
    for it in items:
        if it["topics"] == [e.topic] and lo <= bucket_of(str(it["published_at"])) < hi:
            first.setdefault(str(it["story"]), str(it["sentiment"]))
    return len(first), sum(v == label for v in first.values()), (hi - lo) / 4


@dataclass
class Run:
    """One detect_eval ``--verbose`` run: events missed, alerts told, true ones, events."""

    missed: set[tuple[str, str, str]]  # (topic, kind, 'Day dd HH:MM')
    alerts: int
    true: int
    events: int


def read_run(path: Path) -> tuple[tuple[str, int], Run]:
    """(ingest, seed) and figures of one detect_eval ``--verbose`` output of one seed."""
    text = path.read_text(encoding="utf-8")
    missed = {
        (m.group(1), m.group(2), m.group(3))
        for m in re.finditer(r"MISS (.+) (\S+) (\w{3} \d\d \d\d:\d\d) \(", text)
    }
    head = re.search(
        r"ALL EVENTS \((\w+), seeds \[(\d+)\]\)\n\s+ours\s+P=([\d.]+) .*alerts=(\d+) events=(\d+)",
        text,
    )
    if head is None:
        raise SystemExit(f"{path}: not a one-seed detect_eval --verbose output")
    alerts = int(head.group(4))
    run = Run(missed, alerts, round(float(head.group(3)) * alerts), int(head.group(5)))
    return (head.group(1), int(head.group(2))), run


def event_word_labels(
    database: Path, items: list[dict[str, object]], topics: list[tuple[str, str, str, float]]
) -> dict[str, list[int]]:
    """Per event word: [stories whose headline carries it after the topic's keyword (a
    burst's extra stories), of them true negative, of them labelled negative in the replay]."""
    truth = {str(it["url"]): it for it in items}
    engine = sa.create_engine(f"sqlite:///{database}")
    out: dict[str, list[int]] = {w: [0, 0, 0] for w in EVENT_WORDS}
    keywords = [kw for _n, _q, kw, _p in topics]
    seen: set[str] = set()
    try:
        with engine.connect() as c:
            rows = c.execute(
                sa.text(
                    "SELECT a.url, at.sentiment_label FROM article a JOIN articletopic at "
                    "ON at.article_id = a.id ORDER BY a.published_at"
                )
            )
            for url, label in rows:
                it = truth[str(url)]
                story = str(it["story"])
                if story in seen:
                    continue
                seen.add(story)
                title = str(it["title"])
                for w in EVENT_WORDS:
                    if any(f"{kw} {w}" in title for kw in keywords):
                        out[w][0] += 1
                        out[w][1] += it["sentiment"] == "negative"
                        out[w][2] += label == "negative"
    finally:
        engine.dispose()
    return out


def oracle(rows: list[TopicDay], runs: dict[int, Run], missed: set[int]) -> None:
    """The detector plus an oracle that also tells every topic-day whose best window is at or
    below ``t``: pooled recall and precision over all events of the runs, for each ``t`` that
    finds one more missed turn. ``missed``: ids of the event rows the detector missed."""
    ordinary = np.sort([d.tail for d in rows if d.status == "ordinary"])
    events = sum(r.events for r in runs.values())
    alerts = sum(r.alerts for r in runs.values())
    true = sum(r.true for r in runs.values())
    found = events - sum(len(r.missed) for r in runs.values())
    print(
        f"  detector: recall {found / events:.3f} ({found}/{events}), precision "
        f"{true / alerts:.3f} ({true}/{alerts})"
    )
    lost = sorted(d.tail for d in rows if id(d) in missed)
    for t in lost:
        add = sum(x <= t for x in lost)
        fa = int(np.searchsorted(ordinary, t, side="right"))
        print(
            f"  + oracle at t = {t:.1e}: recall {(found + add) / events:.3f}, precision "
            f"{(true + add) / (alerts + add + fa):.3f} ({add} missed turns found, {fa} ordinary "
            f"topic-days told)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--style", default="office")
    parser.add_argument("--ingest", nargs="+", default=["truth", "scanner"])
    parser.add_argument(
        "--runs",
        type=Path,
        nargs="*",
        default=[],
        help="detect_eval --verbose outputs, one seed each",
    )
    args = parser.parse_args(argv)
    runs = dict(read_run(p) for p in args.runs)
    for ingest in args.ingest:
        rows: list[TopicDay] = []
        missed: set[int] = set()
        for seed in args.seeds:
            items, events, _topics = generate(seed, style=args.style)
            db = args.keep / f"replay-{args.style}-{ingest}-{seed}.sqlite3"
            series = load(db)
            days = topic_days(seed, ingest, series, events)
            rows += days
            run = runs.get((ingest, seed))
            print(f"\n== {args.style} seed {seed}, {ingest}: turn events and their best window")
            for d in days:
                if d.status != "event" or d.event is None:
                    continue
                e = d.event
                put, put_k, hours = generator_input(e, items)
                lo, hi = bucket_of(e.start), bucket_of(e.end)
                s = series[e.topic]
                hits = s.negative if d.family == "negative" else s.positive
                seen_n = float(s.stories[lo:hi].sum())
                seen_k = float(np.minimum(hits[lo:hi], s.stories[lo:hi]).sum())
                when = (START + BUCKET * lo).strftime("%a %d %H:%M")
                lost = run is not None and (e.topic, e.kind, when) in run.missed
                if lost:
                    missed.add(id(d))
                print(
                    f"  {'MISS' if lost else '    '} {e.topic:18} {e.kind:15} {when} "
                    f"{hours:4.1f} h | generator {put_k:2d}/{put:2d} | seen {seen_k:3.0f}/"
                    f"{seen_n:3.0f} norm {d.norm:.2f} | best window {d.k:.0f}/{d.n:.0f} "
                    f"tail {d.tail:.1e}"
                )
        if ingest == "scanner":
            words: dict[str, list[int]] = {w: [0, 0, 0] for w in EVENT_WORDS}
            for seed in args.seeds:
                items, _events, topics = generate(seed, style=args.style)
                db = args.keep / f"replay-{args.style}-{ingest}-{seed}.sqlite3"
                for w, counts in event_word_labels(db, items, topics).items():
                    words[w] = [x + y for x, y in zip(words[w], counts, strict=True)]
            print("\n  burst stories carrying an event word: stories, truly negative, labelled")
            for w, (n, neg, lab) in words.items():
                print(f"    {w:10} {n:4d} {neg / max(n, 1):.2f} {lab / max(n, 1):.2f}")
        ordinary = sorted((d for d in rows if d.status == "ordinary"), key=lambda d: d.tail)
        ev = [d for d in rows if d.status == "event"]
        print(
            f"\n== {ingest}, seeds {args.seeds}: {len(ordinary)} ordinary topic-days, "
            f"{len(ev)} event days; the strongest ordinary days:"
        )
        for d in ordinary[:8]:
            print(
                f"    seed {d.seed} {d.topic} {d.family} day {d.day}: {d.k:.0f}/{d.n:.0f} "
                f"norm {d.norm:.2f} tail {d.tail:.1e} {d.burst and 'volume event: ' + d.burst}"
            )
        strong = [d for d in ordinary if d.tail < 1e-2]
        print(
            f"  ordinary topic-days with a best window below 1e-2: {len(strong)}, of them on a "
            f"day with a volume event of the topic: {sum(bool(d.burst) for d in strong)} "
            f"(days with a volume event: {sum(bool(d.burst) for d in ordinary)} of {len(ordinary)})"
        )
        mine = {seed: runs[(ingest, seed)] for seed in args.seeds if (ingest, seed) in runs}
        if len(mine) == len(args.seeds):
            oracle(rows, mine, missed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
