"""Who is who across messengers: the person behind an account, and a person's account on a channel.

The only module that reads or writes ``ChannelIdentity``. Handlers turn whoever sent an update
into a person with :func:`person_for`; services find where to write to someone with
:func:`direct_chat` for the channel of the notifier they hold, so no service names a channel.
A process that speaks several messengers holds a router whose channel is ``ANY_CHANNEL``: for it
a person's account is the one on their chosen alert channel, else their first one
(:func:`reaching`), and every global admin counts.
Reads never flush the caller's pending changes: services look people up between recording a
change and sending, and a flush there would hold SQLite's write lock across the network wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.channels.refs import ANY_CHANNEL, ChatRef, PersonRef
from bot.config import Settings
from storage.models import ChannelIdentity, RoomIdentity, User

# Built once with bound parameters: every update of every channel passes through
# ``person_for`` first, and building the statement and its cache key each time was about 40 %
# of its cost (bench/handler_load.py: ~0.13 ms of ~0.3 ms per update on SQLite).
_PERSON_FOR = (
    select(User)
    .join(ChannelIdentity, col(ChannelIdentity.user_id) == col(User.id))
    .where(
        ChannelIdentity.channel == sa.bindparam("channel"),
        ChannelIdentity.external_id == sa.bindparam("external_id"),
    )
)


def person_for(session: Session, who: PersonRef) -> User | None:
    """The registered person behind an account, or None for a stranger."""
    with session.no_autoflush:
        return session.exec(
            _PERSON_FOR, params={"channel": who.channel, "external_id": who.external_id}
        ).first()


def account_on(session: Session, user_id: int | None, channel: str) -> PersonRef | None:
    """``user_id``'s account on ``channel``, or None if they have none there."""
    if user_id is None:
        return None
    if channel == ANY_CHANNEL:
        return reaching(session, [user_id]).get(user_id)
    with session.no_autoflush:
        external = session.exec(
            select(ChannelIdentity.external_id).where(
                ChannelIdentity.user_id == user_id, ChannelIdentity.channel == channel
            )
        ).first()
    return PersonRef(channel, external) if external is not None else None


def direct_chat(session: Session, user_id: int | None, channel: str) -> ChatRef | None:
    """The private chat with ``user_id`` on ``channel``, or None if they have no account there."""
    account = account_on(session, user_id, channel)
    return account.direct_chat() if account is not None else None


def accounts_of(session: Session, user_id: int, channel: str) -> list[PersonRef]:
    """Every account of ``user_id`` on ``channel`` (on ``ANY_CHANNEL``: on every messenger),
    in channel name order: what a change of the person's role reaches (their command menus)."""
    query = select(ChannelIdentity.channel, ChannelIdentity.external_id).where(
        ChannelIdentity.user_id == user_id
    )
    if channel != ANY_CHANNEL:
        query = query.where(ChannelIdentity.channel == channel)
    with session.no_autoflush:
        rows = session.exec(query.order_by(col(ChannelIdentity.channel))).all()
    return [PersonRef(found, external) for found, external in rows]


def accounts_on(session: Session, user_ids: Iterable[int], channel: str) -> dict[int, PersonRef]:
    """The accounts on ``channel`` of many people at once (fan-outs), by user id."""
    ids = list(user_ids)
    if not ids:
        return {}
    if channel == ANY_CHANNEL:
        return reaching(session, ids)
    with session.no_autoflush:
        rows = session.exec(
            select(ChannelIdentity.user_id, ChannelIdentity.external_id).where(
                col(ChannelIdentity.user_id).in_(ids), ChannelIdentity.channel == channel
            )
        ).all()
    return {user_id: PersonRef(channel, external) for user_id, external in rows}


def reaching(session: Session, user_ids: Iterable[int]) -> dict[int, PersonRef]:
    """The one account that reaches each person on any messenger: the one on the channel they
    chose for alerts if they still have it, else their first (in channel name order)."""
    ids = list(user_ids)
    if not ids:
        return {}
    with session.no_autoflush:
        rows = session.exec(
            select(ChannelIdentity.user_id, ChannelIdentity.channel, ChannelIdentity.external_id)
            .join(User, col(User.id) == col(ChannelIdentity.user_id))
            .where(col(ChannelIdentity.user_id).in_(ids))
            .order_by(
                col(ChannelIdentity.user_id),
                (col(ChannelIdentity.channel) != sa.func.coalesce(col(User.alert_channel), "")),
                col(ChannelIdentity.channel),
            )
        ).all()
    found: dict[int, PersonRef] = {}
    for user_id, channel, external in rows:
        found.setdefault(user_id, PersonRef(channel, external))
    return found


def channels_of(session: Session, user_ids: Iterable[int]) -> dict[int, list[str]]:
    """The channels each of many people has an account on, in name order."""
    ids = list(user_ids)
    found: dict[int, list[str]] = {}
    if not ids:
        return found
    with session.no_autoflush:
        rows = session.exec(
            select(ChannelIdentity.user_id, ChannelIdentity.channel)
            .where(col(ChannelIdentity.user_id).in_(ids))
            .order_by(col(ChannelIdentity.channel))
        ).all()
    for user_id, channel in rows:
        found.setdefault(user_id, []).append(channel)
    return found


def alert_channels(session: Session, people: Iterable[User]) -> dict[int, list[str]]:
    """Where each person's alerts go: the one channel they chose (``User.alert_channel``) while
    they still have an account there, else every channel they have; nobody is left out for a
    choice that no longer holds."""
    chosen = {person.id: person.alert_channel for person in people if person.id is not None}
    found = channels_of(session, chosen)
    for user_id, channels in found.items():
        choice = chosen[user_id]
        if choice is not None and choice in channels:
            found[user_id] = [choice]
    return found


def user_ids(session: Session, accounts: Iterable[PersonRef]) -> list[int]:
    """The people behind those of ``accounts`` that belong to someone registered."""
    return [user.id for who in accounts if (user := person_for(session, who)) and user.id]


def has_account(channel: str | None = None) -> Any:
    """A ``where`` clause on ``User``: people with an account on ``channel`` (None: on any
    channel; planning code that does not know the channel yet uses that, and the send finds
    the account on its own channel)."""
    accounts = select(ChannelIdentity.user_id)
    if channel is not None and channel != ANY_CHANNEL:
        accounts = accounts.where(ChannelIdentity.channel == channel)
    return col(User.id).in_(accounts)


def link(session: Session, user: User, who: PersonRef, now: datetime) -> None:
    """Record that ``who`` is ``user`` (``user`` must have an id: flush a new row first)."""
    assert user.id is not None, "link a person after their row has an id"
    session.add(
        ChannelIdentity(
            user_id=user.id, channel=who.channel, external_id=who.external_id, created_at=now
        )
    )


def add_person(session: Session, who: PersonRef, user: User) -> User:
    """Store a new person with their first account (registration, operators' seeds)."""
    session.add(user)
    session.flush()
    link(session, user, who, user.created_at)
    return user


# --------------------------------------------------------------------------- room ids
# Some channels make rooms through a provider with ids of its own: a Zalo Official Account
# knows a person by an id scoped to that OA (``scope`` = its app id), not by the id the Zalo
# bot knows them by. The adapter asks here which provider id each account has, and which
# account a provider id stands for; the ids are learnt by ``linking.redeem_in_scope``.


def room_ids(session: Session, accounts: Iterable[PersonRef], scope: str) -> dict[PersonRef, str]:
    """The ids the room provider ``scope`` knows the people behind ``accounts`` by, for those
    who linked one there (the others are missing from the answer, never guessed)."""
    wanted = list(accounts)
    if not wanted:
        return {}
    found: dict[PersonRef, str] = {}
    with session.no_autoflush:
        for channel in {who.channel for who in wanted}:
            externals = [who.external_id for who in wanted if who.channel == channel]
            rows = session.exec(
                select(ChannelIdentity.external_id, RoomIdentity.external_id)
                .join(RoomIdentity, col(RoomIdentity.user_id) == col(ChannelIdentity.user_id))
                .where(
                    ChannelIdentity.channel == channel,
                    col(ChannelIdentity.external_id).in_(externals),
                    RoomIdentity.channel == channel,
                    RoomIdentity.scope == scope,
                )
            ).all()
            for external, room_id in rows:
                found[PersonRef(channel, external)] = room_id
    return found


def account_for_room_id(
    session: Session, channel: str, scope: str, room_id: str
) -> PersonRef | None:
    """The person's account on ``channel`` behind the room provider's id ``room_id`` (someone
    writing in a room it made), or None for an id nobody linked."""
    with session.no_autoflush:
        external = session.exec(
            select(ChannelIdentity.external_id)
            .join(RoomIdentity, col(RoomIdentity.user_id) == col(ChannelIdentity.user_id))
            .where(
                RoomIdentity.channel == channel,
                RoomIdentity.scope == scope,
                RoomIdentity.external_id == room_id,
                ChannelIdentity.channel == channel,
            )
        ).first()
    return PersonRef(channel, external) if external is not None else None


def owner_of_room_id(session: Session, channel: str, scope: str, room_id: str) -> int | None:
    """The person (user id) a room provider's id is linked to, if any."""
    with session.no_autoflush:
        return session.exec(
            select(RoomIdentity.user_id).where(
                RoomIdentity.channel == channel,
                RoomIdentity.scope == scope,
                RoomIdentity.external_id == room_id,
            )
        ).first()


def set_room_id(
    session: Session, user_id: int, channel: str, scope: str, room_id: str, now: datetime
) -> str | None:
    """Record ``room_id`` as ``user_id``'s id with the room provider ``scope``; returns the id
    it replaces (a person who linked again from another account of theirs), if any."""
    row = session.exec(
        select(RoomIdentity).where(
            RoomIdentity.user_id == user_id,
            RoomIdentity.channel == channel,
            RoomIdentity.scope == scope,
        )
    ).first()
    if row is None:
        session.add(
            RoomIdentity(
                user_id=user_id, channel=channel, scope=scope, external_id=room_id, created_at=now
            )
        )
        return None
    before = row.external_id
    row.external_id = room_id
    row.created_at = now
    return before


def is_global_admin(settings: Settings, who: PersonRef) -> bool:
    """Whether ``who`` is one of ADMIN_IDS: every update asks, so no list of them is built."""
    return who in settings.admin_ids


def global_admins(settings: Settings, channel: str) -> tuple[PersonRef, ...]:
    """The accounts of ADMIN_IDS on ``channel`` (the one the bot runs on; all of them on
    ``ANY_CHANNEL``), in their configured order."""
    return tuple(
        dict.fromkeys(
            admin for admin in settings.admin_ids if channel in (admin.channel, ANY_CHANNEL)
        )
    )
