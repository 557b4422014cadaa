"""A chat's windows counted on its booked slots (``storage.send_budget.chat_window_opens``),
checked against the emulator's own model of Telegram's flood limits: whatever slots the
workers want and however late (within the allowance) each send arrives, Telegram never has to
say "retry after"."""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from bot.sandbox.telegram_emulator.limits import FloodLimiter
from storage.migrate import upgrade
from storage.send_budget import (
    CHAT_HISTORY,
    CHAT_LATE_MAX,
    GROUP_SECONDS,
    SLOTS_PER_SECOND,
    SendBudget,
    chat_window_opens,
)

LATE_FOR_A_GROUP = 0.01  # a group's sends are never moved: late only by the limiter's tolerance


def _book(rng: random.Random, sends: int, group: bool) -> list[int]:
    """Slots for ``sends`` messages to one chat, each wanted at a random moment soon after the
    one before (often at once: workers answering a burst), granted by the chat's windows."""
    slots: list[int] = []
    wanted = 0
    for _ in range(sends):
        wanted += rng.choice([0, 0, 0, 1, 5, 30, 90])
        recent = slots[::-1][:CHAT_HISTORY]
        slot = max(wanted, chat_window_opens(recent, group=group))
        slots.append(slot)
        wanted = slot
    return slots


def _refused(slots: list[int], late: list[float], group: bool) -> list[int]:
    """The sends Telegram would refuse when each arrives ``late`` after its slot, in the order
    they arrive."""
    arrivals = sorted(
        (slot / SLOTS_PER_SECOND + delay, i)
        for i, (slot, delay) in enumerate(zip(slots, late, strict=True))
    )
    now = 0.0
    telegram = FloodLimiter(lambda: now)
    refused = []
    for now, i in arrivals:  # noqa: B007 - the limiter reads ``now`` through its clock
        if telegram.retry_after(-1 if group else 1, group) is not None:
            refused.append(i)
        telegram.charge(-1 if group else 1, group)
    return refused


@pytest.mark.parametrize("seed", range(40))
def test_a_private_chat_sent_to_by_any_worker_is_never_refused(seed: int) -> None:
    """Sixty sends, longer than the history read: each arriving on time, at the latest
    allowed, or (the worst order) the older ones late and the newer ones on time."""
    rng = random.Random(seed)
    slots = _book(rng, 60, group=False)
    assert slots == sorted(set(slots))  # one chat's sends keep their order
    for late in (
        [0.0] * len(slots),
        [CHAT_LATE_MAX] * len(slots),
        [rng.uniform(0, CHAT_LATE_MAX) for _ in slots],
        [CHAT_LATE_MAX * (i % 2) for i in range(len(slots))],
    ):
        assert _refused(slots, late, group=False) == []


@pytest.mark.parametrize("seed", range(20))
def test_a_group_sent_to_by_any_worker_is_never_refused(seed: int) -> None:
    rng = random.Random(seed)
    slots = _book(rng, 45, group=True)
    late = [rng.uniform(0, LATE_FOR_A_GROUP) for _ in slots]
    assert _refused(slots, late, group=True) == []
    # The 21st send of a minute waits for the first to be a minute old.
    assert slots[20] - slots[0] > GROUP_SECONDS * SLOTS_PER_SECOND


def test_a_burst_of_three_goes_at_once_and_the_fourth_waits_a_second() -> None:
    assert chat_window_opens([], group=False) == 0
    assert chat_window_opens([100], group=False) == 101  # after the chat's last: in order
    assert chat_window_opens([101, 100], group=False) == 102
    fourth = chat_window_opens([102, 101, 100], group=False)
    assert fourth == 100 + math.ceil((1 + CHAT_LATE_MAX) * SLOTS_PER_SECOND)


def test_a_full_history_at_a_calm_pace_holds_nothing_back() -> None:
    """Twenty sends two seconds apart fill the history read: the rule standing in for the
    older ones must not hold the next send back (it comes right after the last)."""
    calm = [1000 - 60 * k for k in range(CHAT_HISTORY)]  # newest first, 60 slots ≈ 2 s apart
    assert chat_window_opens(calm, group=False) == 1001


def test_two_workers_answering_one_person_at_once_keep_their_window(pg_schema_url: str) -> None:
    """A person's replies from one worker and their alert parts from the leader, booked at
    the same moment from eight threads: the bookings for the chat take turns (its lock), and
    Telegram would take every send even with each worker's sends late by turns."""
    upgrade(pg_schema_url)
    engines = [sa.create_engine(pg_schema_url) for _ in range(2)]
    budgets = [SendBudget(engine) for engine in engines]
    person, other = 4242, 4343
    try:

        def book(i: int) -> tuple[int, int]:
            chat = other if i % 5 == 4 else person
            return chat, budgets[i % 2].book(0.0, chat)[1]

        with ThreadPoolExecutor(8) as pool:
            booked = list(pool.map(book, range(20)))
        slots = sorted(slot for chat, slot in booked if chat == person)
        assert len(slots) == 16
        for late in ([0.0] * 16, [CHAT_LATE_MAX * (i % 2) for i in range(16)]):
            assert _refused(slots, late, group=False) == []
        assert slots[-1] - slots[0] < 20 * SLOTS_PER_SECOND  # about one a second, not slower
    finally:
        for engine in engines:
            engine.dispose()
