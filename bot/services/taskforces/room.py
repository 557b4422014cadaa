"""The crisis room: a group the channel makes for the crisis (a Zalo OA group, where the agency
has an OA), else a forum topic in the agency's hub, else a group from the pool.

Attaching is idempotent and resumes after a kill from a ``crisis.room`` due row; when the pool is
empty the opener and the admins are told once and the row retries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.channels.base import (
    DeliveryError,
    RecipientUnreachable,
    Rejected,
)
from bot.channels.refs import ChatRef, PersonRef
from bot.channels.rooms import (
    MadeRoom,
    MembersUnknown,
    RoomAdmin,
    RoomMaker,
    room_admin_for,
    room_maker_for,
)
from bot.services import audit, identity, room_rights, rooms, stored_refs, timeline
from bot.services.due import cancel, due_handler, schedule
from bot.services.people import active_with_role
from bot.services.taskforces.brief import post_brief
from bot.services.taskforces.convening import CONVENE_KIND, convene
from bot.services.taskforces.crises import (
    TaskForceError,
    crisis_row,
    display_name,
    room_language,
)
from storage.models import (
    Agency,
    AuditEvent,
    Crisis,
    CrisisMember,
    CrisisStatus,
    Due,
    Role,
    Room,
    RoomKind,
    RoomState,
    User,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

ROOM_KIND = "crisis.room"
_ATTACHING: set[int] = set()  # crises this process is getting a room for right now


def room_url(runtime: Runtime, crisis: Crisis) -> str | None:
    """A link that opens the crisis room for its members, if it has a room and the channel
    has such links."""
    room = stored_refs.crisis_room(crisis)
    return runtime.notifier.link_to(room) if room is not None else None


def topic_name(crisis: Crisis) -> str:
    marks = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
    return f"{marks.get(crisis.severity, '⚪')} #{crisis.id} {crisis.title}"[:128]


async def attach_room(
    runtime: Runtime, crisis_id: int, rooms_admin: RoomAdmin | None = None
) -> bool:
    """Give an open crisis its room (a group the channel makes, else a forum topic in the hub,
    else a pooled group), post and pin the brief. Idempotent: a crisis that has a room keeps
    it. Returns whether it has one now; raises ``TaskForceError("no_room")`` when the pool is
    empty (the opener and the admins are told, and a ``crisis.room`` due row retries)."""
    _ATTACHING.add(crisis_id)
    try:
        return await _attach_room(runtime, crisis_id, rooms_admin)
    finally:
        _ATTACHING.discard(crisis_id)


async def _attach_room(runtime: Runtime, crisis_id: int, rooms_admin: RoomAdmin | None) -> bool:
    admin = rooms_admin or room_admin_for(runtime.notifier)
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        if crisis.status == CrisisStatus.RESOLVED:
            return False
        if crisis.room_chat_id is not None:
            await post_brief(runtime, crisis_id)  # a kill may have come between the two
            return True
        agency = session.get(Agency, crisis.agency_id)
        hub = rooms.hub_for(agency, runtime.settings, runtime.notifier.channel)
        name = topic_name(crisis)
        link_name = f"crisis-{crisis_id}"
        expire = None
        agency_id = crisis.agency_id
    maker = room_maker_for(rooms_admin or runtime.notifier)
    made = await _make_room(runtime, crisis_id, maker, agency_id, name) if maker else None
    if made is not None:
        with runtime.db.session() as session:
            _new_room_ready(
                session, crisis_id, RoomKind.CREATED_GROUP, made.chat, name, made.link, now
            )
    elif hub is not None:
        right = "topics"
        try:
            topic = await admin.create_topic(hub, name)
            right = "invite"
            link = await admin.create_invite_link(hub, link_name, expire)
        except DeliveryError as exc:
            # Refused by the channel: a right is missing; say which, in plain words, with the fix.
            told = isinstance(exc, Rejected)
            if told:
                await room_rights.right_missing(runtime, crisis_id, right, "hub", str(exc))
            await _room_problem(runtime, crisis_id, "hub_failed", str(exc), tell=not told)
            raise TaskForceError("hub_failed", reason=str(exc)) from exc
        with runtime.db.session() as session:
            _new_room_ready(session, crisis_id, RoomKind.FORUM_TOPIC, topic, name, link, now)
    else:
        while True:
            with runtime.db.session() as session:
                claimed = rooms.claim_free_room(session, crisis_id)
                chat = stored_refs.room_chat(claimed) if claimed else None
                room_id = claimed.id if claimed else None
            if room_id is None or chat is None:
                await _room_problem(runtime, crisis_id, "no_room", "")
                raise TaskForceError("no_room")
            try:
                await admin.set_title(chat, name)
                await admin.set_description(chat, _description(runtime, crisis_id))
                link = await admin.create_invite_link(chat, link_name, expire)
            except (Rejected, RecipientUnreachable) as exc:
                # The group no longer lets the bot do its job: take it out of the pool, try next.
                with runtime.db.session() as session:
                    bad = session.get(Room, room_id)
                    if bad is not None:
                        bad.state = RoomState.GONE
                        bad.crisis_id = None
                        audit.record(
                            session,
                            action="room.gone",
                            subject=f"room:{room_id}",
                            after={"reason": str(exc)[:200]},
                            at=now,
                        )
                continue
            except DeliveryError:
                with runtime.db.session() as session:
                    rooms.free_room(session, room_id)
                raise
            with runtime.db.session() as session:
                crisis = crisis_row(session, crisis_id)
                taken = session.get(Room, room_id)
                assert taken is not None
                taken.invite_link = link
                _room_ready(session, crisis, chat, link, now)
            break
    await post_brief(runtime, crisis_id)
    if made is not None and made.left_out:
        await _tell_left_out(runtime, crisis_id, made.left_out, made.chat)
    return True


async def _make_room(
    runtime: Runtime, crisis_id: int, maker: RoomMaker, agency_id: int, name: str
) -> MadeRoom | None:
    """A room the channel creates with the convened people already in it (those who have not
    declined), or None: the agency has no means to make one, or making it failed (logged; the
    hub or the pool is used instead)."""
    with runtime.db.session() as session:
        convened = session.exec(
            select(CrisisMember.user_id).where(
                CrisisMember.crisis_id == crisis_id,
                col(CrisisMember.state).in_(rooms.ADMITTED_STATES),
            )
        ).all()
        channel = runtime.notifier.channel
        members = list(identity.accounts_on(session, list(convened), channel).values())
    try:
        return await maker.make_room(agency_id, name, _description(runtime, crisis_id), members)
    except MembersUnknown as exc:
        log.warning("crisis %s: nobody convened is known to the room's channel yet", crisis_id)
        await _tell_left_out(runtime, crisis_id, exc.people, None)
        return None
    except DeliveryError as exc:
        log.warning("crisis %s: the channel could not make its room: %s", crisis_id, exc)
        return None


LEFT_OUT = "crisis.room_left_out"


async def _tell_left_out(
    runtime: Runtime, crisis_id: int, people: Sequence[PersonRef], room: ChatRef | None
) -> None:
    """Say who the channel could not put in the crisis room and how each can fix it (link
    their account with the room's provider, then join again): to the lead, to each of them,
    and in the room when there is one (``room`` None: no room could be made for want of anyone
    it knows; said once per crisis, as the retries that follow would say it again)."""
    now = runtime.clock.now()
    texts: list[tuple[ChatRef, str]] = []
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        subject = f"crisis:{crisis_id}"
        if (
            room is None
            and session.exec(
                select(AuditEvent.id).where(
                    AuditEvent.action == LEFT_OUT, AuditEvent.subject == subject
                )
            ).first()
        ):
            return
        persons = [identity.person_for(session, who) for who in people]
        names = [display_name(person) for person in persons]
        agency = session.get(Agency, crisis.agency_id)
        audit.record(
            session,
            action=LEFT_OUT,
            subject=subject,
            after={"people": [str(who) for who in people], "room_made": room is not None},
            at=now,
        )
        params = {
            "c": crisis,
            "names": names,
            "agency": agency.name if agency else "",
            "channel": people[0].channel if people else "",
            "made": room is not None,
            "you": False,
        }
        render = runtime.renderer.render
        channel = runtime.notifier.channel
        lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
        lead_chat = identity.direct_chat(session, crisis.lead_id, channel)
        if lead is not None and lead_chat is not None:
            texts.append((lead_chat, render("crisis_room_left_out", lead.language, **params)))
        if room is not None:
            lang = room_language(session, crisis)
            texts.append((room, render("crisis_room_left_out", lang, **params)))
        for person in persons:  # each of them is the one who can fix it
            to = identity.direct_chat(session, person.id, channel) if person else None
            if person is not None and to is not None and person.id != crisis.lead_id:
                texts.append(
                    (to, render("crisis_room_left_out", person.language, **{**params, "you": True}))
                )
    for to, text in texts:
        try:
            await runtime.notifier.send_text(to, text)
        except DeliveryError as exc:
            log.warning("crisis %s: not told who is not in the room: %s", crisis_id, exc)


def _new_room_ready(
    session: Session,
    crisis_id: int,
    kind: str,
    chat: ChatRef,
    name: str,
    link: str,
    now: datetime,
) -> None:
    """Record a room made for the crisis (a group the channel created, or a topic in the hub),
    in use by it from the start, and make it the crisis's room."""
    crisis = crisis_row(session, crisis_id)
    session.add(
        Room(
            kind=kind,
            channel=chat.channel,
            chat_id=chat.chat_id,
            thread_id=chat.thread_id,
            title=name,
            state=RoomState.IN_USE,
            invite_link=link or None,
            crisis_id=crisis_id,
            created_at=now,
        )
    )
    _room_ready(session, crisis, chat, link, now)


def _room_ready(
    session: Session,
    crisis: Crisis,
    room: ChatRef,
    link: str,
    now: datetime,
) -> None:
    assert crisis.id is not None
    stored_refs.set_crisis_room(crisis, room)
    crisis.invite_link = link
    timeline.add(
        session,
        crisis.id,
        timeline.ROOM_READY,
        None,
        "",
        {"chat_id": room.chat_id, "thread_id": room.thread_id},
        now,
    )
    audit.record(
        session,
        action="crisis.room",
        subject=f"crisis:{crisis.id}",
        after={"chat_id": room.chat_id, "thread_id": room.thread_id},
        at=now,
    )
    cancel(session, kind=ROOM_KIND, ref_id=crisis.id, at=now)
    # Convening resumes from this row after a restart; the live path marks it done.
    schedule(
        session,
        CONVENE_KIND,
        now,
        ref_id=crisis.id,
        dedupe_key=f"crisis:{crisis.id}:convene",
    )


def _description(runtime: Runtime, crisis_id: int) -> str:
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        lang = room_language(session, crisis)
        return runtime.renderer.render("crisis_room_description", lang, c=crisis)[:255]


async def _room_problem(
    runtime: Runtime, crisis_id: int, code: str, reason: str, *, tell: bool = True
) -> None:
    """Tell the opener and the admins (once per crisis and problem) that the room must wait
    (``tell=False``: they were already told why, by ``room_rights``), and schedule a retry."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        already = session.exec(
            select(Due.id).where(Due.dedupe_key == f"crisis:{crisis_id}:room")
        ).first()
        recipients: dict[int, User] = {}
        if already is None and tell:
            lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
            if lead is not None and lead.id is not None:
                recipients[lead.id] = lead
            for admin in active_with_role(session, None, Role.ADMIN):
                if admin.id is not None:
                    recipients.setdefault(admin.id, admin)
        if already is None:
            timeline.add(
                session, crisis_id, timeline.ROOM_PENDING, None, code, {"reason": reason}, now
            )
            audit.record(
                session,
                action="crisis.room_pending",
                subject=f"crisis:{crisis_id}",
                after={"code": code, "reason": reason[:200]},
                at=now,
            )
            schedule(
                session,
                ROOM_KIND,
                now + timedelta(minutes=1),
                ref_id=crisis_id,
                dedupe_key=f"crisis:{crisis_id}:room",
            )
        texts = [
            (
                u,
                to,
                runtime.renderer.render(
                    "crisis_room_pending", u.language, c=crisis, code=code, reason=reason
                ),
            )
            for u in recipients.values()
            if (to := identity.direct_chat(session, u.id, runtime.notifier.channel)) is not None
        ]
    for user, to, text in texts:
        try:
            await runtime.notifier.send_text(to, text)
        except DeliveryError as exc:
            log.warning("could not tell %s about crisis %s's room: %s", user.id, crisis_id, exc)


@dataclass(frozen=True)
class BotStanding:
    """The bot's new standing in a group, as its channel reported it: ``status`` is
    ``administrator``, ``member``, ``left``…; ``rights`` the admin rights it holds by name."""

    chat: ChatRef
    title: str
    chat_type: str
    status: str
    rights: Mapping[str, bool]
    by: PersonRef | None


@dataclass(frozen=True)
class PoolNews:
    """What a change of standing did to the room pool, and how many groups are free now."""

    change: rooms.PoolChange
    free: int


async def bot_standing_changed(runtime: Runtime, standing: BotStanding) -> PoolNews | None:
    """Record the bot's new standing in a group: a hub's rights are reported to its admins at
    once (returns None); any other group joins, stays in or leaves the room pool."""
    chat = standing.chat
    with runtime.db.session() as session:
        hub = rooms.is_hub(session, runtime.settings, chat)
    if hub:
        await room_rights.hub_rights_changed(
            runtime,
            chat=chat,
            title=standing.title,
            status=standing.status,
            rights={r: standing.rights.get(r, False) for r in room_rights.HUB_NEEDS},
            by=standing.by,
        )
        return None
    with runtime.db.session() as session:
        change = rooms.register_group(
            session,
            runtime.settings,
            chat=chat,
            title=standing.title,
            chat_type=standing.chat_type,
            status=standing.status,
            rights={r: standing.rights.get(r, False) for r in rooms.POOL_RIGHTS},
            by=standing.by,
            now=runtime.clock.now(),
        )
        free = rooms.pool_counts(session).get("free", 0)
    return PoolNews(change, free)


async def attach_waiting(runtime: Runtime, rooms_admin: RoomAdmin | None = None) -> list[int]:
    """Give rooms to open crises still waiting for one (oldest first), as far as the pool goes.
    Called when a group joins the pool or is handed back."""
    with runtime.db.session() as session:
        waiting = list(
            session.exec(
                select(Crisis.id)
                .where(Crisis.status != CrisisStatus.RESOLVED, col(Crisis.room_chat_id).is_(None))
                .order_by(col(Crisis.id))
            )
        )
    attached: list[int] = []
    for crisis_id in waiting:
        if crisis_id is None:
            continue
        try:
            if await attach_room(runtime, crisis_id, rooms_admin):
                attached.append(crisis_id)
                await _tell_lead_room_ready(runtime, crisis_id)
                await convene(runtime, crisis_id)
        except TaskForceError:
            break  # the pool is empty again
    return attached


async def _tell_lead_room_ready(runtime: Runtime, crisis_id: int) -> None:
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
        chat = identity.direct_chat(session, crisis.lead_id, runtime.notifier.channel)
        if lead is None or chat is None:
            return
        text = runtime.renderer.render(
            "crisis_room_attached", lead.language, c=crisis, url=room_url(runtime, crisis)
        )
    try:
        await runtime.notifier.send_text(chat, text)
    except DeliveryError as exc:
        log.warning("crisis %s: lead not told about the room: %s", crisis_id, exc)


@due_handler(ROOM_KIND)
async def _retry_room(runtime: Runtime, session: Session, due: Due) -> None:
    # Uses its own sessions only (the tick's session stays untouched until the row is marked).
    if due.ref_id is None:
        return
    if due.ref_id in _ATTACHING:  # the live path is at it: look again shortly
        schedule(session, ROOM_KIND, runtime.clock.now() + timedelta(seconds=5), ref_id=due.ref_id)
        return
    with runtime.db.session() as own:
        had_room = crisis_row(own, due.ref_id).room_chat_id is not None
    try:
        ready = await attach_room(runtime, due.ref_id)
    except TaskForceError as exc:
        raise RuntimeError(f"crisis {due.ref_id} still has no room ({exc.code})") from exc
    if ready:
        if not had_room:
            await _tell_lead_room_ready(runtime, due.ref_id)
        await convene(runtime, due.ref_id)
