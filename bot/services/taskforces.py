"""Crisis task forces: from one tap on an alert to a working room.

A crisis is committed first (title, severity, agency, source alert, lead, detection time and the
response deadline), then it gets a room (``bot.services.rooms``), a pinned brief, and its people
are convened by direct message. Everything after that (joins, roles, tasks, updates, notes,
reminders, the deadline clock, resolving) is a rule here; handlers only parse and render.

Restart safety: every invitation is a ``CrisisMember`` row plus a ``Delivery`` row (kind
``crisis_invite``) written *before* anything is sent. Each send claims its row first
(``pending`` → ``sending``, committed), then records ``sent`` with the message id. A
``crisis.convene`` due row, scheduled with the room, resumes convening after a restart: it sends
what is still pending and re-sends rows whose claim belongs to a process that died (at-least-once,
like every delivery here; the emulator's restart test shows no doubling when the crash happens
before a send reaches Telegram).

Time: everything later is a ``Due`` row — deadline reminders at 50 % and 80 % to the lead, the
overdue escalation to supervisors (skipped once a statement is published), task reminders and the
debounced edit of the pinned brief.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from bot.buttons import Button
from bot.channels.base import (
    Attachment,
    ChatRef,
    DeliveryError,
    RecipientUnreachable,
    Rejected,
    SentMessage,
)
from bot.channels.rooms import RoomAdmin, room_admin_for
from bot.services import audit, outbox, room_rights, rooms, timeline
from bot.services.due import cancel, due_handler, schedule
from bot.services.people import active_with_role
from bot.services.permissions import (
    Actor,
    can_act_for_agency,
    has_role,
    is_admin,
)
from storage.models import (
    Agency,
    Alert,
    Approval,
    Article,
    ArticleTopic,
    Crisis,
    CrisisMember,
    CrisisRole,
    CrisisStatus,
    Decision,
    Delivery,
    DeliveryStatus,
    Draft,
    DraftStatus,
    Due,
    Role,
    Room,
    RoomKind,
    RoomState,
    Severity,
    Story,
    Subscription,
    Task,
    Topic,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

INVITE_KIND = "crisis_invite"
DEADLINE_KIND = "crisis.deadline"
CONVENE_KIND = "crisis.convene"
ROOM_KIND = "crisis.room"
BRIEF_KIND = "crisis.brief"
TASK_KIND = "task.reminder"
RESOLVE_KIND = "crisis.resolved"  # finishes announcing a resolution after a restart
RESOLVE_DELIVERY = "crisis_resolve"
BRIEF_DELIVERY = "crisis_brief"

# Button actions (registered with their rules in handlers/taskforce.py).
JOIN = "tf.join"
DECLINE = "tf.decline"
TASK_DONE = "tf.done"
PICK = "tf.pick"
RESOLVE = "tf.resolve"

SENDING = "sending"  # a Delivery claimed by a process that is sending it now
BOOT = uuid.uuid4().hex[:12]  # this process; claims by another boot belong to a dead process
CLAIM_LEASE = timedelta(seconds=60)  # PostgreSQL (several workers): a claim older than this is dead
MAX_TITLE = 200
MAX_CONVENED = 60
TASK_REMINDER_LEAD = timedelta(minutes=30)
BRIEF_DEBOUNCE = timedelta(seconds=2)  # changes within this window share one edit of the brief
ROLES = tuple(CrisisRole)
SEVERITIES = tuple(Severity)

# Which suggestions are turned into invitations: people the opener names always; the agency's
# supervisors and the spokespeople following the crisis topic by default.
_CONVENING: set[int] = set()  # crises being convened by this process right now
_RESOLVING: set[int] = set()  # crises whose resolution this process is announcing now
_ATTACHING: set[int] = set()  # crises this process is getting a room for right now
ATTACH_GRACE = timedelta(seconds=2)  # the live path usually has the room by then


class TaskForceError(Exception):
    """A refused or impossible request; ``code`` selects the wording in ``crisis_error.j2``."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(f"{code}: {details}" if details else code)
        self.code = code
        self.details = details


# --------------------------------------------------------------------------- small helpers


def _user_by_username(session: Session, username: str) -> User | None:
    name = username.strip().removeprefix("@").lower()
    if not name:
        return None
    return session.exec(
        select(User).where(func.lower(User.username) == name).order_by(col(User.id).desc())
    ).first()


def _member(session: Session, crisis_id: int, user_id: int | None) -> CrisisMember | None:
    if user_id is None:
        return None
    return session.exec(
        select(CrisisMember).where(
            CrisisMember.crisis_id == crisis_id, CrisisMember.user_id == user_id
        )
    ).first()


def _crisis(session: Session, crisis_id: int) -> Crisis:
    crisis = session.get(Crisis, crisis_id)
    if crisis is None:
        raise TaskForceError("no_crisis", id=crisis_id)
    return crisis


def may_resolve(session: Session, actor: Actor, crisis_id: int) -> Crisis:
    """The open crisis ``actor`` may close (asked before /resolve shows its confirm button)."""
    crisis = _open_crisis_row(session, crisis_id)
    if not is_lead_or_supervisor(session, actor, crisis):
        raise TaskForceError("not_lead")
    return crisis


def _open_crisis_row(session: Session, crisis_id: int) -> Crisis:
    crisis = _crisis(session, crisis_id)
    if crisis.status == CrisisStatus.RESOLVED:
        raise TaskForceError("resolved", id=crisis_id)
    return crisis


def _name(user: User | None) -> str:
    if user is None:
        return "—"
    if user.full_name:
        return user.full_name
    return f"@{user.username}" if user.username else f"#{user.id}"


display_name = _name  # how people are named in briefs, rosters and reports


def is_lead_or_supervisor(session: Session, actor: Actor, crisis: Crisis) -> bool:
    """The crisis lead, or a supervisor (or admin) acting for the crisis's agency."""
    if can_act_for_agency(actor, crisis.agency_id, Role.SUPERVISOR):
        return True
    return actor.active and actor.user_id is not None and actor.user_id == crisis.lead_id


def is_participant(session: Session, actor: Actor, crisis: Crisis) -> bool:
    """Someone convened to the crisis who has not declined, or its lead or a supervisor."""
    if is_lead_or_supervisor(session, actor, crisis):
        return True
    if not actor.active:
        return False
    member = _member(session, crisis.id or 0, actor.user_id)
    return member is not None and member.state in rooms.ADMITTED_STATES


def _language_of_room(session: Session, crisis: Crisis) -> str:
    lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
    return lead.language if lead else "vi"


# --------------------------------------------------------------------------- opening


@dataclass
class Opened:
    """What ``open_crisis`` did, for the opener's reply."""

    crisis_id: int
    title: str
    room_ready: bool
    room_error: str | None
    invite_link: str | None
    room_url: str | None
    invited: int
    unknown: list[str] = field(default_factory=list)
    deadline_at: datetime | None = None
    missing_rights: list[str] = field(default_factory=list)  # pin, topics, invite


def room_url(chat_id: int | None, thread_id: int | None) -> str | None:
    """A t.me link that opens a supergroup (topic) for its members."""
    if chat_id is None or not str(chat_id).startswith("-100"):
        return None
    internal = str(chat_id)[4:]
    return f"https://t.me/c/{internal}/{thread_id}" if thread_id else f"https://t.me/c/{internal}"


def clean_title(raw: str) -> str:
    title = " ".join(raw.split())
    if not title:
        raise TaskForceError("title_empty")
    if len(title) > MAX_TITLE:
        raise TaskForceError("title_long", limit=MAX_TITLE)
    return title


def suggested_members(
    session: Session, agency_id: int, topic_id: int | None, exclude: Iterable[int] = ()
) -> list[User]:
    """Who a crisis convenes by default: the agency's supervisors, and its spokespeople who
    follow the crisis topic (``Subscription`` rows)."""
    skip = set(exclude)
    people: dict[int, User] = {}
    for user in active_with_role(session, agency_id, Role.SUPERVISOR):
        if user.id is not None and user.id not in skip:
            people[user.id] = user
    if topic_id is not None:
        followers = session.exec(
            select(User)
            .join(Subscription, col(Subscription.user_id) == col(User.id))
            .where(
                Subscription.topic_id == topic_id,
                User.agency_id == agency_id,
                User.status == UserStatus.ACTIVE,
                User.role == Role.SPOKESPERSON,
            )
            .order_by(col(User.id))
        ).all()
        for user in followers:
            if user.id is not None and user.id not in skip:
                people.setdefault(user.id, user)
    return list(people.values())


def resolve_usernames(session: Session, usernames: Iterable[str]) -> tuple[list[User], list[str]]:
    """Registered, active people named by @username (Telegram cannot look users up, so only
    stored usernames count); returns them and the names nobody matched."""
    found: dict[int, User] = {}
    unknown: list[str] = []
    for raw in usernames:
        name = raw.strip().removeprefix("@")
        if not name:
            continue
        user = _user_by_username(session, name)
        if user is None or user.status != UserStatus.ACTIVE or user.id is None:
            unknown.append(name)
        else:
            found[user.id] = user
    return list(found.values()), unknown


def _add_invitation(
    session: Session, crisis: Crisis, user: User, role: str, now: datetime, actor_id: int | None
) -> bool:
    """A CrisisMember (invited) and its Delivery (pending); False if already convened."""
    assert crisis.id is not None and user.id is not None
    member = _member(session, crisis.id, user.id)
    delivery = session.exec(
        select(Delivery).where(
            Delivery.kind == INVITE_KIND,
            Delivery.ref_id == crisis.id,
            Delivery.user_id == user.id,
        )
    ).first()
    if member is not None:
        if member.state != "declined":
            if (
                member.state == "invited"
                and delivery is not None
                and delivery.status
                in (
                    DeliveryStatus.UNREACHABLE,
                    DeliveryStatus.FAILED,
                )
            ):
                delivery.status = DeliveryStatus.PENDING  # they may have started the bot since
                delivery.last_error = None
                return True
            return False
        member.state = "invited"  # asked again
        member.answered_at = None
    else:
        member = CrisisMember(
            crisis_id=crisis.id, user_id=user.id, role=role, state="invited", invited_at=now
        )
        session.add(member)
    if delivery is None:
        session.add(Delivery(kind=INVITE_KIND, ref_id=crisis.id, user_id=user.id, created_at=now))
    else:
        delivery.status = DeliveryStatus.PENDING
        delivery.last_error = None
    timeline.add(
        session,
        crisis.id,
        timeline.CONVENED,
        actor_id,
        _name(user),
        {"user_id": user.id, "role": role},
        now,
    )
    return True


def _schedule_deadline(session: Session, crisis: Crisis) -> None:
    assert crisis.id is not None
    span = crisis.deadline_at - crisis.detected_at
    for stage, at in (
        ("50", crisis.detected_at + span * 0.5),
        ("80", crisis.detected_at + span * 0.8),
        ("overdue", crisis.deadline_at),
    ):
        schedule(
            session,
            DEADLINE_KIND,
            at,
            ref_id=crisis.id,
            payload={"stage": stage},
            dedupe_key=f"crisis:{crisis.id}:deadline:{stage}",
        )


async def open_crisis(
    runtime: Runtime,
    opener: Actor,
    title: str,
    severity: str = Severity.WARNING,
    agency_id: int | None = None,
    alert_id: int | None = None,
    topic_id: int | None = None,
    *,
    usernames: Sequence[str] = (),
    user_ids: Sequence[int] = (),
    rooms_admin: RoomAdmin | None = None,
) -> Opened:
    """Open a crisis task force and spin up its room; the one entry point for ``/crisis`` and
    the alert's "Open task force" button.

    ``opener`` becomes the lead (spokespeople and above, acting for ``agency_id``; it defaults
    to the opener's agency, else the alert topic's). ``alert_id`` links the source alert: its
    ``created_at`` is the detection time and its topic picks the suggested spokespeople.
    ``usernames`` and ``user_ids`` convene more registered people. The crisis row is committed
    before any Bot API call; if no room can be had yet the crisis still exists and the room is
    attached later (a ``crisis.room`` due row, and whenever a pooled group frees up).
    Raises ``TaskForceError`` (code ``not_allowed``, ``no_agency``, ``title_empty``…).
    """
    now = runtime.clock.now()
    if severity not in SEVERITIES:
        raise TaskForceError("bad_severity", severity=severity)
    with runtime.db.session() as session:
        user = session.get(User, opener.user_id) if opener.user_id else None
        if user is None or not opener.active:
            raise TaskForceError("not_registered")
        alert = session.get(Alert, alert_id) if alert_id is not None else None
        if alert_id is not None and alert is None:
            raise TaskForceError("no_alert", id=alert_id)
        topic_id = topic_id if topic_id is not None else (alert.topic_id if alert else None)
        topic = session.get(Topic, topic_id) if topic_id is not None else None
        if agency_id is None:
            agency_id = user.agency_id or (topic.agency_id if topic else None)
        if agency_id is None:
            raise TaskForceError("no_agency")
        agency = session.get(Agency, agency_id)
        if agency is None:
            raise TaskForceError("no_agency")
        if not (
            has_role(opener, Role.SPOKESPERSON)
            and can_act_for_agency(opener, agency_id, Role.SPOKESPERSON)
        ):
            raise TaskForceError("not_allowed")
        detected = alert.created_at if alert is not None else now
        crisis = Crisis(
            agency_id=agency_id,
            title=clean_title(title),
            severity=severity,
            alert_id=alert_id,
            topic_id=topic_id,
            lead_id=user.id,
            detected_at=detected,
            deadline_at=detected + timedelta(hours=agency.deadline_hours),
            created_at=now,
        )
        session.add(crisis)
        session.flush()
        assert crisis.id is not None
        session.add(
            CrisisMember(
                crisis_id=crisis.id,
                user_id=user.id or 0,
                role=CrisisRole.LEAD,
                state="accepted",
                invited_at=now,
                answered_at=now,
            )
        )
        timeline.add(
            session,
            crisis.id,
            timeline.OPENED,
            user.id,
            crisis.title,
            {
                "severity": severity,
                "alert_id": alert_id,
                "deadline_at": crisis.deadline_at.isoformat(),
            },
            now,
        )
        audit.record(
            session,
            action="crisis.opened",
            actor_id=user.id,
            actor_ref=opener.channel_ref,
            subject=f"crisis:{crisis.id}",
            after={"title": crisis.title, "severity": severity, "agency_id": agency_id},
            at=now,
        )
        _schedule_deadline(session, crisis)
        # Attaching the room resumes from this row after a kill; _room_ready cancels it.
        schedule(
            session,
            ROOM_KIND,
            now + ATTACH_GRACE,
            ref_id=crisis.id,
            dedupe_key=f"crisis:{crisis.id}:attach",
        )
        named, unknown = resolve_usernames(session, usernames)
        extra = convenable(session, crisis, user_ids)
        people = suggested_members(session, agency_id, topic_id, exclude=[user.id or 0])
        seen = {user.id}
        for person in [*people, *named, *extra]:
            if person.id in seen or len(seen) > MAX_CONVENED:
                continue
            seen.add(person.id)
            _add_invitation(session, crisis, person, CrisisRole.MEMBER, now, user.id)
        crisis_id = crisis.id
        crisis_title = crisis.title
        deadline_at = crisis.deadline_at
    opened = Opened(
        crisis_id=crisis_id,
        title=crisis_title,
        room_ready=False,
        room_error=None,
        invite_link=None,
        room_url=None,
        invited=len(seen) - 1,
        unknown=unknown,
        deadline_at=deadline_at,
    )
    try:
        await attach_room(runtime, crisis_id, rooms_admin)
    except TaskForceError as exc:
        opened.room_error = exc.code
    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
        opened.room_ready = crisis.room_chat_id is not None
        opened.invite_link = crisis.invite_link
        opened.room_url = room_url(crisis.room_chat_id, crisis.room_thread_id)
        opened.missing_rights = room_rights.reported(session, crisis_id)
    if opened.room_ready:
        await convene(runtime, crisis_id)
    return opened


# --------------------------------------------------------------------------- the room


def topic_name(crisis: Crisis) -> str:
    marks = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
    return f"{marks.get(crisis.severity, '⚪')} #{crisis.id} {crisis.title}"[:128]


async def attach_room(
    runtime: Runtime, crisis_id: int, rooms_admin: RoomAdmin | None = None
) -> bool:
    """Give an open crisis its room (forum topic in the hub, else a pooled group), post and pin
    the brief. Idempotent: a crisis that has a room keeps it. Returns whether it has one now;
    raises ``TaskForceError("no_room")`` when the pool is empty (the opener and the admins are
    told, and a ``crisis.room`` due row retries)."""
    _ATTACHING.add(crisis_id)
    try:
        return await _attach_room(runtime, crisis_id, rooms_admin)
    finally:
        _ATTACHING.discard(crisis_id)


async def _attach_room(runtime: Runtime, crisis_id: int, rooms_admin: RoomAdmin | None) -> bool:
    admin = rooms_admin or room_admin_for(runtime.notifier)
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
        if crisis.status == CrisisStatus.RESOLVED:
            return False
        if crisis.room_chat_id is not None:
            await post_brief(runtime, crisis_id)  # a kill may have come between the two
            return True
        agency = session.get(Agency, crisis.agency_id)
        hub = rooms.hub_for(agency, runtime.settings)
        name = topic_name(crisis)
        link_name = f"crisis-{crisis_id}"
        expire = None
    if hub is not None:
        right = "topics"
        try:
            thread_id = await admin.create_topic(hub, name)
            right = "invite"
            link = await admin.create_invite_link(hub, link_name, expire)
        except DeliveryError as exc:
            # Refused by Telegram: a right is missing; say which, in plain words, with the fix.
            told = isinstance(exc, Rejected)
            if told:
                await room_rights.right_missing(runtime, crisis_id, right, "hub", str(exc))
            await _room_problem(runtime, crisis_id, "hub_failed", str(exc), tell=not told)
            raise TaskForceError("hub_failed", reason=str(exc)) from exc
        with runtime.db.session() as session:
            crisis = _crisis(session, crisis_id)
            room = Room(
                kind=RoomKind.FORUM_TOPIC,
                chat_id=hub,
                thread_id=thread_id,
                title=name,
                state=RoomState.IN_USE,
                invite_link=link,
                crisis_id=crisis_id,
                created_at=now,
            )
            session.add(room)
            _room_ready(session, crisis, hub, thread_id, link, now)
    else:
        while True:
            with runtime.db.session() as session:
                claimed = rooms.claim_free_room(session, crisis_id)
                chat_id = claimed.chat_id if claimed else None
                room_id = claimed.id if claimed else None
            if room_id is None or chat_id is None:
                await _room_problem(runtime, crisis_id, "no_room", "")
                raise TaskForceError("no_room")
            try:
                await admin.set_title(chat_id, name)
                await admin.set_description(chat_id, _description(runtime, crisis_id))
                link = await admin.create_invite_link(chat_id, link_name, expire)
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
                    back = session.get(Room, room_id)
                    if back is not None:
                        rooms.free_room(session, back)
                raise
            with runtime.db.session() as session:
                crisis = _crisis(session, crisis_id)
                taken = session.get(Room, room_id)
                assert taken is not None
                taken.invite_link = link
                _room_ready(session, crisis, chat_id, None, link, now)
            break
    await post_brief(runtime, crisis_id)
    return True


def _room_ready(
    session: Session,
    crisis: Crisis,
    chat_id: int,
    thread_id: int | None,
    link: str,
    now: datetime,
) -> None:
    assert crisis.id is not None
    crisis.room_chat_id = chat_id
    crisis.room_thread_id = thread_id
    crisis.invite_link = link
    timeline.add(
        session,
        crisis.id,
        timeline.ROOM_READY,
        None,
        "",
        {"chat_id": chat_id, "thread_id": thread_id},
        now,
    )
    audit.record(
        session,
        action="crisis.room",
        subject=f"crisis:{crisis.id}",
        after={"chat_id": chat_id, "thread_id": thread_id},
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
        crisis = _crisis(session, crisis_id)
        lang = _language_of_room(session, crisis)
        return runtime.renderer.render("crisis_room_description", lang, c=crisis)[:255]


async def _room_problem(
    runtime: Runtime, crisis_id: int, code: str, reason: str, *, tell: bool = True
) -> None:
    """Tell the opener and the admins (once per crisis and problem) that the room must wait
    (``tell=False``: they were already told why, by ``room_rights``), and schedule a retry."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
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
                runtime.renderer.render(
                    "crisis_room_pending", u.language, c=crisis, code=code, reason=reason
                ),
            )
            for u in recipients.values()
        ]
    for user, text in texts:
        if user.telegram_id is None:
            continue
        try:
            await runtime.notifier.send_text(ChatRef(user.telegram_id), text)
        except DeliveryError as exc:
            log.warning("could not tell %s about crisis %s's room: %s", user.id, crisis_id, exc)


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
        crisis = _crisis(session, crisis_id)
        lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
        if lead is None or lead.telegram_id is None:
            return
        text = runtime.renderer.render(
            "crisis_room_attached",
            lead.language,
            c=crisis,
            url=room_url(crisis.room_chat_id, crisis.room_thread_id),
        )
        chat = lead.telegram_id
    try:
        await runtime.notifier.send_text(ChatRef(chat), text)
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
        had_room = _crisis(own, due.ref_id).room_chat_id is not None
    try:
        ready = await attach_room(runtime, due.ref_id)
    except TaskForceError as exc:
        raise RuntimeError(f"crisis {due.ref_id} still has no room ({exc.code})") from exc
    if ready:
        if not had_room:
            await _tell_lead_room_ready(runtime, due.ref_id)
        await convene(runtime, due.ref_id)


# --------------------------------------------------------------------------- the brief


@dataclass
class BriefView:
    crisis: Crisis
    agency: Agency | None
    alert: Alert | None
    topic: Topic | None
    lead: User | None
    roles: list[tuple[str, str]]  # (role, name) for everyone with a role other than member
    counts: dict[str, int]
    tasks: list[tuple[Task, str]]  # open tasks with the owner's name
    done_tasks: int
    stories: list[Story]
    statements: int
    last_update: str | None
    now: datetime


def brief_view(session: Session, crisis_id: int, now: datetime) -> BriefView:
    crisis = _crisis(session, crisis_id)
    members = session.exec(
        select(CrisisMember, User)
        .join(User, col(User.id) == col(CrisisMember.user_id))
        .where(CrisisMember.crisis_id == crisis_id)
        .order_by(col(CrisisMember.id))
    ).all()
    counts = {"joined": 0, "accepted": 0, "invited": 0, "declined": 0}
    roles: list[tuple[str, str]] = []
    for member, user in members:
        if member.state in counts:
            counts[member.state] += 1
        if member.role != CrisisRole.MEMBER and member.state != "declined":
            roles.append((member.role, _name(user)))
    tasks = session.exec(
        select(Task).where(Task.crisis_id == crisis_id).order_by(col(Task.id))
    ).all()
    open_tasks = []
    for task in tasks:
        if task.done_at is None:
            owner = session.get(User, task.owner_id) if task.owner_id else None
            open_tasks.append((task, _name(owner)))
    stories: list[Story] = []
    if crisis.topic_id is not None:
        stories = list(
            session.exec(
                select(Story)
                .join(Article, col(Article.story_id) == col(Story.id))
                .join(ArticleTopic, col(ArticleTopic.article_id) == col(Article.id))
                .where(
                    ArticleTopic.topic_id == crisis.topic_id,
                    Story.last_seen_at >= crisis.detected_at - timedelta(days=2),
                )
                .group_by(col(Story.id))
                .order_by(col(Story.outlet_count).desc(), col(Story.article_count).desc())
                .limit(3)
            )
        )
    statements = session.exec(
        select(func.count())
        .select_from(Draft)
        .where(Draft.crisis_id == crisis_id, Draft.status == DraftStatus.PUBLISHED)
    ).one()
    update = session.exec(
        select(timeline.TimelineEvent)
        .where(
            timeline.TimelineEvent.crisis_id == crisis_id,
            timeline.TimelineEvent.kind == timeline.UPDATE,
        )
        .order_by(col(timeline.TimelineEvent.at).desc(), col(timeline.TimelineEvent.id).desc())
    ).first()
    return BriefView(
        crisis=crisis,
        agency=session.get(Agency, crisis.agency_id),
        alert=session.get(Alert, crisis.alert_id) if crisis.alert_id else None,
        topic=session.get(Topic, crisis.topic_id) if crisis.topic_id else None,
        lead=session.get(User, crisis.lead_id) if crisis.lead_id else None,
        roles=roles,
        counts=counts,
        tasks=open_tasks,
        done_tasks=len(tasks) - len(open_tasks),
        stories=stories,
        statements=int(statements),
        last_update=update.text if update else None,
        now=now,
    )


def render_brief(runtime: Runtime, session: Session, crisis_id: int) -> str:
    view = brief_view(session, crisis_id, runtime.clock.now())
    lang = _language_of_room(session, view.crisis)
    return runtime.renderer.render("crisis_brief", lang, v=view)


async def post_brief(runtime: Runtime, crisis_id: int) -> None:
    """Post and pin the brief once; later changes edit it in place (``refresh_brief``)."""
    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
        if crisis.brief_message_id is not None or crisis.room_chat_id is None:
            return
        to = ChatRef(crisis.room_chat_id, crisis.room_thread_id)
        text = render_brief(runtime, session, crisis_id)
        lead = crisis.lead_id
    if lead is None:
        sent: SentMessage | None = await runtime.notifier.send_text(to, text)
    else:  # once across kills: a brief in doubt is not posted again
        sent = await outbox.send_once(
            runtime,
            kind=BRIEF_DELIVERY,
            ref_id=crisis_id,
            user_id=lead,
            part="brief",
            send=lambda: runtime.notifier.send_text(to, text),
        )
    if sent is None:
        return
    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
        crisis.brief_message_id = sent.message_id
    try:
        await runtime.notifier.pin(sent)
    except Rejected as exc:  # the bot may not pin here: the lead and the admins hear it
        log.warning("crisis %s: brief not pinned: %s", crisis_id, exc)
        where = "hub" if to.thread_id is not None else "group"
        await room_rights.right_missing(runtime, crisis_id, "pin", where, str(exc))
    except DeliveryError as exc:
        log.warning("crisis %s: brief not pinned: %s", crisis_id, exc)


async def refresh_brief(runtime: Runtime, crisis_id: int) -> None:
    """Edit the pinned brief to the current state now (identical text is not an error)."""
    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
        if crisis.brief_message_id is None or crisis.room_chat_id is None:
            return
        message = SentMessage(crisis.room_chat_id, crisis.brief_message_id, crisis.room_thread_id)
        text = render_brief(runtime, session, crisis_id)
    await runtime.notifier.edit_text(message, text)


def touch_brief(session: Session, crisis_id: int, now: datetime) -> None:
    """Ask for the brief to be edited soon: a burst of changes within ``BRIEF_DEBOUNCE`` becomes
    one edit (Telegram allows a group about 20 messages a minute). A row that is already due may
    be firing right now with the state before this change, so then a new row is added."""
    waiting = session.exec(
        select(Due.id).where(
            Due.kind == BRIEF_KIND,
            Due.ref_id == crisis_id,
            col(Due.done_at).is_(None),
            Due.due_at > now,
        )
    ).first()
    if waiting is None:
        schedule(session, BRIEF_KIND, now + BRIEF_DEBOUNCE, ref_id=crisis_id)


@due_handler(BRIEF_KIND)
async def _brief_due(runtime: Runtime, session: Session, due: Due) -> None:
    if due.ref_id is not None:
        await refresh_brief(runtime, due.ref_id)


# --------------------------------------------------------------------------- convening


def _claimable(delivery: Delivery, *, resume: bool, now: datetime, multi_worker: bool) -> bool:
    if delivery.status == DeliveryStatus.PENDING:
        return True
    if delivery.status != SENDING or not resume:
        return False
    claim = (delivery.last_error or "").split()
    if len(claim) != 3 or claim[0] != "claim":
        return True
    boot, at_text = claim[1], claim[2]
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        return True
    if boot == BOOT:
        return now - at > CLAIM_LEASE * 10  # our own send; only a hung one is retried
    return not multi_worker or now - at > CLAIM_LEASE


def _invite_buttons(runtime: Runtime, lang: str, member_id: int) -> list[list[Button]]:
    return [
        [
            Button(runtime.renderer.render("tf_button_join", lang), JOIN, member_id),
            Button(runtime.renderer.render("tf_button_decline", lang), DECLINE, member_id),
        ]
    ]


async def convene(runtime: Runtime, crisis_id: int, *, resume: bool = False) -> int:
    """Send every pending invitation of a crisis (Join / Decline buttons); returns how many
    went out. Each row is claimed before its send and marked after it, so a restart resumes
    where this stopped (``resume=True``, from the ``crisis.convene`` due row)."""
    if crisis_id in _CONVENING:
        return 0
    _CONVENING.add(crisis_id)
    sent_count = 0
    try:
        multi_worker = runtime.db.engine.dialect.name != "sqlite"
        while True:
            now = runtime.clock.now()
            with runtime.db.session() as session:
                crisis = _crisis(session, crisis_id)
                if crisis.status == CrisisStatus.RESOLVED or crisis.room_chat_id is None:
                    break
                rows = session.exec(
                    select(Delivery)
                    .where(
                        Delivery.kind == INVITE_KIND,
                        Delivery.ref_id == crisis_id,
                        col(Delivery.status).in_([DeliveryStatus.PENDING, SENDING]),
                    )
                    .order_by(col(Delivery.id))
                ).all()
                row = next(
                    (
                        d
                        for d in rows
                        if _claimable(d, resume=resume, now=now, multi_worker=multi_worker)
                    ),
                    None,
                )
                if row is None:
                    cancel(session, kind=CONVENE_KIND, ref_id=crisis_id, at=now)
                    if any(d.status == SENDING for d in rows):
                        # A claim of another process (PostgreSQL): look again once its lease
                        # is over, or an invitation a dead worker held is never sent.
                        schedule(session, CONVENE_KIND, now + CLAIM_LEASE, ref_id=crisis_id)
                    break
                claimed = session.execute(
                    sa.update(Delivery)
                    .where(col(Delivery.id) == row.id, col(Delivery.status) == row.status)
                    .values(
                        status=SENDING,
                        attempts=row.attempts + 1,
                        last_error=f"claim {BOOT} {now.isoformat()}",
                    )
                )
                if getattr(claimed, "rowcount", 0) != 1:
                    continue  # someone else took it
                user = session.get(User, row.user_id)
                member = _member(session, crisis_id, row.user_id)
                delivery_id = row.id
                if user is None or member is None or user.telegram_id is None:
                    session.execute(
                        sa.update(Delivery)
                        .where(col(Delivery.id) == delivery_id)
                        .values(status=DeliveryStatus.UNREACHABLE, last_error="no telegram id")
                    )
                    continue
                view = brief_view(session, crisis_id, now)
                text = runtime.renderer.render(
                    "crisis_invite", user.language, v=view, role=member.role
                )
                buttons = _invite_buttons(runtime, user.language, member.id or 0)
                chat = user.telegram_id
            try:
                message = await runtime.notifier.send_text(ChatRef(chat), text, buttons)
            except RecipientUnreachable as exc:
                _finish_delivery(runtime, delivery_id, DeliveryStatus.UNREACHABLE, str(exc))
                continue
            except DeliveryError as exc:
                # Transient (429, 5xx): put it back and let the due row retry later.
                _finish_delivery(runtime, delivery_id, DeliveryStatus.PENDING, str(exc))
                raise
            _finish_delivery(runtime, delivery_id, DeliveryStatus.SENT, None, message)
            sent_count += 1
    finally:
        _CONVENING.discard(crisis_id)
    if sent_count:
        with runtime.db.session() as session:
            touch_brief(session, crisis_id, runtime.clock.now())
    return sent_count


def _finish_delivery(
    runtime: Runtime,
    delivery_id: int | None,
    status: str,
    error: str | None,
    message: SentMessage | None = None,
) -> None:
    now = runtime.clock.now()
    with runtime.db.session() as session:
        row = session.get(Delivery, delivery_id)
        if row is None:
            return
        row.status = status
        row.last_error = error[:500] if error else None
        if message is not None:
            row.chat_id = message.chat_id
            row.message_id = message.message_id
            row.sent_at = now
        if status == DeliveryStatus.UNREACHABLE:
            audit.record(
                session,
                action="crisis.invite_unreachable",
                subject=f"user:{row.user_id}",
                after={"crisis_id": row.ref_id, "reason": (error or "")[:200]},
                at=now,
            )


@due_handler(CONVENE_KIND)
async def _convene_due(runtime: Runtime, session: Session, due: Due) -> None:
    # Own sessions only: see _retry_room.
    if due.ref_id is None:
        return
    if due.ref_id in _CONVENING:
        # Being convened by this process right now: look again shortly (this row is done).
        schedule(
            session, CONVENE_KIND, runtime.clock.now() + timedelta(seconds=5), ref_id=due.ref_id
        )
        return
    await convene(runtime, due.ref_id, resume=True)


async def convene_more(
    runtime: Runtime,
    actor: Actor,
    crisis_id: int,
    *,
    usernames: Sequence[str] = (),
    user_ids: Sequence[int] = (),
) -> tuple[list[str], list[str]]:
    """Convene more registered people (lead, supervisors, or members of the crisis); returns
    the names invited and the @usernames nobody matched."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = _open_crisis_row(session, crisis_id)
        if not is_participant(session, actor, crisis):
            raise TaskForceError("not_allowed")
        named, unknown = resolve_usernames(session, usernames)
        extra = convenable(session, crisis, user_ids)
        if len(extra) < len(set(user_ids)):
            # A picked id outside the crisis's agency: the list never offered it, so it is forged.
            raise TaskForceError("not_allowed")
        invited: list[str] = []
        for person in [*named, *extra]:
            if person.status != UserStatus.ACTIVE:
                continue
            if _add_invitation(session, crisis, person, CrisisRole.MEMBER, now, actor.user_id):
                invited.append(_name(person))
        ready = crisis.room_chat_id is not None
    if invited and ready:
        await convene(runtime, crisis_id)
    return invited, unknown


def may_convene(crisis: Crisis, user: User | None) -> bool:
    """Whom a crisis may convene by id (the pick list): active people of the crisis's agency.

    Checked here, not only in the keyboard: a forged button can carry any user id, and
    convening someone also shows the presser that person's name.
    """
    return (
        user is not None
        and user.status == UserStatus.ACTIVE
        and user.agency_id is not None
        and user.agency_id == crisis.agency_id
    )


def convenable(session: Session, crisis: Crisis, user_ids: Iterable[int]) -> list[User]:
    """The people among ``user_ids`` that ``crisis`` may convene (others are left out)."""
    people = (session.get(User, i) for i in dict.fromkeys(user_ids))
    return [u for u in people if u is not None and may_convene(crisis, u)]


def pick_candidates(session: Session, crisis_id: int, limit: int = 20) -> list[User]:
    """Registered people of the crisis's agency not yet convened (for the pick list)."""
    crisis = _crisis(session, crisis_id)
    convened = select(CrisisMember.user_id).where(
        CrisisMember.crisis_id == crisis_id, CrisisMember.state != "declined"
    )
    return list(
        session.exec(
            select(User)
            .where(
                User.agency_id == crisis.agency_id,
                User.status == UserStatus.ACTIVE,
                col(User.id).not_in(convened),
            )
            .order_by(col(User.full_name), col(User.id))
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- answers and joins


@dataclass
class Answer:
    crisis: Crisis
    state: str
    link: str | None
    url: str | None
    changed: bool


async def answer_invitation(
    runtime: Runtime,
    actor: Actor,
    member_id: int,
    join: bool,
    rooms_admin: RoomAdmin | None = None,
) -> Answer:
    """The convened person pressed Join or Decline. Joining gives the room's join-request link;
    someone already in the hub is marked joined straight away."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        member = session.get(CrisisMember, member_id)
        if member is None or member.user_id != actor.user_id:
            raise TaskForceError("not_allowed")
        crisis = _crisis(session, member.crisis_id)
        if crisis.status == CrisisStatus.RESOLVED:
            raise TaskForceError("resolved", id=crisis.id)
        user = session.get(User, member.user_id)
        assert user is not None and crisis.id is not None
        if member.state == "joined" and join:
            return Answer(crisis, "joined", crisis.invite_link, _url(crisis), False)
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
                _name(user),
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
        chat_id, telegram_id = crisis.room_chat_id, user.telegram_id
    if join and chat_id is not None and telegram_id is not None:
        admin = rooms_admin or room_admin_for(runtime.notifier)
        try:
            inside = await admin.is_member(chat_id, telegram_id)
        except DeliveryError:
            inside = False
        if inside:
            mark_joined(runtime, crisis.id, member.user_id, via="already_member")
            state = "joined"
    return Answer(crisis, state, crisis.invite_link, _url(crisis), changed)


def _url(crisis: Crisis) -> str | None:
    return room_url(crisis.room_chat_id, crisis.room_thread_id)


def mark_joined(runtime: Runtime, crisis_id: int, user_id: int, *, via: str) -> bool:
    """Record that a convened person is in the room (approved join request, or already there)."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        member = _member(session, crisis_id, user_id)
        if member is None or member.state == "joined":
            return False
        member.state = "joined"
        member.answered_at = member.answered_at or now
        user = session.get(User, user_id)
        timeline.add(session, crisis_id, timeline.JOINED, user_id, _name(user), {"via": via}, now)
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
    chat_id: int,
    telegram_id: int,
    invite_link: str | None,
    rooms_admin: RoomAdmin | None = None,
) -> JoinOutcome:
    """Approve a join request from a registered person convened to a crisis in this room;
    decline everyone else, and write down who was turned away and why."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        decision = rooms.decide_join(
            session, chat_id=chat_id, telegram_id=telegram_id, invite_link=invite_link
        )
    admin = rooms_admin or room_admin_for(runtime.notifier)
    if decision.approve:
        await admin.approve_join(chat_id, telegram_id)
        assert decision.crisis_id is not None and decision.user_id is not None
        mark_joined(runtime, decision.crisis_id, decision.user_id, via="join_request")
        with runtime.db.session() as session:
            audit.record(
                session,
                action="crisis.join_approved",
                actor_id=decision.user_id,
                actor_ref=f"tg:{telegram_id}",
                subject=f"crisis:{decision.crisis_id}",
                at=now,
            )
    else:
        try:
            await admin.decline_join(chat_id, telegram_id)
        finally:
            with runtime.db.session() as session:
                audit.record(
                    session,
                    action="crisis.join_declined",
                    actor_id=decision.user_id,
                    actor_ref=f"tg:{telegram_id}",
                    subject=f"crisis:{decision.crisis_id}"
                    if decision.crisis_id
                    else f"chat:{chat_id}",
                    after={"reason": decision.reason, "chat_id": chat_id},
                    at=now,
                )
            log.info(
                "join request of tg:%s to %s declined (%s)", telegram_id, chat_id, decision.reason
            )
    return JoinOutcome(decision.approve, decision.reason, decision.crisis_id)


def note_member_joined(
    runtime: Runtime, *, chat_id: int, thread_id: int | None, telegram_id: int
) -> None:
    """Someone appeared in a room by other means (added by an admin): mark them joined if
    convened."""
    with runtime.db.session() as session:
        user = session.exec(select(User).where(User.telegram_id == telegram_id)).first()
        crises = session.exec(
            select(Crisis.id).where(
                Crisis.room_chat_id == chat_id, Crisis.status != CrisisStatus.RESOLVED
            )
        ).all()
    if user is None or user.id is None:
        return
    for crisis_id in crises:
        if crisis_id is not None:
            mark_joined(runtime, crisis_id, user.id, via="added")


# --------------------------------------------------------------------------- roles


ROLE_ALIASES = {
    "lead": CrisisRole.LEAD,
    "truongnhom": CrisisRole.LEAD,
    "trưởngnhóm": CrisisRole.LEAD,
    "chihuy": CrisisRole.LEAD,
    "drafter": CrisisRole.DRAFTER,
    "soanthao": CrisisRole.DRAFTER,
    "soạnthảo": CrisisRole.DRAFTER,
    "approver": CrisisRole.APPROVER,
    "duyet": CrisisRole.APPROVER,
    "duyệt": CrisisRole.APPROVER,
    "pheduyet": CrisisRole.APPROVER,
    "phêduyệt": CrisisRole.APPROVER,
    "liaison": CrisisRole.LIAISON,
    "lienlac": CrisisRole.LIAISON,
    "liênlạc": CrisisRole.LIAISON,
    "dauMoi": CrisisRole.LIAISON,
    "đầumối": CrisisRole.LIAISON,
    "member": CrisisRole.MEMBER,
    "thanhvien": CrisisRole.MEMBER,
    "thànhviên": CrisisRole.MEMBER,
}


def parse_role(raw: str) -> CrisisRole:
    key = "".join(raw.lower().split())
    role = ROLE_ALIASES.get(key)
    if role is None:
        raise TaskForceError("bad_role", role=raw)
    return role


def set_role(
    runtime: Runtime, actor: Actor, crisis_id: int, username: str, role: CrisisRole
) -> tuple[str, str]:
    """Give a convened person a role (lead and supervisors only). Naming a new lead hands the
    lead over: the old lead becomes a member. Returns (name, role)."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = _open_crisis_row(session, crisis_id)
        if not is_lead_or_supervisor(session, actor, crisis):
            audit.record(
                session,
                action="crisis.role_refused",
                actor_id=actor.user_id,
                actor_ref=actor.channel_ref,
                subject=f"crisis:{crisis_id}",
                after={"username": username, "role": role},
                at=now,
            )
            raise TaskForceError("not_lead")
        user = _user_by_username(session, username)
        if user is None or user.id is None or user.status != UserStatus.ACTIVE:
            raise TaskForceError("unknown_user", username=username.removeprefix("@"))
        member = _member(session, crisis_id, user.id)
        if member is None or member.state == "declined":
            raise TaskForceError("not_member", username=username.removeprefix("@"))
        before = member.role
        if role == CrisisRole.LEAD and crisis.lead_id != user.id:
            old = _member(session, crisis_id, crisis.lead_id)
            if old is not None:
                old.role = CrisisRole.MEMBER
            crisis.lead_id = user.id
        elif before == CrisisRole.LEAD and role != CrisisRole.LEAD:
            raise TaskForceError("lead_needed")
        member.role = role
        timeline.add(
            session,
            crisis_id,
            timeline.ROLE,
            actor.user_id,
            f"{_name(user)}: {role}",
            {"user_id": user.id, "before": before, "after": role},
            now,
        )
        audit.record(
            session,
            action="crisis.role",
            actor_id=actor.user_id,
            actor_ref=actor.channel_ref,
            subject=f"crisis:{crisis_id}",
            before={"user_id": user.id, "role": before},
            after={"user_id": user.id, "role": role},
            at=now,
        )
        touch_brief(session, crisis_id, now)
        return _name(user), role


# --------------------------------------------------------------------------- tasks


_DURATION = re.compile(
    r"^\+?(?:(?P<d>\d+)\s*(?:d|ngày|ngay))?"
    r"(?:(?P<h>\d+(?:[.,]\d+)?)\s*(?:hours?|hrs|hr|giờ|gio|h|g))?"
    r"(?:(?P<m>\d+)\s*(?:m|p|ph|phút|phut|min|mins|minutes?)?)?$",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"^(?:lúc|luc|at|@)?(?P<h>[01]?\d|2[0-3])[:h](?P<m>[0-5]\d)$", re.IGNORECASE)


@dataclass(frozen=True)
class TaskSpec:
    username: str | None
    due: timedelta | None
    clock: tuple[int, int] | None
    title: str


def parse_task(text: str) -> TaskSpec:
    """``[@owner] [when] title`` in any order of the first two, e.g.

    ``@lan 2h Gọi cho báo Tuổi Trẻ`` · ``30m @lan Soạn thông cáo`` · ``@lan 1h30 …`` ·
    ``lúc 15:30 Họp báo`` · ``@lan 15h30 …`` · ``Kiểm tra số liệu`` (the issuer, no due time).
    Durations: ``45m``/``45p``/``45 phút``, ``2h``/``2g``/``2 giờ``, ``1h30``, ``1d``; a clock time
    ``HH:MM`` (or ``15h30``, hours ≥ 10 with minutes) means today, or tomorrow if it has passed.
    """
    words = text.split()
    username: str | None = None
    due: timedelta | None = None
    clock: tuple[int, int] | None = None
    i = 0
    while i < len(words) and i < 4:
        word = words[i]
        if word.startswith("@") and username is None and len(word) > 1:
            username = word[1:]
            i += 1
            continue
        if due is None and clock is None:
            joined = word
            # "2 giờ", "30 phút", "lúc 15:30": the unit or the time in the next word.
            if i + 1 < len(words) and (word.isdigit() or word.lower() in ("lúc", "luc", "at")):
                joined = word + words[i + 1]
            for candidate, width in ((joined, 2 if joined != word else 1), (word, 1)):
                parsed = _parse_when(candidate)
                if parsed is not None:
                    due, clock = parsed
                    i += width
                    break
            else:
                break
            continue
        break
    title = " ".join(words[i:]).strip()
    if not title:
        raise TaskForceError("task_usage")
    if len(title) > 300:
        raise TaskForceError("title_long", limit=300)
    return TaskSpec(username, due, clock, title)


def _parse_when(word: str) -> tuple[timedelta | None, tuple[int, int] | None] | None:
    clock = _CLOCK.match(word)
    if clock and (":" in word or int(clock.group("h")) >= 10 or word[0].isalpha()):
        return None, (int(clock.group("h")), int(clock.group("m")))
    if not word or not word[-1].isalnum() or word.isdigit():
        return None
    match = _DURATION.match(word)
    if not match or not any(match.group(k) for k in ("d", "h", "m")):
        return None
    if match.group("m") and not match.group("h") and word.isdigit():
        return None
    days = int(match.group("d") or 0)
    hours = float((match.group("h") or "0").replace(",", "."))
    minutes = int(match.group("m") or 0)
    delta = timedelta(days=days, hours=hours, minutes=minutes)
    if delta <= timedelta(0):
        return None
    return delta, None


def _due_at(spec: TaskSpec, now: datetime, tz: Any) -> datetime | None:
    if spec.due is not None:
        if spec.due > timedelta(days=30):
            raise TaskForceError("due_far")
        return now + spec.due
    if spec.clock is not None:
        local = now.astimezone(tz)
        at = local.replace(hour=spec.clock[0], minute=spec.clock[1], second=0, microsecond=0)
        if at <= local:
            at += timedelta(days=1)
        return at.astimezone(now.tzinfo)
    return None


@dataclass
class TaskView:
    task: Task
    owner: str
    owner_user: User | None


def add_task(runtime: Runtime, actor: Actor, crisis_id: int, text: str) -> TaskView:
    """Create a task for a participant (default: the issuer) with an optional due time; a
    reminder goes to the owner before it is due."""
    now = runtime.clock.now()
    spec = parse_task(text)
    with runtime.db.session() as session:
        crisis = _open_crisis_row(session, crisis_id)
        if not is_participant(session, actor, crisis):
            raise TaskForceError("not_member_self")
        if spec.username is not None:
            owner = _user_by_username(session, spec.username)
            if owner is None or owner.status != UserStatus.ACTIVE:
                raise TaskForceError("unknown_user", username=spec.username)
        else:
            owner = session.get(User, actor.user_id) if actor.user_id else None
            if owner is None:
                raise TaskForceError("not_registered")
        member = _member(session, crisis_id, owner.id)
        if (member is None or member.state == "declined") and owner.id != crisis.lead_id:
            raise TaskForceError("not_member", username=owner.username or _name(owner))
        due_at = _due_at(spec, now, runtime.settings.tz)
        task = Task(
            crisis_id=crisis_id,
            title=spec.title,
            owner_id=owner.id,
            due_at=due_at,
            created_by_id=actor.user_id,
            created_at=now,
        )
        session.add(task)
        session.flush()
        assert task.id is not None
        if due_at is not None:
            lead = min(TASK_REMINDER_LEAD, (due_at - now) / 2)
            schedule(
                session,
                TASK_KIND,
                due_at - lead,
                ref_id=task.id,
                payload={"stage": "soon"},
                dedupe_key=f"task:{task.id}:soon",
            )
            schedule(
                session,
                TASK_KIND,
                due_at,
                ref_id=task.id,
                payload={"stage": "due"},
                dedupe_key=f"task:{task.id}:due",
            )
        timeline.add(
            session,
            crisis_id,
            timeline.TASK_ADDED,
            actor.user_id,
            spec.title,
            {
                "task_id": task.id,
                "owner_id": owner.id,
                "due_at": due_at.isoformat() if due_at else None,
            },
            now,
        )
        audit.record(
            session,
            action="task.added",
            actor_id=actor.user_id,
            actor_ref=actor.channel_ref,
            subject=f"task:{task.id}",
            after={"crisis_id": crisis_id, "owner_id": owner.id, "title": spec.title},
            at=now,
        )
        touch_brief(session, crisis_id, now)
        return TaskView(task, _name(owner), owner)


def can_close_task(session: Session, actor: Actor, task_id: int) -> bool:
    task = session.get(Task, task_id)
    if task is None or not actor.active:
        return False
    crisis = session.get(Crisis, task.crisis_id)
    if crisis is None:
        return False
    return task.owner_id == actor.user_id or is_lead_or_supervisor(session, actor, crisis)


def complete_task(runtime: Runtime, actor: Actor, task_id: int) -> tuple[TaskView, bool]:
    """Close a task (its owner, the lead or a supervisor); returns it and whether it changed."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise TaskForceError("no_task", id=task_id)
        crisis = _crisis(session, task.crisis_id)
        if not can_close_task(session, actor, task_id):
            raise TaskForceError("not_allowed")
        owner = session.get(User, task.owner_id) if task.owner_id else None
        if task.done_at is not None:
            return TaskView(task, _name(owner), owner), False
        if crisis.status == CrisisStatus.RESOLVED:
            raise TaskForceError("resolved", id=crisis.id)
        task.done_at = now
        cancel(session, kind=TASK_KIND, ref_id=task_id, at=now)
        timeline.add(
            session,
            task.crisis_id,
            timeline.TASK_DONE,
            actor.user_id,
            task.title,
            {"task_id": task_id},
            now,
        )
        audit.record(
            session,
            action="task.done",
            actor_id=actor.user_id,
            actor_ref=actor.channel_ref,
            subject=f"task:{task_id}",
            at=now,
        )
        touch_brief(session, task.crisis_id, now)
        return TaskView(task, _name(owner), owner), True


@due_handler(TASK_KIND)
async def _task_reminder(runtime: Runtime, session: Session, due: Due) -> None:
    task = session.get(Task, due.ref_id) if due.ref_id is not None else None
    if task is None or task.done_at is not None:
        return
    crisis = session.get(Crisis, task.crisis_id)
    if crisis is None or crisis.status == CrisisStatus.RESOLVED:
        return
    owner = session.get(User, task.owner_id) if task.owner_id else None
    if owner is None or owner.telegram_id is None or not owner.reachable:
        return
    text = runtime.renderer.render(
        "task_reminder", owner.language, t=task, c=crisis, stage=due.payload.get("stage", "soon")
    )
    buttons = [
        [Button(runtime.renderer.render("tf_button_done", owner.language), TASK_DONE, task.id or 0)]
    ]
    try:
        await runtime.notifier.send_text(ChatRef(owner.telegram_id), text, buttons)
    except RecipientUnreachable as exc:
        owner.reachable = False
        audit.record(
            session,
            action="user.unreachable",
            subject=f"user:{owner.id}",
            after={"reason": str(exc)},
            at=runtime.clock.now(),
        )


def open_tasks(session: Session, crisis_id: int) -> list[TaskView]:
    rows = session.exec(
        select(Task)
        .where(Task.crisis_id == crisis_id, col(Task.done_at).is_(None))
        .order_by(col(Task.due_at).is_(None), col(Task.due_at), col(Task.id))
    ).all()
    views = []
    for task in rows:
        owner = session.get(User, task.owner_id) if task.owner_id else None
        views.append(TaskView(task, _name(owner), owner))
    return views


# --------------------------------------------------------------------------- updates, notes


def post_update(runtime: Runtime, actor: Actor, crisis_id: int, text: str) -> None:
    """A status update (``/update …``): on the timeline and in the brief."""
    text = " ".join(text.split())
    if not text:
        raise TaskForceError("update_usage")
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = _open_crisis_row(session, crisis_id)
        if not is_participant(session, actor, crisis):
            raise TaskForceError("not_member_self")
        timeline.add(session, crisis_id, timeline.UPDATE, actor.user_id, text[:1000], {}, now)
        touch_brief(session, crisis_id, now)


def add_note(
    runtime: Runtime,
    actor: Actor,
    crisis_id: int,
    text: str,
    *,
    message_id: int | None,
    author: str | None,
) -> None:
    """Put a message of the room on the timeline (``/note`` in reply to it)."""
    text = text.strip()
    if not text:
        raise TaskForceError("note_usage")
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
        if not is_participant(session, actor, crisis):
            raise TaskForceError("not_member_self")
        timeline.add(
            session,
            crisis_id,
            timeline.NOTE,
            actor.user_id,
            text[:2000],
            {"message_id": message_id, "author": author},
            now,
        )


@dataclass
class TimelineLine:
    at: datetime
    kind: str
    actor: str
    text: str


def timeline_lines(
    runtime: Runtime, actor: Actor, crisis_id: int, limit: int = 30
) -> tuple[Crisis, list[TimelineLine]]:
    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
        if not is_participant(session, actor, crisis):
            raise TaskForceError("not_member_self")
        names: dict[int, str] = {}
        lines = []
        for event in timeline.events(session, crisis_id, limit=limit):
            name = ""
            if event.actor_id is not None:
                if event.actor_id not in names:
                    names[event.actor_id] = _name(session.get(User, event.actor_id))
                name = names[event.actor_id]
            lines.append(TimelineLine(event.at, event.kind, name, event.text))
        return crisis, lines


@dataclass
class RosterLine:
    name: str
    role: str
    state: str
    delivery: str | None


def roster(session: Session, crisis_id: int) -> list[RosterLine]:
    rows = session.exec(
        select(CrisisMember, User)
        .join(User, col(User.id) == col(CrisisMember.user_id))
        .where(CrisisMember.crisis_id == crisis_id)
        .order_by(col(CrisisMember.id))
    ).all()
    deliveries = {
        d.user_id: d.status
        for d in session.exec(
            select(Delivery).where(Delivery.kind == INVITE_KIND, Delivery.ref_id == crisis_id)
        )
    }
    return [
        RosterLine(_name(user), member.role, member.state, deliveries.get(user.id or 0))
        for member, user in rows
    ]


# --------------------------------------------------------------------------- the deadline clock


def first_publication(session: Session, crisis_id: int) -> datetime | None:
    return session.exec(
        select(func.min(Draft.published_at)).where(
            Draft.crisis_id == crisis_id, col(Draft.published_at).is_not(None)
        )
    ).one()


@due_handler(DEADLINE_KIND)
async def _deadline_due(runtime: Runtime, session: Session, due: Due) -> None:
    """50 % and 80 %: remind the lead; overdue: escalate to the agency's supervisors. Nothing
    once the crisis is resolved or its first statement is published."""
    crisis = session.get(Crisis, due.ref_id) if due.ref_id is not None else None
    if crisis is None or crisis.status == CrisisStatus.RESOLVED or crisis.id is None:
        return
    if first_publication(session, crisis.id) is not None:
        return
    stage = str(due.payload.get("stage", "50"))
    now = runtime.clock.now()
    if stage == "overdue":
        people = active_with_role(session, crisis.agency_id, Role.SUPERVISOR)
        lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
        if lead is not None and all(p.id != lead.id for p in people):
            people.append(lead)
        template = "crisis_deadline_overdue"
    else:
        lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
        people = [lead] if lead is not None else []
        template = "crisis_deadline_reminder"
    timeline.add(session, crisis.id, timeline.DEADLINE, None, stage, {"stage": stage}, now)
    for person in people:
        if person.telegram_id is None or not person.reachable:
            continue
        text = runtime.renderer.render(
            template,
            person.language,
            c=crisis,
            stage=stage,
            left=max(crisis.deadline_at - now, timedelta(0)),
            url=room_url(crisis.room_chat_id, crisis.room_thread_id),
        )
        try:
            await runtime.notifier.send_text(ChatRef(person.telegram_id), text)
        except RecipientUnreachable as exc:
            person.reachable = False
            audit.record(
                session,
                action="user.unreachable",
                subject=f"user:{person.id}",
                after={"reason": str(exc)},
                at=now,
            )


# --------------------------------------------------------------------------- resolving


@dataclass
class Resolved:
    crisis: Crisis
    report_markdown: str
    supervisors: int
    room_freed: bool
    removed: int


async def resolve_crisis(
    runtime: Runtime, actor: Actor, crisis_id: int, rooms_admin: RoomAdmin | None = None
) -> Resolved:
    """Close a crisis (lead or supervisor): the after-action report to the room and the
    supervisors (Markdown and .docx), the topic closed or the pooled group handed back.

    The state change commits with a ``crisis.resolved`` due row; the announcements follow at
    once, each message through the ``outbox`` ledger, and the due row finishes them after a
    restart without posting anything twice."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = _open_crisis_row(session, crisis_id)
        if not is_lead_or_supervisor(session, actor, crisis):
            raise TaskForceError("not_lead")
        crisis.status = CrisisStatus.RESOLVED
        crisis.resolved_at = now
        timeline.add(session, crisis_id, timeline.RESOLVED, actor.user_id, "", {}, now)
        audit.record(
            session,
            action="crisis.resolved",
            actor_id=actor.user_id,
            actor_ref=actor.channel_ref,
            subject=f"crisis:{crisis_id}",
            at=now,
        )
        for kind in (DEADLINE_KIND, CONVENE_KIND, ROOM_KIND, BRIEF_KIND):
            cancel(session, kind=kind, ref_id=crisis_id, at=now)
        task_ids = session.exec(select(Task.id).where(Task.crisis_id == crisis_id)).all()
        for task_id in task_ids:
            if task_id is not None:
                cancel(session, kind=TASK_KIND, ref_id=task_id, at=now)
        schedule(
            session, RESOLVE_KIND, now, ref_id=crisis_id, dedupe_key=f"{RESOLVE_KIND}:{crisis_id}"
        )
    return await _announce_resolution(runtime, crisis_id, rooms_admin)


@due_handler(RESOLVE_KIND)
async def _resolution_due(runtime: Runtime, session: Session, due: Due) -> None:
    # Own sessions only: see _retry_room.
    if due.ref_id is None:
        return
    if due.ref_id in _RESOLVING:  # being announced by this process right now
        schedule(
            session, RESOLVE_KIND, runtime.clock.now() + timedelta(seconds=5), ref_id=due.ref_id
        )
        return
    await _announce_resolution(runtime, due.ref_id)


async def _announce_resolution(
    runtime: Runtime, crisis_id: int, rooms_admin: RoomAdmin | None = None
) -> Resolved:
    _RESOLVING.add(crisis_id)
    try:
        resolved = await _announce(runtime, crisis_id, rooms_admin)
    finally:
        _RESOLVING.discard(crisis_id)
    with runtime.db.session() as session:
        cancel(session, kind=RESOLVE_KIND, ref_id=crisis_id, at=runtime.clock.now())
    return resolved


async def _announce(runtime: Runtime, crisis_id: int, rooms_admin: RoomAdmin | None) -> Resolved:
    from bot.services import reports  # reports depends on this module's helpers

    with runtime.db.session() as session:
        crisis = _crisis(session, crisis_id)
        at = crisis.resolved_at or runtime.clock.now()
        room_lang = _language_of_room(session, crisis)
        data = reports.build(session, crisis_id, at)
        supervisors = [
            u
            for u in active_with_role(session, crisis.agency_id, Role.SUPERVISOR)
            if u.telegram_id is not None
        ]
        room = rooms.room_of_crisis(session, crisis_id)
        room_id = room.id if room else None
        room_kind = room.kind if room else None
        room_title = room.title if room else ""
        members = [
            (u.telegram_id, u.id)
            for m, u in session.exec(
                select(CrisisMember, User)
                .join(User, col(User.id) == col(CrisisMember.user_id))
                .where(CrisisMember.crisis_id == crisis_id)
            ).all()
            if u.telegram_id is not None and m.state in ("joined", "accepted")
        ]
        to = (
            ChatRef(crisis.room_chat_id, crisis.room_thread_id)
            if crisis.room_chat_id is not None
            else None
        )
        link = crisis.invite_link
        # The room's ledger rows need a person: the lead, else a supervisor or a member.
        owner = crisis.lead_id or next(
            (u.id for u in supervisors), next((uid for _, uid in members), None)
        )
    markdown = reports.render_markdown(runtime, data, room_lang)
    files = [
        Attachment(f"crisis-{crisis_id}-report.md", markdown.encode("utf-8")),
        Attachment(
            f"crisis-{crisis_id}-report.docx", reports.render_docx(runtime, data, room_lang)
        ),
    ]

    async def once(user_id: int | None, part: str, send: Any) -> None:
        if user_id is None:
            await _try(send(), part)
            return
        await _try(
            outbox.send_once(
                runtime,
                kind=RESOLVE_DELIVERY,
                ref_id=crisis_id,
                user_id=user_id,
                part=part,
                send=send,
            ),
            part,
        )

    if to is not None:
        summary = runtime.renderer.render("crisis_resolved", room_lang, r=data)
        await once(owner, "room", lambda: runtime.notifier.send_text(to, summary))
        for name, attachment in zip(("room.md", "room.docx"), files, strict=True):
            await once(owner, name, lambda f=attachment: runtime.notifier.send_document(to, f))
        await _try(refresh_brief(runtime, crisis_id), "final brief")
    for person in supervisors:
        assert person.telegram_id is not None
        text = runtime.renderer.render("crisis_report_sent", person.language, r=data)
        chat = ChatRef(person.telegram_id)
        await once(person.id, "text", lambda c=chat, t=text: runtime.notifier.send_text(c, t))
        for name, attachment in zip(("md", "docx"), files, strict=True):
            await once(
                person.id,
                name,
                lambda c=chat, f=attachment: runtime.notifier.send_document(c, f),
            )
    freed = False
    removed = 0
    if room_id is not None and to is not None:
        admin = rooms_admin or room_admin_for(runtime.notifier)
        if room_kind == RoomKind.FORUM_TOPIC and to.thread_id is not None:
            await _try(admin.close_topic(to.chat_id, to.thread_id), "close topic")
            if link:
                await _try(admin.revoke_invite_link(to.chat_id, link), "revoke link")
            with runtime.db.session() as session:
                room = session.get(Room, room_id)
                if room is not None:
                    room.state = RoomState.CLOSED
        else:
            if link:
                await _try(admin.revoke_invite_link(to.chat_id, link), "revoke link")
            for telegram_id, _user_id in members:
                if await _try(admin.remove_member(to.chat_id, telegram_id), "remove member"):
                    removed += 1
            await _try(admin.unpin_all(to.chat_id), "unpin")
            await _try(
                admin.set_title(to.chat_id, room_title or f"CrisisDesk room {room_id}"), "title"
            )
            await _try(admin.set_description(to.chat_id, ""), "description")
            with runtime.db.session() as session:
                room = session.get(Room, room_id)
                if room is not None and room.state == RoomState.IN_USE:
                    rooms.free_room(session, room)
                    freed = True
                audit.record(
                    session,
                    action="room.freed",
                    subject=f"room:{room_id}",
                    after={"crisis_id": crisis_id, "removed": removed},
                    at=runtime.clock.now(),
                )
            if freed:
                await attach_waiting(runtime, rooms_admin)
    return Resolved(data.crisis, markdown, len(supervisors), freed, removed)


async def _try(awaitable: Any, what: str) -> bool:
    try:
        await awaitable
    except DeliveryError as exc:
        log.warning("resolve: %s failed: %s", what, exc)
        return False
    return True


def crisis_for_lead(session: Session, user_id: int | None) -> list[Crisis]:
    """Open crises a person leads (for ``/crisis`` without arguments)."""
    if user_id is None:
        return []
    return list(
        session.exec(
            select(Crisis)
            .where(Crisis.lead_id == user_id, Crisis.status != CrisisStatus.RESOLVED)
            .order_by(col(Crisis.id))
        )
    )


def approvals_of(session: Session, crisis_id: int) -> list[Approval]:
    return list(
        session.exec(
            select(Approval)
            .join(Draft, col(Draft.id) == col(Approval.draft_id))
            .where(Draft.crisis_id == crisis_id, Approval.decision == Decision.APPROVE)
            .order_by(col(Approval.at))
        )
    )


__all__ = [
    "Opened",
    "TaskForceError",
    "add_note",
    "add_task",
    "answer_invitation",
    "attach_room",
    "attach_waiting",
    "complete_task",
    "convene",
    "convene_more",
    "handle_join_request",
    "is_admin",
    "open_crisis",
    "parse_task",
    "post_update",
    "refresh_brief",
    "resolve_crisis",
    "set_role",
    "timeline_lines",
]
