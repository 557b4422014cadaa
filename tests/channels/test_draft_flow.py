"""Drafting and editing a statement on a channel with no buttons, no edits, no replies and 2,000
characters.

In the crisis room, ``/draft bandau`` asks its questions one by one, answered by the next text
typed there (there is no "reply to this message"); the version is shown with its choices typed
(``/sua``, ``/guiduyet``, ``/huydt``). A new full text is ``/sua <id> <text>``, a part is
``/set`` (on the room's latest statement), and ``/huydt`` discards: the same services as on
Telegram (tests/drafts).
"""

from __future__ import annotations

from alert_desk import Desk
from channels.fake_channel import FakeChannel, account_of
from channels.test_alert_flow import fake_runtime
from channels.test_approval_flow import ROOM, add_drafts
from sqlmodel import col, select

import handlers.drafts  # noqa: F401  (the flows register with the conversation layer)
from storage.models import ConversationState, Draft, DraftStatus

NEW_BODY = "Sở Y tế xác nhận 12 người nhập viện; không có trường hợp nguy kịch."


def versions(desk: Desk, number: int) -> list[tuple[int, str]]:
    with desk.db.session() as s:
        rows = s.exec(
            select(Draft).where(Draft.number == number).order_by(col(Draft.version))
        ).all()
        return [(row.version, row.status) for row in rows]


async def test_a_statement_is_drafted_by_typed_answers(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    lan_tg, lan_id = desk.spokespeople[0]
    lan = account_of(lan_tg.id)
    add_drafts(desk, lan_id)  # the crisis and its room; statements 1 and 2

    [asked] = await channel.type(runtime, lan, "/draft bandau", room=ROOM)
    for _ in range(12):
        assert "Trả lời tin nhắn này" not in asked and "Gõ nội dung để trả lời" in asked
        answer = "-" if "để bỏ qua" in asked else "Đã xác minh: 12 người nhập viện."
        answered = await channel.type(runtime, lan, answer, room=ROOM)
        asked = answered[-1]
        if "📝 Dự thảo" in answered[0]:
            break
    shown = "\n".join(answered)
    with desk.db.session() as s:
        draft = s.exec(select(Draft).where(Draft.number == 3)).one()
        assert s.exec(select(ConversationState)).all() == []  # the filling is over
    assert "📝 Dự thảo #3 · bản 1" in shown
    assert f"gõ /sua {draft.id} kèm toàn văn mới" in shown
    assert f"✏️ Sửa: /sua {draft.id}" in shown and f"/guiduyet {draft.id}" in shown
    assert f"🗑 Hủy dự thảo: /huydt {draft.id}" in shown
    assert all(len(text) <= 2000 for text in channel.inbox(ROOM))

    # ``/set`` changes one part of the room's latest open statement (no reply to pick one).
    shown = await channel.type(runtime, lan, "/set Cập nhật tiếp theo: 17 giờ 30", room=ROOM)
    assert any("📝 Dự thảo #3 · bản 2" in text for text in shown)
    assert any("17 giờ 30" in text for text in shown)
    assert versions(desk, 3) == [(1, DraftStatus.SUPERSEDED), (2, DraftStatus.DRAFTING)]


async def test_a_draft_is_edited_and_discarded_by_typed_commands(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    lan_tg, lan_id = desk.spokespeople[0]
    lan, minh = account_of(lan_tg.id), account_of(desk.spokespeople[1][0].id)
    first, second = add_drafts(desk, lan_id)

    [how] = await channel.type(runtime, lan, f"/sua {first}", room=ROOM)
    assert f"gõ /sua {first} kèm toàn văn mới" in how
    shown = await channel.type(runtime, lan, f"/sua {first} {NEW_BODY}", room=ROOM)
    assert any("📝 Dự thảo #1 · bản 2" in text for text in shown)
    assert any(NEW_BODY in text for text in shown)
    assert versions(desk, 1) == [(1, DraftStatus.SUPERSEDED), (2, DraftStatus.DRAFTING)]
    [same] = await channel.type(runtime, minh, f"/sua {first} {NEW_BODY}", room=ROOM)
    assert same == "Nội dung giống hệt bản 2; không tạo bản mới."  # the latest, unchanged
    assert len(versions(desk, 1)) == 2

    # The English alias, typed in private: the room hears the new version.
    await channel.type(runtime, lan, f"/edit {second} {NEW_BODY}")
    assert versions(desk, 2)[-1] == (2, DraftStatus.DRAFTING)
    assert any(NEW_BODY in text and "#2 · bản 2" in text for text in channel.inbox(ROOM))

    khoa = account_of(desk.outsider[0].id)  # another agency: refused like a press
    assert await channel.type(runtime, khoa, f"/huydt {second}", room=ROOM) == [
        "Bạn không có quyền thực hiện thao tác này."
    ]
    await channel.type(runtime, minh, f"/huydt {second}", room=ROOM)
    assert versions(desk, 2)[-1] == (2, DraftStatus.DISCARDED)
    assert channel.inbox(ROOM)[-1] == "🗑 Dự thảo #2 đã được hủy bởi Minh."


async def test_a_pin_is_set_by_typed_answers(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    hung = account_of(desk.supervisor[0].id)
    assert await channel.type(runtime, hung, "/pin") == ["🔐 Đặt mã PIN phê duyệt: gõ 4–12 chữ số."]
    assert await channel.type(runtime, hung, "4827") == ["Nhập lại mã PIN để xác nhận."]
    [saved] = await channel.type(runtime, hung, "4827")
    assert saved.startswith("✅ Đã lưu mã PIN.")
    with desk.db.session() as s:
        assert s.exec(select(ConversationState)).all() == []
