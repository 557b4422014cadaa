"""The reminders of a submitted draft: the due kinds that re-send a pending approval request
and escalate it, scheduled when a draft is submitted and cancelled when it leaves that state.

Apart from ``approvals`` (which fires them) because ``drafts`` cancels them too, when a submitted
draft is edited or discarded, and ``approvals`` is built on ``drafts``, not the other way round.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from bot.services import due
from storage.models import Draft

REMIND = "approval.remind"
ESCALATE = "approval.escalate"


def schedule_reminders(
    session: Session, draft: Draft, at: datetime, remind_after: timedelta
) -> None:
    """A reminder to the approvers after ``remind_after``, the escalation after twice that."""
    assert draft.id is not None
    due.schedule(
        session, REMIND, at + remind_after, ref_id=draft.id, dedupe_key=f"{REMIND}:{draft.id}"
    )
    due.schedule(
        session,
        ESCALATE,
        at + 2 * remind_after,
        ref_id=draft.id,
        dedupe_key=f"{ESCALATE}:{draft.id}",
    )


def cancel_reminders(session: Session, draft: Draft, at: datetime) -> None:
    assert draft.id is not None
    due.cancel(session, kind=REMIND, ref_id=draft.id, at=at)
    due.cancel(session, kind=ESCALATE, ref_id=draft.id, at=at)
