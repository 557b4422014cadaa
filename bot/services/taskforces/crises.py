"""The crisis row, its members and who may act on it: the lookups and checks every other
module of the task force shares, and ``TaskForceError``, the one way a request is refused.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from bot.services import rooms
from bot.services.permissions import (
    Actor,
    can_act_for_agency,
)
from storage.models import (
    Crisis,
    CrisisMember,
    CrisisStatus,
    Role,
    User,
)


class TaskForceError(Exception):
    """A refused or impossible request; ``code`` selects the wording in ``crisis_error.j2``."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(f"{code}: {details}" if details else code)
        self.code = code
        self.details = details


def member_row(session: Session, crisis_id: int, user_id: int | None) -> CrisisMember | None:
    if user_id is None:
        return None
    return session.exec(
        select(CrisisMember).where(
            CrisisMember.crisis_id == crisis_id, CrisisMember.user_id == user_id
        )
    ).first()


def members_of(session: Session, crisis_id: int) -> list[tuple[CrisisMember, User]]:
    """Everyone convened to a crisis with their person, in the order they were convened."""
    return list(
        session.exec(
            select(CrisisMember, User)
            .join(User, col(User.id) == col(CrisisMember.user_id))
            .where(CrisisMember.crisis_id == crisis_id)
            .order_by(col(CrisisMember.id))
        ).all()
    )


def crisis_row(session: Session, crisis_id: int) -> Crisis:
    crisis = session.get(Crisis, crisis_id)
    if crisis is None:
        raise TaskForceError("no_crisis", id=crisis_id)
    return crisis


def may_resolve(session: Session, actor: Actor, crisis_id: int) -> Crisis:
    """The open crisis ``actor`` may close (asked before /resolve shows its confirm button)."""
    crisis = open_crisis_row(session, crisis_id)
    if not is_lead_or_supervisor(session, actor, crisis):
        raise TaskForceError("not_lead")
    return crisis


def can_resolve(session: Session, actor: Actor, crisis_id: int) -> bool:
    """Whether ``actor`` may close the crisis now (the rule of the confirm button)."""
    try:
        may_resolve(session, actor, crisis_id)
    except TaskForceError:
        return False
    return True


def open_crisis_row(session: Session, crisis_id: int) -> Crisis:
    crisis = crisis_row(session, crisis_id)
    if crisis.status == CrisisStatus.RESOLVED:
        raise TaskForceError("resolved", id=crisis_id)
    return crisis


def display_name(user: User | None) -> str:
    """How people are named in briefs, rosters and reports."""
    if user is None:
        return "—"
    if user.full_name:
        return user.full_name
    return f"@{user.username}" if user.username else f"#{user.id}"


def is_lead_or_supervisor(session: Session, actor: Actor, crisis: Crisis) -> bool:
    """The crisis lead, or a supervisor (or admin) acting for the crisis's agency."""
    if can_act_for_agency(actor, crisis.agency_id, Role.SUPERVISOR):
        return True
    return actor.active and actor.user_id is not None and actor.user_id == crisis.lead_id


def is_participant(session: Session, actor: Actor, crisis: Crisis) -> bool:
    """Someone convened to the crisis who has not declined, or its lead or a supervisor."""
    if is_lead_or_supervisor(session, actor, crisis):
        return True
    if not actor.active:
        return False
    member = member_row(session, crisis.id or 0, actor.user_id)
    return member is not None and member.state in rooms.ADMITTED_STATES


def room_language(session: Session, crisis: Crisis) -> str:
    lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
    return lead.language if lead else "vi"


def participant_crisis(
    session: Session, actor: Actor, crisis_id: int, *, open_only: bool
) -> Crisis:
    """The crisis, for one of its participants only (``/update``, ``/note``, ``/task`` and the
    read-only views); others get ``TaskForceError("not_member_self")``. With ``open_only`` a
    resolved crisis is refused too: notes and views stay possible after the close, new work
    does not."""
    crisis = open_crisis_row(session, crisis_id) if open_only else crisis_row(session, crisis_id)
    if not is_participant(session, actor, crisis):
        raise TaskForceError("not_member_self")
    return crisis
