"""The bot's own rate limiter keeps a burst inside Telegram's flood limits (emulator limits on)."""

from __future__ import annotations

import asyncio

import pytest
from telegram import Bot
from telegram.error import BadRequest
from telegram.ext import ExtBot

from bot.channels.ratelimit import TelegramRateLimiter
from bot.sandbox.telegram_emulator import TelegramEmulator


async def test_mixed_burst_gets_no_429(emulator: TelegramEmulator) -> None:
    people = [emulator.create_user(f"P{i}") for i in range(40)]
    for person in people:
        emulator.send_text(person.id, "/start")
    group = emulator.create_supergroup("Phòng họp", member_ids=[people[0].id])
    emulator.add_bot(group.id, rights={"can_pin_messages": True})
    emulator.set_flood_limits(True)
    limiter = TelegramRateLimiter(max_retries=0)
    bot: Bot = ExtBot(
        emulator.token,
        base_url=emulator.bot_url,
        base_file_url=emulator.file_url,
        rate_limiter=limiter,
    )
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
