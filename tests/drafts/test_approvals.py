"""Approval rules end to end: self, concurrent, double, forged, non-approver, PIN, reminders,
restarts, and a 10,000-character statement."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from drafts_flows import (
    approve,
    draft_id_of,
    field_asked,
    fill,
    fill_and_submit,
    press,
    request_for,
    wait_private,
)
from emulator_fixtures import running_app
from sqlmodel import col, select

from bot.channels.telegram.limits import TEXT_LIMIT
from bot.channels.telegram.notifier import person_ref
from bot.services import drafts as dr
from bot.services import identity
from bot.services import press_templates as pt
from bot.services.permissions import Actor
from storage.models import (
    Approval,
    AuditEvent,
    Crisis,
    Draft,
    Due,
    User,
)


def _draft(desk: Any, draft_id: int) -> Draft:
    with desk.db.session() as s:
        draft = s.get(Draft, draft_id)
        assert draft is not None
        return draft


async def _published(desk: Any, draft_id: int) -> None:
    await desk.emulator.wait_for(lambda: _draft(desk, draft_id).status == "published")


async def test_self_approval_is_refused(make_desk: Any) -> None:
    desk = make_desk("en")
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        _, draft_id = await fill_and_submit(desk, "boss", "holding", "en")  # a supervisor drafts
        # The author gets no request; a forged press in their own chat is refused by the rule.
        other = await request_for(desk, "boss2", draft_id)
        assert other is not None
        assert not any(
            "appr.ok" in (b.get("callback_data") or "")
            for m in desk.private("boss")
            for b in m.buttons()
        )
        own = desk.emulator.send_text(desk["boss"].tg, "hello")
        answer = await press(desk, "boss", desk["boss"].tg, own.message_id, f"appr.ok:{draft_id}")
    assert answer["show_alert"] is True
    assert answer["text"] == "You cannot approve a draft you wrote yourself."
    with desk.db.session() as s:
        assert s.exec(select(Approval)).all() == []
        refused = s.exec(select(AuditEvent).where(AuditEvent.action == "approval.refused")).one()
    assert refused.after == {"draft_id": draft_id, "reason": "approval_self", "version": 1}
    assert _draft(desk, draft_id).status == "submitted"


async def test_two_approvers_at_once_and_a_double_press(make_desk: Any) -> None:
    desk = make_desk("vi")
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        _, draft_id = await fill_and_submit(desk, "drafter", "holding", "vi")
        one = await request_for(desk, "boss", draft_id)
        two = await request_for(desk, "boss2", draft_id)
        answers = await asyncio.gather(
            press(desk, "boss", desk["boss"].tg, one.message_id, f"appr.ok:{draft_id}"),
            press(desk, "boss2", desk["boss2"].tg, two.message_id, f"appr.ok:{draft_id}"),
            press(desk, "boss", desk["boss"].tg, one.message_id, f"appr.ok:{draft_id}"),
        )
        await _published(desk, draft_id)
        await asyncio.sleep(0.3)  # a second publication, if there were one, would land by now
        channel = desk.emulator.messages(desk.channel, from_bot=None)
    recorded = [a for a in answers if not a.get("show_alert")]
    refused = [a for a in answers if a.get("show_alert")]
    assert len(recorded) == 1 and len(refused) == 2
    assert all("đã có quyết định" in a["text"] or "đã cho ý kiến" in a["text"] for a in refused)
    with desk.db.session() as s:
        rows = s.exec(select(Approval)).all()
        published = s.exec(select(AuditEvent).where(AuditEvent.action == "draft.published")).all()
    assert len(rows) == 1 and len(published) == 1 and len(channel) == 1


async def test_double_press_counts_once_towards_two_of_three(make_desk: Any) -> None:
    desk = make_desk("en", approvals=2)
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        _, draft_id = await fill_and_submit(desk, "drafter", "conference", "en")
        request = await request_for(desk, "boss", draft_id)
        first, second = await asyncio.gather(
            press(desk, "boss", desk["boss"].tg, request.message_id, f"appr.ok:{draft_id}"),
            press(desk, "boss", desk["boss"].tg, request.message_id, f"appr.ok:{draft_id}"),
        )
        assert sorted([bool(first.get("show_alert")), bool(second.get("show_alert"))]) == [
            False,
            True,
        ]
        assert _draft(desk, draft_id).status == "submitted"  # 1 of 2
        assert not (await approve(desk, "boss2", draft_id)).get("show_alert")
        await _published(desk, draft_id)
    with desk.db.session() as s:
        approvers = [a.approver_id for a in s.exec(select(Approval).order_by(col(Approval.id)))]
    assert approvers == [desk["boss"].id, desk["boss2"].id]


async def test_non_approver_and_forged_draft_ids_are_refused(make_desk: Any) -> None:
    desk = make_desk("en")
    with desk.db.session() as s:
        # A crisis of another agency with a submitted draft of its own.
        stranger = s.get(User, desk["stranger"].id)
        assert stranger is not None
        crisis = Crisis(
            agency_id=stranger.agency_id or 0,
            title="Điểm thi bất thường",
            detected_at=desk.clock.now(),
            deadline_at=desk.clock.now() + timedelta(hours=24),
        )
        s.add(crisis)
        s.flush()
        template = pt.PressLibrary().get("holding", "en")
        values = {**pt.sample_values(template), "doc_number": ""}
        foreign = dr.create_first_version(
            s,
            crisis=crisis,
            template=template,
            values=values,
            author_id=stranger.id,
            at=desk.clock.now(),
            tz=desk.settings.tz,
        )
        foreign.status = "submitted"
        foreign_id = foreign.id
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        message, draft_id = await fill_and_submit(desk, "drafter", "holding", "en")
        request = await request_for(desk, "boss", draft_id)
        # A supervisor of another agency presses Approve (forged in their own chat).
        own = desk.emulator.send_text(desk["stranger"].tg, "hi")
        outsider = await press(
            desk, "stranger", desk["stranger"].tg, own.message_id, f"appr.ok:{draft_id}"
        )
        # The drafter (a member, not an approver) presses Approve.
        member = await press(desk, "drafter", desk.room, message.message_id, f"appr.ok:{draft_id}")
        # Our approver edits the callback data to name the other agency's draft.
        forged = await press(
            desk, "boss", desk["boss"].tg, request.message_id, f"appr.ok:{foreign_id}"
        )
        nonsense = await press(desk, "boss", desk["boss"].tg, request.message_id, "appr.ok:99999")
        malformed = await press(desk, "boss", desk["boss"].tg, request.message_id, "appr.ok:1:2")
    for answer in (outsider, member, forged, nonsense):
        assert answer["show_alert"] is True and answer["text"] == "You are not allowed to do this."
    assert malformed["text"].startswith("This button is not valid")
    with desk.db.session() as s:
        assert s.exec(select(Approval)).all() == []
        refusals = [
            e.actor_id
            for e in s.exec(select(AuditEvent).where(AuditEvent.action == "button.refused"))
        ]
        assert _draft(desk, foreign_id).status == "submitted"
    assert refusals == [desk["stranger"].id, desk["drafter"].id, desk["boss"].id, desk["boss"].id]


async def test_pin_is_asked_before_an_approval_is_recorded(make_desk: Any) -> None:
    desk = make_desk("en")
    desk.set_policy(approval_pin=True)
    app = desk.app()
    em = desk.emulator
    boss = desk["boss"].tg
    async with running_app(app):
        await desk.open_topic(app)
        _, draft_id = await fill_and_submit(desk, "drafter", "correction", "en")
        no_pin = await approve(desk, "boss", draft_id)
        assert no_pin["show_alert"] is True and "/pin" in no_pin["text"]
        # Set the PIN in the private chat: entered twice, only a scrypt hash is kept.
        cmd = em.send_text(boss, "/pin")
        prompt = await wait_private(desk, boss, after=cmd.message_id)
        entry = em.send_text(boss, "482916", reply_to=prompt.message_id)
        confirm = await wait_private(desk, boss, after=entry.message_id)
        entry = em.send_text(boss, "482916", reply_to=confirm.message_id)
        saved = await wait_private(desk, boss, after=entry.message_id)
        assert saved.text.startswith("✅ PIN saved")
        request = await request_for(desk, "boss", draft_id)
        answer = await press(desk, "boss", boss, request.message_id, f"appr.ok:{draft_id}")
        # Pressed in the private chat itself: no toast sending them where they already are.
        assert not answer.get("text"), answer
        ask = await wait_private(desk, boss, lambda m: "Enter your PIN" in (m.text or ""))
        wrong = em.send_text(boss, "111111", reply_to=ask.message_id)
        told = await wait_private(desk, boss, after=wrong.message_id)
        assert told.text == "Wrong PIN. Please try again."
        assert _draft(desk, draft_id).status == "submitted"
        right = em.send_text(boss, "482916", reply_to=ask.message_id)
        await wait_private(
            desk,
            boss,
            lambda m: m.text == "Your decision has been recorded.",
            after=right.message_id,
        )
        await _published(desk, draft_id)
    with desk.db.session() as s:
        user = s.get(User, desk["boss"].id)
        assert user is not None and user.pin_hash is not None
        assert user.pin_hash.startswith("scrypt$") and "482916" not in user.pin_hash
        approval = s.exec(select(Approval)).one()
        pin_events = [
            e.action
            for e in s.exec(select(AuditEvent).order_by(col(AuditEvent.id)))
            if e.action.startswith(("user.pin", "approval.pin"))
        ]
    assert approval.approver_id == desk["boss"].id
    assert pin_events == ["user.pin_set", "approval.pin_failed"]
    # The PIN messages were deleted from the chat.
    assert all(
        m.deleted for m in em.messages(boss, from_bot=False) if m.text in ("482916", "111111")
    )


async def test_reminder_then_escalation_then_cancelled_by_the_decision(make_desk: Any) -> None:
    desk = make_desk("vi")
    admin = desk.emulator.create_user("Admin")
    admin.started = True
    desk.emulator.world.private_chat(admin)
    with desk.db.session() as s:
        identity.add_person(
            s,
            person_ref(admin.id),
            User(
                full_name="Quản trị",
                agency_id=desk.agency_id,
                role="admin",
                status="active",
                language="vi",
            ),
        )
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        _, draft_id = await fill_and_submit(desk, "drafter", "holding", "vi")
        request = await request_for(desk, "boss", draft_id)
        desk.clock.advance(timedelta(minutes=31))
        reminder = await wait_private(desk, desk["boss"].tg, after=request.message_id)
        assert reminder.text.startswith("⏰ Nhắc việc: dự thảo #1 bản 1")
        desk.clock.advance(timedelta(minutes=30))
        escalation = await wait_private(desk, admin.id, lambda m: "Chuyển cấp" in (m.text or ""))
        assert "Trần Thị Bình" in escalation.text and "Phạm Quốc Cường" in escalation.text
        assert not any("Chuyển cấp" in (m.text or "") for m in desk.private("drafter"))
        assert not (await approve(desk, "boss", draft_id)).get("show_alert")
        await _published(desk, draft_id)
    with desk.db.session() as s:
        rows = {d.kind: d for d in s.exec(select(Due)) if d.ref_id == draft_id}
    assert rows["approval.remind"].last_error is None and rows["approval.remind"].done_at
    assert rows["approval.escalate"].done_at is not None


async def test_restart_between_submission_and_approval_loses_nothing(make_desk: Any) -> None:
    desk = make_desk("vi")
    first = desk.app()
    async with running_app(first):
        await desk.open_topic(first)
        _, draft_id = await fill_and_submit(desk, "drafter", "release", "vi")
        request = await request_for(desk, "boss", draft_id)
        # A second statement half filled in when the bot goes down.
        start = desk.emulator.send_text(
            desk["drafter"].tg, "/draft conference", chat_id=desk.room, thread_id=desk.thread
        )
        prompt = await desk.emulator.wait_for_message(
            desk.room,
            lambda m: "Số văn bản" in (m.text or ""),
            thread_id=desk.thread,
            after=start.message_id,
        )
    second = desk.app()  # a new Application on the same database
    async with running_app(second):
        answer = await press(
            desk, "boss", desk["boss"].tg, request.message_id, f"appr.ok:{draft_id}"
        )
        assert not answer.get("show_alert"), answer
        await _published(desk, draft_id)
        field = field_asked(pt.PressLibrary().get("conference", "vi"), prompt.text or "")
        reply = desk.emulator.send_text(
            desk["drafter"].tg,
            "16",
            chat_id=desk.room,
            thread_id=desk.thread,
            reply_to=prompt.message_id,
        )
        nxt = await desk.emulator.wait_for_message(
            desk.room, thread_id=desk.thread, after=reply.message_id
        )
    assert field == "doc_number"
    assert "câu hỏi 2/" in nxt.text  # resumed at the next question
    assert len(desk.emulator.messages(desk.channel, from_bot=None)) == 1


async def test_ten_thousand_character_statement_is_delivered_intact(make_desk: Any) -> None:
    desk = make_desk("vi")
    paragraph = (
        "Đoàn kiểm tra liên ngành đã làm việc với Ban giám hiệu, bếp ăn bán trú & đơn vị cung cấp "
        "thực phẩm; kết quả <sơ bộ> cho thấy quy trình lưu mẫu thức ăn chưa được thực hiện đầy đủ. "
    )
    long_details = (paragraph * 40)[:3900].strip()
    overrides = {
        "details": long_details,
        "measures": long_details[::-1].strip(),
        "lead": long_details,
    }
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        before = desk.emulator.send_text(
            desk["drafter"].tg, "/history 9", chat_id=desk.room, thread_id=desk.thread
        ).message_id
        last, _ = await fill(desk, "drafter", "release", "vi", overrides)
        draft_id = draft_id_of(last)
        body = _draft(desk, draft_id).body
        assert len(body) > 10_000
        docs = await desk.emulator.wait_for(
            lambda: (
                [m for m in desk.room_messages() if m.message_id > before and "document" in m.data]
                if len([m for m in desk.room_messages() if "document" in m.data]) >= 2
                else None
            )
        )
        parts = [
            m
            for m in desk.room_messages()
            if (before < m.message_id <= last.message_id and "📝" in (m.text or ""))
            or (before < m.message_id <= last.message_id and (m.text or "").startswith("("))
        ]
        files = {}
        for doc in docs:
            file = await app.bot.get_file(doc.data["document"]["file_id"])
            files[doc.data["document"]["file_name"]] = bytes(await file.download_as_bytearray())
    assert len(parts) >= 3
    assert all(len(p.text) <= TEXT_LIMIT for p in parts)
    # Strip each part's marker line: what remains concatenates back to the statement.
    texts = [
        p.text.split("\n\n", 1)[1] if i == 0 else p.text.split("\n", 1)[1]
        for i, p in enumerate(parts)
    ]
    assert " ".join(" ".join(t.split()) for t in texts) == " ".join(body.split())
    assert "&" in body and "<sơ bộ>" in body  # escaped on the way, intact on arrival
    assert files[f"statement-{desk.crisis_id}-1-v1.txt"].decode() == body
    assert dr.docx_text(files[f"statement-{desk.crisis_id}-1-v1.docx"]) == body


def test_can_work_on_limits_drafting_to_the_agency_and_members(make_desk: Any) -> None:
    desk = make_desk("vi")
    with desk.db.session() as s:
        crisis = s.get(Crisis, desk.crisis_id)
        assert crisis is not None

        def actor(name: str) -> Actor:
            return Actor(f"tg:{desk[name].tg}", s.get(User, desk[name].id))

        assert dr.can_work_on(s, actor("drafter"), crisis)
        assert not dr.can_work_on(s, actor("stranger"), crisis)
        assert not dr.can_work_on(s, Actor("tg:1", None), crisis)
        assert dr.can_work_on(s, Actor("tg:1", None, global_admin=True), crisis)
