"""A hard kill mid-registration resumes at the same step (SIGKILL `crisisdesk run`, restart)."""

from __future__ import annotations

from pathlib import Path

from bot_process import killed_at_exit, telegram_env
from registration.reg_helpers import add_agencies, labels, last_id
from sqlmodel import select

from bot.sandbox.telegram_emulator import TelegramEmulator
from storage.db import Database
from storage.models import ConversationState


async def test_registration_resumes_after_sigkill(
    emulator: TelegramEmulator, bot_db: tuple[str, Database], tmp_path: Path
) -> None:
    url, db = bot_db
    add_agencies(db, ("BYT", "Bộ Y tế"))
    env = telegram_env(emulator, url, tmp_path)
    kim = emulator.create_user("Kim", language_code="en")
    async with killed_at_exit(env):
        await emulator.wait_for_call("getUpdates", timeout=30)
        sent = emulator.send_text(kim.id, "/start")
        choose = await emulator.wait_for_message(kim.id, after=sent.message_id, timeout=10)
        before = last_id(emulator, kim.id)
        await emulator.press_button(kim.id, kim.id, choose.message_id, text="English")
        await emulator.wait_for_message(kim.id, after=before)
        sent = emulator.send_text(kim.id, "Kim Lê")
        ask_agency = await emulator.wait_for_message(kim.id, after=sent.message_id)
        assert labels(ask_agency) == ["Bộ Y tế (BYT)"]
    with db.session() as s:
        state = s.exec(select(ConversationState)).one()
        assert state.step == "agency" and state.data["full_name"] == "Kim Lê"

    polled = len(emulator.calls_to("getUpdates"))
    async with killed_at_exit(env):
        # The restarted process's own first poll (the first one's are logged already); a
        # loaded machine takes a while to import the app.
        await emulator.wait_for(lambda: len(emulator.calls_to("getUpdates")) > polled or None, 60)
        # The old message's button still works: the row, not memory, says where Kim is.
        before = last_id(emulator, kim.id)
        answer = await emulator.press_button(
            kim.id, kim.id, ask_agency.message_id, text="Bộ Y tế (BYT)", timeout=15
        )
        assert answer.get("show_alert") in (None, False)
        ask_role = await emulator.wait_for_message(kim.id, after=before, timeout=10)
        assert labels(ask_role) == ["Spokesperson", "Member"]
        # /start while in progress re-asks the current step.
        sent = emulator.send_text(kim.id, "/start")
        again = await emulator.wait_for_message(
            kim.id, lambda m: bool(m.buttons()), after=sent.message_id, timeout=10
        )
        assert labels(again) == ["Spokesperson", "Member"]
    with db.session() as s:
        assert s.exec(select(ConversationState)).one().step == "role"
    db.dispose()
