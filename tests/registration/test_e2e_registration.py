"""Registration and verification end to end: the real Application against the emulator."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from emulator_fixtures import running_app
from registration.reg_helpers import add_agencies, add_user, labels, last_id, press, say
from sqlmodel import col, select

from bot.app import build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from storage.db import Database
from storage.models import AuditEvent, ConversationState, Invite, User


def state_of(db: Database, telegram_id: int) -> ConversationState | None:
    with db.session() as s:
        return s.exec(
            select(ConversationState).where(
                ConversationState.user_ref == f"tg:{telegram_id}",
                ConversationState.flow == "register",
            )
        ).first()


def user_of(db: Database, telegram_id: int) -> User | None:
    with db.session() as s:
        return identity.person_for(s, person_ref(telegram_id))


def audit_actions(db: Database, subject_prefix: str = "") -> list[str]:
    with db.session() as s:
        rows = s.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    return [e.action for e in rows if e.subject.startswith(subject_prefix)]


async def register(
    emulator: TelegramEmulator, uid: int, *, lang_label: str, name: str, agency: str, role: str
) -> Any:
    first = await say(emulator, uid, "/start")
    assert labels(first) == ["Tiếng Việt", "English"]
    _, _ask_name = await press(emulator, uid, first, lang_label)
    ask_agency = await say(emulator, uid, name)
    _, ask_role = await press(emulator, uid, ask_agency, agency)
    _, ask_phone = await press(emulator, uid, ask_role, role)
    return ask_phone


async def test_happy_path_in_vietnamese_approved_by_admin(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"), ("BTC", "Bộ Tài chính"))
    admin = emulator.create_user("Admin", language_code="en")
    sup = emulator.create_user("Sup", language_code="vi")
    alice = emulator.create_user("Alice", username="Alice_VN", language_code="vi")
    emulator.send_text(admin.id, "hello")
    emulator.send_text(sup.id, "xin chào")
    add_user(sqlite_db, sup.id, full_name="Giám sát BYT", role="supervisor", agency_id=ids["BYT"])
    app = build_application(app_settings(str(admin.id)), sqlite_db, clock)
    async with running_app(app):
        first = await say(emulator, alice.id, "/start")
        assert "Chọn ngôn ngữ" in first.data["text"]
        assert state_of(sqlite_db, alice.id).step == "language"  # type: ignore[union-attr]
        _, ask_name = await press(emulator, alice.id, first, "Tiếng Việt")
        assert "Họ và tên" in ask_name.data["text"]
        ask_agency = await say(emulator, alice.id, "  Nguyễn   Văn An  ")
        assert labels(ask_agency) == ["Bộ Tài chính (BTC)", "Bộ Y tế (BYT)"]
        _, ask_role = await press(emulator, alice.id, ask_agency, "Bộ Y tế (BYT)")
        assert labels(ask_role) == ["Người phát ngôn", "Thành viên"]
        _, ask_phone = await press(emulator, alice.id, ask_role, "Người phát ngôn")
        keyboard = ask_phone.reply_keyboard
        assert keyboard is not None and keyboard["keyboard"][0][0]["request_contact"] is True
        state = state_of(sqlite_db, alice.id)
        assert state is not None and state.step == "phone"
        assert state.data["full_name"] == "Nguyễn Văn An" and state.data["agency_id"] == ids["BYT"]

        before = last_id(emulator, admin.id)
        sent = emulator.send_contact(alice.id, "+84 912 345 678")
        done = await emulator.wait_for_message(alice.id, after=sent.message_id)
        assert "đang chờ phê duyệt" in done.data["text"]
        assert state_of(sqlite_db, alice.id) is None
        row = user_of(sqlite_db, alice.id)
        assert row is not None and row.status == "pending" and row.requested_role == "spokesperson"
        assert row.phone == "+84912345678" and row.username == "Alice_VN" and row.language == "vi"

        to_admin = await emulator.wait_for_message(admin.id, after=before)
        to_sup = await emulator.wait_for_message(
            sup.id, lambda m: "Nguyễn Văn An" in (m.text or "")
        )
        # An ADMIN_IDS admin without a row gets the default language, Vietnamese.
        assert "Yêu cầu đăng ký mới" in to_admin.data["text"]
        assert "Yêu cầu đăng ký mới" in to_sup.data["text"]
        assert labels(to_admin) == ["✓ Phê duyệt", "✗ Từ chối"]

        before_alice = last_id(emulator, alice.id)
        answer = await emulator.press_button(
            admin.id, admin.id, to_admin.message_id, text="✓ Phê duyệt"
        )
        assert answer["text"] == "Decision saved."
        told = await emulator.wait_for_message(alice.id, after=before_alice)
        assert "đã được phê duyệt" in told.data["text"] and "Người phát ngôn" in told.data["text"]
        await emulator.wait_for(
            lambda: (
                "Đã phê duyệt bởi Admin" in (emulator.message(sup.id, to_sup.message_id).text or "")
            )
        )
        assert "✓ Đã phê duyệt bởi Admin" in emulator.message(admin.id, to_admin.message_id).text
        assert emulator.message(sup.id, to_sup.message_id).buttons() == []
        await emulator.wait_for_call(
            "setMyCommands",
            lambda c: '"chat_id"' in str(c.params) and str(alice.id) in str(c.params),
        )

    row = user_of(sqlite_db, alice.id)
    assert row is not None and row.status == "active" and row.role == "spokesperson"
    with sqlite_db.session() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "user.approved")).one()
    assert event.before is not None and event.before["status"] == "pending"
    assert (
        event.after is not None
        and event.after["status"] == "active"
        and event.after["by"] == "Admin"
    )


async def test_english_rejection_with_reason_by_supervisor(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    sup = emulator.create_user("Sup", language_code="en")
    bob = emulator.create_user("Bob", language_code="vi")
    emulator.send_text(sup.id, "hi")
    add_user(
        sqlite_db,
        sup.id,
        full_name="Sup <b>BYT</b>",
        role="supervisor",
        agency_id=ids["BYT"],
        language="en",
    )
    app = build_application(app_settings(), sqlite_db, clock)
    async with running_app(app):
        ask_phone = await register(
            emulator,
            bob.id,
            lang_label="English",
            name="Bob Smith",
            agency="Bộ Y tế (BYT)",
            role="Member",
        )
        assert "share your phone number" in ask_phone.data["text"]
        before = last_id(emulator, sup.id)
        shared = emulator.send_contact(bob.id, "0912345678")
        request = await emulator.wait_for_message(sup.id, after=before)
        # Bob's "awaiting approval" goes out in his chat's queue, not necessarily before the
        # supervisor's request: the rejection must come after it, in his chat.
        await emulator.wait_for_message(
            bob.id, lambda m: "awaiting approval" in (m.text or ""), after=shared.message_id
        )
        _, ask_reason = await press(emulator, sup.id, request, "✗ Reject")
        assert "Why are you rejecting Bob Smith" in ask_reason.data["text"]
        before_bob = last_id(emulator, bob.id)
        await say(emulator, sup.id, "Not a member of this agency")
        told = await emulator.wait_for_message(bob.id, after=before_bob)
        assert (
            told.data["text"]
            == "❌ Your registration request was rejected. Reason: Not a member of this agency"
        )
        edited = emulator.message(sup.id, request.message_id)
        assert (
            "✗ Rejected by Sup <b>BYT</b>: Not a member" in edited.data["text"]
        )  # escaped, shown as text
    row = user_of(sqlite_db, bob.id)
    assert row is not None and row.status == "rejected" and row.role == "member"
    with sqlite_db.session() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "user.rejected")).one()
        assert event.after is not None and event.after["reason"] == "Not a member of this agency"
        assert s.exec(select(ConversationState)).all() == []


async def test_supervisor_decides_only_for_own_agency_and_forged_presses_are_refused(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"), ("BTC", "Bộ Tài chính"))
    own = emulator.create_user("Own", language_code="en")
    other = emulator.create_user("Other", language_code="en")
    member = emulator.create_user("Member", language_code="en")
    carol = emulator.create_user("Carol", language_code="en")
    for person in (own, other, member):  # they have talked to the bot before
        emulator.world.private_chat(person)
        person.started = True
    add_user(
        sqlite_db,
        own.id,
        full_name="Own Sup",
        role="supervisor",
        agency_id=ids["BYT"],
        language="en",
    )
    add_user(
        sqlite_db,
        other.id,
        full_name="Other Sup",
        role="supervisor",
        agency_id=ids["BTC"],
        language="en",
    )
    add_user(
        sqlite_db, member.id, full_name="Member", role="member", agency_id=ids["BYT"], language="en"
    )
    app = build_application(app_settings(), sqlite_db, clock)
    async with running_app(app):
        await register(
            emulator,
            carol.id,
            lang_label="English",
            name="Carol",
            agency="Bộ Y tế (BYT)",
            role="Spokesperson",
        )
        before = last_id(emulator, own.id)
        emulator.send_contact(carol.id, "+84900000001")
        request = await emulator.wait_for_message(own.id, after=before)
        carol_id = user_of(sqlite_db, carol.id).id  # type: ignore[union-attr]
        assert not emulator.messages(
            other.id, from_bot=True
        )  # another agency's supervisor is not asked

        for person in (other, member):
            mine = await say(emulator, person.id, "/help")
            for data in (f"reg.approve:{carol_id}", f"reg.reject:{carol_id}"):
                answer = await emulator.press_button(
                    person.id, person.id, mine.message_id, data=data
                )
                assert answer["text"] == "You are not allowed to do this."
            answer = await emulator.press_button(
                person.id, person.id, mine.message_id, data="reg.approve:x1"
            )
            assert answer["text"] == "You are not allowed to do this."
            answer = await emulator.press_button(
                person.id, person.id, mine.message_id, data="reg.approve:1:2"
            )
            assert answer["text"].startswith("This button is not valid")
        assert user_of(sqlite_db, carol.id).status == "pending"  # type: ignore[union-attr]

        answer = await emulator.press_button(own.id, own.id, request.message_id, text="✓ Approve")
        assert answer["text"] == "Decision saved."
    assert user_of(sqlite_db, carol.id).status == "active"  # type: ignore[union-attr]
    actions = audit_actions(sqlite_db)
    assert actions.count("button.refused") == 6 and actions.count("button.forged") == 2
    assert actions.count("user.approved") == 1


def _two_deciders(
    emulator: TelegramEmulator, db: Database, app_settings: Any, clock: SimulatedClock
) -> tuple[Any, Any, Any, Any]:
    """An admin (global) and BYT's supervisor, both able to decide, and Dan, who is not
    registered yet; the app, not started."""
    ids = add_agencies(db, ("BYT", "Bộ Y tế"))
    admin = emulator.create_user("Admin", language_code="en")
    sup = emulator.create_user("Sup", language_code="en")
    dan = emulator.create_user("Dan", language_code="en")
    emulator.send_text(admin.id, "hi")
    emulator.send_text(sup.id, "hi")
    add_user(db, sup.id, full_name="Sup", role="supervisor", agency_id=ids["BYT"], language="en")
    return admin, sup, dan, build_application(app_settings(str(admin.id)), db, clock)


async def _dan_registers(emulator: TelegramEmulator, dan_id: int) -> None:
    """Dan's steps up to the phone, which each test sends itself."""
    await register(
        emulator, dan_id, lang_label="English", name="Dan", agency="Bộ Y tế (BYT)", role="Member"
    )


async def test_two_deciders_at_once_give_one_decision(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    admin, sup, dan, app = _two_deciders(emulator, sqlite_db, app_settings, clock)
    async with running_app(app):
        await _dan_registers(emulator, dan.id)
        emulator.send_contact(dan.id, "+84900000002")
        to_admin = await emulator.wait_for_message(admin.id, lambda m: "Dan" in (m.text or ""))
        to_sup = await emulator.wait_for_message(sup.id, lambda m: "Dan" in (m.text or ""))
        answers = await asyncio.gather(
            emulator.press_button(admin.id, admin.id, to_admin.message_id, text="✓ Phê duyệt"),
            emulator.press_button(sup.id, sup.id, to_sup.message_id, text="✗ Reject"),
        )
        texts = sorted(a["text"] for a in answers)
        assert texts[0] == "Decision saved." or texts[1] == "Decision saved."
        loser = [t for t in texts if t != "Decision saved."]
        assert len(loser) == 1 and loser[0].startswith("This request was already ")
        # Whoever lost: the other decider's message now shows the decision.
        await emulator.wait_for(lambda: not emulator.message(sup.id, to_sup.message_id).buttons())
    decisions = [a for a in audit_actions(sqlite_db) if a in ("user.approved", "user.rejected")]
    assert len(decisions) == 1


async def test_bad_input_gets_a_clear_reply_and_changes_nothing(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    eve = emulator.create_user("Eve", language_code="en")
    mallory = emulator.create_user("Mallory", language_code="en")
    app = build_application(app_settings(), sqlite_db, clock)
    async with running_app(app):
        first = await say(emulator, eve.id, "/start")
        _, _ = await press(emulator, eve.id, first, "English")
        huge = await say(emulator, eve.id, "A" * 10_000)
        assert huge.data["text"].startswith("That name is too long: at most 100 characters.")
        assert state_of(sqlite_db, eve.id).step == "name"  # type: ignore[union-attr]
        bell = await say(emulator, eve.id, "Eve\u0007 Bell")
        assert "control characters" in bell.data["text"]
        short = await say(emulator, eve.id, " E ")
        assert "too short" in short.data["text"]
        unknown = await say(emulator, eve.id, "/frobnicate")
        assert (
            unknown.data["text"] == "Unknown command. Send /help to see the commands you can use."
        )
        name = "Éve 🌟‍🔥 محمد عبد الله"
        ask_agency = await say(emulator, eve.id, name)
        assert state_of(sqlite_db, eve.id).data["full_name"] == name  # type: ignore[union-attr]
        typed = await say(emulator, eve.id, "Bộ Y tế")
        assert typed.data["text"] == "Please choose with the buttons under the question."
        ask_agency = await emulator.wait_for_message(
            eve.id, lambda m: bool(m.buttons()), after=typed.message_id
        )
        _, ask_role = await press(emulator, eve.id, ask_agency, "Bộ Y tế (BYT)")
        _, _ = await press(emulator, eve.id, ask_role, "Member")
        text_reply = await say(emulator, eve.id, "+84 912 345 678")
        assert "button below" in text_reply.data["text"]
        assert text_reply.reply_keyboard is not None  # the keyboard again
        sent = emulator.send_contact(eve.id, "+84 999 999 999", contact_user_id=mallory.id)
        theirs = await emulator.wait_for_message(eve.id, after=sent.message_id)
        assert theirs.data["text"].startswith("Only your own phone number is accepted")
        sent = emulator.send_contact(eve.id, "+84 111", first_name="Phonebook")
        theirs = await emulator.wait_for_message(eve.id, after=sent.message_id)
        assert theirs.data["text"].startswith("Only your own phone number is accepted")
        assert user_of(sqlite_db, eve.id) is None
        assert state_of(sqlite_db, eve.id).step == "phone"  # type: ignore[union-attr]
        # /start while in progress re-asks the current step.
        sent = emulator.send_text(eve.id, "/start")
        again = await emulator.wait_for_message(
            eve.id, lambda m: m.reply_keyboard is not None, after=sent.message_id
        )
        assert "share your phone number" in again.data["text"]
        sent = emulator.send_contact(eve.id, "+84 912 345 678")
        done = await emulator.wait_for_message(eve.id, after=sent.message_id)
        assert "awaiting approval" in done.data["text"]
        assert "Éve 🌟‍🔥 محمد عبد الله" in done.data["text"]
        # /cancel of a fresh registration, and a group /start.
        group = emulator.create_group("Press office", member_ids=[mallory.id])
        emulator.add_bot(group.id)
        sent = emulator.send_text(mallory.id, "/start", chat_id=group.id)
        in_group = await emulator.wait_for_message(
            group.id, lambda m: "privately" in (m.text or ""), after=sent.message_id
        )
        assert in_group.data["text"].startswith("To register, please message the bot privately")
        await say(emulator, mallory.id, "/start")
        assert state_of(sqlite_db, mallory.id) is not None
        cancelled = await say(emulator, mallory.id, "/cancel")
        assert cancelled.data["text"].startswith("Cancelled.")
        assert state_of(sqlite_db, mallory.id) is None
    row = user_of(sqlite_db, eve.id)
    assert row is not None and row.full_name == name


INVITE_LINK = re.compile(r"https://t\.me/crisisdesk_test_bot\?start=([A-Za-z0-9_-]+)")


async def test_invites_skip_approval_and_bad_codes_are_refused(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"), ("BTC", "Bộ Tài chính"))
    admin = emulator.create_user("Admin", language_code="en")
    sup = emulator.create_user("Sup", language_code="en")
    fay, gus, hal, ivy = (
        emulator.create_user(n, language_code="en") for n in ("Fay", "Gus", "Hal", "Ivy")
    )
    add_user(
        sqlite_db, sup.id, full_name="Sup", role="supervisor", agency_id=ids["BTC"], language="en"
    )
    app = build_application(app_settings(str(admin.id)), sqlite_db, clock)
    async with running_app(app):
        usage = await say(emulator, sup.id, "/invite supervisor")
        assert usage.data["text"].startswith("Usage: /invite <role>")
        pick = await say(emulator, admin.id, "/invite spokesperson")
        await emulator.press_button(admin.id, admin.id, pick.message_id, text="Bộ Y tế (BYT)")
        created = await emulator.wait_for(  # the picker is edited into the link
            lambda: INVITE_LINK.search(emulator.message(admin.id, pick.message_id).text or "")
        )
        match = created
        assert match is not None
        code = match.group(1)
        assert len(code) >= 22 and len(f"{code}") <= 64

        welcome = await say(emulator, fay.id, f"/start {code}")
        assert "no approval will be needed" in welcome.data["text"]
        first = await emulator.wait_for_message(fay.id, lambda m: bool(m.buttons()))
        _, _ = await press(emulator, fay.id, first, "English")
        ask_phone = await say(emulator, fay.id, "Fay Nguyen")
        assert "You are invited to <b>" not in ask_phone.data["text"]
        assert "You are invited to Bộ Y tế as Spokesperson" in ask_phone.data["text"]
        sent = emulator.send_contact(fay.id, "+84 900 000 003")
        done = await emulator.wait_for_message(fay.id, after=sent.message_id)
        assert done.data["text"].startswith("Welcome, Fay Nguyen! Your account is active")
        row = user_of(sqlite_db, fay.id)
        assert row is not None and row.status == "active" and row.role == "spokesperson"
        assert row.agency_id == ids["BYT"]

        used = await say(emulator, gus.id, f"/start {code}")
        assert used.data["text"].startswith("This invite code has already been used.")
        forged = await say(emulator, gus.id, "/start AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        assert forged.data["text"].startswith("This invite code is not valid.")
        junk = await say(emulator, gus.id, "/start <script>")
        assert junk.data["text"].startswith("This invite code is not valid.")

        # Supervisor: own agency, no agency picker; then revoke from /invites.
        made = await say(emulator, sup.id, "/invite member")
        code2 = INVITE_LINK.search(made.data["text"]).group(1)  # type: ignore[union-attr]
        listing = await say(emulator, sup.id, "/invites")
        assert "BTC" in listing.data["text"] and "BYT" not in listing.data["text"]
        revoke_label = labels(listing)[0]
        answer = await emulator.press_button(sup.id, sup.id, listing.message_id, text=revoke_label)
        assert answer["text"].startswith("Invite #") and "revoked" in answer["text"]
        revoked = await say(emulator, hal.id, f"/start {code2}")
        assert revoked.data["text"].startswith("This invite code was revoked.")

        pick = await say(emulator, admin.id, "/invite member")
        await emulator.press_button(admin.id, admin.id, pick.message_id, text="Bộ Tài chính (BTC)")
        await emulator.wait_for(
            lambda: INVITE_LINK.search(emulator.message(admin.id, pick.message_id).text or "")
        )
        code3 = INVITE_LINK.search(emulator.message(admin.id, pick.message_id).text or "").group(1)  # type: ignore[union-attr]
        clock.advance(timedelta(hours=72, seconds=1))
        expired = await say(emulator, ivy.id, f"/start {code3}")
        assert expired.data["text"].startswith("This invite code has expired.")
        for person in (gus, hal, ivy):
            assert user_of(sqlite_db, person.id) is None and state_of(sqlite_db, person.id) is None
    with sqlite_db.session() as s:
        refusals = s.exec(select(AuditEvent).where(AuditEvent.action == "invite.refused")).all()
        first_invite = s.exec(select(Invite).where(Invite.code == code)).one()
    assert sorted(e.after["reason"] for e in refusals if e.after) == [
        "expired",
        "revoked",
        "unknown",
        "unknown",
        "used",
    ]
    assert first_invite.used_by_id == row.id


async def test_a_decision_before_every_decider_was_asked_updates_the_copies_sent(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    """The admin decides while the supervisor's request is still on its way: the admin's copy
    shows the decision (it was unknown to the decision when copies were recorded only after
    every decider had been asked)."""
    admin, sup, dan, app = _two_deciders(emulator, sqlite_db, app_settings, clock)
    async with running_app(app):
        await _dan_registers(emulator, dan.id)
        emulator.inject_delay("sendMessage", 4.0, chat_id=sup.id)  # the second request lags
        emulator.send_contact(dan.id, "+84900000002")
        to_admin = await emulator.wait_for_message(admin.id, lambda m: "Dan" in (m.text or ""))
        asked = [m for m in emulator.messages(sup.id, from_bot=True) if "Dan" in (m.text or "")]
        assert not asked  # still on its way
        answer = await emulator.press_button(
            admin.id, admin.id, to_admin.message_id, text="✓ Phê duyệt"
        )
        assert answer["text"] == "Decision saved."
        await emulator.wait_for(
            lambda: not emulator.message(admin.id, to_admin.message_id).buttons(), timeout=12
        )
        assert "Admin" in (emulator.message(admin.id, to_admin.message_id).text or "")
