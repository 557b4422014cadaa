"""A system summary for admins (``/status``): is the desk healthy right now?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import Alert, AlertStatus, Crisis, CrisisStatus, Due, Setting, User


@dataclass(frozen=True)
class StatusSummary:
    at: datetime
    database: str
    users: dict[str, int]
    open_alerts: int
    open_crises: int
    pending_due: int
    overdue_due: int
    last_scan: dict[str, Any] | None


def system_status(session: Session, now: datetime) -> StatusSummary:
    users = dict(session.exec(select(User.status, func.count()).group_by(User.status)).all())
    open_alerts = session.exec(
        select(func.count())
        .select_from(Alert)
        .where(col(Alert.status).in_([AlertStatus.OPEN, AlertStatus.ESCALATED]))
    ).one()
    open_crises = session.exec(
        select(func.count()).select_from(Crisis).where(Crisis.status != CrisisStatus.RESOLVED)
    ).one()
    pending = session.exec(
        select(func.count()).select_from(Due).where(col(Due.done_at).is_(None))
    ).one()
    overdue = session.exec(
        select(func.count()).select_from(Due).where(col(Due.done_at).is_(None), Due.due_at < now)
    ).one()
    scan = session.get(Setting, "last_scan")
    return StatusSummary(
        at=now,
        database=session.get_bind().dialect.name,
        users={str(k): int(v) for k, v in users.items()},
        open_alerts=int(open_alerts),
        open_crises=int(open_crises),
        pending_due=int(pending),
        overdue_due=int(overdue),
        last_scan=scan.value if scan else None,
    )
