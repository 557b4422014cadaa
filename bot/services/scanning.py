"""The scheduled scan: fetch and store news, detect trends, plan the alert deliveries.

Alert rows are committed by the detector before this plans anything, and the ledger rows are
committed before the delivery job sends anything, so a crash anywhere loses nothing: the next run
re-plans idempotently and resumes unsent rows.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.services import identity
from bot.services.alerts import plan_delivery
from bot.services.due import schedule
from bot.services.notify import notify_payload
from bot.services.people import active_with_role
from scanner.alerting import AlertChange
from scanner.pipeline import ScanReport, run_scan
from scanner.series import repair_series
from scanner.trends import run_detection
from storage.models import Alert, Role, Source, User

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanOutcome:
    report: ScanReport
    changes: list[AlertChange]
    planned: int  # new ledger rows (messages owed to people)


def has_sources(runtime: Runtime) -> bool:
    with runtime.db.session() as session:
        return (
            session.exec(select(Source.id).where(col(Source.active).is_(True))).first() is not None
        )


def repair_series_once(runtime: Runtime) -> int:
    """Before this process's first detection: rebuild every series bucket that stored articles
    touch and that is missing or stale (``scanner.series.repair_series``; cheap when none is).
    Run by the scan job, not beside it, so the repair and a scan never rebuild at once."""
    if runtime.series_repaired:
        return 0
    with runtime.db.session() as session:
        repaired = repair_series(session)
    runtime.series_repaired = True
    if repaired:
        log.info("series: %s missing or stale buckets rebuilt at start-up", repaired)
    return repaired


async def scan_and_alert(runtime: Runtime) -> ScanOutcome | None:
    """One scan, detection and delivery plan; None when there is nothing to scan."""
    await asyncio.to_thread(repair_series_once, runtime)
    if not has_sources(runtime):
        return None
    fetched_at = runtime.clock.now()
    report = await run_scan(
        runtime.db,
        runtime.settings,
        runtime.clock,
        on_health=lambda session, source, event: report_source_health(
            session, source, event, runtime.clock.now()
        ),
    )
    now = runtime.clock.now()
    changes = await asyncio.to_thread(
        run_detection, runtime.db, now, tz=runtime.settings.tz, fetched_at=fetched_at
    )
    planned = 0
    escalate_after = timedelta(minutes=runtime.settings.escalation_minutes)
    with runtime.db.session() as session:
        for change in changes:
            if not change.notify:
                continue
            alert = session.get(Alert, change.alert.id)
            if alert is not None:
                planned += plan_delivery(session, alert, now, escalate_after=escalate_after)
    log.info(
        "scan: %s new articles, %s alert changes, %s messages planned",
        len(report.new_articles),
        len(changes),
        planned,
    )
    return ScanOutcome(report, changes, planned)


def report_source_health(session: Session, source: Source, event: str, now: datetime) -> int:
    """Tell the admins and supervisors that a feed keeps failing ("down") or works again
    ("up"); returns how many messages were scheduled.

    Called by the scan inside its own transaction, once per transition, so the message is
    owed exactly when the source's health says so. Sources are shared by every agency (only
    supervisors and admins may add them), so every agency's admins and supervisors hear it.
    """
    assert source.id is not None
    reachable = set(session.exec(select(User.id).where(identity.has_account())))
    people = [
        *active_with_role(session, None, Role.ADMIN),
        *active_with_role(session, None, Role.SUPERVISOR),
    ]
    stamp = now.strftime("%Y%m%dT%H%M%S")
    scheduled = 0
    for person in people:
        if person.id is None or person.id not in reachable or not person.reachable:
            continue
        row = schedule(
            session,
            "notify",
            now,
            payload=notify_payload(
                person.id,
                f"source_{event}",
                name=source.name,
                url=source.url,
                failures=source.consecutive_failures,
                error=(source.last_error or "")[:300],
            ),
            dedupe_key=f"source_{event}:{source.id}:{person.id}:{stamp}",
        )
        scheduled += row is not None
    log.warning("source %s (%s) is %s; %d people told", source.name, source.url, event, scheduled)
    return scheduled
