"""``/me``, ``/people``, ``/invite`` and ``/status`` on a channel with no buttons, no edits and
2,000 characters.

The same flows and services as on Telegram (tests/registration/test_e2e_people.py): lists are
numbered choices, changes are short commands (``/vaitro 12 m``, ``/khoa 12``), a screen that
Telegram edits in place comes as a new message, and every typed change is checked on the server
like a press. ``/people`` shows the channels each person can be reached on.
"""

from __future__ import annotations

from alert_desk import Desk
from channels.fake_channel import FakeChannel, account_of
from channels.test_alert_flow import fake_runtime
from channels.test_registration_flow import choice
from sqlmodel import select

from handlers import admin, people, registration  # noqa: F401  (their flows register)
from storage.models import AuditEvent, Invite, Role, User

NOT_ALLOWED = "Bạn không có quyền dùng lệnh này."


def _user(desk: Desk, user_id: int) -> User:
    with desk.db.session() as s:
        user = s.get(User, user_id)
        assert user is not None
        return user


def _refusals(desk: Desk) -> list[tuple[str, str]]:
    with desk.db.session() as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action.endswith(".refused")))  # type: ignore[attr-defined]
        return [(e.action, e.subject) for e in rows]


async def test_me_renames_and_switches_language_by_typing(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    lan_tg, lan_id = desk.spokespeople[0]
    lan = account_of(lan_tg.id)

    [profile] = await channel.type(runtime, lan, "/me")
    assert "<b>Lan</b>" in profile and "Cơ quan: Bộ Y tế" in profile
    assert "Kênh: Fake, Telegram" in profile
    assert "English: /ngonngu en" in profile  # a short command…
    assert "1. ✏️ Đổi tên" in profile  # …and a numbered choice, for want of buttons

    [ask] = await channel.type(runtime, lan, choice(profile, "Đổi tên"))
    assert ask.startswith("Gửi họ và tên mới")
    assert await channel.type(runtime, lan, "Nguyễn Thị Lan") == [
        "Đã đổi tên thành Nguyễn Thị Lan."
    ]
    assert _user(desk, lan_id).full_name == "Nguyễn Thị Lan"

    # No edits here: the profile in its new language comes as a new message.
    notice, english = await channel.type(runtime, lan, "/language en")
    assert notice == "Language set to English."
    assert "<b>Nguyễn Thị Lan</b>" in english and "Language: English" in english
    assert "Channels: Fake, Telegram" in english and "Tiếng Việt: /ngonngu vi" in english
    assert _user(desk, lan_id).language == "en"


async def test_supervisor_lists_and_manages_people_by_typing(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    hung = account_of(desk.supervisor[0].id)
    lan_tg, lan_id = desk.spokespeople[0]
    minh_tg, minh_id = desk.spokespeople[1]
    khoa = account_of(desk.outsider[0].id)

    [listing] = await channel.type(runtime, hung, "/people")
    assert "<b>Bộ Y tế</b>" in listing and "Khoa" not in listing
    assert "Minh · Người phát ngôn · hoạt động · Fake, Telegram" in listing
    [card] = await channel.type(runtime, hung, choice(listing, "Minh · hoạt động"))
    assert "<b>Minh</b>" in card and "Kênh: Fake, Telegram" in card
    assert f"Tạm khóa: /khoa {minh_id}" in card
    assert f"Thành viên: /vaitro {minh_id} m" in card
    assert "Giám sát viên" not in card  # only admins grant supervisor

    saved, changed = await channel.type(runtime, hung, f"/vaitro {minh_id} m")
    assert saved == "Đã lưu thay đổi."
    assert "Vai trò: Thành viên" in changed and f"/vaitro {minh_id} s" in changed
    assert _user(desk, minh_id).role == Role.MEMBER
    minh = account_of(minh_tg.id)
    assert channel.inbox(minh)[-1] == "Vai trò của bạn đã được đổi thành: Thành viên."

    saved, suspended = await channel.type(runtime, hung, f"/suspend {minh_id}")
    assert f"Mở khóa: /mokhoa {minh_id}" in suspended
    assert _user(desk, minh_id).status == "suspended"
    assert channel.inbox(minh)[-1] == "Tài khoản của bạn đã bị tạm khóa."
    await channel.type(runtime, hung, f"/mokhoa {minh_id}")
    assert _user(desk, minh_id).status == "active"

    # Someone of another agency types the same command: refused, audited, nothing changes.
    assert await channel.type(runtime, khoa, f"/khoa {lan_id}") == [
        "Bạn không có quyền thực hiện thao tác này."
    ]
    assert _user(desk, lan_id).status == "active"
    # A spokesperson may not list people at all.
    assert await channel.type(runtime, account_of(lan_tg.id), "/people") == [NOT_ALLOWED]
    assert _refusals(desk) == [
        ("button.refused", f"button:ppl.suspend:{lan_id}"),
        ("command.refused", "command:/people"),
    ]


async def test_admin_status_people_of_any_agency_and_an_invite_code(desk: Desk) -> None:
    admin_tg, _admin_id = desk.add_person("Quản", Role.ADMIN)
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    quan = account_of(admin_tg.id)
    lan = account_of(desk.spokespeople[0][0].id)

    [status] = await channel.type(runtime, quan, "/status")
    assert "CrisisDesk" in status and len(status) <= 2000
    [again] = await channel.type(runtime, quan, choice(status, "Làm mới"))
    assert "CrisisDesk" in again  # refreshed as a new message: this channel cannot edit
    assert await channel.type(runtime, lan, "/status") == [NOT_ALLOWED]

    [agencies] = await channel.type(runtime, quan, "/people")
    [other] = await channel.type(runtime, quan, choice(agencies, "(BGDDT)"))
    assert "Khoa · Người phát ngôn · hoạt động · Fake, Telegram" in other and "Lan" not in other

    [agencies] = await channel.type(runtime, quan, "/invite member")
    [invite] = await channel.type(runtime, quan, choice(agencies, "(BYT)"))
    with desk.db.session() as s:
        code = s.exec(select(Invite.code)).one()
    assert f"/start {code}" in invite and "t.me" not in invite  # no deep links on this channel
    welcome, language = await channel.type(runtime, "zl-9001", f"/start {code}")
    assert welcome.startswith("Mã mời hợp lệ") and "1. Tiếng Việt" in language
