"""Topics, sources and who follows what.

Admins and supervisors add, change and remove chat-owned topics and sources; TOML-owned ones are
read-only here (the config file is their source of truth). A topic query is parsed before it is
stored, so a malformed one is refused with the position of the fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.services import audit
from bot.services.alerts import hand_over_open_alerts, mute
from bot.services.permissions import Actor, can_act_for_agency, has_role, is_admin
from bot.services.refusals import Refusal
from scanner.sources import UnsafeURLError, check_url
from scanner.topics import QueryError, parse_query
from storage.models import Owner, Role, Sensitivity, Source, Subscription, Topic

if TYPE_CHECKING:
    from bot.runtime import Runtime


class TopicError(Refusal):
    """A refused change to topics, subscriptions or sources."""


@dataclass(frozen=True)
class TopicLine:
    topic: Topic
    subscribed: bool
    muted_until: datetime | None


def visible_topics(session: Session, actor: Actor, now: datetime) -> list[TopicLine]:
    """Active topics of the actor's agency (admins: all), with their subscription state."""
    query = select(Topic).where(col(Topic.active).is_(True)).order_by(col(Topic.name))
    if not is_admin(actor):
        query = query.where(Topic.agency_id == actor.agency_id)
    subs = {
        s.topic_id: s
        for s in session.exec(select(Subscription).where(Subscription.user_id == actor.user_id))
    }
    lines = []
    for topic in session.exec(query):
        sub = subs.get(topic.id or 0)
        muted = sub.muted_until if sub and sub.muted_until and sub.muted_until > now else None
        lines.append(TopicLine(topic, sub is not None, muted))
    return lines


def can_follow(session: Session, actor: Actor, topic_id: int) -> bool:
    topic = session.get(Topic, topic_id)
    return (
        topic is not None
        and topic.active
        and actor.user_id is not None
        and can_act_for_agency(actor, topic.agency_id, Role.MEMBER)
    )


def set_subscription(
    session: Session, actor: Actor, topic_id: int, follow: bool, now: datetime
) -> bool:
    """Follow or unfollow; returns True if something changed."""
    if not can_follow(session, actor, topic_id):
        raise TopicError("topic_not_found")
    existing = session.exec(
        select(Subscription).where(
            Subscription.user_id == actor.user_id, Subscription.topic_id == topic_id
        )
    ).first()
    if follow == (existing is not None):
        return False
    if follow:
        assert actor.user_id is not None
        session.add(Subscription(user_id=actor.user_id, topic_id=topic_id, created_at=now))
    else:
        session.delete(existing)
    audit.by_actor(
        session,
        actor,
        action="topic.subscribed" if follow else "topic.unsubscribed",
        subject=f"topic:{topic_id}",
        at=now,
    )
    return True


def toggle(
    session: Session,
    actor: Actor,
    topic_id: int,
    follow: bool,
    now: datetime,
    *,
    escalate_after: timedelta,
) -> bool:
    """Follow or unfollow from the topic picker; someone arriving late is handed the topic's
    alerts already out too. Returns True if something changed."""
    changed = set_subscription(session, actor, topic_id, follow, now)
    if changed and follow:
        hand_over_open_alerts(session, topic_id, now, escalate_after=escalate_after)
    return changed


def topic_line(session: Session, actor: Actor, name: str, now: datetime) -> TopicLine | None:
    """One visible topic by case-insensitive name, with the actor's subscription state."""
    wanted = name.casefold()
    lines = visible_topics(session, actor, now)
    return next((line for line in lines if line.topic.name.casefold() == wanted), None)


def find_topic(session: Session, actor: Actor, name: str) -> Topic:
    """A visible topic by case-insensitive name."""
    wanted = name.strip().casefold()
    query = select(Topic).where(col(Topic.active).is_(True))
    if not is_admin(actor):
        query = query.where(Topic.agency_id == actor.agency_id)
    for topic in session.exec(query):
        if topic.name.casefold() == wanted:
            return topic
    raise TopicError("topic_not_found", name=name)


def check_query(query: str) -> None:
    try:
        parse_query(query)
    except QueryError as exc:
        raise TopicError("topic_bad_query", error=str(exc)) from None


def add_topic(
    session: Session,
    actor: Actor,
    *,
    agency_id: int | None,
    name: str,
    query: str,
    sensitivity: str,
    now: datetime,
) -> Topic:
    agency = agency_id if agency_id is not None else actor.agency_id
    if agency is None or not can_act_for_agency(actor, agency, Role.SUPERVISOR):
        raise TopicError("not_allowed")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise TopicError("topic_bad_name")
    if sensitivity not in tuple(Sensitivity):
        raise TopicError("topic_bad_sensitivity", value=sensitivity)
    check_query(query)
    clash = session.exec(select(Topic).where(Topic.agency_id == agency, Topic.name == name)).first()
    if clash is not None:
        raise TopicError("topic_exists", name=name)
    topic = Topic(
        agency_id=agency,
        name=name,
        query=query.strip(),
        sensitivity=sensitivity,
        owner=Owner.CHAT,
        created_at=now,
    )
    session.add(topic)
    session.flush()
    audit.by_actor(
        session,
        actor,
        action="topic.created",
        subject=f"topic:{topic.id}",
        after={"name": name, "query": topic.query, "sensitivity": sensitivity},
        at=now,
    )
    return topic


def _editable(session: Session, actor: Actor, topic: Topic) -> None:
    if not can_act_for_agency(actor, topic.agency_id, Role.SUPERVISOR):
        raise TopicError("not_allowed")
    if topic.owner == Owner.TOML:
        raise TopicError("topic_read_only", name=topic.name)


def change_topic(
    session: Session,
    actor: Actor,
    topic: Topic,
    *,
    query: str | None = None,
    sensitivity: str | None = None,
    now: datetime,
) -> Topic:
    _editable(session, actor, topic)
    before = {"query": topic.query, "sensitivity": topic.sensitivity}
    if query is not None:
        check_query(query)
        topic.query = query.strip()
    if sensitivity is not None:
        if sensitivity not in tuple(Sensitivity):
            raise TopicError("topic_bad_sensitivity", value=sensitivity)
        topic.sensitivity = sensitivity
    audit.by_actor(
        session,
        actor,
        action="topic.changed",
        subject=f"topic:{topic.id}",
        before=before,
        after={"query": topic.query, "sensitivity": topic.sensitivity},
        at=now,
    )
    return topic


def remove_topic(session: Session, actor: Actor, topic: Topic, now: datetime) -> None:
    """Deactivate (alerts and articles still point at it) and drop its subscriptions."""
    _editable(session, actor, topic)
    topic.active = False
    for sub in session.exec(select(Subscription).where(Subscription.topic_id == topic.id)):
        session.delete(sub)
    audit.by_actor(
        session,
        actor,
        action="topic.removed",
        subject=f"topic:{topic.id}",
        at=now,
    )


def list_sources(session: Session) -> list[Source]:
    return list(session.exec(select(Source).order_by(col(Source.outlet), col(Source.name))))


def add_source(
    session: Session,
    actor: Actor,
    *,
    name: str,
    outlet: str,
    url: str,
    now: datetime,
    allow_private: bool = False,
) -> Source:
    """Sources are shared by every agency: only admins and supervisors add them.

    The address is checked now with the fetcher's own rule (``check_url``: loopback, private,
    link-local and other non-public IP addresses are refused unless ``allow_private``), so the
    person hears it at once rather than the scan refusing the feed forever after. A DNS name
    is checked by the fetcher on each fetch, on the addresses it resolves to then.
    """
    if not has_role(actor, Role.SUPERVISOR):
        raise TopicError("not_allowed")
    url = url.strip()
    if not (url.startswith(("http://", "https://")) and 8 < len(url) <= 2048 and " " not in url):
        raise TopicError("source_bad_url", url=url)
    try:
        check_url(url, allow_private=allow_private)
    except (UnsafeURLError, ValueError):
        raise TopicError("source_unsafe_url", url=url) from None
    if not (1 <= len(name.strip()) <= 100 and 1 <= len(outlet.strip()) <= 100):
        raise TopicError("source_usage")
    if session.exec(select(Source).where(Source.url == url)).first() is not None:
        raise TopicError("source_exists", url=url)
    source = Source(
        name=name.strip(), outlet=outlet.strip(), url=url, owner=Owner.CHAT, created_at=now
    )
    session.add(source)
    session.flush()
    audit.by_actor(
        session,
        actor,
        action="source.created",
        subject=f"source:{source.id}",
        after={"url": url, "outlet": source.outlet},
        at=now,
    )
    return source


def remove_source(session: Session, actor: Actor, source_id: int, now: datetime) -> Source:
    if not has_role(actor, Role.SUPERVISOR):
        raise TopicError("not_allowed")
    source = session.get(Source, source_id)
    if source is None:
        raise TopicError("source_not_found")
    if source.owner == Owner.TOML:
        raise TopicError("source_read_only", name=source.name)
    source.active = False
    audit.by_actor(
        session,
        actor,
        action="source.removed",
        subject=f"source:{source.id}",
        at=now,
    )
    return source


# --------------------------------------------------------------------------- units of work
# What the chat flows call (``handlers.topics``): each opens and commits its own transaction
# at the runtime's clock, so the answer is sent once the change is stored; a ``TopicError``
# leaves nothing written.


def topics_for(runtime: Runtime, actor: Actor) -> list[TopicLine]:
    """The topic picker's lines (``/topics``)."""
    with runtime.db.session() as session:
        return visible_topics(session, actor, runtime.clock.now())


def topic_named(runtime: Runtime, actor: Actor, name: str) -> TopicLine | None:
    """One visible topic by name (``/topics <name>`` shows its query)."""
    with runtime.db.session() as session:
        return topic_line(session, actor, name, runtime.clock.now())


def follow_topic(runtime: Runtime, actor: Actor, topic_id: int, follow: bool) -> bool:
    """``toggle`` from the picker, handing over open alerts within the escalation window."""
    escalate_after = timedelta(minutes=runtime.settings.escalation_minutes)
    with runtime.db.session() as session:
        return toggle(
            session, actor, topic_id, follow, runtime.clock.now(), escalate_after=escalate_after
        )


def mute_topic(runtime: Runtime, actor: Actor, name: str, hours: float) -> tuple[Topic, datetime]:
    """``/mute <topic> [hours]``: the topic found by name and when the mute ends (raises
    ``TopicError``, or ``AlertActionError`` from ``mute``)."""
    with runtime.db.session() as session:
        topic = find_topic(session, actor, name)
        assert topic.id is not None
        return topic, mute(session, actor, topic.id, hours, runtime.clock.now())


def add_topic_now(runtime: Runtime, actor: Actor, name: str, query: str, sensitivity: str) -> Topic:
    """``/addtopic``: a chat-owned topic of no agency (``add_topic``)."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        return add_topic(
            session, actor, agency_id=None, name=name, query=query, sensitivity=sensitivity, now=now
        )


def change_topic_named(
    runtime: Runtime, actor: Actor, name: str, query: str | None, sensitivity: str | None
) -> Topic:
    """``/settopic``: the visible topic of that name with a new query and/or sensitivity."""
    with runtime.db.session() as session:
        topic = find_topic(session, actor, name)
        return change_topic(
            session, actor, topic, query=query, sensitivity=sensitivity, now=runtime.clock.now()
        )


def remove_topic_named(runtime: Runtime, actor: Actor, name: str) -> Topic:
    """``/rmtopic``: the visible topic of that name, now removed."""
    with runtime.db.session() as session:
        topic = find_topic(session, actor, name)
        remove_topic(session, actor, topic, runtime.clock.now())
        return topic


def all_sources(runtime: Runtime) -> list[Source]:
    """``/sources``: every source, by outlet."""
    with runtime.db.session() as session:
        return list_sources(session)


def add_source_now(runtime: Runtime, actor: Actor, name: str, outlet: str, url: str) -> Source:
    """``/addsource``, under the deployment's rule for private addresses."""
    now, private = runtime.clock.now(), runtime.settings.allow_private_feeds
    with runtime.db.session() as session:
        return add_source(
            session, actor, name=name, outlet=outlet, url=url, now=now, allow_private=private
        )


def remove_source_now(runtime: Runtime, actor: Actor, source_id: int) -> Source:
    """``/rmsource``: the source, now inactive."""
    with runtime.db.session() as session:
        return remove_source(session, actor, source_id, runtime.clock.now())
