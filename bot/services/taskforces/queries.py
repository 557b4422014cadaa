"""Read-only views of a crisis for handlers and the after-action report: the timeline as lines,
the roster, the crises a person leads and the approvals of its statements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from sqlmodel import Session, col, select

from bot.channels.refs import ChatRef
from bot.services import rooms, timeline
from bot.services.permissions import (
    Actor,
)
from bot.services.taskforces.convening import INVITE_KIND
from bot.services.taskforces.crises import (
    display_name,
    members_of,
    participant_crisis,
)
from storage.models import (
    Agency,
    Approval,
    Crisis,
    CrisisStatus,
    Decision,
    Delivery,
    Draft,
    User,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


@dataclass
class TimelineLine:
    at: datetime
    kind: str
    actor: str
    text: str


def lines_of_timeline(
    session: Session, crisis_id: int, limit: int | None = None
) -> list[TimelineLine]:
    """The timeline with each actor named (the ``limit`` most recent events, or all)."""
    names: dict[int, str] = {}
    lines = []
    for event in timeline.events(session, crisis_id, limit=limit):
        name = ""
        if event.actor_id is not None:
            if event.actor_id not in names:
                names[event.actor_id] = display_name(session.get(User, event.actor_id))
            name = names[event.actor_id]
        lines.append(TimelineLine(event.at, event.kind, name, event.text))
    return lines


V = TypeVar("V")
# A read-only view of one crisis (its timeline, tasks, roster …), read in the caller's session.
CrisisView: TypeAlias = Callable[[Session, int], V]
TIMELINE_SHOWN = 30  # events /timeline shows, the most recent


def for_participant(
    runtime: Runtime, actor: Actor, crisis_id: int, view: CrisisView[V]
) -> tuple[Crisis, V]:
    """``view`` of a crisis, for its participants only (``/timeline``, ``/tasks``, ``/roster``);
    others get ``TaskForceError("not_member_self")``."""
    with runtime.db.session() as session:
        crisis = participant_crisis(session, actor, crisis_id, open_only=False)
        return crisis, view(session, crisis_id)


@dataclass
class RosterLine:
    name: str
    role: str
    state: str
    delivery: str | None


def roster(session: Session, crisis_id: int) -> list[RosterLine]:
    rows = members_of(session, crisis_id)
    deliveries = {
        d.user_id: d.status
        for d in session.exec(
            select(Delivery).where(Delivery.kind == INVITE_KIND, Delivery.ref_id == crisis_id)
        )
    }
    return [
        RosterLine(display_name(user), member.role, member.state, deliveries.get(user.id or 0))
        for member, user in rows
    ]


def crisis_for_lead(runtime: Runtime, user_id: int | None) -> list[Crisis]:
    """Open crises a person leads (for ``/crisis`` without arguments)."""
    if user_id is None:
        return []
    with runtime.db.session() as session:
        return list(
            session.exec(
                select(Crisis)
                .where(Crisis.lead_id == user_id, Crisis.status != CrisisStatus.RESOLVED)
                .order_by(col(Crisis.id))
            )
        )


def agency_codes(runtime: Runtime) -> dict[str, int]:
    """Every agency's code and id (``/crisis CODE …`` names the agency by its code)."""
    with runtime.db.session() as session:
        return {a.code: a.id for a in session.exec(select(Agency)) if a.id is not None}


def crisis_of_room(runtime: Runtime, chat: ChatRef) -> int | None:
    """The id of the crisis a room command was typed in (``rooms.crisis_in_room``)."""
    with runtime.db.session() as session:
        found = rooms.crisis_in_room(session, chat)
        return found.id if found else None


def approvals_of(session: Session, crisis_id: int) -> list[Approval]:
    return list(
        session.exec(
            select(Approval)
            .join(Draft, col(Draft.id) == col(Approval.draft_id))
            .where(Draft.crisis_id == crisis_id, Approval.decision == Decision.APPROVE)
            .order_by(col(Approval.at))
        )
    )
