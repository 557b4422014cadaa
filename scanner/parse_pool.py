"""Feed parsing on every core, off the event loop's interpreter lock.

feedparser is pure Python and the costliest step of a scan per item. In a thread it still
holds the interpreter lock, so a big scan slowed every chat the bot answers meanwhile and used
one core. Here each fetched feed is parsed in a process of a small pool that lives as long as
the bot (started on the first scan, so a process that never scans starts none).

Processes are started with ``spawn``: the bot has threads (APScheduler, the database pool)
that ``fork`` would copy in an arbitrary state. A worker whose parent dies (a SIGKILL, as the
crash matrix sends) notices within a second and exits, so no parser outlives its bot.
``workers=0`` keeps parsing in one thread of this process (for a one-core host).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime

from scanner.parse import FeedError, FeedItem, parse_feed

log = logging.getLogger(__name__)

Parsed = tuple[list[FeedItem], str | None, str | None]  # items, warning, error

_lock = threading.Lock()
_pools: dict[int, Executor] = {}


def default_workers() -> int:
    """One parser per core, at most four (a scan is mostly waiting for servers)."""
    return min(os.cpu_count() or 1, 4)


def parse(body: bytes, headers: dict[str, str], base_url: str, at: datetime) -> Parsed:
    """One feed, in a worker: its items, a warning, or the reason it yielded nothing."""
    try:
        feed = parse_feed(body, fetched_at=at, headers=headers, base_url=base_url)
    except FeedError as exc:
        return [], None, str(exc)
    return feed.items, feed.warning, None


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)  # the bot is gone: nothing to parse for


def _start_watch(parent: int) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def executor(workers: int) -> Executor:
    """The process-wide parser pool of ``workers`` processes (a thread when 0)."""
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            if workers <= 0:
                pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan-parse")
            else:
                pool = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_watch,
                    initargs=(os.getpid(),),
                )
            _pools[workers] = pool
        return pool


async def parse_in(
    workers: int, body: bytes, headers: dict[str, str], base_url: str, at: datetime
) -> Parsed:
    """:func:`parse` in the pool, off the event loop. A pool whose worker died (killed by the
    system on a huge feed, say) is broken for good: it is dropped and the feed parsed once more
    in a fresh one, so one lost worker never blinds every later scan."""
    loop = asyncio.get_running_loop()
    for attempt in (1, 2):
        pool = executor(workers)
        try:
            return await loop.run_in_executor(pool, parse, body, headers, base_url, at)
        except BrokenExecutor:
            log.warning("feed parser pool broken (a worker died); starting a new one")
            _discard(workers, pool)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _discard(workers: int, pool: Executor) -> None:
    with _lock:
        if _pools.get(workers) is pool:
            del _pools[workers]
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the pools (tests, and a clean exit; at exit Python joins them anyway)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)
