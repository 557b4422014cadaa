"""Draft approval on a channel with no buttons, no edits and 2,000 characters.

A drafter submits two statements by typing ``/guiduyet``; the supervisor receives each request
as text with typed choices, approves one with ``/duyet`` and rejects the other with
``/tuchoi <id> <lý do>``: the same services and flows as on Telegram (tests/drafts), each
decision recorded once, and a second typed decision refused.
"""

from __future__ import annotations

from alert_desk import Desk
from channels.fake_channel import CHANNEL, FakeChannel, account_of
from channels.test_alert_flow import fake_runtime
from sqlmodel import select
from statements import BODY, add_statements

import handlers.approvals  # noqa: F401  (the approval flows register with the conversation layer)
from bot.channels.refs import ChatRef
from bot.services.due import fire_due
from storage.models import Approval, AuditEvent, Draft, DraftStatus

ROOM = "room-7"


def add_drafts(desk: Desk, author_id: int) -> tuple[int, int]:
    """A crisis whose room is a chat on the fake channel, with two statements in it."""
    with desk.db.session() as s:
        room = ChatRef(CHANNEL, ROOM)
        first, second = add_statements(
            s, desk.agency_id, author_id, desk.clock.now(), room=room, numbers=(1, 2)
        )
        return first, second


def decisions(desk: Desk, draft_id: int) -> list[tuple[str, str | None]]:
    with desk.db.session() as s:
        rows = s.exec(select(Approval).where(Approval.draft_id == draft_id)).all()
        return [(r.decision, r.comment) for r in rows]


async def test_supervisor_approves_and_rejects_by_typed_commands(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    lan_tg, lan_id = desk.spokespeople[0]
    lan, hung = account_of(lan_tg.id), account_of(desk.supervisor[0].id)
    first, second = add_drafts(desk, lan_id)

    for number, draft_id in enumerate((first, second), start=1):
        [told] = await channel.type(runtime, lan, f"/guiduyet {draft_id}")  # typed in private
        assert told == f"📤 Dự thảo #{number} bản 1 đã được trình Hung phê duyệt (cần 1 phê duyệt)."
    room = channel.inbox(ROOM)
    assert len(room) == 2 and all("Hung" in text for text in room)

    requests = channel.inbox(hung)
    assert len(requests) == 2 and all(len(text) <= 2000 for text in requests)
    assert BODY in requests[0]
    assert f"/duyet {first}" in requests[0] and f"/tuchoi {first}" in requests[0]
    assert f"/suadoi {second}" in requests[1]

    recorded, *closed = await channel.type(runtime, hung, f"/duyet {first}")
    assert recorded == "Đã ghi nhận ý kiến của anh/chị."
    assert closed == ["✅ Dự thảo #1 bản 1 đã được phê duyệt (Hung)."]  # no edit: anew
    [asked] = await channel.type(runtime, hung, f"/tuchoi {second}")
    assert f"/tuchoi {second}" in asked  # how to give the reason on this channel
    assert decisions(desk, second) == []
    await channel.type(runtime, hung, f"/tuchoi {second} Số liệu chưa được kiểm chứng - chờ Sở")

    assert decisions(desk, first) == [("approve", "")]
    assert decisions(desk, second) == [("reject", "Số liệu chưa được kiểm chứng - chờ Sở")]
    [again] = await channel.type(runtime, hung, f"/tuchoi {first} muộn")
    assert "Đã ghi nhận" not in again
    assert decisions(desk, first) == [("approve", "")]
    with desk.db.session() as s:
        statuses = [s.get(Draft, i).status for i in (first, second)]  # type: ignore[union-attr]
        refused = s.exec(select(AuditEvent).where(AuditEvent.action == "approval.refused")).all()
    assert statuses == [DraftStatus.APPROVED, DraftStatus.REJECTED]
    assert len(refused) == 1

    # The room hears both decisions; the approved statement is published there.
    assert any("Số liệu chưa được kiểm chứng" in text for text in channel.inbox(ROOM))
    await fire_due(runtime)
    assert any(BODY in text for text in channel.inbox(ROOM)[2:])


async def test_typed_decisions_are_checked_like_buttons(desk: Desk) -> None:
    """Refused like a press from someone who is not an approver, or forged; aliases work."""
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    lan_tg, lan_id = desk.spokespeople[0]
    first, _second = add_drafts(desk, lan_id)
    await channel.type(runtime, account_of(lan_tg.id), f"/guiduyet {first}")

    minh = account_of(desk.spokespeople[1][0].id)  # not an approver
    assert await channel.type(runtime, minh, f"/duyet {first}") == [
        "Bạn không có quyền thực hiện thao tác này."
    ]
    assert await channel.type(runtime, minh, f"/tuchoi {first}x vì sao") == [
        "Nút này không hợp lệ hoặc đã hết hạn. Vui lòng dùng tin nhắn mới nhất."
    ]
    assert decisions(desk, first) == []

    hung = account_of(desk.supervisor[0].id)  # the English alias of /suadoi
    recorded, *_closed = await channel.type(runtime, hung, f"/changes {first} Thêm giờ họp báo")
    assert recorded == "Đã ghi nhận ý kiến của anh/chị."
    assert decisions(desk, first) == [("request_changes", "Thêm giờ họp báo")]
