"""The audit log: append-only AuditEvent rows, written in the caller's transaction.

Writing the audit row in the same session as the change means a change and its record commit
together or not at all; a refused action (forged button, missing permission) is recorded too, in
its own short transaction, because refusals are what an inquiry asks about first.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from bot.services.permissions import Actor
from storage.models import AuditEvent

if TYPE_CHECKING:
    from bot.runtime import Runtime


def record(
    session: Session,
    *,
    action: str,
    at: datetime,
    actor_id: int | None = None,
    actor_ref: str = "",
    subject: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit row to ``session`` (committed with the caller's change)."""
    event = AuditEvent(
        actor_id=actor_id,
        actor_ref=actor_ref,
        action=action,
        subject=subject,
        before=before,
        after=after,
        at=at,
    )
    session.add(event)
    return event


def by_actor(
    session: Session,
    actor: Actor,
    *,
    action: str,
    at: datetime,
    subject: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """:func:`record` of something ``actor`` did: their row (if any) and their account."""
    return record(
        session,
        action=action,
        at=at,
        actor_id=actor.user_id,
        actor_ref=actor.channel_ref,
        subject=subject,
        before=before,
        after=after,
    )


def by_self(
    session: Session,
    user_id: int | None,
    *,
    action: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """:func:`record` of something a person did to their own account (their name, PIN, linking
    codes, alert channel): they are both the actor and the subject."""
    return record(
        session,
        action=action,
        at=at,
        actor_id=user_id,
        subject=f"user:{user_id}",
        before=before,
        after=after,
    )


def history(session: Session, subject: str, limit: int = 100) -> list[AuditEvent]:
    """The audit trail of one subject (e.g. ``"draft:12"``), oldest first."""
    rows = session.exec(
        select(AuditEvent)
        .where(AuditEvent.subject == subject)
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
        .limit(limit)
    )
    return list(rows)


def refused(runtime: Runtime, actor: Actor, action: str, subject: str, reason: str) -> None:
    """Audit a refused command, message or button press: who, what, and why.

    Written in its own short transaction (the refused action changed nothing to commit with),
    because refusals are what an inquiry asks about first.
    """
    with runtime.db.session() as session:
        by_actor(
            session,
            actor,
            action=action,
            subject=subject,
            at=runtime.clock.now(),
            after={"reason": reason},
        )
