"""Updates of different chats run in parallel; each chat's (and presser's) updates stay in order."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from emulator_fixtures import running_app
from telegram import CallbackQuery, Chat, Message, Update, User

from bot.app import build_application
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.updates import ChatOrderedUpdateProcessor, order_key
from storage.db import Database

WHEN = datetime(2026, 11, 2, tzinfo=UTC)


def _message(update_id: int, chat: Chat, user: User) -> Update:
    return Update(update_id, message=Message(update_id, WHEN, chat, from_user=user, text="x"))


def _press(update_id: int, chat: Chat, user: User) -> Update:
    message = Message(update_id, WHEN, chat, text="buttons")
    query = CallbackQuery(str(update_id), user, "ci", message=message, data="x:1")
    return Update(update_id, callback_query=query)


ALICE, BOB = User(1, "Alice", False), User(2, "Bob", False)
ALICE_DM = Chat(1, Chat.PRIVATE)
ROOM = Chat(-100, Chat.SUPERGROUP)


def test_order_keys() -> None:
    assert order_key(_message(1, ALICE_DM, ALICE)) == 1
    assert order_key(_press(2, ALICE_DM, ALICE)) == 1  # a private press stays with the chat
    assert order_key(_message(3, ROOM, ALICE)) == -100
    # A press in a room waits only for the presser's earlier presses there, not the room.
    assert order_key(_press(4, ROOM, ALICE)) == ("press", -100, 1)
    assert order_key(_press(5, ROOM, BOB)) == ("press", -100, 2)
    assert order_key(Update(6)) is None
    assert order_key("not an update") is None


async def test_processor_keeps_order_per_key_and_runs_keys_in_parallel() -> None:
    processor = ChatOrderedUpdateProcessor(max_running=4, max_queued=100)
    log: list[tuple[int, str]] = []
    release_room = asyncio.Event()

    async def handle(update: Update, slow: bool) -> None:
        log.append((update.update_id, "start"))
        if slow:
            await release_room.wait()
        else:
            await asyncio.sleep(0)
        log.append((update.update_id, "end"))

    updates = [
        (_message(1, ROOM, ALICE), True),  # the room's first update blocks...
        (_message(2, ROOM, BOB), False),  # ...so the room's second waits for it
        (_message(3, ALICE_DM, ALICE), False),  # another chat goes ahead
        (_press(4, ROOM, BOB), False),  # a press in the room does not wait for the room
        (_message(5, ALICE_DM, ALICE), False),
    ]
    tasks = [
        asyncio.create_task(processor.process_update(u, handle(u, slow))) for u, slow in updates
    ]
    for _ in range(20):
        await asyncio.sleep(0)
    done_early = [uid for uid, what in log if what == "end"]
    assert done_early == [3, 4, 5] or sorted(done_early) == [3, 4, 5]
    assert (2, "start") not in log
    assert [uid for uid, what in log if uid in (3, 5)] == [3, 3, 5, 5]  # in order, one at a time
    release_room.set()
    await asyncio.gather(*tasks)
    assert log.index((1, "end")) < log.index((2, "start"))
    assert processor.chains == 0  # nothing left behind


async def test_busy_key_holds_one_running_slot_not_all() -> None:
    processor = ChatOrderedUpdateProcessor(max_running=2, max_queued=100)
    gate = asyncio.Event()
    seen: list[int] = []

    async def handle(update: Update, blocked: bool) -> None:
        seen.append(update.update_id)
        if blocked:
            await gate.wait()

    room = [_message(i, ROOM, ALICE) for i in range(1, 11)]  # ten queued in one room
    other = _message(11, ALICE_DM, ALICE)
    tasks = [asyncio.create_task(processor.process_update(u, handle(u, True))) for u in room]
    tasks.append(asyncio.create_task(processor.process_update(other, handle(other, False))))
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == [1, 11]
    gate.set()
    await asyncio.gather(*tasks)
    assert seen == [1, 11, *range(2, 11)]


def test_processor_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        ChatOrderedUpdateProcessor(max_running=1)
    with pytest.raises(ValueError):
        ChatOrderedUpdateProcessor(max_running=10, max_queued=5)


@pytest.fixture
def settings_for(emulator: TelegramEmulator, make_settings: Any) -> Any:
    return make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_TICK_SECONDS": "0.1",
        }
    )


async def test_a_held_room_does_not_delay_another_chat(
    emulator: TelegramEmulator, sqlite_db: Database, settings_for: Any, clock: SimulatedClock
) -> None:
    mallory = emulator.create_user("Mallory", language_code="en")
    alice = emulator.create_user("Alice", language_code="en")
    group = emulator.create_group("Press office", member_ids=[mallory.id])
    emulator.add_bot(group.id)
    app = build_application(settings_for, sqlite_db, clock)
    async with running_app(app):
        await emulator.wait_for_call("getUpdates")
        emulator.inject_delay("sendMessage", 3.0, text_contains="privately")
        emulator.send_text(mallory.id, "/start", chat_id=group.id)
        await asyncio.sleep(0.3)  # the room's reply is now held by "Telegram"
        started = time.monotonic()
        asked = emulator.send_text(alice.id, "/help")
        await emulator.wait_for_message(alice.id, after=asked.message_id, timeout=2.0)
        assert time.monotonic() - started < 1.5  # not behind the room's 3 s
        in_room = emulator.messages(group.id, from_bot=True)
        assert not [m for m in in_room if "privately" in (m.text or "")]  # still held
        await emulator.wait_for_message(
            group.id, lambda m: "privately" in (m.text or ""), timeout=5.0
        )


async def test_a_room_at_its_minute_cap_delays_only_that_room(
    emulator: TelegramEmulator, sqlite_db: Database, settings_for: Any, clock: SimulatedClock
) -> None:
    """Through the real bot, flood limits on: a room that has had its 20 messages this minute
    waits for its window in its own queue; a person's /help meanwhile is answered at once."""
    from collections import deque

    from bot.channels.ratelimit import GROUP_MAX, GROUP_WINDOW, TelegramRateLimiter

    mallory = emulator.create_user("Mallory", language_code="en")
    alice = emulator.create_user("Alice", language_code="en")
    group = emulator.create_group("Press office", member_ids=[mallory.id])
    emulator.add_bot(group.id)
    emulator.set_flood_limits(True)
    app = build_application(settings_for, sqlite_db, clock)
    limiter = app.bot.rate_limiter
    assert isinstance(limiter, TelegramRateLimiter)
    async with running_app(app):
        await emulator.wait_for_call("getUpdates")
        # The room's minute is full: its oldest message leaves the window in 3 s.
        opens = time.monotonic() + 3.0
        limiter._schedule.groups[group.id] = deque([opens - GROUP_WINDOW] * GROUP_MAX)
        started = time.monotonic()
        emulator.send_text(mallory.id, "/start", chat_id=group.id)
        await asyncio.sleep(0.3)  # the room's reply now waits for its window
        asked = emulator.send_text(alice.id, "/help")
        await emulator.wait_for_message(alice.id, after=asked.message_id, timeout=2.0)
        assert time.monotonic() - started < 2.0  # not behind the room's window
        assert not emulator.messages(group.id, from_bot=True)  # the room still waits
        await emulator.wait_for(lambda: bool(emulator.messages(group.id, from_bot=True)), 10)
        assert time.monotonic() >= opens  # and its window was kept
    assert not [c for c in emulator.calls if c.status == 429]


async def test_two_updates_of_one_chat_are_handled_in_order(
    emulator: TelegramEmulator, sqlite_db: Database, settings_for: Any, clock: SimulatedClock
) -> None:
    alice = emulator.create_user("Alice", language_code="en")
    app = build_application(settings_for, sqlite_db, clock)
    async with running_app(app):
        await emulator.wait_for_call("getUpdates")
        emulator.inject_delay("sendMessage", 1.0)  # the first reply is held
        started = time.time()
        emulator.send_text(alice.id, "/help")
        emulator.send_text(alice.id, "/me")
        await emulator.wait_for(lambda: len(emulator.messages(alice.id, from_bot=True)) >= 2)
    replies = [c for c in emulator.calls_to("sendMessage") if c.params["chat_id"] == str(alice.id)]
    assert len(replies) == 2
    # The second reply was not sent while the first was held: both answers came after it.
    assert all(c.time >= started + 1.0 for c in replies)
    texts = [m.text or "" for m in emulator.messages(alice.id, from_bot=True)]
    assert "/me" in texts[0] or "help" in texts[0].lower()


async def test_help_is_answered_quickly_during_an_alert_fan_out(
    emulator: TelegramEmulator, sqlite_db: Database, settings_for: Any
) -> None:
    """Through the real bot, flood limits on: a reply does not queue behind the fan-out."""
    from bench.fanout import SENDS, seed
    from bot.app import DELIVER_JOB_ID
    from bot.clock import SystemClock

    planned = seed(sqlite_db, emulator, 60)  # a chart and a text each: ~4 s at 30/s
    asker = emulator.create_user("Asker", language_code="en")
    emulator.set_flood_limits(True)
    app = build_application(settings_for, sqlite_db, SystemClock())

    def sent() -> int:
        return sum(1 for c in emulator.calls if c.method in SENDS and c.status == 200)

    async with running_app(app):
        assert app.job_queue is not None
        job = app.job_queue.scheduler.get_job(DELIVER_JOB_ID)
        job.modify(next_run_time=datetime.now(UTC))
        await emulator.wait_for(lambda: sent() >= 20, timeout=10)
        asked_at = time.monotonic()
        asked = emulator.send_text(asker.id, "/help")
        await emulator.wait_for_message(asker.id, after=asked.message_id, timeout=5)
        waited = time.monotonic() - asked_at
        assert sent() < planned - 30, "the fan-out was still running when /help was answered"
        await emulator.wait_for(lambda: sent() >= planned, timeout=30)
    assert waited < 1.0, waited
    # Zero 429s: the limiter keeps Telegram's window on the sends themselves, each counted until
    # its answer, so requests bunched on a loaded runner cannot make 31 in a second (it used to
    # meet one now and then here).
    assert not [c for c in emulator.calls if c.status == 429]


async def test_a_press_is_answered_while_the_chats_earlier_edit_waits(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    """A refresh's edit held by "Telegram" (as the rate limiter holds it when the bot's budget
    is spent) must not hold the person's next press: the handler hands its edit to the chat's
    queue and is done, so the next press is answered at once; the edits still go in order."""
    admin = emulator.create_user("Admin", language_code="en")
    settings = make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_ADMIN_IDS": str(admin.id),
        }
    )
    app = build_application(settings, sqlite_db, clock)
    async with running_app(app):
        await emulator.wait_for_call("getUpdates")
        asked = emulator.send_text(admin.id, "/status")
        status = await emulator.wait_for_message(admin.id, after=asked.message_id, timeout=10)
        emulator.inject_delay("editMessageText", 3.0)  # the first refresh's edit is held
        await emulator.press_button(admin.id, admin.id, status.message_id, text="Refresh")
        await emulator.wait_for(lambda: emulator.gateway.held, timeout=5)  # the edit is held
        started = time.monotonic()
        await emulator.press_button(
            admin.id, admin.id, status.message_id, text="Refresh", timeout=2.0
        )
        answered = time.monotonic() - started
        await emulator.wait_for(lambda: len(emulator.calls_to("editMessageText")) >= 2, 10)
    assert answered < 1.0, answered  # before: after the first edit's 3 s
    first, second = emulator.calls_to("editMessageText")[:2]  # as answered: the held one first
    assert second.time >= first.time  # sent after it: had it not waited, it came back first


async def test_a_handler_waiting_for_its_send_slot_gives_its_running_slot_back() -> None:
    """Two rooms at their minute cap, two running slots: their handlers sleep in the real
    rate limiter, and a third chat's update starts at once instead of after the rooms' wait."""
    from collections import deque

    from bot.channels.ratelimit import GROUP_MAX, GROUP_WINDOW, TelegramRateLimiter

    limiter = TelegramRateLimiter()
    processor = ChatOrderedUpdateProcessor(max_running=2, max_queued=10)
    rooms = [Chat(-101, Chat.SUPERGROUP), Chat(-102, Chat.SUPERGROUP)]
    opens = time.monotonic() + 1.0
    for room in rooms:
        limiter._schedule.groups[room.id] = deque([opens - GROUP_WINDOW] * GROUP_MAX)
    sent: dict[int, float] = {}
    started: dict[int, float] = {}

    async def room_handler(room: Chat) -> None:
        async def call() -> bool:
            sent[room.id] = time.monotonic()
            return True

        await limiter.process_request(call, (), {}, "sendMessage", {"chat_id": room.id}, None)

    async def other_handler() -> None:
        started[ALICE_DM.id] = time.monotonic()

    tasks = [
        asyncio.create_task(processor.process_update(_message(i, room, ALICE), room_handler(room)))
        for i, room in enumerate(rooms, start=1)
    ]
    await asyncio.sleep(0.1)  # both rooms' handlers now sleep in the limiter
    other = _message(3, ALICE_DM, ALICE)
    begun = time.monotonic()
    await asyncio.wait_for(processor.process_update(other, other_handler()), timeout=5)
    await asyncio.gather(*tasks)
    assert started[ALICE_DM.id] - begun < 0.3  # before: after the rooms' window opened
    assert all(sent[room.id] >= opens for room in rooms)  # the rooms' windows were kept
    # The slots were taken back: nothing is left over or missing.
    assert processor._running._value == 2  # the semaphore's count
