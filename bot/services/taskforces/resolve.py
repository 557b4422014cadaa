"""Resolving a crisis: the after-action report to the room and the supervisors, the topic closed,
the group made for it disbanded, or the pooled group handed back.

The state change commits with a ``crisis.resolved`` due row; the announcements follow at once,
each message through the ``outbox`` ledger, and the due row finishes them after a restart
without posting anything twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from bot.channels.base import (
    Attachment,
    DeliveryError,
)
from bot.channels.rooms import RoomAdmin, room_admin_for, room_maker_for
from bot.services import audit, identity, outbox, reports, rooms, stored_refs, timeline
from bot.services.due import cancel, due_handler, schedule
from bot.services.people import active_with_role
from bot.services.permissions import (
    Actor,
)
from bot.services.taskforces.brief import BRIEF_KIND, refresh_brief
from bot.services.taskforces.convening import CONVENE_KIND
from bot.services.taskforces.crises import (
    TaskForceError,
    crisis_row,
    is_lead_or_supervisor,
    may_resolve,
    members_of,
    open_crisis_row,
    room_language,
)
from bot.services.taskforces.deadline import DEADLINE_KIND
from bot.services.taskforces.room import ROOM_KIND, attach_waiting
from bot.services.taskforces.tasks import TASK_KIND
from storage.models import (
    Crisis,
    CrisisStatus,
    Due,
    Role,
    RoomKind,
    Task,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

RESOLVE_KIND = "crisis.resolved"  # finishes announcing a resolution after a restart
RESOLVE_DELIVERY = "crisis_resolve"
RESOLVE = "tf.resolve"  # button action (registered in handlers/taskforce.py)
_RESOLVING: set[int] = set()  # crises whose resolution this process is announcing now


@dataclass
class Resolved:
    crisis: Crisis
    report_markdown: str
    supervisors: int
    room_freed: bool
    removed: int


async def resolve_crisis(
    runtime: Runtime, actor: Actor, crisis_id: int, rooms_admin: RoomAdmin | None = None
) -> Resolved:
    """Close a crisis (lead or supervisor): the after-action report to the room and the
    supervisors (Markdown and .docx), the topic closed or the pooled group handed back.

    The state change commits with a ``crisis.resolved`` due row; the announcements follow at
    once, each message through the ``outbox`` ledger, and the due row finishes them after a
    restart without posting anything twice."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = open_crisis_row(session, crisis_id)
        if not is_lead_or_supervisor(session, actor, crisis):
            raise TaskForceError("not_lead")
        crisis.status = CrisisStatus.RESOLVED
        crisis.resolved_at = now
        timeline.add(session, crisis_id, timeline.RESOLVED, actor.user_id, "", {}, now)
        audit.by_actor(
            session,
            actor,
            action="crisis.resolved",
            subject=f"crisis:{crisis_id}",
            at=now,
        )
        for kind in (DEADLINE_KIND, CONVENE_KIND, ROOM_KIND, BRIEF_KIND):
            cancel(session, kind=kind, ref_id=crisis_id, at=now)
        task_ids = session.exec(select(Task.id).where(Task.crisis_id == crisis_id)).all()
        for task_id in task_ids:
            if task_id is not None:
                cancel(session, kind=TASK_KIND, ref_id=task_id, at=now)
        schedule(
            session, RESOLVE_KIND, now, ref_id=crisis_id, dedupe_key=f"{RESOLVE_KIND}:{crisis_id}"
        )
    return await _announce_resolution(runtime, crisis_id, rooms_admin)


@due_handler(RESOLVE_KIND)
async def _resolution_due(runtime: Runtime, session: Session, due: Due) -> None:
    # Own sessions only: see room._retry_room.
    if due.ref_id is None:
        return
    if due.ref_id in _RESOLVING:  # being announced by this process right now
        schedule(
            session, RESOLVE_KIND, runtime.clock.now() + timedelta(seconds=5), ref_id=due.ref_id
        )
        return
    await _announce_resolution(runtime, due.ref_id)


async def _announce_resolution(
    runtime: Runtime, crisis_id: int, rooms_admin: RoomAdmin | None = None
) -> Resolved:
    _RESOLVING.add(crisis_id)
    try:
        resolved = await _announce(runtime, crisis_id, rooms_admin)
    finally:
        _RESOLVING.discard(crisis_id)
    with runtime.db.session() as session:
        cancel(session, kind=RESOLVE_KIND, ref_id=crisis_id, at=runtime.clock.now())
    return resolved


async def _announce(runtime: Runtime, crisis_id: int, rooms_admin: RoomAdmin | None) -> Resolved:
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        at = crisis.resolved_at or runtime.clock.now()
        room_lang = room_language(session, crisis)
        data = reports.build(session, crisis_id, at)
        channel = runtime.notifier.channel
        supervisors = [
            (u, chat)
            for u in active_with_role(session, crisis.agency_id, Role.SUPERVISOR)
            if (chat := identity.direct_chat(session, u.id, channel)) is not None
        ]
        room = rooms.room_of_crisis(session, crisis_id)
        room_id = room.id if room else None
        room_kind = room.kind if room else None
        room_title = room.title if room else ""
        present = [
            u.id
            for m, u in members_of(session, crisis_id)
            if u.id is not None and m.state in ("joined", "accepted")
        ]
        members = [
            (account, user_id)
            for user_id, account in sorted(identity.accounts_on(session, present, channel).items())
        ]
        to = stored_refs.crisis_room(crisis)
        link = crisis.invite_link
        # The room's ledger rows need a person: the lead, else a supervisor or a member.
        owner = crisis.lead_id or next(
            (u.id for u, _ in supervisors), next((uid for _, uid in members), None)
        )
    markdown = reports.render_markdown(runtime, data, room_lang)
    files = [
        Attachment(f"crisis-{crisis_id}-report.md", markdown.encode("utf-8")),
        Attachment(
            f"crisis-{crisis_id}-report.docx", reports.render_docx(runtime, data, room_lang)
        ),
    ]

    async def once(user_id: int | None, part: str, send: Any) -> None:
        if user_id is None:
            await _try(send(), part)
            return
        await _try(
            outbox.send_once(
                runtime,
                kind=RESOLVE_DELIVERY,
                ref_id=crisis_id,
                user_id=user_id,
                part=part,
                send=send,
            ),
            part,
        )

    if to is not None:
        summary = runtime.renderer.render("crisis_resolved", room_lang, r=data)
        await once(owner, "room", lambda: runtime.notifier.send_text(to, summary))
        for name, attachment in zip(("room.md", "room.docx"), files, strict=True):
            await once(owner, name, lambda f=attachment: runtime.notifier.send_document(to, f))
        await _try(refresh_brief(runtime, crisis_id), "final brief")
    for person, chat in supervisors:
        text = runtime.renderer.render("crisis_report_sent", person.language, r=data)
        await once(person.id, "text", lambda c=chat, t=text: runtime.notifier.send_text(c, t))
        for name, attachment in zip(("md", "docx"), files, strict=True):
            await once(
                person.id,
                name,
                lambda c=chat, f=attachment: runtime.notifier.send_document(c, f),
            )
    freed = False
    removed = 0
    if room_id is not None and to is not None:
        if room_kind == RoomKind.CREATED_GROUP:  # made for this crisis: disbanded, not reused
            maker = room_maker_for(rooms_admin or runtime.notifier)
            if maker is not None:
                await _try(maker.close_room(to), "close room")
            with runtime.db.session() as session:
                rooms.mark_closed(session, room_id)
            return Resolved(data.crisis, markdown, len(supervisors), freed, removed)
        admin = rooms_admin or room_admin_for(runtime.notifier)
        if room_kind == RoomKind.FORUM_TOPIC and to.thread_id is not None:
            await _try(admin.close_topic(to), "close topic")
            if link:
                await _try(admin.revoke_invite_link(to, link), "revoke link")
            with runtime.db.session() as session:
                rooms.mark_closed(session, room_id)
        else:
            if link:
                await _try(admin.revoke_invite_link(to, link), "revoke link")
            for account, _user_id in members:
                if await _try(admin.remove_member(to, account), "remove member"):
                    removed += 1
            await _try(admin.unpin_all(to), "unpin")
            await _try(admin.set_title(to, room_title or f"CrisisDesk room {room_id}"), "title")
            await _try(admin.set_description(to, ""), "description")
            with runtime.db.session() as session:
                freed = rooms.free_room(session, room_id)
                audit.record(
                    session,
                    action="room.freed",
                    subject=f"room:{room_id}",
                    after={"crisis_id": crisis_id, "removed": removed},
                    at=runtime.clock.now(),
                )
            if freed:
                await attach_waiting(runtime, rooms_admin)
    return Resolved(data.crisis, markdown, len(supervisors), freed, removed)


async def _try(awaitable: Any, what: str) -> bool:
    try:
        await awaitable
    except DeliveryError as exc:
        log.warning("resolve: %s failed: %s", what, exc)
        return False
    return True


def may_resolve_now(runtime: Runtime, actor: Actor, crisis_id: int) -> Crisis:
    """The open crisis ``actor`` may close, checked before ``/resolve`` asks for confirmation
    (raises ``TaskForceError`` otherwise)."""
    with runtime.db.session() as session:
        return may_resolve(session, actor, crisis_id)
