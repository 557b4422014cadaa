"""A send's claim on the event loop against a writer off the loop that takes SQLite's write lock
back to back (the scan's slices): the claim gets a turn within a slice, and the loop never
stands still while it waits (``storage.db.LOOP_WRITERS``, ``bot.channels.base.WireClaim``).

Before, the claim waited in SQLite's busy handler on the loop's thread, which the slices'
writer never left a gap for: a busy-mode run of bench/handler_load.py had its event loop
stopped for 7 s, every reply to a person behind it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.channels.base import WireClaim
from storage.db import BRIEF_BUSY_MS, Database, begin_write

SLICE_S = 0.3  # how long each of the writer's transactions holds the lock


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.from_url(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    with database.session() as s:
        s.execute(sa.text("create table written (who text, at real)"))
    yield database
    database.dispose()


def _slices(db: Database, stop: threading.Event) -> None:
    """Back-to-back write transactions, each holding the lock for ``SLICE_S``."""
    while not stop.is_set():
        with db.session() as s:
            begin_write(s)
            s.execute(sa.text("insert into written values ('slice', :at)"), {"at": time.time()})
            time.sleep(SLICE_S)


def _claim(db: Database) -> None:
    with db.session() as s:
        begin_write(s, brief=True)
        s.execute(sa.text("insert into written values ('claim', :at)"), {"at": time.time()})


async def test_a_claim_gets_its_turn_between_slices_with_the_loop_free(db: Database) -> None:
    stop = threading.Event()
    writer = threading.Thread(target=_slices, args=(db, stop))
    writer.start()
    lateness: list[float] = []

    async def tick() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lateness.append(time.perf_counter() - started - 0.01)

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.sleep(0.1)  # the writer holds the lock now
        waits = []
        for _ in range(3):
            started = time.perf_counter()
            await WireClaim(lambda: _claim(db))()
            waits.append(time.perf_counter() - started)
    finally:
        ticker.cancel()
        stop.set()
        await asyncio.to_thread(writer.join)
    assert max(waits) < 2 * SLICE_S + 0.25, waits  # the rest of one slice, then its turn
    assert max(lateness) < 0.1, max(lateness)  # the loop was never held by the wait
    with db.session() as s:
        kinds = [k for (k,) in s.execute(sa.text("select who from written order by at"))]
    assert kinds.count("claim") == 3 and kinds.count("slice") >= 2


async def test_a_write_on_the_loop_gets_its_turn_within_a_slice(db: Database) -> None:
    """A plain write on the loop's thread (a handler's flush) still waits on the loop, but the
    slices' writer gives way to it after the slice it holds, instead of starving it."""
    stop = threading.Event()
    writer = threading.Thread(target=_slices, args=(db, stop))
    writer.start()
    try:
        await asyncio.sleep(0.1)  # the writer holds the lock now
        waits = []
        for _ in range(3):
            started = time.perf_counter()
            with db.session() as s:
                begin_write(s)
                s.execute(sa.text("insert into written values ('loop', :at)"), {"at": time.time()})
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.to_thread(writer.join)
    assert max(waits) < 2 * SLICE_S + 0.25, waits


def test_a_brief_begin_gives_up_at_once_and_leaves_the_connection_as_it_was(
    db: Database,
) -> None:
    with db.session() as holder:
        begin_write(holder)
        with db.session() as s:
            started = time.perf_counter()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                begin_write(s, brief=True)
            assert time.perf_counter() - started < 0.5
            raw = s.connection().connection.driver_connection
            assert raw is not None
            (timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
            assert timeout > BRIEF_BUSY_MS  # the session's usual patience is back
