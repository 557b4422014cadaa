"""A ledger's claim runs once the request's connection is up, right before its bytes leave.

The crash matrix lost a statement part (``pub.approve-answer``, SQLite) that the outbox had
claimed in the rate limiter, before the request had a connection: the kill fell while it was
being opened, and a claimed part is never sent again. These run the real PTB bot, rate limiter
and HTTP transport against the emulator over HTTP.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from telegram.ext import ExtBot

from bot.channels import base
from bot.channels.base import ClaimBusy, DeliveryError, WireClaim
from bot.channels.ratelimit import TelegramRateLimiter
from bot.channels.telegram.notifier import TelegramNotifier, chat_ref
from bot.channels.telegram.wire import bot_request
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.state import User as EmuUser


class Lost(Exception):
    """What a claim raises when another worker has the message."""


@pytest_asyncio.fixture
async def notifier(emulator: TelegramEmulator) -> AsyncIterator[TelegramNotifier]:
    bot: ExtBot[None] = ExtBot(
        emulator.token,
        base_url=emulator.bot_url,
        request=bot_request(),
        rate_limiter=TelegramRateLimiter(max_retries=0),
    )
    async with bot:
        yield TelegramNotifier(bot, send_timeout=5)


@pytest.fixture
def lan(emulator: TelegramEmulator) -> EmuUser:
    """Someone who has started the bot."""
    user = emulator.create_user("Lan")
    emulator.send_text(user.id, "/start")
    return user


async def test_a_request_that_never_got_a_connection_claimed_nothing(
    emulator: TelegramEmulator, notifier: TelegramNotifier, lan: EmuUser
) -> None:
    claims: list[str] = []

    sent = await WireClaim(lambda: claims.append("một")).send(
        notifier.send_text(chat_ref(lan.id), "một")
    )
    assert claims == ["một"]  # claimed once, and the message is there
    assert [m.text for m in emulator.messages(lan.id, from_bot=True)] == ["một"]
    assert sent.chat == chat_ref(lan.id)

    await emulator.stop()  # nothing listening: the connection is refused
    with pytest.raises(DeliveryError):
        await WireClaim(lambda: claims.append("hai")).send(
            notifier.send_text(chat_ref(lan.id), "hai")
        )
    # Claimed in the rate limiter (before this fix) the part would now be in doubt, though
    # its request never left; a kill while the connection opened did the same.
    assert claims == ["một"]


async def test_a_claim_that_fails_stops_the_request_and_is_raised_as_itself(
    emulator: TelegramEmulator, notifier: TelegramNotifier, lan: EmuUser
) -> None:

    def lost() -> None:
        raise Lost("claimed by another worker")

    with pytest.raises(Lost):  # not PTB's "Unknown error in HTTP implementation"
        await WireClaim(lost).send(notifier.send_text(chat_ref(lan.id), "một"))
    assert emulator.messages(lan.id, from_bot=True) == []  # the request never left
    await notifier.send_text(chat_ref(lan.id), "hai")  # the connection pool is still usable
    assert [m.text for m in emulator.messages(lan.id, from_bot=True)] == ["hai"]


async def test_a_claim_refused_by_a_busy_database_is_tried_again_before_the_request_leaves(
    emulator: TelegramEmulator, notifier: TelegramNotifier, lan: EmuUser
) -> None:
    tries: list[int] = []

    def busy_twice() -> None:
        tries.append(len(tries))
        if len(tries) <= 2:
            raise sqlite3.OperationalError("database is locked")

    await WireClaim(busy_twice).send(notifier.send_text(chat_ref(lan.id), "một"))
    assert tries == [0, 1, 2]
    assert [m.text for m in emulator.messages(lan.id, from_bot=True)] == ["một"]


async def test_a_database_busy_past_the_patience_sends_nothing_and_says_so(
    emulator: TelegramEmulator,
    notifier: TelegramNotifier,
    lan: EmuUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "SQLITE_WRITE_PATIENCE_S", 0.2)

    def busy() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(ClaimBusy):  # a DeliveryError: the ledgers retry it later
        await WireClaim(busy).send(notifier.send_text(chat_ref(lan.id), "một"))
    assert emulator.messages(lan.id, from_bot=True) == []
