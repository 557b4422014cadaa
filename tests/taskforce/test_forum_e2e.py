"""A crisis in forum mode, end to end: the real Application against the Bot API emulator."""

from __future__ import annotations

from typing import Any

from emulator_fixtures import running_app
from sqlmodel import select

from bot.app import build_application
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from storage.db import Database
from storage.models import AuditEvent, Crisis, CrisisMember, Room, Task, TimelineEvent

from .conftest import add_person, eventually, forum_world, private_texts

CONFIRM = "✅ Yes, close the crisis"  # the button /resolve asks to press


def _invites(emulator: TelegramEmulator, user_id: int) -> list[Any]:
    return [
        m
        for m in emulator.messages(user_id, from_bot=True)
        if any(b.get("callback_data", "").startswith("tf.join:") for b in _buttons(m))
    ]


def _room_state(db: Database) -> str:
    with db.session() as s:
        return s.exec(select(Room)).one().state


def _buttons(message: Any) -> list[dict[str, Any]]:
    try:
        return list(message.buttons())
    except Exception:
        return []


async def test_forum_task_force_from_command_to_resolve(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    hub, world = forum_world(emulator, sqlite_db, "Điều phối BYT")
    lead, boss, m1, m2, other = (world[n] for n in ("lead", "boss", "m1", "m2", "other"))
    stranger = emulator.create_user("Stranger", username="stranger")
    app = build_application(tf_settings(), sqlite_db, clock)
    async with running_app(app):
        sent = emulator.send_text(lead.tg, "/crisis critical Fake vaccine rumour @m1 @nobody")
        opened = await emulator.wait_for_message(
            lead.tg, lambda m: "is open" in (m.text or ""), after=sent.message_id
        )
        assert "Crisis #1: Fake vaccine rumour" in opened.text
        assert "@nobody" in opened.text  # named but not registered

        # The room: a topic named with severity, title and id; the brief posted and pinned in it.
        [topic] = emulator.topics(hub.id)
        assert topic.name == "🔴 #1 Fake vaccine rumour"
        with sqlite_db.session() as s:
            crisis = s.get(Crisis, 1)
            assert crisis is not None
            assert (crisis.room_chat_id, crisis.room_thread_id) == (
                str(hub.id),
                str(topic.message_thread_id),
            )
            assert crisis.severity == "critical"
            assert crisis.detected_at == crisis.created_at <= clock.now()
            assert (crisis.deadline_at - crisis.detected_at).total_seconds() == 24 * 3600
            brief_id = int(crisis.brief_message_id) if crisis.brief_message_id else None
            link = crisis.invite_link
        assert brief_id is not None and link is not None
        assert emulator.chat(hub.id).pinned == [brief_id]
        brief = emulator.message(hub.id, brief_id)
        assert brief.thread_id == topic.message_thread_id
        assert "Fake vaccine rumour" in brief.text and "Critical" in brief.text
        [hub_link] = [x for x in emulator.invite_links(hub.id) if x.invite_link == link]
        assert hub_link.creates_join_request

        # Convened: the supervisor and @m1, one invitation each; m2 (not named, not following
        # the topic) and "other" are not.
        await emulator.wait_for(lambda: len(_invites(emulator, boss.tg)) == 1)
        await emulator.wait_for(lambda: len(_invites(emulator, m1.tg)) == 1)
        assert not _invites(emulator, m2.tg) and not _invites(emulator, other.tg)

        # m1 joins: the button gives the join-request link, and the request is approved.
        invite = _invites(emulator, m1.tg)[0]
        await emulator.press_button(m1.tg, m1.tg, invite.message_id, text="Join")
        await emulator.wait_for(lambda: link in emulator.message(m1.tg, invite.message_id).text)
        emulator.request_join(m1.tg, link)
        await emulator.wait_for(lambda: emulator.chat(hub.id).member(m1.tg).is_member)

        # The boss declines; a later request from them is declined too.
        boss_invite = _invites(emulator, boss.tg)[0]
        await emulator.press_button(boss.tg, boss.tg, boss_invite.message_id, text="Decline")
        emulator.request_join(boss.tg, link)
        emulator.request_join(other.tg, link)  # registered, never convened
        emulator.request_join(stranger.id, link)  # never registered
        await emulator.wait_for(lambda: len(emulator.calls_to("declineChatJoinRequest")) == 3)
        for person in (boss.tg, other.tg, stranger.id):
            assert not emulator.chat(hub.id).member(person).is_member
        # The lead comes in through the same link (convened as lead).
        emulator.request_join(lead.tg, link)
        await emulator.wait_for(lambda: emulator.chat(hub.id).member(lead.tg).is_member)

        def states() -> dict[int, str]:
            with sqlite_db.session() as s:
                return {m.user_id: m.state for m in s.exec(select(CrisisMember)).all()}

        await eventually(
            lambda: states() == {lead.id: "joined", boss.id: "declined", m1.id: "joined"}
        )
        with sqlite_db.session() as s:
            declined = s.exec(
                select(AuditEvent).where(AuditEvent.action == "crisis.join_declined")
            ).all()
            assert sorted(e.after["reason"] for e in declined if e.after) == [
                "declined",
                "not_convened",
                "unregistered",
            ]

        thread = topic.message_thread_id
        # A non-lead cannot hand out roles; the server refuses and records it.
        asked = emulator.send_text(m1.tg, "/role @m1 approver", chat_id=hub.id, thread_id=thread)
        refused = await emulator.wait_for_message(hub.id, after=asked.message_id)
        assert "Only the lead or a supervisor" in refused.text
        assert refused.thread_id == thread
        asked = emulator.send_text(lead.tg, "/role @m1 drafter", chat_id=hub.id, thread_id=thread)
        done = await emulator.wait_for_message(hub.id, after=asked.message_id)
        assert (
            "role: <b>Drafter</b>" in (done.data.get("text_html") or "") or "Drafter" in done.text
        )

        # A task with an owner and a due time; the brief shows it, then shows it done.
        asked = emulator.send_text(
            lead.tg, "/task @m1 2h Call Tuoi Tre newsroom", chat_id=hub.id, thread_id=thread
        )
        task_msg = await emulator.wait_for_message(hub.id, after=asked.message_id)
        assert "Call Tuoi Tre newsroom" in task_msg.text and "M1" in task_msg.text
        await emulator.wait_for(
            lambda: "Call Tuoi Tre newsroom" in emulator.message(hub.id, brief_id).text
        )
        assert "Drafter: M1" in emulator.message(hub.id, brief_id).text
        # Someone else's task cannot be closed by a non-owner who is not the lead.
        answer = await emulator.press_button(m1.tg, hub.id, task_msg.message_id, text="✅ Done")
        assert not answer.get("show_alert")
        await emulator.wait_for(
            lambda: "Call Tuoi Tre newsroom" not in emulator.message(hub.id, brief_id).text
        )
        final_brief = emulator.message(hub.id, brief_id)
        assert "(1 open; 0 done)" not in final_brief.text and "0 open" not in final_brief.text
        assert "1 done" in final_brief.text
        assert final_brief.history, "the brief is edited in place"
        assert emulator.chat(hub.id).pinned == [brief_id], "never re-posted"
        with sqlite_db.session() as s:
            task = s.exec(select(Task)).one()
            assert task.done_at is not None and task.owner_id == m1.id

        # Status update, a note by reply, and the timeline.
        asked = emulator.send_text(
            lead.tg, "/update Ministry statement drafted", chat_id=hub.id, thread_id=thread
        )
        await emulator.wait_for_message(hub.id, after=asked.message_id)
        said = emulator.send_text(
            m1.tg, "Tuoi Tre will publish at 15:00", chat_id=hub.id, thread_id=thread
        )
        asked = emulator.send_text(
            lead.tg, "/note", chat_id=hub.id, thread_id=thread, reply_to=said.message_id
        )
        noted = await emulator.wait_for_message(hub.id, after=asked.message_id)
        assert "Added to the timeline" in noted.text
        asked = emulator.send_text(lead.tg, "/timeline", chat_id=hub.id, thread_id=thread)
        shown = await emulator.wait_for_message(hub.id, after=asked.message_id)
        for expected in (
            "Opened",
            "Joined",
            "Role",
            "Task done",
            "Update",
            "Tuoi Tre will publish",
        ):
            assert expected in shown.text, expected

        # Resolve: report in the topic and to the supervisor, topic closed, link revoked.
        # /resolve asks first; nothing is closed until the lead confirms.
        asked = emulator.send_text(lead.tg, "/resolve", chat_id=hub.id, thread_id=thread)
        confirm = await emulator.wait_for_message(hub.id, after=asked.message_id)
        assert "cannot be reopened" in confirm.text and confirm.thread_id == thread
        with sqlite_db.session() as s:
            assert s.get(Crisis, 1).status != "resolved"  # type: ignore[union-attr]
        answer = await emulator.press_button(m1.tg, hub.id, confirm.message_id, text=CONFIRM)
        assert answer.get("show_alert"), "a member who is not the lead cannot close it"
        await emulator.press_button(lead.tg, hub.id, confirm.message_id, text=CONFIRM)
        await emulator.wait_for(lambda: emulator.topics(hub.id)[0].closed, timeout=10)
        docs = [m for m in emulator.messages(hub.id, thread_id=thread) if "document" in m.data]
        assert sorted(d.data["document"]["file_name"] for d in docs) == [
            "crisis-1-report.docx",
            "crisis-1-report.md",
        ]
        boss_docs = [m for m in emulator.messages(boss.tg, from_bot=True) if "document" in m.data]
        assert len(boss_docs) == 2
        assert any("After-action report" in t for t in private_texts(emulator, boss.tg))
        await emulator.wait_for(
            lambda: link not in [x.invite_link for x in emulator.invite_links(hub.id)]
        )
        await eventually(lambda: _room_state(sqlite_db) == "closed")
    with sqlite_db.session() as s:
        crisis = s.get(Crisis, 1)
        assert crisis is not None and crisis.status == "resolved"
        kinds = [e.kind for e in s.exec(select(TimelineEvent).order_by(TimelineEvent.id))]  # type: ignore[arg-type]
    assert kinds[0] == "crisis.opened" and kinds[-1] == "crisis.resolved"
    for kind in ("room.ready", "member.joined", "role.changed", "task.added", "task.done", "note"):
        assert kind in kinds
    # Pressing Join is an accepted invitation; the join itself is written once, when it happens.
    assert kinds.count("member.accepted") == 1  # m1 pressed Join
    assert kinds.count("member.joined") == 2  # m1 and the lead came into the room


async def test_hub_member_joins_at_once_and_unreachable_people_can_be_asked_again(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    hub, world = forum_world(emulator, sqlite_db, members=0)
    lead, boss = world["lead"], world["boss"]
    shy = add_person(emulator, sqlite_db, world, "shy", "spokesperson", started=False)
    emulator.join(boss.tg, hub.id)  # the supervisor is already in the hub
    emulator.join(lead.tg, hub.id)
    app = build_application(tf_settings(), sqlite_db, clock)
    async with running_app(app):
        sent = emulator.send_text(lead.tg, "/crisis Bridge closure @shy")
        await emulator.wait_for_message(
            lead.tg, lambda m: "is open" in m.text, after=sent.message_id
        )
        await emulator.wait_for(lambda: len(_invites(emulator, boss.tg)) == 1)
        invite = _invites(emulator, boss.tg)[0]
        await emulator.press_button(boss.tg, boss.tg, invite.message_id, text="Join")
        await emulator.wait_for(
            lambda: "already in the room" in emulator.message(boss.tg, invite.message_id).text
        )
        thread = emulator.topics(hub.id)[0].message_thread_id
        asked = emulator.send_text(lead.tg, "/roster", chat_id=hub.id, thread_id=thread)
        roster = await emulator.wait_for_message(hub.id, after=asked.message_id, timeout=10)
        assert "Boss (Member): ✅ joined" in roster.text
        assert "Shy (Member): ⏳ no answer — cannot be messaged" in roster.text
        # Once they have started the bot, convening them again sends the invitation.
        emulator.user(shy.tg).started = True
        emulator.world.private_chat(emulator.user(shy.tg))
        asked = emulator.send_text(lead.tg, "/convene @shy", chat_id=hub.id, thread_id=thread)
        await emulator.wait_for_message(hub.id, after=asked.message_id, timeout=10)
        await eventually(lambda: len(_invites(emulator, shy.tg)) == 1)
        # Or picked from a list of the agency's registered people not yet convened.
        asked = emulator.send_text(lead.tg, "/convene", chat_id=hub.id, thread_id=thread)
        picker = await emulator.wait_for_message(hub.id, after=asked.message_id, timeout=10)
        assert [b["text"] for b in picker.buttons()] == ["Other"]
        other = world["other"]
        await emulator.press_button(lead.tg, hub.id, picker.message_id, text="Other")
        await eventually(lambda: len(_invites(emulator, other.tg)) == 1)
