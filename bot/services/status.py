"""A system summary for admins (``/status``): is the desk healthy right now?

It includes alert delivery through an outage: how many people are being retried and since when,
and the latest alerts that did not reach someone (failed after the retry budget) or may not have
(the send's answer was lost; see docs/reliability.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.services.alerts import ALERT_KIND
from storage.counts import count_rows
from storage.models import (
    Alert,
    AlertStatus,
    Crisis,
    CrisisStatus,
    Delivery,
    DeliveryStatus,
    Due,
    Setting,
    Topic,
    User,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from storage.db import Database

DELIVERY_PROBLEMS_SHOWN = 3
#: Refresh presses this close together (seconds) are shown one read of the summary.
SHARED_SECONDS = 1.0


@dataclass(frozen=True)
class DeliveryProblem:
    """An alert that did not reach (``failed``) or may not have reached (``uncertain``) people."""

    alert_id: int
    topic: str
    at: datetime
    failed: int
    uncertain: int


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
    retrying: int = 0  # people whose alert delivery is failing now and being retried
    failing_since: datetime | None = None
    delivery_problems: tuple[DeliveryProblem, ...] = ()


def last_scan(session: Session) -> dict[str, Any] | None:
    """The summary the last scan left (``/scanstatus``, ``/status``), if one ran."""
    row = session.get(Setting, "last_scan")
    return dict(row.value) if row else None


def system_status(session: Session, now: datetime) -> StatusSummary:
    users = dict(session.exec(select(User.status, func.count()).group_by(User.status)).all())
    open_alerts = count_rows(
        session, Alert, col(Alert.status).in_([AlertStatus.OPEN, AlertStatus.ESCALATED])
    )
    open_crises = count_rows(session, Crisis, Crisis.status != CrisisStatus.RESOLVED)
    pending = count_rows(session, Due, col(Due.done_at).is_(None))
    overdue = count_rows(session, Due, col(Due.done_at).is_(None), Due.due_at < now)
    retrying, failing_since = session.exec(
        select(func.count(func.distinct(Delivery.user_id)), func.min(Delivery.failing_since)).where(
            Delivery.kind == ALERT_KIND,
            Delivery.status == DeliveryStatus.PENDING,
            col(Delivery.failing_since).is_not(None),
        )
    ).one()
    return StatusSummary(
        at=now,
        database=session.get_bind().dialect.name,
        users={str(k): int(v) for k, v in users.items()},
        open_alerts=int(open_alerts),
        open_crises=int(open_crises),
        pending_due=int(pending),
        overdue_due=int(overdue),
        last_scan=last_scan(session),
        retrying=int(retrying),
        failing_since=failing_since,
        delivery_problems=delivery_problems(session),
    )


def delivery_problems(
    session: Session, limit: int = DELIVERY_PROBLEMS_SHOWN
) -> tuple[DeliveryProblem, ...]:
    """The latest alerts whose text failed or is uncertain for someone, with head counts."""
    counts = session.exec(
        select(Delivery.ref_id, Delivery.status, func.count(func.distinct(Delivery.user_id)))
        .where(
            Delivery.kind == ALERT_KIND,
            col(Delivery.status).in_([DeliveryStatus.FAILED, DeliveryStatus.UNCERTAIN]),
            col(Delivery.part).startswith("text:"),
        )
        .group_by(col(Delivery.ref_id), col(Delivery.status))
        .order_by(col(Delivery.ref_id).desc())
        .limit(2 * limit)  # at most two rows (failed, uncertain) per alert
    ).all()
    by_alert: dict[int, dict[str, int]] = {}
    for alert_id, status, people in counts:
        by_alert.setdefault(alert_id, {})[status] = int(people)
    latest = sorted(by_alert, reverse=True)[:limit]
    alerts = {
        alert.id: (alert, topic)
        for alert, topic in session.exec(
            select(Alert, Topic)
            .join(Topic, col(Topic.id) == col(Alert.topic_id))
            .where(col(Alert.id).in_(latest))
        )
    }
    return tuple(
        DeliveryProblem(
            alert_id=alert_id,
            topic=alerts[alert_id][1].name,
            at=alerts[alert_id][0].created_at,
            failed=by_alert[alert_id].get(DeliveryStatus.FAILED, 0),
            uncertain=by_alert[alert_id].get(DeliveryStatus.UNCERTAIN, 0),
        )
        for alert_id in latest
        if alert_id in alerts
    )


def current_status(
    runtime: Runtime, monotonic: Callable[[], float] = time.monotonic
) -> StatusSummary:
    """``system_status`` as of now, read in a transaction of its own (``/status``)."""
    with runtime.db.session() as session:
        summary = system_status(session, runtime.clock.now())
    _latest[runtime.db] = (monotonic(), summary)
    return summary


def refreshed_status(
    runtime: Runtime, monotonic: Callable[[], float] = time.monotonic
) -> StatusSummary:
    """The summary for a Refresh press: one read in the last ``SHARED_SECONDS`` serves every
    press in that second, its header saying when it was read.

    The summary is about ten queries; at a hundred presses a second (issue 17's load, many
    admins watching one desk) reading it for each was most of the process's time, while the
    screen a second later says the same. A typed ``/status`` always reads afresh."""
    latest = _latest.get(runtime.db)
    if latest is not None and 0 <= monotonic() - latest[0] < SHARED_SECONDS:
        return latest[1]
    return current_status(runtime, monotonic)


# The latest summary read of each database, and when (``time.monotonic``): what presses share.
_latest: WeakKeyDictionary[Database, tuple[float, StatusSummary]] = WeakKeyDictionary()


def last_scan_of(runtime: Runtime) -> dict[str, Any] | None:
    """:func:`last_scan`, read in a unit of work of its own (``/scanstatus``)."""
    with runtime.db.session() as session:
        return last_scan(session)
