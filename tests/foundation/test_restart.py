"""A due row survives a hard kill: SIGKILL ``crisisdesk run`` before it is due, start it again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot_process import killed_at_exit, telegram_env

from bot.channels.telegram.notifier import person_ref
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.state import StoredMessage
from bot.services import identity
from bot.services.due import schedule
from bot.services.notify import notify_payload
from storage.db import Database
from storage.models import User


async def test_due_row_fires_after_sigkill_and_restart(
    emulator: TelegramEmulator, bot_db: tuple[str, Database], tmp_path: Path
) -> None:
    url, db = bot_db
    alice = emulator.create_user("Alice", language_code="en")
    emulator.send_text(alice.id, "xin chào")  # opens the chat (free text gets its own answer)
    env = telegram_env(emulator, url, tmp_path)
    async with killed_at_exit(env):
        await emulator.wait_for_call("getUpdates", timeout=30)
        # Scheduled while the bot runs, due shortly after it is killed.
        due_at = datetime.now(UTC) + timedelta(seconds=1.5)
        with db.session() as s:
            user = User(full_name="Alice", status="active", language="en")
            identity.add_person(s, person_ref(alice.id), user)
            s.flush()
            assert user.id is not None
            schedule(
                s, "notify", due_at, payload=notify_payload(user.id, "reminder", text="deadline")
            )
        db.dispose()
    assert datetime.now(UTC) < due_at, "the first run must die before the row is due"
    assert not [m for m in emulator.messages(alice.id, from_bot=True) if _reminder(m)]

    await asyncio.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
    async with killed_at_exit(env):
        message = await emulator.wait_for_message(alice.id, _reminder, timeout=30)
    assert message.data["text"] == "⏰ Reminder: deadline"
    assert len([m for m in emulator.messages(alice.id, from_bot=True) if _reminder(m)]) == 1


def _reminder(message: StoredMessage) -> bool:
    return str(message.data.get("text", "")).startswith("⏰")
