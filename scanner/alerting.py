"""From detections to Alert rows: severity, dedupe, cool-down and escalation.

A developing story keeps firing for hours; people must hear about it once, and again only when it
gets worse. So every finding has a dedupe key (topic + family: volume, negative, positive). While
an alert of that key fired within the cool-down, a new finding updates that row (window, volume,
score, forecast, details) and is reported as ``escalated`` only if its severity rises; otherwise
it is ``updated`` and nobody is told. After a quiet cool-down, the next finding is a new alert.

The caller commits the session before handing ``notify`` changes to the delivery code, so an
alert is durable before anyone is told about it (see :func:`scanner.trends.run_detection`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session

from storage.models import Alert, AlertKind, AlertStatus, Severity

COOLDOWN = timedelta(hours=3)
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
FAMILY: dict[str, str] = {
    AlertKind.VOLUME_BURST: "volume",
    AlertKind.SLOW_BUILDUP: "volume",
    AlertKind.EMERGING: "volume",
    AlertKind.NEGATIVE_TURN: "negative",
    AlertKind.POSITIVE_TURN: "positive",
}


@dataclass
class Finding:
    """One topic's detection, with everything the Alert row shows."""

    topic_id: int
    kind: str
    window_start: datetime
    window_end: datetime
    volume: float
    baseline: float
    score: float
    strength: float  # score relative to the firing threshold (1 = just fired)
    outlets: int
    negative_share: float
    forecast: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return FAMILY.get(self.kind, self.kind)

    @property
    def dedupe_key(self) -> str:
        return f"topic:{self.topic_id}:{self.family}"


@dataclass(frozen=True)
class AlertChange:
    """What happened to an Alert row; ``notify`` says whether delivery should tell people."""

    alert: Alert
    change: Literal["new", "escalated", "updated"]
    previous_severity: str | None = None

    @property
    def notify(self) -> bool:
        return self.change in ("new", "escalated")


def severity_for(f: Finding) -> Severity:
    """Points for strength, reach and negativity: 0-1 info, 2-3 warning, 4+ critical.

    Why these three: a statistically extreme burst, one that many outlets carry, and one that is
    mostly negative are each more urgent for a press office; together they are a crisis.
    """
    points = 0
    points += 2 if f.strength >= 3 else 1 if f.strength >= 1.5 else 0
    points += 2 if f.outlets >= 10 else 1 if f.outlets >= 5 else 0
    if f.volume >= 3 and f.kind != AlertKind.POSITIVE_TURN:
        points += 2 if f.negative_share >= 0.7 else 1 if f.negative_share >= 0.5 else 0
    if points >= 4:
        return Severity.CRITICAL
    return Severity.WARNING if points >= 2 else Severity.INFO


def active_alert(
    session: Session, dedupe_key: str, now: datetime, cooldown: timedelta
) -> Alert | None:
    """The alert of ``dedupe_key`` that fired within the cool-down and is not closed."""
    stmt = (
        sa.select(Alert)
        .where(
            Alert.dedupe_key == dedupe_key,  # type: ignore[arg-type]
            Alert.status != AlertStatus.CLOSED,  # type: ignore[arg-type]
            Alert.window_end >= now - cooldown,  # type: ignore[arg-type]
        )
        .order_by(Alert.window_end.desc())  # type: ignore[attr-defined]
        .limit(1)
    )
    return session.execute(stmt).scalars().first()


def record_finding(
    session: Session, finding: Finding, now: datetime, *, cooldown: timedelta = COOLDOWN
) -> AlertChange:
    """Create or update the Alert row of ``finding``; flushes, does not commit."""
    severity = severity_for(finding)
    existing = active_alert(session, finding.dedupe_key, now, cooldown)
    if existing is None:
        alert = Alert(
            topic_id=finding.topic_id,
            kind=finding.kind,
            severity=severity,
            status=AlertStatus.OPEN,
            dedupe_key=finding.dedupe_key,
            window_start=finding.window_start,
            window_end=finding.window_end,
            volume=finding.volume,
            baseline=finding.baseline,
            score=finding.score,
            outlets=finding.outlets,
            negative_share=finding.negative_share,
            forecast=finding.forecast,
            details={**finding.details, "kinds": [finding.kind], "first_at": now.isoformat()},
            created_at=now,
            updated_at=now,
        )
        session.add(alert)
        session.flush()
        return AlertChange(alert, "new")
    previous = existing.severity
    raised = _RANK[Severity(severity)] > _RANK[Severity(previous)]
    existing.window_end = max(existing.window_end, finding.window_end)
    existing.volume = finding.volume
    existing.baseline = finding.baseline
    existing.score = max(existing.score, finding.score)
    existing.outlets = max(existing.outlets, finding.outlets)
    existing.negative_share = finding.negative_share
    existing.forecast = finding.forecast
    kinds = list(existing.details.get("kinds", [existing.kind]))
    if finding.kind not in kinds:
        kinds.append(finding.kind)
    existing.details = {**existing.details, **finding.details, "kinds": kinds}
    existing.updated_at = now
    if raised:
        existing.severity = severity
        if existing.status == AlertStatus.DISMISSED:
            existing.status = AlertStatus.OPEN  # worse than when it was dismissed: look again
    session.add(existing)
    session.flush()
    return AlertChange(existing, "escalated" if raised else "updated", previous)
