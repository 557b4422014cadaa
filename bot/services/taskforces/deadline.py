"""The legal response deadline: ``crisis.deadline`` due rows at 50 % and 80 % remind the lead, and
the overdue one escalates to supervisors — none once a statement is published.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, func, select

from bot.services import identity, timeline
from bot.services.due import due_handler, schedule
from bot.services.notify import send_direct
from bot.services.people import active_with_role
from bot.services.taskforces.room import room_url
from storage.models import (
    Crisis,
    CrisisStatus,
    Draft,
    Due,
    Role,
    User,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


DEADLINE_KIND = "crisis.deadline"


def schedule_deadline(session: Session, crisis: Crisis) -> None:
    assert crisis.id is not None
    span = crisis.deadline_at - crisis.detected_at
    for stage, at in (
        ("50", crisis.detected_at + span * 0.5),
        ("80", crisis.detected_at + span * 0.8),
        ("overdue", crisis.deadline_at),
    ):
        schedule(
            session,
            DEADLINE_KIND,
            at,
            ref_id=crisis.id,
            payload={"stage": stage},
            dedupe_key=f"crisis:{crisis.id}:deadline:{stage}",
        )


def first_publication(session: Session, crisis_id: int) -> datetime | None:
    return session.exec(
        select(func.min(Draft.published_at)).where(
            Draft.crisis_id == crisis_id, col(Draft.published_at).is_not(None)
        )
    ).one()


@due_handler(DEADLINE_KIND)
async def _deadline_due(runtime: Runtime, session: Session, due: Due) -> None:
    """50 % and 80 %: remind the lead; overdue: escalate to the agency's supervisors. Nothing
    once the crisis is resolved or its first statement is published."""
    crisis = session.get(Crisis, due.ref_id) if due.ref_id is not None else None
    if crisis is None or crisis.status == CrisisStatus.RESOLVED or crisis.id is None:
        return
    if first_publication(session, crisis.id) is not None:
        return
    stage = str(due.payload.get("stage", "50"))
    now = runtime.clock.now()
    if stage == "overdue":
        people = active_with_role(session, crisis.agency_id, Role.SUPERVISOR)
        lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
        if lead is not None and all(p.id != lead.id for p in people):
            people.append(lead)
        template = "crisis_deadline_overdue"
    else:
        lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
        people = [lead] if lead is not None else []
        template = "crisis_deadline_reminder"
    timeline.add(session, crisis.id, timeline.DEADLINE, None, stage, {"stage": stage}, now)
    for person in people:
        to = identity.direct_chat(session, person.id, runtime.notifier.channel)
        if to is None or not person.reachable:
            continue
        text = runtime.renderer.render(
            template,
            person.language,
            c=crisis,
            stage=stage,
            left=max(crisis.deadline_at - now, timedelta(0)),
            url=room_url(runtime, crisis),
        )
        await send_direct(runtime, session, person, text)
