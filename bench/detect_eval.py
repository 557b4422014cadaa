"""Event-level precision, recall and delay of the trend detectors against naive baselines.

    .venv/bin/python bench/detect_eval.py [--seeds 1 2 3] [--style office|evening|frames]
        [--scanner | --unseen] [--verbose]

Each seed generates a labelled 14-day stream (bench/streams.py, ``--style``: the office family
or the evening one, built differently) and replays it with ``scanner.replay.replay``: ``truth``
ingest stores the stream's own story/topic/sentiment labels (the detectors alone),
``--scanner`` runs the real dedupe, matching and sentiment (end to end; it also prints the
clustering's story-count errors, bench/story_counts.py), ``--unseen`` does so
with a sentiment model trained on half of DANeS and streams spliced from the other half (the
shipped model was trained on every headline the streams are made of, so ``--scanner`` flatters
the sentiment turns).
Baselines see raw article counts per topic (no dedupe), grouped into alerts with the same
3-hour cool-down: a fixed threshold (the 99.5th percentile of the first two days, at least 3)
and an EWMA z-score (alpha 0.05, z > 3, at least 3 articles).

An event is found when an alert of its topic and family (volume: volume_burst/slow_buildup/
emerging; negative; positive) is raised between its start and two buckets after its end; every
other raised alert is a false alarm (a turn confirmed only later is a miss *and* a false alarm).
Delay is in buckets from the event's start. Events of the negative family are the stream's
``negative_turn`` events and the ``negative_burst`` events (the negative side of a step or ramp
whose stories are mostly negative, labelled alongside its volume event; see bench/streams.py).

What counts as an alert is what people are told: the JSON lines `crisisdesk trends replay`
writes (the same ``replay`` call, its output read back), one per alert raised or escalated. A
``new`` line is an alert of each family it carries; an ``escalated`` line (a new family joined
the topic's live alert, e.g. a burst that turned negative, or a finding raised its severity) is
an alert of the family that escalated it — found if an event of that family is on, a false
alarm otherwise. An ``updated`` change tells no one and counts as nothing. ``--verbose`` lists
misses and false alarms.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.story_counts import StoryCounts, story_counts
from bench.streams import (
    BUCKET,
    EVENT_WORDS,
    START,
    STYLES,
    Event,
    config_toml,
    generate,
    load_headlines,
    write_stream,
)
from bot.config import load_settings
from scanner.alerting import FAMILY
from scanner.detectors import DetectorConfig, ewma_zscore_raw, fixed_threshold
from scanner.replay import read_stream, replay

COOLDOWN_BUCKETS = 12
ABRUPT = {"spike", "step"}


@dataclass
class Score:
    alerts: int = 0
    true_alerts: int = 0
    events: int = 0
    found: int = 0
    delays: list[int] = field(default_factory=list)
    abrupt_delays: list[int] = field(default_factory=list)
    abrupt_events: int = 0
    abrupt_found: int = 0
    topic_days: float = 0.0

    def add(self, other: Score) -> None:
        for k in ("alerts", "true_alerts", "events", "found", "abrupt_events", "abrupt_found"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.delays += other.delays
        self.abrupt_delays += other.abrupt_delays
        self.topic_days += other.topic_days

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.events if self.events else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def row(self, name: str) -> str:
        def pct(xs: list[int], q: float) -> str:
            return f"{np.percentile(xs, q):.1f}" if xs else "-"

        fa = (self.alerts - self.true_alerts) / self.topic_days if self.topic_days else 0.0
        return (
            f"{name:<14} P={self.precision:.3f} R={self.recall:.3f} F1={self.f1:.3f} "
            f"delay med={pct(self.delays, 50)} p90={pct(self.delays, 90)} "
            f"abrupt med={pct(self.abrupt_delays, 50)} p90={pct(self.abrupt_delays, 90)} "
            f"(abrupt R={self.abrupt_found}/{self.abrupt_events}) "
            f"FA/topic-day={fa:.3f} alerts={self.alerts} events={self.events}"
        )


def _index(at: datetime) -> int:
    return int((at - START) / BUCKET)


def score(
    alerts: list[tuple[str, str, int]],
    events: list[Event],
    topics: int,
    days: float,
    families: set[str] | None = None,
) -> Score:
    """``alerts``: (topic, family, bucket index that fired)."""
    s = Score(topic_days=topics * days)
    wanted = [e for e in events if e.must_alert and (families is None or e.family in families)]
    s.events = len(wanted)
    s.abrupt_events = sum(e.kind in ABRUPT for e in wanted)
    for topic, family, b in alerts:
        s.alerts += 1
        if any(
            e.topic == topic
            and e.family == family
            and _index(datetime.fromisoformat(e.start))
            <= b
            <= _index(datetime.fromisoformat(e.end)) + 1
            for e in wanted
        ):
            s.true_alerts += 1
    for e in wanted:
        lo, hi = _index(datetime.fromisoformat(e.start)), _index(datetime.fromisoformat(e.end)) + 1
        hits = [b for t, f, b in alerts if t == e.topic and f == e.family and lo <= b <= hi]
        if hits:
            s.found += 1
            s.delays.append(min(hits) - lo)
            if e.kind in ABRUPT:
                s.abrupt_found += 1
                s.abrupt_delays.append(min(hits) - lo)
    return s


def _group(fired: np.ndarray) -> list[int]:
    """Bucket indices where a new alert starts, with the same cool-down as ours."""
    out, last = [], -(10**9)
    for b in np.flatnonzero(fired):
        if b - last > COOLDOWN_BUCKETS:
            out.append(int(b))
        last = int(b)
    return out


def baselines(
    items: list[dict[str, object]], topic_names: list[str], n: int
) -> dict[str, list[tuple[str, str, int]]]:
    counts = {t: np.zeros(n) for t in topic_names}
    for it in items:
        b = _index(datetime.fromisoformat(str(it["published_at"])))
        for t in it["topics"]:  # type: ignore[attr-defined]
            if 0 <= b < n:
                counts[t][b] += 1
    out: dict[str, list[tuple[str, str, int]]] = {"fixed": [], "ewma_raw": []}
    warm = 2 * 96
    for t, c in counts.items():
        threshold = max(3.0, float(np.percentile(c[:warm], 99.5)))
        fixed = np.array([b >= warm and fixed_threshold(c[: b + 1], threshold) for b in range(n)])
        ewma = _ewma_fire(c)
        out["fixed"] += [(t, "volume", b) for b in _group(fixed)]
        out["ewma_raw"] += [(t, "volume", b) for b in _group(ewma)]
    return out


def _ewma_fire(
    c: np.ndarray, alpha: float = 0.05, z: float = 3.0, min_count: float = 3.0
) -> np.ndarray:
    """Online pass of the EWMA z-score baseline (same rule as ``ewma_zscore_raw``)."""
    fired = np.zeros(c.shape[0], dtype=bool)
    mean = var = float(c[:8].mean())
    for b in range(c.shape[0]):
        x = float(c[b])
        if b >= 9:
            fired[b] = x >= min_count and (x - mean) / max(var, 0.25) ** 0.5 > z
        diff = x - mean
        mean += alpha * diff
        var = (1 - alpha) * (var + diff * alpha * diff)
    assert ewma_zscore_raw(c[:12]) == bool(fired[11])  # the bench and the library agree
    return fired


@dataclass(frozen=True)
class Unseen:
    """A sentiment model trained on one half of the DANeS items, and the other half's headlines
    to build streams from: the scanner's labels as good as on news the model never saw."""

    scorer: Any
    headlines: dict[str, list[tuple[str, str]]]


def unseen_split() -> Unseen:
    """Halves by a hash of the title (stable across runs and machines)."""
    from scanner.sentiment import TrainingData, load_training_data, train_model

    def second_half(title: str) -> bool:
        return hashlib.sha256(title.encode("utf-8")).digest()[0] % 2 == 1

    data = load_training_data()
    train = [i for i, t in enumerate(data.titles) if not second_half(t)]
    scorer = train_model(
        data=TrainingData(
            [data.titles[i] for i in train],
            [data.leads[i] for i in train],
            [data.labels[i] for i in train],
            "first half",
        )
    )
    return Unseen(scorer, load_headlines(keep=second_half))


def run_seed(
    seed: int,
    ingest: str,
    tmp: Path,
    verbose: bool = False,
    style: str = "office",
    unseen: Unseen | None = None,
    keep: Path | None = None,
) -> tuple[dict[str, Score], dict[str, Score], float, int, StoryCounts | None]:
    items, events, topics = generate(
        seed, style=style, headlines=unseen.headlines if unseen else None
    )
    n = 14 * 96
    cfg = tmp / f"bench-{seed}.toml"
    cfg.write_text(config_toml(topics), encoding="utf-8")
    stream = tmp / f"stream-{seed}.jsonl"
    write_stream(stream, items)
    settings = load_settings({"CRISISDESK_CONFIG": str(cfg), "CRISISDESK_DATA_DIR": str(tmp)})
    with stream.open(encoding="utf-8") as fh:
        parsed = read_stream(fh)
    t0 = time.perf_counter()
    out = io.StringIO()  # exactly the lines `crisisdesk trends replay` writes
    kept = (keep or tmp) / f"replay-{style}-{ingest}-{seed}.sqlite3"
    kept.unlink(missing_ok=True)
    report = replay(
        parsed, settings, out, ingest=ingest, scorer=unseen.scorer if unseen else None, keep=kept
    )
    seconds = time.perf_counter() - t0
    counts = _story_counts(kept, items) if ingest == "scanner" else None
    if keep is None:
        kept.unlink(missing_ok=True)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert len(lines) == report.alerts
    emerging = [c for c in lines if "emerging" in (c.get("families") or [])]
    ours = [a for a in told_alerts(lines) if a[1] != "emerging"]
    _emerging_report(seed, emerging, events, len(topics), 14)
    names = [t[0] for t in topics]
    systems = {"ours": ours, **baselines(items, names, n)}
    all_scores = {k: score(v, events, len(names), 14) for k, v in systems.items()}
    vol_scores = {
        k: score([a for a in v if a[1] == "volume"], events, len(names), 14, {"volume"})
        for k, v in systems.items()
    }
    if verbose:
        _explain(ours, events, lines)
    return all_scores, vol_scores, seconds, len(items), counts


def _story_counts(database: Path, items: list[dict[str, Any]]) -> StoryCounts:
    """Stories absorbed and copies unmerged by the scanner's clustering in a kept replay."""
    truth = {str(it["url"]): str(it["story"]) for it in items}
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT url, story_id FROM article ORDER BY id"))
            return story_counts([(truth[url], story) for url, story in rows])
    finally:
        engine.dispose()


def _emerging_report(
    seed: int, lines: list[dict[str, object]], events: list[Event], topics: int, days: float
) -> None:
    """Emerging-term alerts are not volume or sentiment alerts: reported apart, not scored.

    The generator has no labelled emerging-term events, but the extra stories of every spike,
    step and ramp carry an event word (``EVENT_WORDS[start bucket % 8]``). An emerging alert is
    *explained* when one of its terms contains the word of a burst of its topic that was on
    (from the burst's start to 8 buckets after its end); the rest are unexplained (chance
    recurrences of a spliced headline's words, or nothing labelled).
    """
    explained = 0
    for c in lines:
        b = _index(datetime.fromisoformat(str(c["at"]))) - 1
        terms = [str(t) for t in c.get("terms") or []]  # type: ignore[attr-defined]
        for e in events:
            lo = _index(datetime.fromisoformat(e.start))
            hi = _index(datetime.fromisoformat(e.end))
            if e.topic != c["topic"] or e.kind not in ("spike", "step", "ramp"):
                continue
            word = EVENT_WORDS[lo % len(EVENT_WORDS)]
            if lo <= b <= hi + 8 and any(word in t or t in word for t in terms):
                explained += 1
                break
    n = len(lines)
    print(
        f"  emerging       seed {seed}: {n} alerts, {n / (topics * days):.3f} per topic-day, "
        f"explained by a burst's event word {explained}/{n}"
    )


def told_alerts(lines: list[dict[str, object]]) -> list[tuple[str, str, int]]:
    """(topic, family, bucket) for each thing a replay line tells people.

    Replay writes one line per alert raised or escalated (an ``updated`` change tells no one and
    writes nothing). A ``new`` line tells every family it carries (a burst that is also a turn:
    both); an ``escalated`` line tells the family that escalated it (a new family joined the
    alert, or a finding of that family raised its severity). Each counts as a raised alert of
    that family: a detection if an event of the topic and family is on, else a false alarm.
    """
    out = []
    for c in lines:
        b = _index(datetime.fromisoformat(str(c["at"]))) - 1
        fams = c.get("families") or [FAMILY[str(c["kind"])]]
        for fam in dict.fromkeys(str(f) for f in fams):  # type: ignore[attr-defined]
            out.append((str(c["topic"]), fam, b))
    return out


def _explain(
    ours: list[tuple[str, str, int]], events: list[Event], changes: list[dict[str, object]]
) -> None:
    def when(b: int) -> str:
        return (START + BUCKET * b).strftime("%a %d %H:%M")

    for e in events:
        lo, hi = _index(datetime.fromisoformat(e.start)), _index(datetime.fromisoformat(e.end))
        hits = [b for t, f, b in ours if t == e.topic and f == e.family and lo <= b <= hi + 1]
        if e.must_alert and not hits:
            print(f"    MISS {e.topic} {e.kind} {when(lo)} ({hi - lo} buckets)")
    for t, f, b in ours:
        if not any(
            e.must_alert
            and e.topic == t
            and e.family == f
            and _index(datetime.fromisoformat(e.start))
            <= b
            <= _index(datetime.fromisoformat(e.end)) + 1
            for e in events
        ):
            near = [
                e.kind
                for e in events
                if e.topic == t
                and _index(datetime.fromisoformat(e.start)) - 8
                <= b
                <= _index(datetime.fromisoformat(e.end)) + 8
            ]
            line = next(
                (
                    c
                    for c in changes
                    if c["topic"] == t and _index(datetime.fromisoformat(str(c["at"]))) - 1 == b
                ),
                {},
            )
            print(
                f"    FA   {t} {f} {when(b)} {line.get('change')}/{line.get('reason')} "
                f"sev={line.get('severity')} kinds={line.get('kinds')} score={line.get('score')} "
                f"stories={line.get('stories')} outlets={line.get('outlets')} near={near}"
            )


def _set_window_correction(mode: str) -> None:
    """Every topic's DetectorConfig (``for_sensitivity``) gets this window correction."""
    original = DetectorConfig.for_sensitivity.__func__  # type: ignore[attr-defined]

    def patched(cls: type[DetectorConfig], sensitivity: str, **overrides: Any) -> DetectorConfig:
        return original(cls, sensitivity, **{"window_correction": mode, **overrides})

    DetectorConfig.for_sensitivity = classmethod(patched)  # type: ignore[method-assign,assignment]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--scanner", action="store_true", help="end to end through the scanner")
    parser.add_argument(
        "--unseen",
        action="store_true",
        help="end to end, with a sentiment model trained on half of DANeS and streams built "
        "from the other half (labels as on news the model never saw)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="list misses and false alarms")
    parser.add_argument(
        "--style",
        choices=sorted(STYLES),
        default="office",
        help="stream family (bench/streams.py): office, evening (built differently), or frames "
        "(stories from headline frames with slots)",
    )
    parser.add_argument(
        "--window-correction",
        choices=["bonferroni", "exact"],
        default=None,
        help="override DetectorConfig.window_correction (volume burst's 1/2/4-bucket windows)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep each replay's SQLite database (articles, series) in this directory, "
        "named replay-STYLE-INGEST-SEED.sqlite3, for looking into a seed without replaying it",
    )
    args = parser.parse_args(argv)
    if args.window_correction:
        _set_window_correction(args.window_correction)
    ingest = "scanner" if args.scanner or args.unseen else "truth"
    unseen = unseen_split() if args.unseen else None
    totals: dict[str, Score] = defaultdict(Score)
    story_totals: list[StoryCounts] = []
    vols: dict[str, Score] = defaultdict(Score)
    per_seed: dict[str, list[Score]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            all_s, vol_s, seconds, n_items, counts = run_seed(
                seed, ingest, Path(tmp), args.verbose, args.style, unseen, args.keep
            )
            print(f"seed {seed}: {n_items} items, replay ({ingest}) {seconds:.1f} s")
            if counts is not None:
                print(f"  clustering     {counts.row()}")
                story_totals.append(counts)
            for k, v in all_s.items():
                print("  " + v.row(k))
                totals[k].add(v)
                per_seed[k].append(v)
            for k, v in vol_s.items():
                vols[k].add(v)
    if story_totals:
        pooled = StoryCounts(
            *(sum(getattr(c, k) for c in story_totals) for k in StoryCounts.__dataclass_fields__)
        )
        print(f"\nCLUSTERING ({args.style}, seeds {args.seeds}): {pooled.row()}")
    print(f"\nALL EVENTS ({ingest}, seeds {args.seeds})")
    for k, v in totals.items():
        print("  " + v.row(k))
    print(f"MEAN OF THE {len(args.seeds)} SEEDS")
    for k, scores in per_seed.items():
        p, r, f = (
            float(np.mean([getattr(x, a) for x in scores])) for a in ("precision", "recall", "f1")
        )
        print(f"  {k:<14} P={p:.3f} R={r:.3f} F1={f:.3f}")
    print("VOLUME EVENTS ONLY (what the baselines can see)")
    for k, v in vols.items():
        print("  " + v.row(k))
    if args.json:
        print(
            json.dumps(
                {
                    k: {"precision": v.precision, "recall": v.recall, "f1": v.f1}
                    for k, v in totals.items()
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
