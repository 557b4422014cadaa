"""Chat helpers for registration tests."""

from __future__ import annotations

from typing import Any

from bot.channels.telegram.notifier import person_ref
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.state import StoredMessage
from bot.services import identity
from storage.db import Database
from storage.models import Agency, User


def add_agencies(db: Database, *codes: tuple[str, str]) -> dict[str, int]:
    ids = {}
    with db.session() as s:
        for code, name in codes:
            agency = Agency(code=code, name=name, owner="chat")
            s.add(agency)
            s.flush()
            assert agency.id is not None
            ids[code] = agency.id
    return ids


def add_user(db: Database, telegram_id: int, **fields: Any) -> int:
    with db.session() as s:
        user = User(**{"full_name": "X", "status": "active", **fields})
        identity.add_person(s, person_ref(telegram_id), user)
        s.flush()
        assert user.id is not None
        return user.id


def last_id(emulator: TelegramEmulator, chat_id: int) -> int:
    messages = emulator.messages(chat_id)
    return messages[-1].message_id if messages else 0


async def say(emulator: TelegramEmulator, user_id: int, text: str) -> StoredMessage:
    """The person writes ``text``; returns the bot's first reply."""
    sent = emulator.send_text(user_id, text)
    return await emulator.wait_for_message(user_id, after=sent.message_id)


async def press(
    emulator: TelegramEmulator, user_id: int, message: StoredMessage, label: str
) -> tuple[dict[str, Any], StoredMessage]:
    """Press a button in the person's private chat; returns the answer and the next bot message."""
    before = last_id(emulator, user_id)
    answer = await emulator.press_button(user_id, user_id, message.message_id, text=label)
    return answer, await emulator.wait_for_message(user_id, after=before)


def labels(message: StoredMessage) -> list[str]:
    return [str(b.get("text")) for b in message.buttons()]
