"""The alert buttons not covered by the delivery tests: opening a task force and starting a
draft from an alert, through PTB and the emulator (the draft button is still a PTB callback
that calls the neutral alert flow; see handlers/alert_draft.py)."""

from __future__ import annotations

from collections.abc import Callable

from alert_desk import Desk
from sqlmodel import select

from bot.sandbox.telegram_emulator import StoredMessage
from storage.models import Crisis
from tests.alerts.test_alert_delivery import alert_on_screen


def said(words: str) -> Callable[[StoredMessage], bool]:
    return lambda m: words in m.data.get("text", "")


async def test_task_force_then_draft_from_one_alert(desk: Desk) -> None:
    emulator = desk.emulator
    lan, lan_id = desk.spokespeople[0]
    async with alert_on_screen(desk) as (alert_id, text):
        answer = await emulator.press_button(
            lan.id, lan.id, text.message_id, text="👥 Lập tổ công tác"
        )
        assert answer["text"] == "Đang lập tổ công tác…"
        await emulator.wait_for_message(lan.id, said("Đã mở vụ việc"))
        with desk.db.session() as s:
            [crisis] = s.exec(select(Crisis)).all()
            assert crisis.alert_id == alert_id and crisis.lead_id == lan_id

        answer = await emulator.press_button(
            lan.id, lan.id, text.message_id, text="📝 Soạn phản hồi"
        )
        assert "bản thảo" in answer["text"]
        # The crisis exists, so it is reused; the desk has no room, so the draft cannot start.
        await emulator.wait_for_message(lan.id, said("chỉ dùng trong phòng xử lý"))

        await emulator.press_button(lan.id, lan.id, text.message_id, text="👥 Lập tổ công tác")
        await emulator.wait_for_message(lan.id, said(f"đã có tổ công tác #{crisis.id}"))
    with desk.db.session() as s:
        assert len(s.exec(select(Crisis)).all()) == 1
