"""From detections to Alert rows: severity, dedupe, cool-down and escalation.

A developing story keeps firing for hours; people must hear about it once, and again only when it
gets worse. So a topic has at most one live trend alert: while an alert of the topic fired within
the cool-down, a new finding updates that row (window, volume, score, forecast, details) instead
of opening another. The update is reported as ``escalated`` when the severity rises or when the
finding adds a new family (volume, negative, positive) to the alert — a burst that turns
negative is the same story, but a press office must hear that it turned. Otherwise it is
``updated`` and nobody is told. ``details["kinds"]`` lists every kind the alert has carried.
After a quiet cool-down, the next finding is a new alert. The dedupe key (``topic:{id}:{family}``)
records the family the alert was opened with.

The caller commits the session before handing ``notify`` changes to the delivery code, so an
alert is durable before anyone is told about it (see :func:`scanner.trends.run_detection`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    AlertKind.EMERGING: "emerging",
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
    # Harm the window's stories describe, weighted by the outlets carrying it (scanner.harm).
    harm: float = 0.0
    forecast: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # Whether this finding may raise a live alert's severity (and so tell people again): the
    # story is still growing in the last half hour. See :func:`record_finding`.
    current: bool = True

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


HARM_POINTS = ((6.0, 4), (4.0, 3), (2.5, 2), (1.5, 1))  # harm score -> points, highest first


def severity_points(f: Finding) -> dict[str, int]:
    """Each part of the severity's points (see :func:`severity_for`); stored with the alert."""
    points = {
        "evidence": 2 if f.strength >= 3 else 1 if f.strength >= 1.5 else 0,
        "reach": 2 if f.outlets >= 10 else 1 if f.outlets >= 5 else 0,
        "negative": 0,
        "harm": next((p for floor, p in HARM_POINTS if f.harm >= floor), 0),
    }
    if f.volume >= 3 and f.kind != AlertKind.POSITIVE_TURN:
        points["negative"] = 2 if f.negative_share >= 0.7 else 1 if f.negative_share >= 0.5 else 0
    if f.kind == AlertKind.POSITIVE_TURN:
        points["harm"] = 0  # a turn to good news is not a harm, whatever words it repeats
    return points


def severity_for(f: Finding) -> Severity:
    """Surprise and harm together: 0-1 points info, 2-3 warning, 4+ critical if harmful.

    Points: the detector's evidence (strength ≥ 1.5 / 3: 1 / 2), reach (≥ 5 / 10 distinct
    outlets: 1 / 2), negativity (negative share ≥ 0.5 / 0.7 of at least 3 stories: 1 / 2) and
    harm (:mod:`scanner.harm` score ≥ 1.5 / 2.5 / 4 / 6: 1 / 2 / 3 / 4). Critical also needs the
    story to be harmful — a harm or a negativity point: a routine announcement every outlet
    reprints is surprising and wide, worth a warning, but not a crisis. Why harm alone can make
    it critical: an alert has already fired (something is statistically notable), and children
    in hospital from poisoning that three outlets report (three harm categories carried in
    full, score 6) is a crisis for a press office however the sentiment model labelled the
    stories or however many outlets have caught up yet.
    """
    points = severity_points(f)
    total = sum(points.values())
    if total >= 4 and (points["harm"] or points["negative"]):
        return Severity.CRITICAL
    return Severity.WARNING if total >= 2 else Severity.INFO


def _live_alerts(now: datetime, cooldown: timedelta, *where: Any) -> sa.Select[Any]:
    """Alerts matching ``where`` that fired within the cool-down and are not closed, latest
    first."""
    return (
        sa.select(Alert)
        .where(
            *where,
            Alert.status != AlertStatus.CLOSED,  # type: ignore[arg-type]
            Alert.window_end >= now - cooldown,  # type: ignore[arg-type]
        )
        .order_by(Alert.window_end.desc())  # type: ignore[attr-defined]
    )


def active_alert(
    session: Session, dedupe_key: str, now: datetime, cooldown: timedelta
) -> Alert | None:
    """The alert of ``dedupe_key`` that fired within the cool-down and is not closed."""
    stmt = _live_alerts(now, cooldown, Alert.dedupe_key == dedupe_key)
    return session.execute(stmt.limit(1)).scalars().first()


def active_topic_alert(
    session: Session, topic_id: int, now: datetime, cooldown: timedelta
) -> Alert | None:
    """The topic's trend alert (any family) that fired within the cool-down and is not closed."""
    stmt = _topic_alerts("topic", topic_id, now, cooldown)
    return session.execute(stmt.limit(1)).scalars().first()


def _topic_alerts(prefix: str, topic_id: int, now: datetime, cooldown: timedelta) -> sa.Select[Any]:
    """The topic's live alerts whose key starts ``{prefix}:{topic_id}:`` (trend or emerging)."""
    return _live_alerts(
        now,
        cooldown,
        Alert.topic_id == topic_id,
        Alert.dedupe_key.like(f"{prefix}:{topic_id}:%"),  # type: ignore[attr-defined]
    )


def families_of(alert: Alert) -> set[str]:
    """The families (volume, negative, positive) an alert has carried."""
    kinds = (alert.details or {}).get("kinds") or [alert.kind]
    return {FAMILY.get(str(k), str(k)) for k in kinds}


WORSE_FACTOR = 2.0  # evidence or reach must double since people were last told ...
WORSE_SHARE = 0.2  # ... or the negative share rise this much (the turn detector's minimum lift)


def materially_worse(finding: Finding, alert: Alert) -> Finding:
    """``finding`` with only what is clearly worse than what people were last told about ``alert``.

    A topic in alert keeps firing for hours, and its numbers wobble around the severity
    thresholds (8 outlets, then 10; a negative share of 0.45, then 0.5): a severity rise on such
    a wobble would tell people again about the same thing. So each part of the severity counts
    at its new value only if it got materially worse since the last notification: the
    detector's strength (``-log10 p`` over the threshold), the reach or the harm score at least
    doubled (for the strength: p squared, as surprising against the told state as an alert is
    against noise), the negative share up by ``WORSE_SHARE``; otherwise at its told value. The
    severity is raised (and people told) only if this still gives a higher severity.
    """
    told = (alert.details or {}).get("told") or {}
    strength = float(told.get("strength", 0.0))
    outlets = int(told.get("outlets", alert.outlets or 0))
    share = float(told.get("negative_share", alert.negative_share or 0.0))
    harm = float(told.get("harm", 0.0))
    return replace(
        finding,
        strength=finding.strength if finding.strength >= WORSE_FACTOR * strength else strength,
        outlets=finding.outlets if finding.outlets >= WORSE_FACTOR * max(outlets, 1) else outlets,
        negative_share=(
            finding.negative_share if finding.negative_share >= share + WORSE_SHARE else share
        ),
        harm=finding.harm if finding.harm >= WORSE_FACTOR * harm else harm,
    )


def _told(
    finding: Finding,
    reason: str,
    previous: str | None = None,
    severity: str | None = None,
) -> dict[str, Any]:
    """What people are told by a new or escalated alert: which kind and family, and why."""
    told: dict[str, Any] = {
        "kind": finding.kind,
        "families": [finding.family],
        "reason": reason,
        "strength": round(finding.strength, 3),
        "outlets": finding.outlets,
        "negative_share": finding.negative_share,
        "harm": round(finding.harm, 3),
        "points": severity_points(finding),
    }
    if previous is not None and severity is not None:
        told["severity"] = [str(previous), str(severity)]
    return told


def _new_alert(
    session: Session, finding: Finding, kind: str, severity: str, dedupe_key: str, now: datetime
) -> AlertChange:
    """An open alert made of ``finding`` (flushed, not committed)."""
    alert = Alert(
        topic_id=finding.topic_id,
        kind=kind,
        severity=severity,
        status=AlertStatus.OPEN,
        dedupe_key=dedupe_key,
        window_start=finding.window_start,
        window_end=finding.window_end,
        volume=finding.volume,
        baseline=finding.baseline,
        score=finding.score,
        outlets=finding.outlets,
        negative_share=finding.negative_share,
        forecast=finding.forecast,
        details={
            **finding.details,
            "kinds": [kind],
            "first_at": now.isoformat(),
            "told": _told(finding, "new"),
        },
        created_at=now,
        updated_at=now,
    )
    session.add(alert)
    session.flush()
    return AlertChange(alert, "new")


def record_finding(
    session: Session, finding: Finding, now: datetime, *, cooldown: timedelta = COOLDOWN
) -> AlertChange:
    """Create or update the Alert row of ``finding``; flushes, does not commit.

    A finding raises a live alert's severity only if it is ``current``: a sentiment turn, or a
    volume finding while the topic's last half hour is still up on its own. Evidence summed
    over hours — the 4-bucket window, the build-up's CUSUM — keeps growing, and copies keep
    adding outlets, after a story has peaked; telling people again then, about a story that is
    fading, would be noise. Such findings still update the alert silently, and still tell
    people when they add a family.
    """
    severity = severity_for(finding)
    existing = active_topic_alert(session, finding.topic_id, now, cooldown)
    if existing is None:
        return _new_alert(session, finding, finding.kind, severity, finding.dedupe_key, now)
    previous = existing.severity
    raised = finding.current and (
        _RANK[Severity(severity_for(materially_worse(finding, existing)))]
        > _RANK[Severity(previous)]
    )
    new_family = finding.family not in families_of(existing)
    existing.window_end = max(existing.window_end, finding.window_end)
    existing.window_start = min(existing.window_start, finding.window_start)
    existing.volume = finding.volume
    existing.baseline = finding.baseline
    existing.score = max(existing.score, finding.score)
    existing.outlets = max(existing.outlets, finding.outlets)
    existing.negative_share = finding.negative_share
    existing.forecast = finding.forecast
    kinds = list(existing.details.get("kinds", [existing.kind]))
    if finding.kind not in kinds:
        kinds.append(finding.kind)
    details = {**existing.details, **finding.details, "kinds": kinds}
    if not finding.details.get("terms") and existing.details.get("terms"):
        details["terms"] = existing.details["terms"]  # keep the label until a new one is made
    if raised or new_family:
        details["told"] = _told(
            finding,
            "family" if new_family else "severity",
            *((previous, severity) if raised else (None, None)),
        )
    existing.details = details
    existing.updated_at = now
    if raised:
        existing.severity = severity
        if existing.status == AlertStatus.DISMISSED:
            existing.status = AlertStatus.OPEN  # worse than when it was dismissed: look again
    session.add(existing)
    session.flush()
    return AlertChange(existing, "escalated" if raised or new_family else "updated", previous)


EMERGING_COOLDOWN = timedelta(hours=24)  # one emerging alert per term and topic a day


def emerging_key(topic_id: int, term: str) -> str:
    """Dedupe key of an emerging-term alert (not ``topic:...``: it never joins a trend alert)."""
    return f"emerging:{topic_id}:{term}"


def record_emerging(
    session: Session,
    finding: Finding,
    term: str,
    now: datetime,
    *,
    cooldown: timedelta = EMERGING_COOLDOWN,
) -> AlertChange:
    """Create (``new``) or silently update (``updated``) the emerging alert of ``term``.

    Rate limit: one alert per term and topic within ``cooldown`` of its last firing — the key
    ``emerging:{topic}:{term}`` — and a term already shown by another live emerging alert of the
    topic (as one of its ``terms``) updates that alert instead of opening one. Severity is
    always info: an emerging term says what is being written about, not that it is urgent.
    Flushes, does not commit.
    """
    key = emerging_key(finding.topic_id, term)
    existing = active_alert(session, key, now, cooldown)
    if existing is None:
        stmt = _topic_alerts("emerging", finding.topic_id, now, cooldown)
        for alert in session.execute(stmt).scalars():
            if term in (alert.details or {}).get("terms", []):
                existing = alert
                break
    if existing is not None:
        existing.window_end = max(existing.window_end, finding.window_end)
        existing.volume = finding.volume
        existing.score = max(existing.score, finding.score)
        existing.outlets = max(existing.outlets, finding.outlets)
        existing.updated_at = now
        session.add(existing)
        session.flush()
        return AlertChange(existing, "updated", existing.severity)
    return _new_alert(session, finding, AlertKind.EMERGING, Severity.INFO, key, now)
