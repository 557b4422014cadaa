"""``/me`` editing and ``/people`` management end to end through the real bot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator_fixtures import running_app
from registration.reg_helpers import add_agencies, add_user, labels, say
from sqlmodel import select

from bot.app import build_application
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from storage.db import Database
from storage.models import AuditEvent, User


async def test_me_renames_and_switches_language(
    emulator: TelegramEmulator,
    sqlite_db: Database,
    app_settings: Callable[..., Any],
    clock: SimulatedClock,
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    person = emulator.create_user("Lan", language_code="vi")
    user_id = add_user(
        sqlite_db,
        person.id,
        full_name="Nguyễn Thị Lan",
        role="spokesperson",
        agency_id=ids["BYT"],
        language="vi",
    )
    async with running_app(build_application(app_settings(), sqlite_db, clock)):
        profile = await say(emulator, person.id, "/me")
        assert "Nguyễn Thị Lan" in profile.data["text"] and "Bộ Y tế" in profile.data["text"]
        assert labels(profile) == ["✏️ Đổi tên", "English"]

        await emulator.press_button(person.id, person.id, profile.message_id, text="✏️ Đổi tên")
        ask = await emulator.wait_for_message(person.id, after=profile.message_id)
        too_long = await say(emulator, person.id, "x" * 10_000)
        assert too_long.message_id > ask.message_id
        with sqlite_db.session() as s:
            assert s.get(User, user_id).full_name == "Nguyễn Thị Lan"  # type: ignore[union-attr]
        renamed = await say(emulator, person.id, "Nguyễn Thị Ngọc Lan 🌸")
        assert "Nguyễn Thị Ngọc Lan 🌸" in renamed.data["text"]

        await emulator.press_button(person.id, person.id, profile.message_id, text="English")
        await emulator.wait_for(
            lambda: (
                "Language: English"
                in emulator.message(person.id, profile.message_id).data.get("text", "")
                or None
            )
        )
    with sqlite_db.session() as s:
        user = s.get(User, user_id)
        assert user is not None and user.full_name == "Nguyễn Thị Ngọc Lan 🌸"
        assert user.language == "en"


async def test_supervisor_suspends_reactivates_and_changes_roles_in_their_agency(
    emulator: TelegramEmulator,
    sqlite_db: Database,
    app_settings: Callable[..., Any],
    clock: SimulatedClock,
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"), ("BGDDT", "Bộ Giáo dục"))
    boss = emulator.create_user("Hùng", language_code="vi")
    add_user(sqlite_db, boss.id, full_name="Trần Hùng", role="supervisor", agency_id=ids["BYT"])
    staff = emulator.create_user("Minh", language_code="vi")
    staff_id = add_user(
        sqlite_db, staff.id, full_name="Lê Minh", role="member", agency_id=ids["BYT"]
    )
    other = emulator.create_user("Khoa", language_code="vi")
    other_id = add_user(
        sqlite_db, other.id, full_name="Phạm Khoa", role="member", agency_id=ids["BGDDT"]
    )
    async with running_app(build_application(app_settings(), sqlite_db, clock)):
        listing = await say(emulator, boss.id, "/people")
        assert "Lê Minh" in listing.data["text"] and "Phạm Khoa" not in listing.data["text"]
        await emulator.press_button(
            boss.id, boss.id, listing.message_id, text="Lê Minh · hoạt động"
        )
        card = await emulator.wait_for(
            lambda: (
                emulator.message(boss.id, listing.message_id)
                if "Tạm khóa" in labels(emulator.message(boss.id, listing.message_id))
                else None
            )
        )
        assert "Người phát ngôn" in labels(card)
        assert "Giám sát viên" not in labels(card)  # only admins grant supervisor

        await emulator.press_button(boss.id, boss.id, card.message_id, text="Người phát ngôn")
        await emulator.wait_for(lambda: _role(sqlite_db, staff_id) == "spokesperson" or None)
        await emulator.press_button(boss.id, boss.id, card.message_id, text="Tạm khóa")
        await emulator.wait_for(lambda: _status(sqlite_db, staff_id) == "suspended" or None)
        refused = await say(emulator, staff.id, "/help")
        assert "tạm khóa" in refused.data["text"]
        await emulator.wait_for(
            lambda: "Mở khóa" in labels(emulator.message(boss.id, card.message_id)) or None
        )
        await emulator.press_button(boss.id, boss.id, card.message_id, text="Mở khóa")
        await emulator.wait_for(lambda: _status(sqlite_db, staff_id) == "active" or None)

        # Forged presses for someone in another agency, and for oneself, are refused.
        for data in (f"ppl.suspend:{other_id}",):
            answer = await emulator.press_button(boss.id, boss.id, listing.message_id, data=data)
            assert answer["show_alert"] is True
    assert _status(sqlite_db, other_id) == "active"
    with sqlite_db.session() as s:
        actions = [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.id))]  # type: ignore[arg-type]
    assert actions.count("button.refused") + actions.count("button.forged") >= 1
    assert any("role" in a for a in actions) and any("suspend" in a for a in actions)


def _role(db: Database, user_id: int) -> str:
    with db.session() as s:
        user = s.get(User, user_id)
        assert user is not None
        return user.role


def _status(db: Database, user_id: int) -> str:
    with db.session() as s:
        user = s.get(User, user_id)
        assert user is not None
        return user.status
