"""Crisis rooms: forum topics in an agency's hub, or groups from a pool.

A bot cannot create groups (the messengers offer no such method), so a room is either

* a **forum topic** in a hub supergroup (``Agency.hub_chat_id``, else ``HUB_CHAT_ID``) where the
  bot may manage topics, or
* a **pooled group**: a group that people created and added the bot to as an administrator. It
  registers itself (``my_chat_member`` → a ``Room`` row, state ``free``), is taken atomically when a
  crisis opens (``in_use``), and is handed back when it is resolved (``free``); a group that
  removes or demotes the bot is ``gone``.

This module holds the rules over ``Room`` rows and join requests; the Bot API side is the
``RoomAdmin`` protocol (``bot.channels.rooms``), called by ``bot.services.taskforces.room``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.channels.refs import ANY_CHANNEL, ChatRef, PersonRef
from bot.config import Settings
from bot.services import audit, identity
from storage.models import (
    Agency,
    Crisis,
    CrisisMember,
    CrisisStatus,
    Room,
    RoomKind,
    RoomState,
    UserStatus,
)

# What the bot must be allowed to do in a pooled group: rename it, make join-request links and
# answer them, pin the brief, and remove people when the group is handed back.
POOL_RIGHTS = ("can_change_info", "can_invite_users", "can_restrict_members", "can_pin_messages")
HUB_RIGHTS = ("can_manage_topics", "can_invite_users", "can_pin_messages")

# A convened person who has not declined may come in.
ADMITTED_STATES = ("invited", "accepted", "joined")


def agency_hub(agency: Agency) -> ChatRef | None:
    """The agency's own hub, if it has one."""
    if agency.hub_channel is None or agency.hub_chat_id is None:
        return None
    return ChatRef(agency.hub_channel, agency.hub_chat_id)


def hub_for(agency: Agency | None, settings: Settings, channel: str) -> ChatRef | None:
    """The forum supergroup on ``channel`` where this agency's crisis rooms are topics, if any:
    the agency's own hub, else the global one (``HUB_CHAT_ID``); on ``ANY_CHANNEL`` (a process
    speaking several messengers) a hub on any of them."""
    for hub in (agency_hub(agency) if agency is not None else None, settings.hub_chat_id):
        if hub is not None and channel in (hub.channel, ANY_CHANNEL):
            return hub
    return None


def is_hub(session: Session, settings: Settings, chat: ChatRef) -> bool:
    hubs = {settings.hub_chat_id, *map(agency_hub, session.exec(select(Agency)))}
    return ChatRef(chat.channel, chat.chat_id) in hubs


@dataclass(frozen=True)
class PoolChange:
    """What a ``my_chat_member`` update did to the pool."""

    room_id: int | None
    state: str  # free | in_use | gone | ignored
    missing: tuple[str, ...] = ()
    crisis_id: int | None = None  # the crisis that lost its room (state gone while in use)


def register_group(
    session: Session,
    settings: Settings,
    *,
    chat: ChatRef,
    title: str,
    chat_type: str,
    status: str,
    rights: dict[str, bool],
    by: PersonRef | None,
    now: datetime,
) -> PoolChange:
    """Record the bot's new standing in a group (from a ``my_chat_member`` update).

    An administrator with every right of ``POOL_RIGHTS`` puts the group in the pool; anything less
    (removed, left, demoted, a right missing) takes it out (``gone``). Hubs are not pooled.
    """
    if chat_type not in ("group", "supergroup") or is_hub(session, settings, chat):
        return PoolChange(None, "ignored")
    room = session.exec(
        select(Room).where(
            Room.channel == chat.channel,
            Room.chat_id == chat.chat_id,
            Room.kind == RoomKind.POOLED_GROUP,
        )
    ).first()
    missing = tuple(r for r in POOL_RIGHTS if not rights.get(r))
    usable = status == "administrator" and not missing
    actor_ref = str(by) if by is not None else ""
    if usable:
        if room is None:
            room = Room(
                kind=RoomKind.POOLED_GROUP,
                channel=chat.channel,
                chat_id=chat.chat_id,
                title=title[:255],
                state=RoomState.FREE,
                created_at=now,
            )
            session.add(room)
        elif room.state == RoomState.GONE:
            room.state = RoomState.FREE
            room.crisis_id = None
            room.title = title[:255]
        session.flush()
        audit.record(
            session,
            action="room.registered",
            actor_ref=actor_ref,
            subject=f"room:{room.id}",
            after={"chat_id": chat.chat_id, "state": room.state},
            at=now,
        )
        return PoolChange(room.id, room.state)
    if room is None:
        return PoolChange(None, "gone" if status == "administrator" else "ignored", missing)
    lost = room.crisis_id if room.state == RoomState.IN_USE else None
    before = room.state
    room.state = RoomState.GONE
    audit.record(
        session,
        action="room.gone",
        actor_ref=actor_ref,
        subject=f"room:{room.id}",
        before={"state": before},
        after={"state": RoomState.GONE, "bot_status": status, "missing": list(missing)},
        at=now,
    )
    return PoolChange(room.id, RoomState.GONE, missing, lost)


def claim_free_room(session: Session, crisis_id: int) -> Room | None:
    """Take one free pooled group for ``crisis_id``, atomically (oldest registration first).

    The guarded UPDATE (``state = 'free'`` in the WHERE clause) means two crises opening at the
    same moment can never get the same group, on SQLite or PostgreSQL.
    """
    candidates = session.exec(
        select(Room.id)
        .where(Room.kind == RoomKind.POOLED_GROUP, Room.state == RoomState.FREE)
        .order_by(col(Room.id))
        .limit(5)
    ).all()
    for room_id in candidates:
        result = session.execute(
            sa.update(Room)
            .where(col(Room.id) == room_id, col(Room.state) == RoomState.FREE)
            .values(state=RoomState.IN_USE, crisis_id=crisis_id)
        )
        if getattr(result, "rowcount", 0) == 1:
            room = session.get(Room, room_id, populate_existing=True)
            return room
    return None


def room_of_crisis(session: Session, crisis_id: int) -> Room | None:
    return session.exec(
        select(Room)
        .where(Room.crisis_id == crisis_id, col(Room.state).in_([RoomState.IN_USE]))
        .order_by(col(Room.id).desc())
    ).first()


def crisis_in_room(session: Session, chat: ChatRef) -> Crisis | None:
    """The crisis a message in ``chat`` (and its forum topic, if any) belongs to.

    In a hub only the crisis's own topic counts; in a pooled group any thread does. Resolved
    crises are returned too (commands then explain the crisis is closed).
    """
    rows = session.exec(
        select(Crisis)
        .where(Crisis.room_channel == chat.channel, Crisis.room_chat_id == chat.chat_id)
        .order_by(col(Crisis.id).desc())
    ).all()
    for crisis in rows:
        if crisis.room_thread_id is None or crisis.room_thread_id == chat.thread_id:
            if crisis.room_thread_id is None and crisis.status == CrisisStatus.RESOLVED:
                continue  # a pooled group handed back belongs to nobody now
            return crisis
    return None


@dataclass(frozen=True)
class JoinDecision:
    approve: bool
    reason: str  # approved | unregistered | inactive | not_convened | declined
    crisis_id: int | None = None
    user_id: int | None = None


def decide_join(
    session: Session, *, chat: ChatRef, who: PersonRef, invite_link: str | None
) -> JoinDecision:
    """Whether a join request to a crisis room is let in: only registered, active people
    convened to an open crisis there (and not having declined)."""
    crises = list(
        session.exec(
            select(Crisis)
            .where(
                Crisis.room_channel == chat.channel,
                Crisis.room_chat_id == chat.chat_id,
                Crisis.status != CrisisStatus.RESOLVED,
            )
            .order_by(col(Crisis.id))
        )
    )
    # The crisis whose link was used first; in a hub other open crises may admit the person too.
    crises.sort(key=lambda c: 0 if invite_link and c.invite_link == invite_link else 1)
    first = crises[0].id if crises else None
    user = identity.person_for(session, who)
    if user is None:
        return JoinDecision(False, "unregistered", first)
    if user.status != UserStatus.ACTIVE:
        return JoinDecision(False, "inactive", first, user.id)
    declined: int | None = None
    for crisis in crises:
        member = session.exec(
            select(CrisisMember).where(
                CrisisMember.crisis_id == crisis.id, CrisisMember.user_id == user.id
            )
        ).first()
        if member is None:
            continue
        if member.state in ADMITTED_STATES:
            return JoinDecision(True, "approved", crisis.id, user.id)
        declined = crisis.id
    if declined is not None:
        return JoinDecision(False, "declined", declined, user.id)
    return JoinDecision(False, "not_convened", first, user.id)


def free_room(session: Session, room_id: int) -> bool:
    """Hand a pooled group in use back to the pool (after its people were removed).

    False when it is not in use: a resolution finished again after a restart finds it handed
    back already, and a group that left the pool meanwhile (``gone``) stays out of it."""
    room = session.get(Room, room_id)
    if room is None or room.state != RoomState.IN_USE:
        return False
    room.state = RoomState.FREE
    room.crisis_id = None
    room.invite_link = None
    return True


def mark_closed(session: Session, room_id: int) -> None:
    """Retire a room for good: a group made for one crisis (disbanded) or a forum topic (closed
    in its hub) is never handed to another crisis, unlike a pooled group."""
    room = session.get(Room, room_id)
    if room is not None:
        room.state = RoomState.CLOSED


def pool_counts(session: Session) -> dict[str, int]:
    rows = session.exec(
        select(Room.state, sa.func.count())
        .where(Room.kind == RoomKind.POOLED_GROUP)
        .group_by(Room.state)
    ).all()
    return {state: count for state, count in rows}
