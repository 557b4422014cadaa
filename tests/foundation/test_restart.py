"""A due row survives a hard kill: SIGKILL ``crisisdesk run`` before it is due, start it again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.channels.telegram.notifier import person_ref
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.state import StoredMessage
from bot.services import identity
from bot.services.due import schedule
from bot.services.notify import notify_payload
from storage.db import Database
from storage.migrate import upgrade
from storage.models import User


def start_bot(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_due_row_fires_after_sigkill_and_restart(
    emulator: TelegramEmulator, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    upgrade(url)
    alice = emulator.create_user("Alice", language_code="en")
    emulator.send_text(alice.id, "xin chào")  # opens the chat (free text gets its own answer)
    env = {
        **os.environ,
        "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
        "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
        "CRISISDESK_DATABASE_URL": url,
        "CRISISDESK_DATA_DIR": str(tmp_path),
        "CRISISDESK_TICK_SECONDS": "0.2",
    }
    env.pop("CRISISDESK_CONFIG", None)
    first = start_bot(env)
    try:
        await emulator.wait_for_call("getUpdates", timeout=30)
        # Scheduled while the bot runs, due shortly after it is killed.
        db = Database.from_url(url)
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
    finally:
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
    assert datetime.now(UTC) < due_at, "the first run must die before the row is due"
    assert not [m for m in emulator.messages(alice.id, from_bot=True) if _reminder(m)]

    await asyncio.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
    second = start_bot(env)
    try:
        message = await emulator.wait_for_message(alice.id, _reminder, timeout=30)
    finally:
        second.send_signal(signal.SIGKILL)
        await asyncio.to_thread(second.wait)
    assert message.data["text"] == "⏰ Reminder: deadline"
    assert len([m for m in emulator.messages(alice.id, from_bot=True) if _reminder(m)]) == 1


def _reminder(message: StoredMessage) -> bool:
    return str(message.data.get("text", "")).startswith("⏰")
