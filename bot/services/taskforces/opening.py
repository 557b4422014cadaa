"""Opening a crisis: from ``/crisis`` or one tap on an alert to a committed crisis with a lead, a
deadline clock, its first invitations and (usually) a room.

The crisis row is committed before any Bot API call; a ``crisis.room`` due row (``room``) gets
the room later if none can be had now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.channels.rooms import RoomAdmin
from bot.services import audit, room_rights, timeline
from bot.services.due import schedule
from bot.services.permissions import (
    Actor,
    can_act_for_agency,
    has_role,
)
from bot.services.taskforces.convening import (
    add_invitation,
    convenable,
    convene,
    resolve_usernames,
    suggested_members,
)
from bot.services.taskforces.crises import TaskForceError, crisis_row
from bot.services.taskforces.deadline import schedule_deadline
from bot.services.taskforces.room import ROOM_KIND, attach_room, room_url
from storage.models import (
    Agency,
    Alert,
    Crisis,
    CrisisMember,
    CrisisRole,
    Role,
    Severity,
    Topic,
    User,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


MAX_TITLE = 200
MAX_CONVENED = 60
SEVERITIES = tuple(Severity)
ATTACH_GRACE = timedelta(seconds=2)  # the live path usually has the room by then


@dataclass
class Opened:
    """What ``open_crisis`` did, for the opener's reply; the room's part is filled in once
    attaching it was tried, after the crisis is committed."""

    crisis_id: int
    title: str
    invited: int
    unknown: list[str] = field(default_factory=list)
    deadline_at: datetime | None = None
    room_ready: bool = False
    room_error: str | None = None
    invite_link: str | None = None
    room_url: str | None = None
    missing_rights: list[str] = field(default_factory=list)  # pin, topics, invite


def clean_title(raw: str) -> str:
    title = " ".join(raw.split())
    if not title:
        raise TaskForceError("title_empty")
    if len(title) > MAX_TITLE:
        raise TaskForceError("title_long", limit=MAX_TITLE)
    return title


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
        audit.by_actor(
            session,
            opener,
            action="crisis.opened",
            subject=f"crisis:{crisis.id}",
            after={"title": crisis.title, "severity": severity, "agency_id": agency_id},
            at=now,
        )
        schedule_deadline(session, crisis)
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
            add_invitation(session, crisis, person, CrisisRole.MEMBER, now, user.id)
        crisis_id = crisis.id
        crisis_title = crisis.title
        deadline_at = crisis.deadline_at
    opened = Opened(
        crisis_id=crisis_id,
        title=crisis_title,
        invited=len(seen) - 1,
        unknown=unknown,
        deadline_at=deadline_at,
    )
    try:
        await attach_room(runtime, crisis_id, rooms_admin)
    except TaskForceError as exc:
        opened.room_error = exc.code
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        opened.room_ready = crisis.room_chat_id is not None
        opened.invite_link = crisis.invite_link
        opened.room_url = room_url(runtime, crisis)
        opened.missing_rights = room_rights.reported(session, crisis_id)
    if opened.room_ready:
        await convene(runtime, crisis_id)
    return opened
