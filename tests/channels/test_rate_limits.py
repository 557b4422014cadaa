"""The bot's own rate limiter keeps a burst inside Telegram's flood limits (emulator limits on)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from functools import partial
from typing import Any

import pytest
from telegram import Bot
from telegram.error import BadRequest
from telegram.ext import ExtBot

from bot.channels.ratelimit import TelegramRateLimiter, bulk_sends
from bot.sandbox.telegram_emulator import TelegramEmulator


def _limited_bot(emulator: TelegramEmulator, limiter: TelegramRateLimiter) -> Bot:
    return ExtBot(
        emulator.token,
        base_url=emulator.bot_url,
        base_file_url=emulator.file_url,
        rate_limiter=limiter,
    )


async def test_mixed_burst_gets_no_429(emulator: TelegramEmulator) -> None:
    people = [emulator.create_user(f"P{i}") for i in range(40)]
    for person in people:
        emulator.send_text(person.id, "/start")
    group = emulator.create_supergroup("Phòng họp", member_ids=[people[0].id])
    emulator.add_bot(group.id, rights={"can_pin_messages": True})
    emulator.set_flood_limits(True)
    limiter = TelegramRateLimiter(max_retries=0)
    bot = _limited_bot(emulator, limiter)
    async with bot:
        sends = [bot.send_message(p.id, f"cảnh báo {i}") for i, p in enumerate(people)]
        sends += [bot.send_message(people[1].id, f"thêm {i}") for i in range(5)]
        sends += [bot.send_message(group.id, f"nhóm {i}") for i in range(6)]
        await asyncio.gather(*sends)
    statuses = [call.status for call in emulator.calls_to("sendMessage")]
    assert len(statuses) == 51
    assert set(statuses) == {200}


async def test_an_expired_callback_query_answer_is_not_an_error(
    emulator: TelegramEmulator,
) -> None:
    """A press queued while the bot restarted can no longer be answered: the handler goes on
    (it used to stop there, and a registration step never sent its next question)."""
    bot: Bot = ExtBot(
        emulator.token,
        base_url=emulator.bot_url,
        base_file_url=emulator.file_url,
        rate_limiter=TelegramRateLimiter(max_retries=0),
    )
    async with bot:
        assert await bot.answer_callback_query("123456000000000042") is True
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(999, "nobody")
    assert [c.status for c in emulator.calls_to("answerCallbackQuery")] == [400]


def test_reserved_times_keep_every_window() -> None:
    """Thousands of reservations at once: check each window Telegram checks, exactly."""
    import random
    from bisect import bisect_left

    from bot.channels.ratelimit import _Schedule

    rng = random.Random(7)
    schedule = _Schedule()
    chats: list[int] = [*range(1, 300), *range(-10, 0)]
    reserved: dict[int, list[float]] = {}
    times = []
    for _ in range(2000):
        chat = rng.choice(chats)
        t = schedule.reserve(0.0, chat, chat < 0)
        reserved.setdefault(chat, []).append(t)
        times.append(t)
    times.sort()
    for i, t in enumerate(times):  # no 1-second window holds more than 30
        assert bisect_left(times, t + 1.0) - i <= 30
    assert times[-1] <= 2000 / 29 * 1.05  # and it is not slower than needed
    for chat, sends in reserved.items():
        sends.sort()
        for i, t in enumerate(sends):  # token bucket: burst 3, then 1 per second
            assert bisect_left(sends, t + 1.0) - i <= 3
            if chat < 0:
                assert bisect_left(sends, t + 60.0) - i <= 20


def test_windows_hold_while_time_moves_and_stale_chats_are_dropped() -> None:
    """Reservations made as time passes, with chats swept only now and then (``_forget``):
    every window still holds, and the chats not heard from are dropped within a sweep."""
    import random
    from bisect import bisect_left

    from bot.channels.ratelimit import SWEEP_EVERY, _Schedule

    rng = random.Random(11)
    schedule = _Schedule()
    chats: list[int] = [*range(1, 200), *range(-6, 0)]
    reserved: dict[int, list[float]] = {}
    for step in range(3000):
        chat = rng.choice(chats)
        reserved.setdefault(chat, []).append(schedule.reserve(step * 0.02, chat, chat < 0))
    for chat, sends in reserved.items():
        sends.sort()
        for i, t in enumerate(sends):
            assert bisect_left(sends, t + 1.0) - i <= 3
            if chat < 0:
                assert bisect_left(sends, t + 60.0) - i <= 20
    times = sorted(t for sends in reserved.values() for t in sends)
    for i, t in enumerate(times):
        assert bisect_left(times, t + 1.0) - i <= 30
    quiet = times[-1] + 61.0
    schedule.reserve(quiet, 1, False)
    assert set(schedule.buckets) == {1} and not schedule.groups
    schedule.reserve(quiet + SWEEP_EVERY / 2, 2, False)
    schedule.reserve(quiet + 5.0, 3, False)  # chats 1 and 2 stale by now
    assert set(schedule.buckets) == {3}


async def test_a_reply_goes_ahead_of_a_running_fan_out(emulator: TelegramEmulator) -> None:
    """A fan-out books only a few slots ahead, so a reply asked mid-way waits ~0.15 s, not 4 s."""
    people = [emulator.create_user(f"P{i}") for i in range(120)]
    asker = emulator.create_user("Asker")
    for person in [*people, asker]:
        emulator.send_text(person.id, "/start")
    emulator.set_flood_limits(True)
    limiter = TelegramRateLimiter(max_retries=0)
    bot = _limited_bot(emulator, limiter)

    async def fan_out() -> None:
        with bulk_sends():
            await asyncio.gather(*(bot.send_message(p.id, "cảnh báo") for p in people))

    async with bot:
        started = time.monotonic()
        fan = asyncio.create_task(fan_out())
        await asyncio.sleep(0.5)
        assert limiter.waiting > 100  # the fan-out is queued up
        asked = time.monotonic()
        await bot.send_message(asker.id, "trả lời")
        reply_wait = time.monotonic() - asked
        await fan
        total = time.monotonic() - started
    assert reply_wait < 0.3, reply_wait
    assert total > 3.5  # 121 sends at ≤ 30/s: the fan-out itself was paced, not skipped
    statuses = [call.status for call in emulator.calls_to("sendMessage")]
    assert len(statuses) == 121 and set(statuses) == {200}


async def test_button_answers_are_not_held_by_a_429_pause(emulator: TelegramEmulator) -> None:
    """A short 429 pauses every send; answering a button is not a send and goes straight out."""
    person = emulator.create_user("P")
    emulator.send_text(person.id, "/start")
    limiter = TelegramRateLimiter(max_retries=1)
    bot = _limited_bot(emulator, limiter)
    emulator.inject_error("sendMessage", 429, retry_after=2)
    async with bot:
        send = asyncio.create_task(bot.send_message(person.id, "tin"))
        await emulator.wait_for_call("sendMessage")
        await asyncio.sleep(0.2)  # the 429 is back at the bot: all sends now pause 2 s
        assert limiter.flood_waits == 1
        asked = time.monotonic()
        with contextlib.suppress(BadRequest):  # an unknown query id: Telegram says so at once
            await bot.answer_callback_query("unknown-query")
        answered = time.monotonic() - asked
        await send
    assert answered < 0.5, answered
    assert [c.status for c in emulator.calls_to("sendMessage")] == [429, 200]


def test_the_window_counts_a_send_until_its_answer() -> None:
    """Telegram receives a request somewhere between its leaving and its answer: the 31st send
    waits until the 30th before it was answered a second ago, however early it left."""
    from bot.channels.ratelimit import OVERALL_MAX, _Window

    window = _Window(time.monotonic)
    sent = [window.count(i / 100) for i in range(OVERALL_MAX)]  # 30 leave within 0.3 s
    assert window.room_at(0.5) == math.inf  # none answered: any may still arrive now
    for s in sent:
        s.answered = s.left + 0.5  # slow answers: received as late as 0.5-0.79 s
    assert window.room_at(0.6) == pytest.approx(1.5)  # not 1.0, as their leaving would say
    sent[0].answered = 0.01  # one quick answer: a second after it, 29 are in the window
    assert window.room_at(0.6) == pytest.approx(1.01)
    assert window.room_at(2.0) == 2.0


def test_a_late_send_moves_its_chats_reservation_only_when_it_is_the_last() -> None:
    from bot.channels.ratelimit import _Schedule

    schedule = _Schedule()
    first = schedule.reserve(0.0, 7, False)
    assert schedule.move(7, False, first, first + 0.2)  # nothing booked after it: it moves
    bucket = schedule.buckets[7]
    assert bucket.at == pytest.approx(first + 0.2) and bucket.tokens == pytest.approx(2.0)
    second = schedule.reserve(0.3, -5, True)
    schedule.reserve(0.3, -5, True)  # the room has a later reservation
    assert not schedule.move(-5, True, second, second + 0.2)  # moving it would bunch the room


class _HeldTelegram:
    """A stand-in for the Bot API behind a limiter: records which chat each counted send
    reached it for, and holds the answers until ``answer_all`` (the window counts a send until
    its answer, so 30 unanswered sends keep it full)."""

    def __init__(self, limiter: TelegramRateLimiter) -> None:
        self.limiter = limiter
        self.left: list[int] = []
        self.times: list[float] = []  # when each reached it
        self._answers: list[asyncio.Future[bool]] = []
        self._at_once = False
        self._full = asyncio.Event()

    async def _request(self, chat: int) -> bool:
        from bot.channels.ratelimit import OVERALL_MAX

        self.left.append(chat)
        self.times.append(time.monotonic())
        if len(self.left) == OVERALL_MAX:
            self._full.set()
        if self._at_once:
            return True
        self._answers.append(asyncio.get_running_loop().create_future())
        return await self._answers[-1]

    async def send(self, chat: int) -> Any:
        data = {"chat_id": chat}
        return await self.limiter.process_request(
            self._request, (chat,), {}, "sendMessage", data, None
        )

    async def fill_the_window(self) -> list[asyncio.Task[Any]]:
        from bot.channels.ratelimit import OVERALL_MAX

        sends = [asyncio.create_task(self.send(chat)) for chat in range(1, OVERALL_MAX + 1)]
        await self._full.wait()
        return sends

    def answer_all(self) -> None:
        """Answer what was sent (the window has room again a second later) and the rest at once."""
        for answer in self._answers:
            answer.set_result(True)
        self._at_once = True


async def test_a_reply_passes_a_full_window_before_the_bulk_sends_waiting_there() -> None:
    """While Telegram's second is full, the fan-out's booked sends wait at the window; a reply
    that comes then is the next through it after the one holding the turn. It used to queue
    behind every bulk send already waiting (in arrival order), and at 20 replies a second
    that was 0.5-1 s per reply (docs/benchmarks.md, "Concurrent updates")."""
    from bot.channels.ratelimit import BULK_AHEAD, OVERALL_MAX

    telegram = _HeldTelegram(TelegramRateLimiter(max_retries=0))
    early = await telegram.fill_the_window()
    with bulk_sends():
        bulk = [asyncio.create_task(telegram.send(c)) for c in range(1000, 1000 + 3 * BULK_AHEAD)]
    await asyncio.sleep(0.5)  # the booked bulk sends wait at the window, the others at the gate
    reply = asyncio.create_task(telegram.send(7))
    await asyncio.sleep(0.3)  # the reply's slot has come: it waits at the window too
    assert len(telegram.left) == OVERALL_MAX
    telegram.answer_all()
    await asyncio.gather(*early, *bulk, reply)
    after = telegram.left[OVERALL_MAX:]
    assert after.index(7) <= 1, after  # at most the bulk send holding the turn went first
    assert sorted(after) == [7, *range(1000, 1000 + 3 * BULK_AHEAD)]


async def test_a_reply_lifts_the_alert_queued_before_it_in_its_chat() -> None:
    """A person's chat keeps its order, so their reply waits for the alert part queued there
    before it; that part, a bulk send, waited behind the whole fan-out for a place (here 40
    sends ahead of it). Lifted by the reply, it goes as a reply, and the reply after it."""
    from bot.channels.ratelimit import BULK_AHEAD, OVERALL_MAX
    from bot.channels.telegram.sends import ChatSends

    async def on_error(update: object, exc: Exception) -> None:
        raise AssertionError(exc)

    telegram = _HeldTelegram(TelegramRateLimiter(max_retries=0))
    sends = ChatSends(on_error)
    early = await telegram.fill_the_window()
    person = 7
    with bulk_sends():
        fan_out = [
            asyncio.create_task(sends.send(chat, partial(telegram.send, chat)))
            for chat in [*range(1000, 1040), person]
        ]
    await asyncio.sleep(0.5)  # the fan-out waits: at the full window and for the gate's places
    reply = asyncio.create_task(sends.send(person, partial(telegram.send, person)))
    await asyncio.sleep(0.3)
    telegram.answer_all()
    await asyncio.gather(*early, *fan_out, reply)
    after = telegram.left[OVERALL_MAX:]
    assert after.count(person) == 2
    assert after.index(person) <= 1, after  # the alert part, lifted: next after the turn's holder
    # and the reply soon after it: behind the bulk sends waiting at the window or booked when
    # it books its own slot (at most the gate's places each), not behind the fan-out
    assert after.index(person, after.index(person) + 1) <= 2 + 2 * BULK_AHEAD, after
    assert len(after) == 42
    assert sends.pending == 0


async def test_the_senders_waiting_at_the_window_leave_together_when_it_has_room() -> None:
    """With the event loop busy (here a task taking 50 ms of every turn of the loop, as
    handlers and a scan do), the senders waiting at a full window leave as soon as it has
    room, not one per turn of the loop. They used to pass a lock one at a time, each woken by
    the one before it, so a busy loop set the pace: 17 sends a second in the busy bench."""
    from bot.channels.ratelimit import OVERALL_MAX

    telegram = _HeldTelegram(TelegramRateLimiter(max_retries=0))
    early = await telegram.fill_the_window()
    replies = [asyncio.create_task(telegram.send(chat)) for chat in range(100, 120)]
    await asyncio.sleep(1.0)  # their slots have come: all wait at the window
    busy = True

    async def hog_the_loop() -> None:
        while busy:
            time.sleep(0.05)  # noqa: ASYNC251 - the point: synchronous work on the loop
            await asyncio.sleep(0)

    hog = asyncio.create_task(hog_the_loop())
    telegram.answer_all()
    await asyncio.gather(*early, *replies)
    busy = False
    await hog
    times = telegram.times[OVERALL_MAX:]
    assert len(times) == 20
    assert times[-1] - times[0] < 0.3, times[-1] - times[0]  # one by one: ≥ 19 × 50 ms


def test_a_stream_of_replies_never_starves_bulk_sends_at_the_window() -> None:
    from bot.channels.ratelimit import REPLIES_BEFORE_BULK, Standing, _Queue

    waiting: _Queue[str] = _Queue()
    for i in range(2):
        waiting.push(Standing(), f"b{i}")
    for i in range(25):
        waiting.push(None, f"r{i}")
    passed = [waiting.pop() for _ in range(len(waiting))]
    k = REPLIES_BEFORE_BULK
    replies = [f"r{i}" for i in range(25)]
    assert passed == [*replies[:k], "b0", *replies[k : 2 * k], "b1", *replies[2 * k :]]


async def test_a_crowded_workers_bulk_send_leaves_a_busy_second_to_replies() -> None:
    """With other workers sending (the slots of the second before a booking are not all this
    worker's), the replies' slots come first: a bulk send asks for a slot a little ahead, and
    gives it back while the second before it is busy, for another worker's reply to take; a
    reply keeps the slot it is given however busy the second."""
    from bot.channels.ratelimit import CROWDED_BULK_AHEAD, CROWDED_BULK_BELOW

    bookings: list[tuple[float, int | None, int | None, bool]] = []
    busy = [CROWDED_BULK_BELOW + 3, CROWDED_BULK_BELOW + 3, CROWDED_BULK_BELOW, 5]
    slots = iter(range(100, 200))

    async def book(
        wanted: float, chat: int | None, missed: int | None, crowded: bool
    ) -> tuple[float, int, int, int]:
        bookings.append((wanted, chat, missed, crowded))
        booked = busy.pop(0)
        return time.monotonic() + max(wanted, 0.0), next(slots), booked, booked // 2

    limiter = TelegramRateLimiter(max_retries=0, shared=book)

    async def send() -> bool:
        return True

    async def to(chat: int) -> object:
        return await limiter.process_request(send, (), {}, "sendMessage", {"chat_id": chat}, None)

    assert await asyncio.wait_for(to(7), 5)  # a reply, in a busy second: one booking
    assert bookings == [(pytest.approx(0.0, abs=0.05), 7, None, True)]
    with bulk_sends():
        assert await asyncio.wait_for(to(1000), 5)
    bulk = bookings[1:]
    assert [missed for _, _, missed, _ in bulk] == [None, 101, 102]  # each given back
    assert all(wanted >= CROWDED_BULK_AHEAD and crowded for wanted, _, _, crowded in bulk)
