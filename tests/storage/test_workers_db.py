"""What several workers agree on through the database: update claims, the receiving mode and
the shared send budget."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.clock import SimulatedClock
from storage import received_updates
from storage.db import Database
from storage.lock import DatabaseInUse
from storage.migrate import upgrade
from storage.receive_lock import ReceiveLock
from storage.send_budget import (
    ALONE_SLOTS,
    GROUP_MAX,
    GROUP_SECONDS,
    SLOTS_PER_SECOND,
    SendBudget,
)


def test_an_update_is_claimed_once_and_forgotten_after_two_days(
    db: Database, clock: SimulatedClock
) -> None:
    now = clock.now()
    assert received_updates.claim(db.engine, 7, now)
    assert not received_updates.claim(db.engine, 7, now)  # the second worker drops it
    assert received_updates.claim(db.engine, 8, now + timedelta(days=1))
    assert received_updates.purge(db.engine, now + timedelta(days=2, minutes=1)) == 1
    assert not received_updates.claim(db.engine, 8, now)


def test_one_poller_per_database_or_any_number_of_webhook_workers(pg_schema_url: str) -> None:
    engines = [sa.create_engine(pg_schema_url) for _ in range(3)]
    held: list[ReceiveLock] = []
    try:
        poller = ReceiveLock.acquire(engines[0], polling=True)
        assert poller is not None
        held.append(poller)
        with pytest.raises(DatabaseInUse, match="already receives updates"):
            ReceiveLock.acquire(engines[1], polling=True)
        with pytest.raises(DatabaseInUse, match="polls Telegram"):
            ReceiveLock.acquire(engines[1], polling=False)
        poller.release()
        for engine in engines[1:]:
            hook = ReceiveLock.acquire(engine, polling=False)
            assert hook is not None
            held.append(hook)
        with pytest.raises(DatabaseInUse):
            ReceiveLock.acquire(engines[0], polling=True)
    finally:
        for lock in held:
            lock.release()
        for engine in engines:
            engine.dispose()


def test_sqlite_needs_no_receive_lock(sqlite_db: Database) -> None:
    assert ReceiveLock.acquire(sqlite_db.engine, polling=True) is None


def test_workers_share_one_overall_send_budget(pg_schema_url: str) -> None:
    """Two processes' worth of senders booking at once: no two in one slot, and every
    one-second window holds at most 30 sends."""
    upgrade(pg_schema_url)
    engines = [sa.create_engine(pg_schema_url) for _ in range(2)]
    budgets = [SendBudget(e) for e in engines]
    try:

        def book(i: int) -> float:
            return budgets[i % 2].book(0.0)[0]

        with ThreadPoolExecutor(8) as pool:
            times = sorted(pool.map(book, range(90)))
        with engines[0].connect() as conn:
            slots = conn.execute(sa.text("select count(*) from sendslot")).scalar()
        assert slots == 90
        assert times[-1] - times[0] >= (90 - 1) / SLOTS_PER_SECOND - 0.2
        for i in range(len(times)):
            window = [t for t in times[i:] if t < times[i] + 1.0]
            assert len(window) <= SLOTS_PER_SECOND + 1 + 2, (i, len(window))  # +2: timing noise
    finally:
        for engine in engines:
            engine.dispose()


def test_a_booking_says_how_busy_the_second_before_it_was(pg_schema_url: str) -> None:
    """The limiter keeps a late slot only when every slot of the second before it was its own
    (bot.channels.ratelimit): the budget counts them, whoever booked them."""
    upgrade(pg_schema_url)
    engine = sa.create_engine(pg_schema_url)
    budget = SendBudget(engine)
    try:
        first = budget.book(0.0)
        assert first[2] == 0  # nobody sent in the second before
        later = [budget.book(0.0) for _ in range(5)]
        assert [booked for _, _, booked in later] == [1, 2, 3, 4, 5]
        far = budget.book(ALONE_SLOTS / SLOTS_PER_SECOND + 1.0)  # more than a second after
        assert far[2] == 0
        # A worker alone may catch up: a slot missed a moment ago, free, is granted.
        missed, _, _ = budget.book(-0.2)
        assert missed < time.monotonic()
    finally:
        engine.dispose()


def test_a_groups_window_is_kept_for_all_workers(pg_schema_url: str) -> None:
    """Twenty sends to one group from two workers go at the overall pace; the 21st waits until
    the first is a minute old."""
    upgrade(pg_schema_url)
    engines = [sa.create_engine(pg_schema_url) for _ in range(2)]
    budgets = [SendBudget(e) for e in engines]
    group = -1001234
    try:
        start = time.monotonic()
        booked = [budgets[i % 2].book(0.0, group) for i in range(GROUP_MAX)]
        assert booked[-1][0] - start < 5
        # A sender that missed its slot gives it back: it does not use up the group's minute.
        again, _, _ = budgets[1].book(0.0, group, missed=booked[0][1])
        assert again - start < 5
        twenty_first, _, _ = budgets[0].book(0.0, group)
        assert twenty_first - booked[1][0] >= GROUP_SECONDS
        other_group, _, _ = budgets[1].book(0.0, group - 1)  # another group is not held up
        assert other_group - start < 5
    finally:
        for engine in engines:
            engine.dispose()
