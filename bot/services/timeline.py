"""A crisis's timeline: what happened, by whom and when.

Every join, role change, task, status update, draft and approval is one ``TimelineEvent`` row,
added in the caller's transaction (like the audit log), so the change and its timeline entry
commit together. ``/timeline`` lists them and the after-action report is built from them.

Other services (drafts, approvals) call :func:`add` directly; the ``kind`` is a short dotted
name such as ``"draft.submitted"``. Kinds this module knows a label for are in ``KINDS``; any
other kind is still stored and shown with its raw name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from storage.models import TimelineEvent

# Kinds written by the task-force service (other services add their own, e.g. "draft.submitted",
# "draft.approved", "draft.published"; reports look for those three by name).
OPENED = "crisis.opened"
ROOM_READY = "room.ready"
ROOM_PENDING = "room.pending"
CONVENED = "member.invited"
ACCEPTED = "member.accepted"  # pressed Join; JOINED is written when they are in the room
JOINED = "member.joined"
DECLINED = "member.declined"
ROLE = "role.changed"
TASK_ADDED = "task.added"
TASK_DONE = "task.done"
UPDATE = "status.update"
NOTE = "note"
DEADLINE = "deadline"
RESOLVED = "crisis.resolved"

# Kinds written by other services that change the brief.
BRIEF_KINDS = ("draft.",)

KINDS = (
    OPENED,
    ROOM_READY,
    ROOM_PENDING,
    CONVENED,
    ACCEPTED,
    JOINED,
    DECLINED,
    ROLE,
    TASK_ADDED,
    TASK_DONE,
    UPDATE,
    NOTE,
    DEADLINE,
    RESOLVED,
)


def add(
    session: Session,
    crisis_id: int,
    kind: str,
    actor_id: int | None,
    text: str = "",
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TimelineEvent:
    """Add one timeline event to ``session`` (committed with the caller's change).

    ``at`` is required in practice (pass ``clock.now()``); it is keyword-optional only so that
    callers can name it. A missing or naive ``at`` is refused, because the report computes
    intervals from these times.
    """
    if at is None:
        raise ValueError("timeline.add needs at=clock.now(): every event is timed")
    if at.tzinfo is None:
        raise ValueError("timeline.add needs an aware datetime (use bot.clock)")
    if len(kind) > 32:
        raise ValueError(f"timeline kind {kind!r} is longer than 32 characters")
    event = TimelineEvent(
        crisis_id=crisis_id,
        kind=kind,
        actor_id=actor_id,
        text=text,
        data=dict(data or {}),
        at=at,
    )
    session.add(event)
    if kind.startswith(BRIEF_KINDS):
        # Drafts and approvals change what the pinned brief shows (statements published):
        # ask for an edit in the same transaction. Imported here: taskforces imports this module.
        from bot.services.taskforces.brief import touch_brief

        touch_brief(session, crisis_id, at)
    return event


def events(session: Session, crisis_id: int, limit: int | None = None) -> list[TimelineEvent]:
    """The timeline of one crisis, oldest first (``limit`` keeps the most recent ones)."""
    query = select(TimelineEvent).where(TimelineEvent.crisis_id == crisis_id)
    if limit is None:
        rows = session.exec(query.order_by(col(TimelineEvent.at), col(TimelineEvent.id)))
        return list(rows)
    recent = session.exec(
        query.order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc()).limit(limit)
    )
    return list(reversed(list(recent)))


def first(session: Session, crisis_id: int, *kinds: str) -> TimelineEvent | None:
    """The earliest event of any of ``kinds`` (e.g. the first ``draft.submitted``)."""
    row = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.crisis_id == crisis_id, col(TimelineEvent.kind).in_(kinds))
        .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
        .limit(1)
    ).first()
    return row
