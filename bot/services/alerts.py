"""Alerts as people see them: who gets one, what it says, and what they may do with it.

The scanner writes Alert rows; this module decides recipients (active subscribers of the topic in
its agency, plus the agency's supervisors when it is critical), plans the Delivery ledger rows
(written before anything is sent), gathers the facts a message shows, and applies the actions
behind the buttons (acknowledge, dismiss with a reason, mute), each audited and re-checked on the
server. Sending itself lives in ``bot.services.delivery``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.channels.refs import PersonRef
from bot.services import audit, identity
from bot.services.due import due_handler, schedule
from bot.services.people import active_with_role
from bot.services.permissions import Actor, can_act_for_agency, is_admin
from bot.services.phrases import as_written
from bot.services.refusals import Refusal
from storage.counts import count_rows
from storage.models import (
    Agency,
    Alert,
    AlertStatus,
    Article,
    ArticleTopic,
    Crisis,
    Delivery,
    DeliveryStatus,
    Role,
    Severity,
    Story,
    Subscription,
    Topic,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

ALERT_KIND = "alert"
ESCALATION_KIND = "alert_escalation"
REFRESH_KIND = "alert_refresh"
REFRESH_DEBOUNCE = timedelta(seconds=10)
DISMISS_REASONS = ("fp", "remit", "handled", "other")
MUTE_HOURS_MAX = 24 * 30


class AlertActionError(Refusal):
    """An alert action that cannot be applied (acknowledging a closed alert, a bad reason)."""


@dataclass(frozen=True)
class StoryFact:
    title: str
    url: str
    outlets: list[str]


@dataclass(frozen=True)
class AlertFacts:
    """Everything an alert message shows, loaded in one place."""

    alert: Alert
    topic: Topic
    agency: Agency
    stories: list[StoryFact]
    terms: list[str]
    acknowledged_by: str | None
    crisis_id: int | None


def part_for(kind: str, severity: str) -> tuple[str, str]:
    """Ledger parts of one delivery of an alert at a severity: its chart and its text.

    An escalation is a new severity, hence new parts: the same person gets the escalated alert even
    though they already got the first one, and a re-run never doubles either.
    """
    return f"photo:{severity}", f"text:{severity}"


def base_part(part: str) -> str:
    """The ledger part without the channel a second copy carries (``text:warning@zalo``)."""
    return part.partition("@")[0]


@dataclass
class Owed:
    """What an alert's ledger already owes, to plan more rows without doubling any.

    A person gets each part once per channel their alerts go to (``identity.alert_channels``).
    The unique key is (kind, alert, person, part), so the first copy of a part has the plain
    name and a copy on a further channel carries it: ``text:warning@zalo``. A part is owed on a
    channel if a row names it there, or names no channel (rows planned before channels were
    chosen are sent on whichever channel serves them).
    """

    alert_id: int
    parts: set[tuple[int, str]]
    channels: set[tuple[int, str, str | None]]

    @classmethod
    def of(cls, session: Session, alert_id: int) -> Owed:
        rows = session.exec(
            select(Delivery.user_id, Delivery.part, Delivery.channel).where(
                Delivery.kind == ALERT_KIND, Delivery.ref_id == alert_id
            )
        ).all()
        return cls(
            alert_id,
            {(user_id, part) for user_id, part, _ in rows},
            {(user_id, base_part(part), channel) for user_id, part, channel in rows},
        )

    def plan(
        self,
        session: Session,
        user_id: int,
        parts: Iterable[str],
        channels: Sequence[str],
        now: datetime,
    ) -> int:
        """Add the rows ``user_id`` is owed on ``channels`` (none known: one copy for whichever
        channel serves them); returns how many."""
        added = 0
        targets: list[str | None] = [*channels] or [None]
        for part in parts:
            for channel in targets:
                if {(user_id, part, channel), (user_id, part, None)} & self.channels:
                    continue
                name = part if (user_id, part) not in self.parts else f"{part}@{channel}"
                session.add(
                    Delivery(
                        kind=ALERT_KIND,
                        ref_id=self.alert_id,
                        user_id=user_id,
                        part=name,
                        channel=channel,
                        created_at=now,
                    )
                )
                self.parts.add((user_id, name))
                self.channels.add((user_id, part, channel))
                added += 1
        return added


def recipients(session: Session, alert: Alert, now: datetime) -> list[User]:
    """Active, reachable subscribers of the topic in its agency, not muted; and supervisors
    too when the alert is critical."""
    topic = session.get(Topic, alert.topic_id)
    if topic is None:
        return []
    muted = sa.and_(col(Subscription.muted_until).is_not(None), col(Subscription.muted_until) > now)
    subscribers = session.exec(
        select(User)
        .join(Subscription, col(Subscription.user_id) == col(User.id))
        .where(
            Subscription.topic_id == topic.id,
            sa.not_(muted),
            User.status == UserStatus.ACTIVE,
            col(User.reachable).is_(True),
            identity.has_account(),
            sa.or_(col(User.agency_id) == topic.agency_id, col(User.role) == Role.ADMIN),
        )
        .order_by(col(User.id))
    ).all()
    people = {u.id: u for u in subscribers}
    if alert.severity == Severity.CRITICAL:
        for supervisor in supervisors_of(session, topic.agency_id):
            people.setdefault(supervisor.id, supervisor)
    return list(people.values())


def supervisors_of(session: Session, agency_id: int) -> list[User]:
    """Active supervisors of the agency whom the bot can message."""
    reachable = set(session.exec(select(User.id).where(identity.has_account())))
    return [
        user
        for user in active_with_role(session, agency_id, Role.SUPERVISOR)
        if user.reachable and user.id in reachable
    ]


def admins_of(session: Session, agency_id: int, global_admins: Iterable[PersonRef]) -> list[User]:
    """Active admins the bot can message who answer for ``agency_id``: its own, those of no
    agency, and the global admins of ``ADMIN_IDS`` who registered."""
    registered_admins = identity.user_ids(session, global_admins)
    query = (
        select(User)
        .where(
            User.status == UserStatus.ACTIVE,
            col(User.reachable).is_(True),
            identity.has_account(),
            sa.or_(
                sa.and_(
                    col(User.role) == Role.ADMIN,
                    sa.or_(col(User.agency_id) == agency_id, col(User.agency_id).is_(None)),
                ),
                col(User.id).in_(registered_admins),
            ),
        )
        .order_by(col(User.id))
    )
    return list(session.exec(query))


def _owe(
    session: Session, alert: Alert, people: Sequence[User], parts: Sequence[str], now: datetime
) -> int:
    """Ledger rows for the ``parts`` of ``alert`` each of ``people`` is not owed yet, on the
    channels their alerts go to (``identity.alert_channels``); how many are new."""
    assert alert.id is not None
    owed = Owed.of(session, alert.id)
    channels = identity.alert_channels(session, people)
    added = 0
    for person in people:
        assert person.id is not None
        added += owed.plan(session, person.id, parts, channels.get(person.id, []), now)
    return added


def plan_delivery(
    session: Session, alert: Alert, now: datetime, *, escalate_after: timedelta
) -> int:
    """Write the ledger rows for ``alert`` at its current severity; returns how many are new.

    Idempotent (``Owed``, and the (kind, ref, user, part) unique key): planning again after a
    crash, or on a second scan, adds nothing. Each person's rows are owed on the channels their
    alerts go to. Critical alerts also get their escalation scheduled.
    """
    assert alert.id is not None
    added = _owe(
        session, alert, recipients(session, alert, now), part_for(alert.kind, alert.severity), now
    )
    if alert.severity == Severity.CRITICAL and alert.acknowledged_at is None:
        schedule(
            session,
            ESCALATION_KIND,
            now + escalate_after,
            ref_id=alert.id,
            dedupe_key=f"{ESCALATION_KIND}:{alert.id}",
        )
    session.flush()
    return added


# A newcomer to a topic is handed the alerts of this last stretch still waiting for someone.
HANDOVER_WINDOW = timedelta(hours=24)


def hand_over_open_alerts(
    session: Session, topic_id: int, now: datetime, *, escalate_after: timedelta
) -> int:
    """Plan deliveries of the topic's still-open alerts (recent ones) to people who follow it now.

    Someone who starts following a topic after its alert went out would otherwise never see it
    (and a drill would wait for them forever). ``plan_delivery`` is idempotent, so only the
    newcomers get rows. Returns how many rows were added.
    """
    open_alerts = session.exec(
        select(Alert).where(
            Alert.topic_id == topic_id,
            col(Alert.status).in_((AlertStatus.OPEN, AlertStatus.ESCALATED)),
            col(Alert.created_at) >= now - HANDOVER_WINDOW,
        )
    ).all()
    return sum(plan_delivery(session, a, now, escalate_after=escalate_after) for a in open_alerts)


def _window_texts(session: Session, alert: Alert) -> list[str]:
    """Titles and summaries of the topic's articles in the alert's window (and a little before),
    so its terms can be shown as the stories write them."""
    rows = session.exec(
        select(Article.title, Article.summary)
        .join(ArticleTopic, col(ArticleTopic.article_id) == col(Article.id))
        .where(
            ArticleTopic.topic_id == alert.topic_id,
            col(Article.published_at) >= alert.window_start - timedelta(hours=1),
            col(Article.published_at) <= alert.window_end,
        )
        .limit(500)
    ).all()
    return [f"{title}. {summary or ''}" for title, summary in rows]


def facts(session: Session, alert_id: int) -> AlertFacts:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertActionError("alert_gone")
    topic = session.get(Topic, alert.topic_id)
    assert topic is not None
    agency = session.get(Agency, topic.agency_id)
    assert agency is not None
    ids = [int(i) for i in (alert.details or {}).get("top_story_ids", [])][:3]
    stories: list[StoryFact] = []
    for story_id in ids:
        story = session.get(Story, story_id)
        if story is None:
            continue
        rows = session.exec(
            select(Article.outlet, Article.url)
            .where(Article.story_id == story_id)
            .order_by(col(Article.published_at))
        ).all()
        outlets = list(dict.fromkeys(outlet for outlet, _url in rows))
        stories.append(StoryFact(story.title, rows[0][1] if rows else "", outlets))
    acknowledged_by = None
    if alert.acknowledged_by_id is not None:
        person = session.get(User, alert.acknowledged_by_id)
        acknowledged_by = person.full_name if person else "?"
    crisis = session.exec(select(Crisis.id).where(Crisis.alert_id == alert.id)).first()
    return AlertFacts(
        alert=alert,
        topic=topic,
        agency=agency,
        stories=stories,
        terms=as_written(
            [str(t) for t in (alert.details or {}).get("terms", [])][:5],
            _window_texts(session, alert),
        ),
        acknowledged_by=acknowledged_by,
        crisis_id=crisis,
    )


# --------------------------------------------------------------------------- permissions


def can_handle(session: Session, actor: Actor, alert_id: int) -> bool:
    """Active spokespeople and above of the alert's agency (admins everywhere)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return is_admin(actor)
    topic = session.get(Topic, alert.topic_id)
    return topic is not None and can_act_for_agency(actor, topic.agency_id, Role.SPOKESPERSON)


def can_mute(session: Session, actor: Actor, alert_id: int) -> bool:
    """Anyone active who follows the topic may silence it for themselves."""
    alert = session.get(Alert, alert_id)
    if alert is None or actor.user_id is None or not actor.active:
        return False
    return (
        session.exec(
            select(Subscription.id).where(
                Subscription.user_id == actor.user_id, Subscription.topic_id == alert.topic_id
            )
        ).first()
        is not None
    )


# --------------------------------------------------------------------------- actions


def acknowledge(session: Session, actor: Actor, alert_id: int, now: datetime) -> Alert:
    """Record the first acknowledgement (later ones are no-ops) and schedule the refresh."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertActionError("alert_gone")
    if alert.acknowledged_at is not None:
        return alert
    updated = session.execute(
        sa.update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.acknowledged_at).is_(None))
        .values(
            acknowledged_by_id=actor.user_id,
            acknowledged_at=now,
            status=AlertStatus.ACKNOWLEDGED,
            updated_at=now,
        )
    )
    session.refresh(alert)
    if updated.rowcount:  # type: ignore[attr-defined]
        audit.by_actor(
            session,
            actor,
            action="alert.acknowledged",
            subject=f"alert:{alert_id}",
            after={"status": AlertStatus.ACKNOWLEDGED},
            at=now,
        )
        schedule_refresh(session, alert_id, now)
    return alert


def dismiss(session: Session, actor: Actor, alert_id: int, reason: str, now: datetime) -> Alert:
    if reason not in DISMISS_REASONS:
        raise AlertActionError("button_invalid")
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertActionError("alert_gone")
    if alert.status == AlertStatus.DISMISSED:
        return alert
    before = {"status": alert.status}
    alert.status = AlertStatus.DISMISSED
    alert.updated_at = now
    alert.details = {**(alert.details or {}), "dismissed": {"by": actor.user_id, "reason": reason}}
    audit.by_actor(
        session,
        actor,
        action="alert.dismissed",
        subject=f"alert:{alert_id}",
        before=before,
        after={"status": AlertStatus.DISMISSED, "reason": reason},
        at=now,
    )
    schedule_refresh(session, alert_id, now)
    return alert


def mute(session: Session, actor: Actor, topic_id: int, hours: float, now: datetime) -> datetime:
    """Silence ``topic_id`` for ``actor`` until now + hours; returns the end time."""
    if not 0 < hours <= MUTE_HOURS_MAX:
        raise AlertActionError("mute_bad_hours", max=MUTE_HOURS_MAX)
    subscription = session.exec(
        select(Subscription).where(
            Subscription.user_id == actor.user_id, Subscription.topic_id == topic_id
        )
    ).first()
    if subscription is None:
        raise AlertActionError("mute_not_subscribed")
    until = now + timedelta(hours=hours)
    subscription.muted_until = until
    audit.by_actor(
        session,
        actor,
        action="topic.muted",
        subject=f"topic:{topic_id}",
        after={"until": until.isoformat()},
        at=now,
    )
    return until


def schedule_refresh(session: Session, alert_id: int, now: datetime) -> None:
    """Edit everyone's copy once, a little later: many presses make one round of edits."""
    schedule(
        session,
        REFRESH_KIND,
        now + REFRESH_DEBOUNCE,
        ref_id=alert_id,
        dedupe_key=f"{REFRESH_KIND}:{alert_id}:{int(now.timestamp()) // 10}",
    )


def recent_alerts(session: Session, actor: Actor, limit: int = 15) -> list[tuple[Alert, Topic]]:
    query = (
        select(Alert, Topic)
        .join(Topic, col(Topic.id) == col(Alert.topic_id))
        .order_by(col(Alert.created_at).desc())
        .limit(limit)
    )
    if not is_admin(actor):
        query = query.where(Topic.agency_id == actor.agency_id)
    return [(a, t) for a, t in session.exec(query).all()]


def sent_text_messages(session: Session, alert_id: int) -> list[Delivery]:
    """The delivered text parts of an alert (the messages an acknowledgement edits)."""
    return list(
        session.exec(
            select(Delivery).where(
                Delivery.kind == ALERT_KIND,
                Delivery.ref_id == alert_id,
                col(Delivery.part).startswith("text:"),
                Delivery.status == DeliveryStatus.SENT,
            )
        )
    )


def owed_on(channel: str) -> Any:
    """A ``where`` clause: alert rows owed on ``channel``, and rows planned before channels
    were chosen, which any channel sends."""
    return sa.or_(col(Delivery.channel) == channel, col(Delivery.channel).is_(None))


def pending_count(session: Session, alert_id: int, channel: str) -> int:
    """Rows of the alert still to be sent on ``channel`` (or on any channel: rows planned
    before channels were chosen)."""
    return count_rows(
        session,
        Delivery,
        Delivery.kind == ALERT_KIND,
        Delivery.ref_id == alert_id,
        col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        owed_on(channel),
    )


@due_handler(ESCALATION_KIND)
async def _escalate(runtime: Any, session: Session, due: Any) -> None:
    """A critical alert nobody acknowledged in time goes to the agency's supervisors."""
    alert = session.get(Alert, due.ref_id)
    if alert is None or alert.acknowledged_at is not None:
        return
    if alert.status in (AlertStatus.DISMISSED, AlertStatus.CLOSED):
        return
    topic = session.get(Topic, alert.topic_id)
    assert topic is not None and alert.id is not None
    now = runtime.clock.now()
    alert.status = AlertStatus.ESCALATED
    alert.updated_at = now
    _owe(
        session,
        alert,
        supervisors_of(session, topic.agency_id),
        ("photo:escalation", "text:escalation"),
        now,
    )
    audit.record(
        session,
        action="alert.escalated",
        subject=f"alert:{alert.id}",
        after={"status": AlertStatus.ESCALATED, "reason": "unacknowledged"},
        at=now,
    )


# --------------------------------------------------------------------------- for the flows
# Each opens a unit of work of its own (the flows in handlers/ open none) and has committed
# before the flow answers, so no network call waits inside a transaction.


def facts_of(runtime: Runtime, alert_id: int) -> AlertFacts:
    """:func:`facts`, read now."""
    with runtime.db.session() as session:
        return facts(session, alert_id)


def acknowledge_now(runtime: Runtime, actor: Actor, alert_id: int) -> Alert:
    """:func:`acknowledge` at the runtime's clock (the row says who acknowledged first)."""
    with runtime.db.session() as session:
        return acknowledge(session, actor, alert_id, runtime.clock.now())


def dismiss_now(runtime: Runtime, actor: Actor, alert_id: int, reason: str) -> None:
    """:func:`dismiss` at the runtime's clock."""
    with runtime.db.session() as session:
        dismiss(session, actor, alert_id, reason, runtime.clock.now())


def mute_topic_of(
    runtime: Runtime, actor: Actor, alert_id: int, hours: float
) -> tuple[Topic, datetime]:
    """Mute the topic of an alert for ``actor`` (the alert's Mute button): the topic, and when
    the mute ends."""
    with runtime.db.session() as session:
        topic = facts(session, alert_id).topic
        assert topic.id is not None
        return topic, mute(session, actor, topic.id, hours, runtime.clock.now())


def recent_for(runtime: Runtime, actor: Actor) -> list[tuple[Alert, Topic]]:
    """:func:`recent_alerts` (``/alerts``), read now."""
    with runtime.db.session() as session:
        return recent_alerts(session, actor)
