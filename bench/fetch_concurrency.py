"""Time to fetch and process 500 feeds from a local aiohttp server with one ``run_scan``.

Run: ``.venv/bin/python bench/fetch_concurrency.py [--feeds 500] [--items 20] [--delay 0.05]
[--parse-workers 0,2]``

Each feed answers after ``--delay`` seconds (a stand-in for network latency) with ``--items``
fresh Vietnamese items; the scan fetches them under the default concurrency limits, parses,
deduplicates, matches topics, scores sentiment and stores the rows.

Each value of ``--parse-workers`` is one scan (a fresh database each), side by side in one run:
0 parses in one thread of this process, N in N processes (``scanner.parse_pool``). Beside the
wall time it prints how late a 10 ms timer on the event loop fired during the scan: what every
chat the bot answers meanwhile would wait, and the CPU seconds the bot's own process spent (the
interpreter lock its chats share).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from bench.scan_throughput import fresh_db
from bench.scanner_corpus import generate, rss_document
from bot.clock import SimulatedClock
from bot.config import Settings
from scanner import parse_pool
from scanner.pipeline import Processor, run_scan
from scanner.sources import FetchPolicy
from storage.models import Source


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--hosts", type=int, default=25)
    parser.add_argument("--parse-workers", default="0,2", help="comma-separated pool sizes")
    args = parser.parse_args()
    corpus = generate(args.feeds * args.items, copies=0.3)
    bodies = [
        rss_document([item for item, _ in corpus[i * args.items : (i + 1) * args.items]])
        for i in range(args.feeds)
    ]

    async def feed(request: web.Request) -> web.Response:
        await asyncio.sleep(args.delay)
        return web.Response(
            body=bodies[int(request.match_info["n"])], content_type="application/rss+xml"
        )

    app = web.Application()
    app.router.add_get("/feed/{n}", feed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # Feeds live on many hosts in real life; ports stand in for hosts (aiohttp's per-host limit
    # is keyed by host and port).
    ports = []
    for _ in range(args.hosts):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    policy = FetchPolicy()
    print(
        f"{args.feeds} feeds × {args.items} items, {args.delay * 1000:.0f} ms server latency, "
        f"{args.hosts} hosts, concurrency {policy.concurrency} (per host {policy.per_host})"
    )
    for workers in (int(w) for w in args.parse_workers.split(",")):
        await one_scan(args.feeds, ports, workers)
        parse_pool.shutdown()
    await runner.cleanup()


async def _loop_lag(lags: list[float], stop: asyncio.Event) -> None:
    """How late a 10 ms sleep wakes, again and again, until ``stop``."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - before - 0.01)


async def one_scan(feeds: int, ports: list[int], workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_db(tmp, "fetch")
        with db.session() as s:
            for n in range(feeds):
                s.add(
                    Source(
                        name=f"feed {n}",
                        outlet=f"outlet {n % 40}",
                        url=f"http://127.0.0.1:{ports[n % len(ports)]}/feed/{n}",
                    )
                )
        clock = SimulatedClock(datetime(2026, 11, 3, tzinfo=UTC))
        with db.session() as s:
            processor = Processor.from_db(s, clock.now())  # loads the model once, as the bot does
        # Started before the clock, as a running bot's first scan has done.
        parse_pool.executor(workers).submit(os.getpid).result()
        lags: list[float] = []
        stop = asyncio.Event()
        watch = asyncio.create_task(_loop_lag(lags, stop))
        started, cpu = time.perf_counter(), time.process_time()
        report = await run_scan(
            db,
            Settings(allow_private_feeds=True, parse_workers=workers),
            clock,
            policy=FetchPolicy(allow_private=True),
            processor=processor,
        )
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stop.set()
        await watch
    lags.sort()
    where = "a thread" if workers == 0 else f"{workers} processes"
    print(
        f"parsing in {where}: fetch + process + store {elapsed:.2f} s "
        f"({cpu:.2f} CPU s in the bot's process); "
        f"{len(report.new_articles)} new articles, {len(report.new_stories)} stories, "
        f"{len(report.failing)} failing; event-loop lag p50 {lags[len(lags) // 2] * 1000:.1f} ms, "
        f"p99 {lags[int(len(lags) * 0.99)] * 1000:.1f} ms, max {lags[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
