"""The full lifecycle of every statement kind, in Vietnamese and English, on the emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from drafts_flows import (
    approve,
    draft_id_of,
    draft_in_room,
    fill,
    fill_and_submit,
    published_in_room,
    request_for,
    submit,
    wait_private,
)
from emulator_fixtures import running_app
from sqlmodel import col, select

from bot.services import drafts as dr
from storage.models import Approval, AuditEvent, Draft, TimelineEvent


def _status(desk: Any, draft_id: int) -> str:
    with desk.db.session() as s:
        draft = s.get(Draft, draft_id)
        return draft.status if draft else ""


KINDS = ["holding", "release", "correction", "qa", "conference"]


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("kind", KINDS)
async def test_full_lifecycle(make_desk: Any, kind: str, lang: str) -> None:
    desk = make_desk(lang)
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        draft_message, asked = await fill(desk, "drafter", kind, lang)
        # Filled from the crisis, so never asked: agency, subject, spokesperson.
        assert "agency_name" not in asked and "subject" not in asked
        assert "spokesperson_name" not in asked
        header = next(m for m in desk.room_messages() if "📝" in (m.text or ""))
        assert ("Dự thảo #1" if lang == "vi" else "Draft #1") in header.text
        draft_id = draft_id_of(draft_message)
        answer = await submit(desk, "drafter", draft_message)
        assert not answer.get("show_alert"), answer
        answer = await approve(desk, "boss", draft_id)
        assert not answer.get("show_alert"), answer
        published = await published_in_room(desk)
        await desk.emulator.wait_for(lambda: _status(desk, draft_id) == "published")
        channel_posts = desk.emulator.messages(desk.channel, from_bot=None)
        author_copy = await wait_private(desk, desk["drafter"].tg, lambda m: "📢" in (m.text or ""))
        history_cmd = desk.emulator.send_text(
            desk["drafter"].tg, "/history 1", chat_id=desk.room, thread_id=desk.thread
        )
        history = await desk.emulator.wait_for_message(
            desk.room, thread_id=desk.thread, after=history_cmd.message_id
        )

    with desk.db.session() as s:
        draft = s.get(Draft, draft_id)
        assert draft is not None
        assert draft.status == "published" and draft.published_at == desk.clock.now()
        assert draft.body_sha256 == dr.sha256(draft.body)
        approvals = s.exec(select(Approval)).all()
        assert [(a.approver_id, a.decision, a.body_sha256) for a in approvals] == [
            (desk["boss"].id, "approve", draft.body_sha256)
        ]
        actions = [
            e.action
            for e in s.exec(select(AuditEvent).order_by(col(AuditEvent.id)))
            if e.subject == dr.subject(desk.crisis_id, 1)
        ]
        kinds = [e.kind for e in s.exec(select(TimelineEvent).order_by(col(TimelineEvent.id)))]
        issued = dr.statements_issued(s, desk.crisis_id)
        ttfs = dr.time_to_first_statement(s, desk.crisis_id)
    assert actions == ["draft.created", "draft.submitted", "draft.approved", "draft.published"]
    assert kinds == actions
    assert [(i.number, i.version, i.kind, i.approvers) for i in issued] == [
        (1, 1, kind, ["Trần Thị Bình"])
    ]
    assert ttfs == timedelta(hours=3)

    body = draft.body
    # The statement reads as an administrative document of the agency, with the crisis filled in.
    if kind != "qa":
        assert (
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" if lang == "vi" else "SOCIALIST REPUBLIC"
        ) in body
        assert ("ngày 02 tháng 11 năm 2026" if lang == "vi" else "2 November 2026") in body
        assert "/TCBC-BYT" in body or "/TB-BYT" in body
    assert "BỘ Y TẾ" in body and "Nguyễn Văn An" in body
    assert "Tân Phong" in body
    assert "Tân Phong" in published.text or len(body) > 3500
    assert author_copy.text.endswith(body.strip()[-50:])
    # Public kinds go to the agency's channel word for word; the internal Q&A brief never does.
    if kind == "qa":
        assert channel_posts == []
    else:
        assert [m.text for m in channel_posts] == [body]
    assert "draft.published" not in history.text  # labels, not raw action names
    assert history.text.count("•") == 4


async def test_request_changes_edit_and_reapprove(make_desk: Any) -> None:
    desk = make_desk("en")
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        first, v1 = await fill_and_submit(desk, "drafter", "holding", "en")
        # The approver still has v1's request open (its buttons are removed once decided, but a
        # client can press a stale button it still shows).
        old_request = await request_for(desk, "boss", v1)
        from drafts_flows import give_reason

        await give_reason(
            desk, "boss2", v1, "appr.changes", "Say how many pupils are in hospital now."
        )
        changes = await desk.emulator.wait_for_message(
            desk.room, lambda m: "requested changes" in (m.text or ""), thread_id=desk.thread
        )
        assert "Say how many pupils" in changes.text
        # The drafter replies to the draft message with the full new text: version 2.
        with desk.db.session() as s:
            old_body = s.get(Draft, v1).body  # type: ignore[union-attr]
        new_body = old_body.replace(
            "none in critical condition.", "none in critical condition; 6 remain in hospital."
        )
        edit = desk.emulator.send_text(
            desk["drafter"].tg,
            new_body,
            chat_id=desk.room,
            thread_id=desk.thread,
            reply_to=first.message_id,
        )
        second = await draft_in_room(desk, edit.message_id)
        v2 = draft_id_of(second)
        assert v2 != v1
        header = desk.emulator.wait_for_message  # noqa: F841
        shown = [m.text for m in desk.room_messages() if m.message_id > edit.message_id]
        assert any("v2" in t and "+1 / −1 lines" in t for t in shown), shown
        # Approving the old version is refused: it is not what would be published.
        refused = await desk.emulator.press_button(
            desk["boss"].tg, desk["boss"].tg, old_request.message_id, data=f"appr.ok:{v1}"
        )
        assert refused["show_alert"] is True
        assert "This is version 1" in refused["text"] and "latest: version 2" in refused["text"]
        await submit(desk, "drafter", second)
        answer = await approve(desk, "boss", v2)
        assert not answer.get("show_alert"), answer
        await published_in_room(desk)
    with desk.db.session() as s:
        rows = s.exec(select(Approval).order_by(col(Approval.id))).all()
        drafts = {d.id: d for d in s.exec(select(Draft))}
        refusals = s.exec(select(AuditEvent).where(AuditEvent.action == "approval.refused")).all()
    assert [(r.draft_id, r.decision) for r in rows] == [(v1, "request_changes"), (v2, "approve")]
    assert rows[1].body_sha256 == drafts[v2].body_sha256 != drafts[v1].body_sha256
    assert drafts[v1].status == "changes_requested" and drafts[v2].status == "published"
    assert "6 remain in hospital" in drafts[v2].body
    assert [r.after["reason"] for r in refusals] == ["approval_stale"]  # type: ignore[index]


async def test_edit_after_partial_approval_needs_approval_again(make_desk: Any) -> None:
    desk = make_desk("vi", approvals=2)
    app = desk.app()
    async with running_app(app):
        await desk.open_topic(app)
        _, v1 = await fill_and_submit(desk, "drafter", "correction", "vi")
        stale = await request_for(desk, "boss2", v1)
        assert not (await approve(desk, "boss", v1)).get("show_alert")
        # An edit with /set after one of two approvals: version 2, the approval does not carry.
        edit = desk.emulator.send_text(
            desk["drafter"].tg,
            "/set where_published trang Facebook “Tin nóng Biên Hòa” sáng 02/11/2026",
            chat_id=desk.room,
            thread_id=desk.thread,
        )
        second = await draft_in_room(desk, edit.message_id)
        v2 = draft_id_of(second)
        closed = desk.emulator.message(desk["boss2"].tg, stale.message_id)
        assert closed.buttons() == [] and "bản 2" in closed.text  # the request says it is outdated
        refused = await desk.emulator.press_button(
            desk["boss2"].tg, desk["boss2"].tg, stale.message_id, data=f"appr.ok:{v1}"
        )
        assert refused["show_alert"] is True and "bản mới nhất: 2" in refused["text"]
        await submit(desk, "drafter", second)
        assert not (await approve(desk, "boss", v2)).get("show_alert")
        with desk.db.session() as s:
            assert s.get(Draft, v2).status == "submitted"  # type: ignore[union-attr]
        assert not (await approve(desk, "boss2", v2)).get("show_alert")
        await published_in_room(desk)
    with desk.db.session() as s:
        drafts = {d.id: d for d in s.exec(select(Draft))}
        rows = s.exec(select(Approval).order_by(col(Approval.id))).all()
    assert drafts[v1].status == "superseded" and drafts[v2].status == "published"
    assert "Tin nóng Biên Hòa" in drafts[v2].body
    assert [(r.draft_id, r.approver_id) for r in rows] == [
        (v1, desk["boss"].id),
        (v2, desk["boss"].id),
        (v2, desk["boss2"].id),
    ]
