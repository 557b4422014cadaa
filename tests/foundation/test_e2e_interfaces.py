"""The shared interfaces end to end: the real Application against the Bot API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from emulator_fixtures import running_app
from sqlalchemy import event
from sqlmodel import select
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.app import build_application
from bot.channels.base import (
    Attachment,
    Button,
    RateLimited,
    RecipientUnreachable,
    Rejected,
)
from bot.channels.refs import ChatRef
from bot.channels.telegram.notifier import TelegramNotifier, chat_ref, person_ref
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.state import StoredMessage
from bot.services import identity
from bot.services.due import schedule
from bot.services.notify import notify_payload
from storage.db import Database
from storage.models import AuditEvent, User

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


@pytest_asyncio.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    """A plain PTB Bot (no rate limiter, so 429s surface) pointed at the emulator."""
    async with Bot(
        emulator.token,
        base_url=emulator.bot_url,
        base_file_url=emulator.file_url,
        request=HTTPXRequest(read_timeout=5),
    ) as ptb_bot:
        yield ptb_bot


async def test_notifier_sends_edits_pins_and_uploads(emulator: TelegramEmulator, bot: Bot) -> None:
    notifier = TelegramNotifier(bot)
    alice = emulator.create_user("Alice")
    emulator.send_text(alice.id, "/start")
    sent = await notifier.send_text(
        chat_ref(alice.id), "<b>Cảnh báo</b> &amp; chi tiết", [[Button("Xác nhận", "test.ok", 7)]]
    )
    stored = emulator.message(alice.id, int(sent.message_id))
    assert stored.data["text"] == "Cảnh báo & chi tiết"
    assert stored.buttons()[0]["callback_data"] == "test.ok:7"
    await notifier.edit_text(
        sent, "<b>Cảnh báo</b> &amp; chi tiết", [[Button("Xác nhận", "test.ok", 7)]]
    )
    await notifier.edit_text(sent, "✓ đã xác nhận")
    assert emulator.message(alice.id, int(sent.message_id)).data["text"] == "✓ đã xác nhận"

    photo = await notifier.send_photo(chat_ref(alice.id), Attachment("chart.png", PNG), "Biểu đồ")
    assert "photo" in emulator.message(alice.id, int(photo.message_id)).data
    doc = await notifier.send_document(chat_ref(alice.id), Attachment("report.md", b"# Report\n"))
    assert (
        emulator.message(alice.id, int(doc.message_id)).data["document"]["file_name"] == "report.md"
    )

    group = emulator.create_supergroup("Tổ công tác", forum=True, member_ids=[alice.id])
    emulator.add_bot(group.id, rights={"can_pin_messages": True, "can_manage_topics": True})
    topic = await bot.create_forum_topic(group.id, "Vụ việc #1")
    in_topic = await notifier.send_text(chat_ref(group.id, topic.message_thread_id), "Tóm tắt")
    assert in_topic.chat == ChatRef("telegram", str(group.id), str(topic.message_thread_id))
    await notifier.pin(in_topic)
    assert emulator.chat(group.id).pinned == [int(in_topic.message_id)]
    assert notifier.link_to(in_topic.chat) == (
        f"https://t.me/c/{str(group.id)[4:]}/{topic.message_thread_id}"
    )
    assert notifier.link_to(chat_ref(alice.id)) is None  # a private chat has no such link
    with pytest.raises(ValueError, match="zalo"):
        await notifier.send_text(ChatRef("zalo", "u-1"), "hello")


async def test_notifier_maps_failures(emulator: TelegramEmulator, bot: Bot) -> None:
    notifier = TelegramNotifier(bot)
    stranger = emulator.create_user("Stranger")
    with pytest.raises(RecipientUnreachable):
        await notifier.send_text(chat_ref(stranger.id), "hello")
    with pytest.raises(RecipientUnreachable):
        await notifier.send_text(chat_ref(-100999), "hello")
    emulator.send_text(stranger.id, "/start")
    with pytest.raises(Rejected, match=r"(?i)can't parse entities"):
        await notifier.send_text(chat_ref(stranger.id), "<script>x</script>")
    emulator.inject_error("sendMessage", 429, retry_after=3)
    with pytest.raises(RateLimited) as info:
        await notifier.send_text(chat_ref(stranger.id), "hello")
    assert info.value.retry_after == 3
    emulator.block_bot(stranger.id)
    with pytest.raises(RecipientUnreachable, match="blocked"):
        await notifier.send_text(chat_ref(stranger.id), "hello")


@pytest.fixture
def app_settings(emulator: TelegramEmulator, make_settings: Any) -> Any:
    def factory(admin_ids: str = "") -> Any:
        return make_settings(
            {
                "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
                "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
                "CRISISDESK_ADMIN_IDS": admin_ids,
                "CRISISDESK_TICK_SECONDS": "0.1",
            }
        )

    return factory


async def test_admin_only_button_and_forged_data(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    admin = emulator.create_user("Admin", language_code="en")
    member = emulator.create_user("Member", language_code="en")
    with sqlite_db.session() as s:
        identity.add_person(
            s,
            person_ref(member.id),
            User(
                full_name="Member",
                status="active",
                role="member",
                language="en",
            ),
        )
    app = build_application(app_settings(str(admin.id)), sqlite_db, clock)
    async with running_app(app):
        asked = emulator.send_text(admin.id, "/status")
        status = await emulator.wait_for_message(admin.id, after=asked.message_id)
        assert "CrisisDesk status" in status.data["text"]
        assert "People: 1 active" in status.data["text"]

        answer = await emulator.press_button(admin.id, admin.id, status.message_id, text="Refresh")
        assert answer.get("show_alert") in (None, False)

        # The member cannot see the admin's message, so a hostile client forges the press in
        # their own chat: the server refuses it and records the attempt.
        emulator.send_text(member.id, "/status")
        refused_reply = await emulator.wait_for_message(member.id)
        assert refused_reply.data["text"] == "You are not allowed to use this command."
        mine = emulator.messages(member.id, from_bot=True)[-1]
        answer = await emulator.press_button(
            member.id, member.id, mine.message_id, data="sys.status:0"
        )
        assert answer["show_alert"] is True and answer["text"] == "You are not allowed to do this."

        for forged in ("sys.status:0:1", "drop.table:1", "sys.status:<b>"):
            answer = await emulator.press_button(member.id, member.id, mine.message_id, data=forged)
            assert answer["text"].startswith("This button is not valid")

    with sqlite_db.session() as s:
        events = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    actions = ["command.refused", "button.refused"] + ["button.forged"] * 3
    assert [e.action for e in events] == actions
    assert all(e.actor_ref == f"tg:{member.id}" for e in events)
    assert events[0].subject == "command:/status" and events[0].after == {"reason": "needs admin"}
    assert events[1].after == {"reason": "sys.status"}


async def test_suspended_person_is_refused(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    person = emulator.create_user("Suspended", language_code="vi")
    with sqlite_db.session() as s:
        identity.add_person(
            s, person_ref(person.id), User(full_name="S", status="suspended", role="admin")
        )
    app = build_application(app_settings(), sqlite_db, clock)
    async with running_app(app):
        emulator.send_text(person.id, "/start")
        fake = await emulator.wait_for_message(person.id, timeout=0.3, from_bot=False)
        answer = await emulator.press_button(
            person.id, person.id, fake.message_id, data="sys.status:0"
        )
    assert answer["text"].startswith("Tài khoản của bạn đang bị tạm khóa")


async def test_tick_fires_due_rows_on_the_simulated_clock(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    alice = emulator.create_user("Alice", language_code="vi")
    emulator.send_text(alice.id, "xin chào")  # opens the chat (free text gets its own answer)
    with sqlite_db.session() as s:
        user = User(full_name="Alice", status="active", language="vi")
        identity.add_person(s, person_ref(alice.id), user)
        s.flush()
        assert user.id is not None
        schedule(
            s,
            "notify",
            clock.now() + timedelta(hours=1),
            payload=notify_payload(user.id, "reminder", text="họp báo lúc 15:00"),
        )
    app = build_application(app_settings(), sqlite_db, clock)
    async with running_app(app):
        await emulator.wait_for_call("getUpdates")
        with pytest.raises(TimeoutError):
            await emulator.wait_for_message(alice.id, _reminder, timeout=0.5)
        clock.advance(timedelta(hours=1))
        message = await emulator.wait_for_message(alice.id, _reminder, timeout=3)
    assert message.data["text"] == "⏰ Nhắc việc: họp báo lúc 15:00"


def _reminder(message: StoredMessage) -> bool:
    return str(message.data.get("text", "")).startswith("⏰")


async def test_an_update_reads_its_sender_once(
    emulator: TelegramEmulator, sqlite_db: Database, app_settings: Any, clock: SimulatedClock
) -> None:
    """The gate's read of the sender serves the flow too (issue 17: at 200 updates a second
    each read of a person is a measurable part of the work)."""
    admin = emulator.create_user("Admin", language_code="en")
    reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        if "channelidentity" in statement.lower() and str(admin.id) in map(str, params or ()):
            reads.append(statement)

    event.listen(sqlite_db.engine, "before_cursor_execute", record)
    app = build_application(app_settings(str(admin.id)), sqlite_db, clock)
    async with running_app(app):
        asked = emulator.send_text(admin.id, "/status")
        status = await emulator.wait_for_message(admin.id, after=asked.message_id)
        reads.clear()  # the start-up job reads the admins too (their command menus)
        await emulator.press_button(admin.id, admin.id, status.message_id, text="Refresh")
        assert len(reads) == 1, reads
