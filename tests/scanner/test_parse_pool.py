"""The feed-parsing pool: feeds are parsed in other processes, with the same result as in
this one, and no parser outlives a bot that was killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

from scanner import parse_pool
from scanner.parse import parse_feed

RSS = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
    "<item><title>Cháy xưởng gỗ ở khu công nghiệp Yên Bình</title><link>https://tin.vn/1</link>"
    "<description>Ba công nhân thoát nạn.</description>"
    "<pubDate>Mon, 07 Dec 2026 02:00:00 +0000</pubDate></item></channel></rss>"
).encode()
AT = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def test_parsed_in_a_worker_process_as_in_this_one() -> None:
    pool = parse_pool.executor(2)
    try:
        items, warning, error = pool.submit(parse_pool.parse, RSS, {}, "", AT).result(timeout=60)
        assert (items, warning, error) == (parse_feed(RSS, fetched_at=AT).items, None, None)
        assert pool.submit(os.getpid).result(timeout=60) != os.getpid()
        _items, _warning, error = pool.submit(parse_pool.parse, b"\x00junk", {}, "", AT).result(
            timeout=60
        )
        assert error  # a feed that yields nothing says why, it does not raise across processes
    finally:
        parse_pool.shutdown()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_workers_exit_when_the_bot_is_killed() -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from scanner import parse_pool
        pool = parse_pool.executor(2)
        pids = {pool.submit(os.getpid).result() for _ in range(20)}
        print(" ".join(map(str, sorted(pids))), flush=True)
        time.sleep(60)
        """
    )
    bot = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert bot.stdout is not None
    workers = [int(pid) for pid in bot.stdout.readline().split()]
    assert workers and all(_alive(pid) for pid in workers)
    bot.send_signal(signal.SIGKILL)
    bot.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


async def test_a_pool_whose_worker_died_is_replaced() -> None:
    """A parser worker killed by the system breaks its pool for good; the next feed is parsed
    in a fresh pool instead of every later scan failing."""
    try:
        pool = parse_pool.executor(2)
        worker = pool.submit(os.getpid).result(timeout=60)
        os.kill(worker, signal.SIGKILL)
        await asyncio.sleep(0.5)
        items, _warning, error = await parse_pool.parse_in(2, RSS, {}, "", AT)
        assert error is None and [i.title for i in items] == [
            "Cháy xưởng gỗ ở khu công nghiệp Yên Bình"
        ]
        assert parse_pool.executor(2) is not pool
    finally:
        parse_pool.shutdown()
