"""Answers and joins: a convened person presses Join or Decline, asks to join the room through its
link, or appears in it by other means; each ends as a member state on the timeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot.channels.base import (
    DeliveryError,
)
from bot.channels.refs import ChatRef, PersonRef
from bot.channels.rooms import MembersUnknown, RoomAdmin, room_admin_for, room_maker_for
from bot.services import audit, identity, rooms, stored_refs, timeline
from bot.services.permissions import (
    Actor,
)
from bot.services.taskforces.brief import touch_brief
from bot.services.taskforces.crises import TaskForceError, crisis_row, display_name, member_row
from bot.services.taskforces.room import room_url
from storage.models import (
    Crisis,
    CrisisMember,
    CrisisStatus,
    User,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """What answering an invitation did; ``needs_link``: the room's channel could not put the
    person in because its rooms do not know them yet (``MembersUnknown``): they must link their
    account there first, then join again."""

    crisis: Crisis
    state: str
    link: str | None
    url: str | None
    changed: bool
    needs_link: bool = False


def owns_invitation(session: Session, actor: Actor, member_id: int) -> bool:
    """Whether the invitation ``member_id`` is ``actor``'s to answer (the rule of Join and
    Decline, typed or pressed)."""
    member = session.get(CrisisMember, member_id)
    return actor.active and member is not None and member.user_id == actor.user_id


async def answer_invitation(
    runtime: Runtime,
    actor: Actor,
    member_id: int,
    join: bool,
    rooms_admin: RoomAdmin | None = None,
) -> Answer:
    """The convened person pressed Join or Decline. Joining gives the room's join-request link;
    someone already in the hub is marked joined straight away, and a room the channel made is
    joined directly (the person is added to it); declining takes them out of such a room."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        member = session.get(CrisisMember, member_id)
        if member is None or member.user_id != actor.user_id:
            raise TaskForceError("not_allowed")
        crisis = crisis_row(session, member.crisis_id)
        if crisis.status == CrisisStatus.RESOLVED:
            raise TaskForceError("resolved", id=crisis.id)
        user = session.get(User, member.user_id)
        assert user is not None and crisis.id is not None
        if member.state == "joined" and join:
            return Answer(crisis, "joined", crisis.invite_link, room_url(runtime, crisis), False)
        state = "accepted" if join else "declined"
        changed = member.state != state
        member.state = state
        member.answered_at = now
        if changed:
            timeline.add(
                session,
                crisis.id,
                timeline.ACCEPTED if join else timeline.DECLINED,
                user.id,
                display_name(user),
                {"state": state},
                now,
            )
            audit.record(
                session,
                action=f"crisis.invite_{'accepted' if join else 'declined'}",
                actor_id=user.id,
                actor_ref=actor.channel_ref,
                subject=f"crisis:{crisis.id}",
                at=now,
            )
            touch_brief(session, crisis.id, now)
        room = stored_refs.crisis_room(crisis)
        account = identity.account_on(session, user.id, room.channel) if room else None
    needs_link = False
    if join and room is not None and account is not None:
        try:
            admin = rooms_admin or room_admin_for(runtime.notifier)
            inside = await admin.is_member(room, account)
        except (DeliveryError, LookupError):  # LookupError: a channel that has no room admin
            inside = False
        added = False if inside else await _added(rooms_admin or runtime.notifier, room, account)
        if inside:
            mark_joined(runtime, crisis.id, member.user_id, via="already_member")
            state = "joined"
        elif added is True:
            mark_joined(runtime, crisis.id, member.user_id, via="added")
            state = "joined"
        needs_link = added is None
    elif not join and changed and room is not None and account is not None:
        await _left_made_room(runtime, rooms_admin, room, account)
    url = room_url(runtime, crisis)
    return Answer(crisis, state, crisis.invite_link, url, changed, needs_link=needs_link)


async def _added(notifier: object, room: ChatRef, account: PersonRef) -> bool | None:
    """Put ``account`` in ``room`` directly, where the channel made that room; None when the
    room's channel does not know the person yet (they must link their account there)."""
    maker = room_maker_for(notifier)
    if maker is None or not maker.made_here(room):
        return False
    try:
        await maker.add_members(room, [account])
    except MembersUnknown:
        return None
    except DeliveryError as exc:
        log.warning("could not add %s to %s: %s", account, room.chat_id, exc)
        return False
    return True


async def _left_made_room(
    runtime: Runtime, rooms_admin: RoomAdmin | None, room: ChatRef, account: PersonRef
) -> None:
    """A made room holds the convened people from the start: one who declines is taken out."""
    maker = room_maker_for(rooms_admin or runtime.notifier)
    if maker is None or not maker.made_here(room):
        return
    try:
        await (rooms_admin or room_admin_for(runtime.notifier)).remove_member(room, account)
    except (DeliveryError, LookupError) as exc:
        log.warning("could not take %s out of %s: %s", account, room.chat_id, exc)


def mark_joined(runtime: Runtime, crisis_id: int, user_id: int, *, via: str) -> bool:
    """Record that a convened person is in the room (approved join request, or already there)."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        member = member_row(session, crisis_id, user_id)
        if member is None or member.state == "joined":
            return False
        member.state = "joined"
        member.answered_at = member.answered_at or now
        user = session.get(User, user_id)
        timeline.add(
            session, crisis_id, timeline.JOINED, user_id, display_name(user), {"via": via}, now
        )
        touch_brief(session, crisis_id, now)
    return True


@dataclass(frozen=True)
class JoinOutcome:
    approved: bool
    reason: str
    crisis_id: int | None


async def handle_join_request(
    runtime: Runtime,
    *,
    chat: ChatRef,
    who: PersonRef,
    invite_link: str | None,
    rooms_admin: RoomAdmin | None = None,
) -> JoinOutcome:
    """Approve a join request from a registered person convened to a crisis in this room;
    decline everyone else, and write down who was turned away and why."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        decision = rooms.decide_join(session, chat=chat, who=who, invite_link=invite_link)
    admin = rooms_admin or room_admin_for(runtime.notifier)
    subject = f"crisis:{decision.crisis_id}" if decision.crisis_id else f"chat:{chat.chat_id}"

    def record(action: str, after: dict[str, str] | None = None) -> None:
        with runtime.db.session() as session:
            audit.record(
                session,
                action=action,
                actor_id=decision.user_id,
                actor_ref=str(who),
                subject=subject,
                after=after,
                at=now,
            )

    if decision.approve:
        await admin.approve_join(chat, who)
        assert decision.crisis_id is not None and decision.user_id is not None
        mark_joined(runtime, decision.crisis_id, decision.user_id, via="join_request")
        record("crisis.join_approved")
    else:
        try:
            await admin.decline_join(chat, who)
        finally:
            record("crisis.join_declined", {"reason": decision.reason, "chat_id": chat.chat_id})
            log.info("join request of %s to %s declined (%s)", who, chat.chat_id, decision.reason)
    return JoinOutcome(decision.approve, decision.reason, decision.crisis_id)


def note_member_joined(runtime: Runtime, *, chat: ChatRef, who: PersonRef) -> None:
    """Someone appeared in a room by other means (added by an admin): mark them joined if
    convened."""
    with runtime.db.session() as session:
        user = identity.person_for(session, who)
        crises = session.exec(
            select(Crisis.id).where(
                Crisis.room_channel == chat.channel,
                Crisis.room_chat_id == chat.chat_id,
                Crisis.status != CrisisStatus.RESOLVED,
            )
        ).all()
    if user is None or user.id is None:
        return
    for crisis_id in crises:
        if crisis_id is not None:
            mark_joined(runtime, crisis_id, user.id, via="added")
