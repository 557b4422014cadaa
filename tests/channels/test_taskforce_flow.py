"""Task-force flows on a channel with no buttons, no edits, no pins and 2,000 characters.

An invitation reaches the invitee as text with typed choices and is answered by ``/thamgia`` or
``/khongthamgia``; in the crisis room tasks are added, listed and closed by typing, the people
``/convene`` offers are numbered choices, and ``/resolve`` asks for a typed confirmation; the
brief, which cannot be pinned or edited here, is posted anew when it changes. The
same services and flows as on Telegram (tests/taskforce), nothing channel-specific added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import statements
from alert_desk import Desk
from channels.fake_channel import CHANNEL, FakeChannel, account_of
from channels.test_alert_flow import fake_runtime
from sqlmodel import select

import handlers.taskforce  # noqa: F401  (the task-force flows register with the conversation layer)
from bot.channels.refs import ChatRef
from bot.runtime import Runtime
from bot.services.due import fire_due
from bot.services.taskforces.brief import BRIEF_DEBOUNCE, post_brief
from bot.services.taskforces.convening import add_invitation, convene
from storage.models import AuditEvent, Crisis, CrisisMember, CrisisRole, Task, User

ROOM = "room-9"


def add_crisis(desk: Desk, lead_id: int, room: str = ROOM) -> int:
    """An open crisis led by ``lead_id`` whose room is the group chat ``room`` on the fake
    channel."""
    with desk.db.session() as s:
        return statements.add_crisis(
            s, desk.agency_id, lead_id, desk.clock.now(), ChatRef(CHANNEL, room)
        )


@dataclass
class Convened:
    """A crisis led by Lan with Minh invited to it, on the fake channel."""

    channel: FakeChannel
    runtime: Runtime
    crisis_id: int
    member_id: int  # Minh's invitation
    lan: str  # accounts on the fake channel
    minh: str


async def convened(desk: Desk) -> Convened:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    (lan_tg, lan_id), (minh_tg, minh_id), _anna = desk.spokespeople
    crisis_id = add_crisis(desk, lan_id)
    await post_brief(runtime, crisis_id)  # not pinned: this channel cannot (it would refuse)
    member_id = await invite(desk, runtime, crisis_id, minh_id)
    return Convened(
        channel, runtime, crisis_id, member_id, account_of(lan_tg.id), account_of(minh_tg.id)
    )


async def invite(desk: Desk, runtime: Runtime, crisis_id: int, user_id: int) -> int:
    """Convene ``user_id`` as the services do; returns their invitation's id."""
    with desk.db.session() as s:
        crisis, user = s.get(Crisis, crisis_id), s.get(User, user_id)
        assert crisis is not None and user is not None
        add_invitation(s, crisis, user, CrisisRole.MEMBER, desk.clock.now(), crisis.lead_id)
    assert await convene(runtime, crisis_id) == 1
    return member_of(desk, crisis_id, user_id).id or 0


def member_of(desk: Desk, crisis_id: int, user_id: int) -> CrisisMember:
    with desk.db.session() as s:
        member = s.exec(
            select(CrisisMember).where(
                CrisisMember.crisis_id == crisis_id, CrisisMember.user_id == user_id
            )
        ).one()
        s.expunge(member)
        return member


async def test_an_invitation_is_answered_by_typed_commands(desk: Desk) -> None:
    c = await convened(desk)
    channel, runtime, crisis_id, member_id, minh = (
        c.channel,
        c.runtime,
        c.crisis_id,
        c.member_id,
        c.minh,
    )
    minh_id = desk.spokespeople[1][1]

    [invitation] = channel.inbox(minh)
    assert f"Mời tham gia tổ xử lý vụ việc #{crisis_id}" in invitation
    assert f"Tham gia: /thamgia {member_id}" in invitation
    assert f"Từ chối: /khongthamgia {member_id}" in invitation

    # Only the invitee may answer: anyone else is refused (and audited), as for a button.
    refused = await channel.type(runtime, c.lan, f"/thamgia {member_id}")
    assert refused == ["Bạn không có quyền thực hiện thao tác này."]
    assert member_of(desk, crisis_id, minh_id).state == "invited"

    [declined] = await channel.type(runtime, minh, f"/khongthamgia {member_id}")
    assert f"Bạn đã từ chối tham gia vụ việc #{crisis_id}" in declined
    assert f"Tham gia: /thamgia {member_id}" in declined  # changing one's mind is typed too
    assert member_of(desk, crisis_id, minh_id).state == "declined"

    [joined] = await channel.type(runtime, minh, f"/join {member_id}")  # the English alias
    assert joined.startswith("✅ Cảm ơn.")
    assert member_of(desk, crisis_id, minh_id).state == "accepted"
    with desk.db.session() as s:
        actions = [e.action for e in s.exec(select(AuditEvent))]
    assert "button.refused" in actions or "command.refused" in actions
    assert actions.count("crisis.invite_declined") == actions.count("crisis.invite_accepted") == 1


async def test_tasks_are_added_listed_and_closed_in_the_room(desk: Desk) -> None:
    c = await convened(desk)
    channel, runtime, crisis_id, lan, minh = c.channel, c.runtime, c.crisis_id, c.lan, c.minh
    await channel.type(runtime, minh, f"/thamgia {c.member_id}")

    [added] = await channel.type(runtime, lan, "/task @minh 2h Gọi cho báo Tuổi Trẻ", ROOM)
    with desk.db.session() as s:
        task = s.exec(select(Task).where(Task.crisis_id == crisis_id)).one()
    assert task.owner_id == desk.spokespeople[1][1] and task.title == "Gọi cho báo Tuổi Trẻ"
    assert f"Việc #{task.id}" in added and f"✅ Xong: /xong {task.id}" in added
    await channel.type(runtime, lan, "/task Kiểm tra số liệu", ROOM)

    # The brief cannot be edited in place here: after the changes settle it is posted anew.
    before = len(channel.inbox(ROOM))
    desk.clock.advance(BRIEF_DEBOUNCE + timedelta(seconds=1))
    await fire_due(runtime)
    [brief] = channel.inbox(ROOM)[before:]
    assert "Ngộ độc thực phẩm" in brief and "Gọi cho báo Tuổi Trẻ" in brief

    [listed] = await channel.type(runtime, minh, "/tasks", ROOM)
    assert "Gọi cho báo Tuổi Trẻ" in listed and "Kiểm tra số liệu" in listed
    assert len(listed) <= 2000

    [done] = await channel.type(runtime, minh, f"/xong {task.id}", ROOM)
    assert "Gọi cho báo Tuổi Trẻ" in done
    [listed] = await channel.type(runtime, lan, "/tasks", ROOM)
    assert "Gọi cho báo Tuổi Trẻ" not in listed and "Kiểm tra số liệu" in listed

    # Someone of another agency sees nothing; a room command outside a room says where it works.
    outsider = account_of(desk.outsider[0].id)
    [refused] = await channel.type(runtime, outsider, "/tasks", ROOM)
    assert "Kiểm tra số liệu" not in refused
    [elsewhere] = await channel.type(runtime, lan, "/tasks")
    assert elsewhere == "⚠️ Lệnh này dùng trong phòng của vụ việc (chủ đề hoặc nhóm của tổ xử lý)."


async def test_convening_and_resolving_without_buttons(desk: Desk) -> None:
    """The pick list is numbered choices; closing the crisis is confirmed by a typed command."""
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    (lan_tg, lan_id), _minh, (anna_tg, anna_id) = desk.spokespeople
    crisis_id = add_crisis(desk, lan_id)
    lan = account_of(lan_tg.id)

    [offered] = await channel.type(runtime, lan, "/convene", ROOM)
    assert "1. Anna" in offered
    [convened] = await channel.type(runtime, lan, "1", ROOM)
    assert "Anna" in convened
    assert member_of(desk, crisis_id, anna_id).state == "invited"
    assert any(
        "/join" in text or "/thamgia" in text for text in channel.inbox(account_of(anna_tg.id))
    )

    [confirm] = await channel.type(runtime, lan, "/resolve", ROOM)
    assert f"/ketthuc {crisis_id}" in confirm
