"""When the bot lacks a right it needs in a crisis room or an agency's hub, people hear it.

A room the bot cannot pin in, create topics in or invite to fails quietly on the channel's side;
this module turns each such failure (and every change of the bot's rights in a hub, from a
``my_chat_member`` update) into a plain-words message with the fix, sent to the crisis lead and
the agency's supervisors and administrators. Each event is also in the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.channels.base import DeliveryError
from bot.channels.refs import ChatRef, PersonRef
from bot.services import audit, identity
from bot.services.people import active_with_role
from bot.services.rooms import agency_hub
from storage.models import Agency, AuditEvent, Crisis, Role, User

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

# The administrator rights a hub needs (as the channel adapter reports them), by the short name
# the messages use.
HUB_NEEDS = {
    "can_manage_topics": "topics",
    "can_invite_users": "invite",
    "can_pin_messages": "pin",
}


@dataclass(frozen=True)
class Recipient:
    account: PersonRef
    language: str


def _recipients(
    runtime: Runtime, session: Session, agency_ids: Iterable[int], lead: User | None
) -> list[Recipient]:
    """The lead (if any), the agencies' supervisors and administrators, the global admins."""
    channel = runtime.notifier.channel
    people: list[User] = [lead] if lead is not None else []
    for agency_id in agency_ids:
        for role in (Role.SUPERVISOR, Role.ADMIN):
            people.extend(active_with_role(session, agency_id, role))
    people.extend(active_with_role(session, None, Role.ADMIN))
    out: dict[PersonRef, Recipient] = {}
    for person in people:
        account = identity.account_on(session, person.id, channel)
        if account is not None:
            out.setdefault(account, Recipient(account, person.language))
    for account in identity.global_admins(runtime.settings, channel):
        out.setdefault(account, Recipient(account, "vi"))
    return list(out.values())


async def _tell(
    runtime: Runtime, recipients: list[Recipient], template: str, **context: object
) -> None:
    for person in recipients:
        text = runtime.renderer.render(template, person.language, **context)
        try:
            await runtime.notifier.send_text(person.account.direct_chat(), text)
        except DeliveryError as exc:
            log.warning("could not tell %s about a missing right: %s", person.account, exc)


async def right_missing(
    runtime: Runtime, crisis_id: int, right: str, where: str, reason: str
) -> None:
    """A room action failed for want of ``right`` (pin, topics, invite): say so, with the fix.

    ``where`` is ``hub`` (a topic in the agency's forum group) or ``group`` (a pooled group).
    """
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = session.get(Crisis, crisis_id)
        if crisis is None or right in reported(session, crisis_id):
            return  # said once per crisis and right (the room is retried every minute)
        lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
        people = _recipients(runtime, session, [crisis.agency_id], lead)
        audit.record(
            session,
            action="room.right_missing",
            subject=f"crisis:{crisis_id}",
            after={"right": right, "where": where, "reason": reason[:200]},
            at=now,
        )
        title, number = crisis.title, crisis.id
    await _tell(
        runtime, people, "room_right_missing", right=right, where=where, title=title, id=number
    )


def reported(session: Session, crisis_id: int) -> list[str]:
    """The rights already reported missing for this crisis's room, in the order reported."""
    events = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.action == "room.right_missing", AuditEvent.subject == f"crisis:{crisis_id}"
        )
        .order_by(col(AuditEvent.id))
    )
    rights = [str(e.after.get("right")) for e in events if e.after]
    return list(dict.fromkeys(rights))


def _hub_agencies(session: Session, hub: ChatRef, global_hub: ChatRef | None) -> list[int]:
    """Agencies whose crisis rooms live in this hub (its own, or the global hub's)."""
    hub = ChatRef(hub.channel, hub.chat_id)
    return [
        agency.id
        for agency in session.exec(select(Agency))
        if agency.id is not None and (agency_hub(agency) or global_hub) == hub
    ]


async def hub_rights_changed(
    runtime: Runtime,
    *,
    chat: ChatRef,
    title: str,
    status: str,
    rights: Mapping[str, bool],
    by: PersonRef | None,
) -> list[str]:
    """The bot's standing in a hub changed: report a lost right at once, and its return.

    Returns the short names of the rights now missing (all of them when the bot was removed).
    """
    now = runtime.clock.now()
    admin = status in ("administrator", "creator")
    missing = [name for perm, name in HUB_NEEDS.items() if not (admin and rights.get(perm))]
    removed = status in ("left", "kicked")
    with runtime.db.session() as session:
        last = session.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "hub.rights", AuditEvent.subject == f"chat:{chat.chat_id}")
            .order_by(col(AuditEvent.id).desc())
        ).first()
        had_missing = bool(last and last.after and last.after.get("missing"))
        audit.record(
            session,
            action="hub.rights",
            actor_ref=str(by) if by is not None else "",
            subject=f"chat:{chat.chat_id}",
            after={"status": status, "missing": missing},
            at=now,
        )
        agencies = _hub_agencies(session, chat, runtime.settings.hub_chat_id)
        people = _recipients(runtime, session, agencies, None)
    if missing or had_missing:
        await _tell(
            runtime, people, "hub_rights_changed", title=title, missing=missing, removed=removed
        )
    return missing
