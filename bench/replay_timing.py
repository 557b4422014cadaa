"""Time ``crisisdesk trends replay`` end to end on a generated 14-day stream of ~25,000 items.

    .venv/bin/python bench/replay_timing.py [--seed 1] [--items 25000] [--keep DIR]

Generates a labelled stream with ``bench/streams.py`` (background scaled up to the requested
size), writes it as JSON lines with a config naming its topics, then runs the real command in a
subprocess — the scanner's Processor (URL/content dedupe, MinHash story clustering, topic
matching, the sentiment model), the detectors and the alert logic on a simulated clock in a
temporary SQLite database — and reports the wall-clock time, the command's own timing line and
the number of alert lines. Target: under 60 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.streams import config_toml, generate, write_stream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--items", type=int, default=25_000, help="approximate stream size")
    parser.add_argument("--keep", type=Path, help="write the stream, config and output here")
    args = parser.parse_args(argv)
    # The default stream is ~17,500 items with 11 off-topic items per bucket at the peak; scale
    # the off-topic background (what the matcher must reject) to reach the requested size.
    items, _events, topics = generate(args.seed)
    if len(items) < args.items:
        extra = (args.items - len(items)) / (14 * 96 * 0.7)  # mean of (HOUR_PROFILE + 0.2)
        items, _events, topics = generate(args.seed, other_per_bucket=11.0 + extra)
    with tempfile.TemporaryDirectory() as tmp_name:
        out_dir = args.keep or Path(tmp_name)
        out_dir.mkdir(parents=True, exist_ok=True)
        stream, cfg = out_dir / "stream.jsonl", out_dir / "bench.toml"
        write_stream(stream, items)
        cfg.write_text(config_toml(topics), encoding="utf-8")
        exe = Path(sys.executable).with_name("crisisdesk")
        cmd = [str(exe), "trends", "replay", str(stream), "--config", str(cfg)]
        env = {**os.environ, "CRISISDESK_DATA_DIR": str(out_dir / "data")}
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        seconds = time.perf_counter() - t0
        (out_dir / "alerts.jsonl").write_text(done.stdout, encoding="utf-8")
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return done.returncode
    alerts = len(done.stdout.splitlines())
    print(f"items: {len(items)}  topics: {len(topics)}  alert lines: {alerts}")
    print(f"crisisdesk trends replay: {seconds:.1f} s wall clock (target < 60 s)")
    print("  " + done.stderr.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
