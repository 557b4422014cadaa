"""Pool mode end to end: groups register themselves, a crisis takes one, resolving hands it back;
an empty pool keeps the crisis and attaches a room when a group arrives; spin-up from a button."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from emulator_fixtures import running_app
from sqlmodel import Session, select

from bot.app import build_application
from bot.buttons import register
from bot.channels.base import Button
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services.taskforces import opening
from handlers.conversation.dispatch import on_press
from handlers.conversation.turn import Turn
from storage.db import Database
from storage.models import Alert, AuditEvent, Crisis, Room, Subscription, Topic

from .conftest import POOL_RIGHTS, add_person, eventually, make_world, private_texts

CONFIRM = "✅ Yes, close the crisis"  # the button /resolve asks to press


def _room(db: Database, chat_id: int) -> Room | None:
    with db.session() as s:
        return s.exec(select(Room).where(Room.chat_id == str(chat_id))).first()


def _invited(emulator: TelegramEmulator, user_id: int) -> int:
    return sum(1 for t in private_texts(emulator, user_id) if "You are convened" in t)


async def test_pool_group_lifecycle(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    world = make_world(emulator, sqlite_db)
    lead, m1, other = world["lead"], world["m1"], world["other"]
    app = build_application(tf_settings(), sqlite_db, clock)
    async with running_app(app):
        group = emulator.create_supergroup("Phòng dự phòng 1")
        emulator.add_bot(group.id, rights=POOL_RIGHTS)
        registered = await emulator.wait_for_message(group.id)
        assert "room pool" in registered.text or "kho phòng" in registered.text
        room = _room(sqlite_db, group.id)
        assert room is not None and room.state == "free" and room.title == "Phòng dự phòng 1"
        # A group where the bot lacks rights is told so and stays out of the pool.
        weak = emulator.create_supergroup("Thiếu quyền")
        emulator.add_bot(weak.id, rights={"can_pin_messages": True})
        told = await emulator.wait_for_message(weak.id)
        assert "ban" in told.text or "chặn" in told.text
        assert _room(sqlite_db, weak.id) is None

        sent = emulator.send_text(lead.tg, "/crisis Hospital fire rumour @m1")
        await emulator.wait_for_message(
            lead.tg, lambda m: "is open" in m.text, after=sent.message_id
        )
        await emulator.wait_for(
            lambda: emulator.chat(group.id).title == "🟠 #1 Hospital fire rumour"
        )
        [link] = [x for x in emulator.invite_links(group.id) if x.creates_join_request]
        with sqlite_db.session() as s:
            crisis = s.get(Crisis, 1)
            assert crisis is not None and crisis.room_chat_id == str(group.id)
            assert crisis.room_thread_id is None and crisis.invite_link == link.invite_link
            brief_id = int(crisis.brief_message_id or 0)
        assert emulator.chat(group.id).pinned == [brief_id]
        assert _room(sqlite_db, group.id).state == "in_use"  # type: ignore[union-attr]
        await emulator.wait_for(lambda: _invited(emulator, m1.tg) == 1)

        # Only invited, registered people come in.
        emulator.request_join(m1.tg, link.invite_link)
        emulator.request_join(lead.tg, link.invite_link)
        emulator.request_join(other.tg, link.invite_link)
        await emulator.wait_for(lambda: emulator.chat(group.id).member(m1.tg).is_member)
        await emulator.wait_for(lambda: emulator.chat(group.id).member(lead.tg).is_member)
        await emulator.wait_for(lambda: len(emulator.calls_to("declineChatJoinRequest")) == 1)
        assert not emulator.chat(group.id).member(other.tg).is_member

        # Commands work in the group (no topic): the roster.
        asked = emulator.send_text(lead.tg, "/roster", chat_id=group.id)
        roster = await emulator.wait_for_message(group.id, after=asked.message_id, timeout=10)
        assert "M1 (Member): ✅ joined" in roster.text

        # Resolve: members removed, link revoked, title reset, the group free again.
        asked = emulator.send_text(lead.tg, "/resolve", chat_id=group.id)
        confirm = await emulator.wait_for_message(group.id, after=asked.message_id)
        await emulator.press_button(lead.tg, group.id, confirm.message_id, text=CONFIRM)
        await eventually(lambda: _room(sqlite_db, group.id).state == "free", timeout=15)  # type: ignore[union-attr]
        assert emulator.chat(group.id).title == "Phòng dự phòng 1"
        assert not emulator.chat(group.id).member(m1.tg).is_member
        assert not emulator.chat(group.id).member(lead.tg).is_member
        assert emulator.chat(group.id).member(m1.tg).status == "left"  # removed, not banned
        assert not [x for x in emulator.invite_links(group.id) if x.creates_join_request]
        docs = [m for m in emulator.messages(group.id) if "document" in m.data]
        assert {d.data["document"]["file_name"] for d in docs} == {
            "crisis-1-report.md",
            "crisis-1-report.docx",
        }

        # The freed group serves the next crisis.
        sent = emulator.send_text(lead.tg, "/crisis info Second wave")
        await emulator.wait_for_message(lead.tg, lambda m: "#2" in m.text, after=sent.message_id)
        await emulator.wait_for(lambda: emulator.chat(group.id).title == "🔵 #2 Second wave")

        # Removing the bot takes the group out of the pool.
        emulator.remove_bot(group.id)
        await eventually(lambda: _room(sqlite_db, group.id).state == "gone")  # type: ignore[union-attr]


async def test_empty_pool_keeps_the_crisis_and_attaches_later(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    world = make_world(emulator, sqlite_db)
    admin = add_person(emulator, sqlite_db, world, "admin", "admin")
    lead, m1 = world["lead"], world["m1"]
    app = build_application(tf_settings(), sqlite_db, clock)
    async with running_app(app):
        sent = emulator.send_text(lead.tg, "/crisis Water outage @m1")
        reply = await emulator.wait_for_message(
            lead.tg, lambda m: "is open" in m.text, after=sent.message_id
        )
        assert "No room yet" in reply.text
        await emulator.wait_for(
            lambda: any("has no room yet" in t for t in private_texts(emulator, admin.tg))
        )
        with sqlite_db.session() as s:
            crisis = s.get(Crisis, 1)
            assert crisis is not None and crisis.room_chat_id is None
        assert _invited(emulator, m1.tg) == 0  # invitations wait for the room

        group = emulator.create_supergroup("Spare")
        emulator.add_bot(group.id, rights=POOL_RIGHTS)
        await emulator.wait_for(lambda: emulator.chat(group.id).title == "🟠 #1 Water outage")
        await emulator.wait_for(lambda: _invited(emulator, m1.tg) == 1)
        await emulator.wait_for(
            lambda: any("has a room now" in t for t in private_texts(emulator, lead.tg))
        )


# The alert's "Open task force" button belongs to the alerts issue; this stand-in calls the same
# service the way it will, to show the spin-up from a button press.
OPEN = register("test.tfopen", lambda _s, actor, _id: actor.active, "test: open from alert")


@on_press(OPEN)
async def _open_from_alert(turn: Turn, ident: str) -> None:
    await turn.replies.notice()
    runtime = turn.runtime
    opened = await opening.open_crisis(
        runtime, turn.actor, "Alert: vaccine", "critical", alert_id=int(ident)
    )
    await runtime.notifier.send_text(
        turn.event.who.direct_chat(), runtime.renderer.render("crisis_opened", "en", o=opened)
    )


async def test_spin_up_from_an_alert_button(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    hub = emulator.create_supergroup("Hub", forum=True)
    emulator.add_bot(
        hub.id,
        rights={"can_manage_topics": True, "can_pin_messages": True, "can_invite_users": True},
    )
    world = make_world(emulator, sqlite_db, hub_chat_id=hub.id, deadline_hours=6)
    lead, m2 = world["lead"], world["m2"]
    alert_at = clock.now() - timedelta(hours=1)
    with sqlite_db.session() as s:
        topic = Topic(agency_id=world.agency_id, name="Vắc-xin", query="vaccine")
        s.add(topic)
        s.flush()
        s.add(Subscription(user_id=m2.id, topic_id=topic.id or 0))  # m2 follows the topic
        alert = Alert(
            topic_id=topic.id or 0,
            kind="volume_burst",
            severity="critical",
            dedupe_key="t",
            window_start=alert_at,
            window_end=alert_at,
            created_at=alert_at,
            outlets=7,
            negative_share=0.6,
        )
        s.add(alert)
        s.flush()
        alert_id = alert.id
    app = build_application(tf_settings(), sqlite_db, clock)
    async with running_app(app):
        card = await app.bot.send_message(
            lead.tg,
            "Alert",
            reply_markup=_markup(Button("Open task force", OPEN.name, alert_id or 0)),
        )
        await emulator.press_button(lead.tg, lead.tg, card.message_id, text="Open task force")
        await emulator.wait_for(lambda: len(emulator.topics(hub.id)) == 1)
        await emulator.wait_for(lambda: _invited(emulator, m2.tg) == 1)  # topic follower
    with sqlite_db.session() as s:
        crisis = s.get(Crisis, 1)
        assert crisis is not None
        assert crisis.alert_id == alert_id and crisis.topic_id == topic.id
        assert crisis.detected_at == alert_at  # the alert's time, not the press
        assert crisis.deadline_at == alert_at + timedelta(hours=6)  # the agency's own window
        assert _audit(s, "crisis.opened") == 1


def _audit(session: Session, action: str) -> int:
    return len(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def _markup(button: Button) -> Any:
    from bot.channels.telegram.notifier import keyboard

    return keyboard([[button]])
