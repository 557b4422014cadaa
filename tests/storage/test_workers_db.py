"""What several workers agree on through the database: update claims, the receiving mode and
the shared send budget."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.app import _shared_budget
from bot.channels.ratelimit import TelegramRateLimiter
from bot.clock import SimulatedClock
from storage import received_updates
from storage.db import Database
from storage.lock import DatabaseInUse
from storage.migrate import upgrade
from storage.receive_lock import ReceiveLock
from storage.send_budget import (
    ALONE_SLOTS,
    CHAT_LATE_MAX,
    CROWDED_GAP,
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
    """The limiter keeps a late slot only when no other worker booked a slot in the second
    before it (bot.channels.ratelimit): the budget counts the slots there, and those of other
    workers apart (each slot carries its booker's mark)."""
    upgrade(pg_schema_url)
    engines = [sa.create_engine(pg_schema_url) for _ in range(2)]
    budget, other = (SendBudget(engine) for engine in engines)
    try:
        first = budget.book(0.0)
        assert first[2:] == (0, 0)  # nobody sent in the second before
        later = [budget.book(0.0) for _ in range(5)]
        assert [(booked, others) for _, _, booked, others in later] == [(n, 0) for n in range(1, 6)]
        assert other.book(0.0)[2:] == (6, 6)  # the other worker sees six slots not its own
        assert budget.book(0.0)[2:] == (7, 1)
        far = budget.book(ALONE_SLOTS / SLOTS_PER_SECOND + 1.0)  # more than a second after
        assert far[2:] == (0, 0)
        # A worker alone may catch up: a slot missed a moment ago, free, is granted.
        missed = budget.book(-0.2)[0]
        assert missed < time.monotonic()
    finally:
        for engine in engines:
            engine.dispose()


def test_a_crowded_worker_leaves_every_tenth_slot_free(pg_schema_url: str) -> None:
    """With other workers sending, requests from several processes may bunch on their way to
    Telegram, which no worker's own window sees: a crowded booking skips every tenth slot, so
    any second holds at most 28 booked slots; a worker alone takes every slot."""
    upgrade(pg_schema_url)
    engine = sa.create_engine(pg_schema_url)
    budget = SendBudget(engine)
    try:
        crowded = [budget.book(0.0, crowded=True)[1] for _ in range(40)]
        assert not [slot for slot in crowded if slot % CROWDED_GAP == 0]
        assert crowded[-1] - crowded[0] < 40 * CROWDED_GAP / (CROWDED_GAP - 1) + 2
        for first in range(crowded[0], crowded[-1] - int(SLOTS_PER_SECOND)):
            in_a_second = [s for s in crowded if first <= s < first + SLOTS_PER_SECOND]
            assert len(in_a_second) <= 28
        alone = [budget.book(0.0)[1] for _ in range(2 * CROWDED_GAP)]
        assert [slot for slot in alone if slot % CROWDED_GAP == 0]
    finally:
        engine.dispose()


def test_a_groups_window_is_kept_for_all_workers(pg_schema_url: str) -> None:
    """Twenty sends to one group from two workers go at the group's own pace (three at once,
    then about one a second); the 21st waits until the first is a minute old."""
    upgrade(pg_schema_url)
    engines = [sa.create_engine(pg_schema_url) for _ in range(2)]
    budgets = [SendBudget(e) for e in engines]
    group = -1001234
    try:
        start = time.monotonic()
        booked = [budgets[i % 2].book(0.0, group) for i in range(GROUP_MAX)]
        slots = [slot for _, slot, _, _ in booked]
        assert slots == sorted(set(slots))
        assert slots[2] - slots[0] <= 2  # a burst of three in a row
        assert slots[3] - slots[0] >= (1 + CHAT_LATE_MAX) * SLOTS_PER_SECOND
        assert booked[-1][0] - start < GROUP_MAX * 1.2 + 2
        # A sender that missed its slot gives it back: it does not use up the group's minute.
        budgets[1].book(0.0, group, missed=booked[0][1])
        twenty_first = budgets[0].book(0.0, group)[0]
        assert twenty_first - booked[1][0] >= GROUP_SECONDS
        other_group = budgets[1].book(0.0, group - 1)[0]  # another group is not held up
        assert other_group - start < 5
    finally:
        for engine in engines:
            engine.dispose()


async def _hog(busy: float) -> None:
    """A loaded event loop: it runs other work ``busy`` seconds at a time."""
    while True:
        time.sleep(busy)  # noqa: ASYNC251 - the point: the loop is blocked meanwhile
        await asyncio.sleep(0)


async def test_a_room_message_that_wakes_late_for_every_slot_still_leaves(
    pg_schema_url: str,
) -> None:
    """On a loaded event loop a sender can resume after its slot every time it books one
    (the booking's answer comes back through a thread, the sleep wakes late). A room message
    on the shared budget is never moved to its late time (the group's minute is counted on the
    slots): it books again. Every attempt kept its chat's reservation, so each one used up a
    token and a place of the room's twenty a minute: after twenty attempts the room was
    booked a minute ahead, and again after that — the publication's sends hung in the limiter
    (crash matrix, ``pub.author.part1`` on PostgreSQL). Here the loop is busy 25 ms at a time,
    so most slots are found late: five room messages must leave at the room's own pace (three
    at once, then one a second), and the room's window must hold only them."""
    upgrade(pg_schema_url)
    database = Database.from_url(pg_schema_url)
    room = -1001234
    hog = asyncio.create_task(_hog(0.025))
    try:
        shared = _shared_budget(database)
        assert shared is not None
        limiter = TelegramRateLimiter(shared=shared)

        async def send() -> bool:
            return True

        async def to_room() -> object:
            return await limiter.process_request(
                send, (), {}, "sendMessage", {"chat_id": room}, None
            )

        started = time.monotonic()
        for _ in range(5):
            assert await asyncio.wait_for(to_room(), 30)
        assert time.monotonic() - started < 6.0
        assert len(limiter._schedule.groups[room]) == 5  # no place taken by a given-up attempt
    finally:
        hog.cancel()
        await asyncio.gather(hog, return_exceptions=True)
        database.dispose()
