"""``crisisdesk run`` on Zalo, end to end, for the desk's direct-message work: a newcomer
registers by typing (numbered choices, a typed phone number) and an admin verifies them with
``/accept``; a spokesperson submits two statements with ``/guiduyet``, her supervisor approves
one with ``/duyet 45`` and rejects the other with ``/tuchoi 46 <lý do>``, and she reads the
approved statement and the rejection's reason in her Zalo chat.

Zalo has no buttons, no edits and no contact sharing; everything here is typed, as on Zalo.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from channels.test_registration_flow import choice
from sqlmodel import select
from statements import BODY, add_statements
from zalo_support import answer, bot_texts, zalo_bot

from bot.channels.refs import PersonRef
from bot.sandbox.zalo_emulator import ZaloEmulator
from bot.services import identity
from storage.db import Database
from storage.models import Agency, Approval, Draft, DraftStatus, Role, User, UserStatus

ADMIN = "90001"  # in ADMIN_IDS as zalo:90001 (a bare number is a Telegram id)
HUNG = "a1b2c3d4e5f60718"  # the agency's supervisor
LAN = "7f3a9c0e51d2b4a8"  # a spokesperson, the statements' author
MINH = "5eed0000aa11bb22"  # a newcomer


def seed(db: Database) -> tuple[int, int]:
    """The agency, Hùng and Lan on Zalo, and a crisis (no room: Zalo has none) with two
    statements of Lan's; returns the drafts' ids."""
    now = datetime.now(UTC)
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        people = {}
        for account, name, role in (
            (HUNG, "Hùng", Role.SUPERVISOR),
            (LAN, "Lan", Role.SPOKESPERSON),
        ):
            user = User(full_name=name, role=role, status=UserStatus.ACTIVE, agency_id=agency.id)
            people[account] = identity.add_person(s, PersonRef("zalo", account), user)
        first, second = add_statements(
            s, agency.id or 0, people[LAN].id, now, numbers=(1, 2), body=BODY
        )
    return first, second


def status_of(db: Database, draft_id: int) -> str:
    with db.session() as s:
        draft = s.get(Draft, draft_id)
        assert draft is not None
        return draft.status


async def register_minh(zalo: ZaloEmulator, db: Database) -> None:
    """Minh registers by typing; the admin in ADMIN_IDS accepts him by typing."""
    ask_language = await answer(zalo, MINH, "/start", "1.")
    ask_name = await answer(zalo, MINH, choice(ask_language, "Tiếng Việt"))
    assert "tên" in ask_name.lower()
    ask_agency = await answer(zalo, MINH, "Trần Văn Minh", "(BYT)")
    ask_role = await answer(zalo, MINH, choice(ask_agency, "(BYT)"))
    ask_phone = await answer(zalo, MINH, choice(ask_role, "Người phát ngôn"))
    assert "0912 345 678" in ask_phone  # the example of a number to type: no button here
    done = await answer(zalo, MINH, "0912 345 678")
    with db.session() as s:
        minh = identity.person_for(s, PersonRef("zalo", MINH))
        assert minh is not None and minh.status == UserStatus.PENDING, done
        assert minh.phone == "+84912345678" and minh.phone_typed
        minh_id = minh.id
    request = await zalo.wait_for(
        lambda: next((t for t in bot_texts(zalo, ADMIN) if f"/accept {minh_id}" in t), None),
        timeout=20,
    )
    assert "Trần Văn Minh" in request and "+84912345678" in request
    last = zalo.messages(MINH)[-1].message_id
    assert await answer(zalo, ADMIN, f"/accept {minh_id}") == "Đã lưu quyết định."
    await zalo.wait_for_message(MINH, after=last, timeout=20)  # he is told
    with db.session() as s:
        minh = s.get(User, minh_id)
        assert minh is not None and minh.status == UserStatus.ACTIVE
        assert minh.role == Role.SPOKESPERSON


async def test_register_and_decide_drafts_on_zalo(
    zalo: ZaloEmulator, bot_db: tuple[str, Database], tmp_path: Path
) -> None:
    url, db = bot_db
    first, second = seed(db)
    async with zalo_bot(zalo, url, tmp_path, admin_ids=f"zalo:{ADMIN}"):
        for account in (ADMIN, HUNG, LAN):  # Zalo: the bot writes only to who wrote first
            await answer(zalo, account, "xin chào", timeout=30)

        await register_minh(zalo, db)

        # Approving by command; Lan reads the approved statement in her chat.
        submitted = await answer(zalo, LAN, f"/guiduyet {first}")
        assert "Hùng" in submitted
        request = await zalo.wait_for(
            lambda: next((t for t in bot_texts(zalo, HUNG) if f"/duyet {first}" in t), None),
            timeout=20,
        )
        assert BODY in request and f"/tuchoi {first}" in request and len(request) <= 2000
        mark = zalo.messages(LAN)[-1].message_id
        assert await answer(zalo, HUNG, f"/duyet {first}") == "Đã ghi nhận ý kiến của anh/chị."
        published = await zalo.wait_for(
            lambda: next((t for t in bot_texts(zalo, LAN, mark) if BODY in t), None), timeout=20
        )
        assert "<" not in published  # plain text on Zalo
        await zalo.wait_for(lambda: status_of(db, first) == DraftStatus.PUBLISHED, timeout=20)

        # Rejecting by command with the reason typed after the id.
        await answer(zalo, LAN, f"/guiduyet {second}")
        await zalo.wait_for(
            lambda: any(f"/tuchoi {second}" in t for t in bot_texts(zalo, HUNG)), timeout=20
        )
        mark = zalo.messages(LAN)[-1].message_id
        reason = "Số liệu chưa được kiểm chứng"
        recorded = await answer(zalo, HUNG, f"/tuchoi {second} {reason}")
        assert recorded == "Đã ghi nhận ý kiến của anh/chị."
        told = await zalo.wait_for(
            lambda: next((t for t in bot_texts(zalo, LAN, mark) if reason in t), None), timeout=20
        )
        assert "#2" in told
        assert status_of(db, second) == DraftStatus.REJECTED
        with db.session() as s:
            votes = s.exec(select(Approval.draft_id, Approval.decision, Approval.comment)).all()
        assert sorted(votes) == sorted([(first, "approve", ""), (second, "reject", reason)])
