"""Single-use invite codes: registration that skips approval.

A code is ``secrets.token_urlsafe(24)`` (192 random bits, 32 characters of ``A-Za-z0-9_-``), so it
fits a deep link's start payload and cannot be guessed. It is claimed with one conditional
``UPDATE … WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > now``: two people opening
the same link get exactly one registration. Every refusal is audited, because a forged or replayed
code is what an inquiry asks about first.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.services import audit
from bot.services.people import agency_name
from bot.services.permissions import Actor, can_act_for_agency, is_admin
from storage.models import Agency, Invite, Role

if TYPE_CHECKING:
    from bot.runtime import Runtime

CODE_BYTES = 24  # 192 bits -> 32 characters
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
INVITABLE_BY_SUPERVISOR = (Role.MEMBER, Role.SPOKESPERSON)
INVITABLE_BY_ADMIN = (Role.MEMBER, Role.SPOKESPERSON, Role.SUPERVISOR)


class InviteRefused(Exception):
    """A code that cannot be used; ``reason`` is unknown | expired | used | revoked."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invite refused: {reason}")
        self.reason = reason


class InviteNotAllowed(Exception):
    """The actor may not create (or revoke) this invite."""


def invitable_roles(actor: Actor) -> tuple[Role, ...]:
    """Roles ``actor`` may invite people into (admins: supervisor too)."""
    if is_admin(actor):
        return INVITABLE_BY_ADMIN
    if can_act_for_agency(actor, actor.agency_id, Role.SUPERVISOR):
        return INVITABLE_BY_SUPERVISOR
    return ()


def agencies_to_invite_for(session: Session, limit: int = 90) -> list[Agency]:
    """The agencies an admin picks from when inviting (buttons: kept to a phone-sized list)."""
    return list(session.exec(select(Agency).order_by(col(Agency.code)).limit(limit)))


def can_invite(actor: Actor, agency_id: int | None, role: Role | str) -> bool:
    """Admins invite any role into any agency; supervisors member/spokesperson into their own."""
    try:
        wanted = Role(role)
    except ValueError:
        return False
    if wanted not in invitable_roles(actor):
        return False
    return can_act_for_agency(actor, agency_id, Role.SUPERVISOR)


def create_invite(
    session: Session,
    *,
    actor: Actor,
    agency_id: int,
    role: Role | str,
    ttl_hours: float,
    now: datetime,
) -> Invite:
    """A fresh code for ``agency_id`` and ``role``, valid for ``ttl_hours``."""
    if session.get(Agency, agency_id) is None:
        raise InviteNotAllowed(f"unknown agency {agency_id}")
    if not can_invite(actor, agency_id, role):
        raise InviteNotAllowed(f"{actor.channel_ref} may not invite {role} to agency {agency_id}")
    invite = Invite(
        code=secrets.token_urlsafe(CODE_BYTES),
        role=Role(role),
        agency_id=agency_id,
        created_by_id=actor.user_id,
        expires_at=now + timedelta(hours=ttl_hours),
        created_at=now,
    )
    session.add(invite)
    session.flush()
    audit.by_actor(
        session,
        actor,
        action="invite.created",
        subject=f"invite:{invite.id}",
        after={
            "role": invite.role,
            "agency_id": agency_id,
            "expires_at": invite.expires_at.isoformat(),
        },
        at=now,
    )
    return invite


class OneTimeCode(Protocol):
    """A code typed once before it expires: an invite, or a link code (``bot.services.linking``)."""

    @property
    def used_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime: ...


def spent(code: OneTimeCode | None, now: datetime) -> str | None:
    """Why a typed one-time code cannot be used at all: "unknown", "used" or "expired" (None: it
    still can). Invites and link codes refuse in these same words, which the templates name."""
    if code is None:
        return "unknown"
    if code.used_at is not None:
        return "used"
    if code.expires_at <= now:
        return "expired"
    return None


def refusal_reason(invite: Invite | None, now: datetime) -> str | None:
    """Why ``invite`` cannot be claimed now, or None if it can."""
    if invite is not None and invite.revoked_at is not None:
        return "revoked"
    return spent(invite, now)


def _unused() -> tuple[sa.ColumnElement[bool], ...]:
    """Neither used nor revoked (expiry is checked apart: only claims and listings care)."""
    return col(Invite.used_at).is_(None), col(Invite.revoked_at).is_(None)


def _update_where(session: Session, *where: sa.ColumnElement[bool], **values: object) -> int:
    """Change the invite rows matching ``where`` in one conditional ``UPDATE``; the number of
    rows changed. Test and change are one statement so that two people racing for one code (or
    a revoke racing a claim) cannot both win."""
    result = session.execute(
        sa.update(Invite)
        .where(*where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, code: str, *, actor_ref: str, now: datetime) -> Invite:
    """Atomically mark ``code`` used (the user is attached later by :func:`attach_user`).

    Raises :class:`InviteRefused` (and audits it) when the code is malformed, unknown, expired,
    used or revoked.
    """
    invite = None
    if CODE_PATTERN.match(code):
        claimed = _update_where(
            session, col(Invite.code) == code, *_unused(), col(Invite.expires_at) > now, used_at=now
        )
        invite = session.exec(select(Invite).where(Invite.code == code)).first()
        if invite is not None:
            session.refresh(invite)
        if claimed == 1 and invite is not None:
            audit.record(
                session,
                action="invite.claimed",
                actor_ref=actor_ref,
                subject=f"invite:{invite.id}",
                after={"used_at": now.isoformat()},
                at=now,
            )
            return invite
    reason = refusal_reason(invite, now) or "used"
    audit.record(
        session,
        action="invite.refused",
        actor_ref=actor_ref,
        subject=f"invite:{invite.id}" if invite is not None else "invite:?",
        after={"reason": reason, "code_prefix": code[:6] if CODE_PATTERN.match(code) else "?"},
        at=now,
    )
    raise InviteRefused(reason)


def release(session: Session, invite_id: int, *, actor_ref: str, now: datetime) -> None:
    """Give back a claimed code whose registration was cancelled before it finished."""
    if _update_where(
        session,
        col(Invite.id) == invite_id,
        col(Invite.used_by_id).is_(None),
        col(Invite.used_at).is_not(None),
        used_at=None,
    ):
        audit.record(
            session,
            action="invite.released",
            actor_ref=actor_ref,
            subject=f"invite:{invite_id}",
            at=now,
        )


def attach_user(session: Session, invite_id: int, user_id: int) -> None:
    _update_where(session, col(Invite.id) == invite_id, used_by_id=user_id)


def open_invites(session: Session, actor: Actor, now: datetime) -> list[Invite]:
    """Unused, unrevoked, unexpired codes the actor may see (admins: all; supervisors: own)."""
    query = select(Invite).where(*_unused(), col(Invite.expires_at) > now)
    if not is_admin(actor):
        if not can_act_for_agency(actor, actor.agency_id, Role.SUPERVISOR):
            return []
        query = query.where(Invite.agency_id == actor.agency_id)
    return list(session.exec(query.order_by(col(Invite.id))))


def can_revoke(session: Session, actor: Actor, invite_id: int) -> bool:
    invite = session.get(Invite, invite_id)
    return invite is not None and can_act_for_agency(actor, invite.agency_id, Role.SUPERVISOR)


def revoke(session: Session, *, actor: Actor, invite_id: int, now: datetime) -> bool:
    """Revoke an open code; False if it was already used or revoked (nothing changes)."""
    if not can_revoke(session, actor, invite_id):
        raise InviteNotAllowed(f"{actor.channel_ref} may not revoke invite {invite_id}")
    if not _update_where(session, col(Invite.id) == invite_id, *_unused(), revoked_at=now):
        return False
    audit.by_actor(
        session,
        actor,
        action="invite.revoked",
        subject=f"invite:{invite_id}",
        before={"revoked_at": None},
        after={"revoked_at": now.isoformat()},
        at=now,
    )
    return True


@dataclass(frozen=True)
class InviteView:
    id: int
    code: str
    role: str
    agency_code: str
    agency_name: str
    expires_at: datetime


def describe(session: Session, invites: list[Invite]) -> list[InviteView]:
    views = []
    for invite in invites:
        agency = session.get(Agency, invite.agency_id)
        assert invite.id is not None
        views.append(
            InviteView(
                invite.id,
                invite.code,
                invite.role,
                agency.code if agency else "?",
                agency.name if agency else "?",
                invite.expires_at,
            )
        )
    return views


# --------------------------------------------------------------------------- units of work
# What ``/invite`` and ``/invites`` call (``handlers.people``): each opens and commits its own
# transaction, so the code the person is shown is already stored.

INVITES_SHOWN = 30  # the most recent open codes ``/invites`` lists (one button each)


def agencies_to_choose(runtime: Runtime) -> list[Agency]:
    """``agencies_to_invite_for``, read on its own (an admin's agency buttons)."""
    with runtime.db.session() as session:
        return agencies_to_invite_for(session)


def invite_into(runtime: Runtime, actor: Actor, agency_id: int, role: Role) -> tuple[Invite, str]:
    """A new code for ``role`` in the agency (valid ``invite_ttl_hours``), with the agency's
    name for the message that hands it out."""
    with runtime.db.session() as session:
        invite = create_invite(
            session,
            actor=actor,
            agency_id=agency_id,
            role=role,
            ttl_hours=runtime.settings.invite_ttl_hours,
            now=runtime.clock.now(),
        )
        return invite, agency_name(session, agency_id)


def open_invite_views(runtime: Runtime, actor: Actor) -> list[InviteView]:
    """The open codes ``actor`` may see, the most recent ``INVITES_SHOWN`` of them."""
    with runtime.db.session() as session:
        return describe(session, open_invites(session, actor, runtime.clock.now()))[-INVITES_SHOWN:]


def revoke_now(runtime: Runtime, actor: Actor, invite_id: int) -> bool:
    """``revoke`` committed before the list is shown again."""
    with runtime.db.session() as session:
        return revoke(session, actor=actor, invite_id=invite_id, now=runtime.clock.now())
