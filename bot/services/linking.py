"""One person on two messengers: linking a second account with a one-time code, and choosing
where alerts reach them.

A registered person asks for a code on one channel (``issue_code``) and types it on another
(``redeem``); the account that typed it is then attached to the same ``User``, so the person has
one role, one agency, one vote and one place in every roster, whichever messenger they write
from. The code is 8 characters from an alphabet without look-alikes (about 40 bits, from
``secrets``), shown once, valid ``CODE_TTL``, single-use (claimed by a conditional UPDATE), and
only its SHA-256 is stored. Wrong codes are counted per typing account from the audit log, and
after ``MAX_ATTEMPTS`` in ``ATTEMPT_WINDOW`` that account is refused without a look-up, so
guessing a live code is hopeless.

Merging is limited to what is safe: the typing account must belong to nobody yet (an open
registration there is abandoned); an account that is already someone's person is refused,
because two rows with their own roles, votes and history cannot be merged without a decision
nobody took. A person has at most one account per channel.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.channels import limits
from bot.channels.base import DeliveryError
from bot.channels.refs import PersonRef
from bot.services import audit, identity, invites
from bot.services import registration as reg
from storage.counts import count_rows
from storage.models import AuditEvent, LinkCode, User, UserStatus

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off one screen, typed
CODE_LENGTH = 8
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
ATTEMPT_WINDOW = timedelta(minutes=10)
REFUSED = "link.refused"
#: What people type after /nhantin for every channel they have; any other word names a channel
#: (one whose adapter is wired: ``bot.channels.limits.channels``).
EVERY_CHANNEL = frozenset({"ca_hai", "cahai", "both", "tat_ca", "all"})


@dataclass(frozen=True)
class IssuedCode:
    code: str  # as shown: ``ABCD-EFGH``
    expires_at: datetime


@dataclass(frozen=True)
class Redeemed:
    """What typing a code did: ``user`` linked, or the ``refused`` reason (unknown, expired,
    used, same_channel, taken, has_account, already, too_many)."""

    user: User | None = None
    refused: str | None = None


class ChoiceRefused(Exception):
    """A choice of alert channel that cannot be made: ``reason`` is unknown or no_account."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"alert channel refused: {reason}")
        self.reason = reason


def normalise(typed: str) -> str:
    """The code as stored, whatever the person typed around it (case, dashes, spaces)."""
    return "".join(ch for ch in typed.upper() if ch.isalnum())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def issue_code(session: Session, user: User, channel: str, now: datetime) -> IssuedCode:
    """A fresh code for ``user``, asked for on ``channel``; their earlier codes stop working."""
    assert user.id is not None
    session.execute(
        sa.delete(LinkCode).where(
            sa.or_(col(LinkCode.user_id) == user.id, col(LinkCode.expires_at) < now)
        )
    )
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires = now + CODE_TTL
    session.add(
        LinkCode(
            user_id=user.id,
            channel=channel,
            code_hash=hash_code(code),
            created_at=now,
            expires_at=expires,
        )
    )
    audit.by_self(session, user.id, action="link.code_issued", after={"channel": channel}, at=now)
    session.flush()
    half = CODE_LENGTH // 2
    return IssuedCode(f"{code[:half]}-{code[half:]}", expires)


def failed_attempts(session: Session, who: PersonRef | str, now: datetime) -> int:
    """Wrong codes typed from ``who`` (an account, or a room provider's id as
    :func:`scoped_label` names it) within the window."""
    return count_rows(
        session,
        AuditEvent,
        AuditEvent.action == REFUSED,
        AuditEvent.actor_ref == str(who),
        col(AuditEvent.at) > now - ATTEMPT_WINDOW,
    )


def redeem(session: Session, who: PersonRef, typed: str, now: datetime) -> Redeemed:
    """Attach ``who`` to the person whose code ``typed`` is, if everything allows it.

    Every outcome is audited in the caller's transaction, which must commit even on a refusal:
    the refusals are what limits guessing.
    """
    if failed_attempts(session, who, now) >= MAX_ATTEMPTS:
        return _refuse(session, who, "too_many", now, counted=False)
    row = session.exec(select(LinkCode).where(LinkCode.code_hash == hash_code(typed))).first()
    reason = _problem(session, who, row, now)
    if reason is not None:
        return _refuse(session, who, reason, now, counted=reason in ("unknown", "expired", "used"))
    assert row is not None
    if not _use(session, row, now):
        return _refuse(session, who, "used", now)
    user = session.get(User, row.user_id)
    assert user is not None
    registering = reg.registration_of(session, str(who))
    if registering is not None:  # a registration begun on this account is no longer needed
        reg.cancel(session, chat_ref=registering.chat_ref, user_ref=str(who), now=now)
    identity.link(session, user, who, now)
    audit.record(
        session,
        action="link.linked",
        actor_id=user.id,
        actor_ref=str(who),
        subject=f"user:{user.id}",
        after={"channel": who.channel, "code_from": row.channel},
        at=now,
    )
    session.flush()
    return Redeemed(user=user)


def _use(session: Session, row: LinkCode, now: datetime) -> bool:
    """Mark the code used, if nobody used it meanwhile and it is still valid: a conditional
    update, so two people typing one code at once cannot both link with it."""
    claimed = session.execute(
        sa.update(LinkCode)
        .where(
            col(LinkCode.id) == row.id,
            col(LinkCode.used_at).is_(None),
            col(LinkCode.expires_at) > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _problem(session: Session, who: PersonRef, row: LinkCode | None, now: datetime) -> str | None:
    if (spent := invites.spent(row, now)) is not None:
        return spent
    assert row is not None
    owner = identity.person_for(session, who)
    if owner is not None:
        return "already" if owner.id == row.user_id else "taken"
    if row.channel == who.channel:
        return "same_channel"
    if identity.account_on(session, row.user_id, who.channel) is not None:
        return "has_account"
    user = session.get(User, row.user_id)
    if user is None or user.status == UserStatus.SUSPENDED:
        return "unknown"
    return None


def _refuse(
    session: Session, who: PersonRef | str, reason: str, now: datetime, counted: bool = True
) -> Redeemed:
    """Audit a refused code; ``counted`` ones (a wrong guess) count towards the limit."""
    audit.record(
        session,
        action=REFUSED if counted else "link.blocked",
        actor_ref=str(who),
        subject="link",
        after={"reason": reason},
        at=now,
    )
    return Redeemed(refused=reason)


# --------------------------------------------------------------------------- room ids
# A room provider with ids of its own (a Zalo Official Account knows people by ids scoped to
# it) learns who someone is when they type a code, got from the bot with /lienket, into the
# provider's own chat: the id it reports for the sender is then that person's id there.


def code_in(text: str) -> str | None:
    """The linking code a person typed into a room provider's chat (``ABCD-EFGH``, alone or
    after ``/lienket`` or ``/link``), else None: other messages are chatter, not guesses."""
    words = text.strip().split()
    if words and words[0].lower().lstrip("/") in ("lienket", "link"):
        words = words[1:]
    if not 1 <= len(words) <= 2:
        return None
    code = normalise("".join(words))
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def scoped_label(channel: str, scope: str, room_id: str) -> str:
    """How audit rows name a room provider's id (wrong codes are counted per id)."""
    return f"{PersonRef(channel, room_id)}@{scope}"


def redeem_in_scope(
    session: Session, channel: str, scope: str, room_id: str, typed: str, now: datetime
) -> Redeemed:
    """Record ``room_id``, the id the room provider ``scope`` on ``channel`` reported for
    whoever typed ``typed`` there, as the id of the person whose code it is.

    The same limits as :func:`redeem`: single use, ``CODE_TTL``, wrong codes counted per id.
    An id that already stands for someone else is refused (``taken``); a person who links
    again from another account of theirs has their id replaced (audited with the old one).
    """
    label = scoped_label(channel, scope, room_id)
    if failed_attempts(session, label, now) >= MAX_ATTEMPTS:
        return _refuse(session, label, "too_many", now, counted=False)
    row = session.exec(select(LinkCode).where(LinkCode.code_hash == hash_code(typed))).first()
    reason = _scoped_problem(session, channel, scope, room_id, row, now)
    if reason is not None:
        counted = reason in ("unknown", "expired", "used")
        return _refuse(session, label, reason, now, counted=counted)
    assert row is not None
    if not _use(session, row, now):
        return _refuse(session, label, "used", now)
    user = session.get(User, row.user_id)
    assert user is not None and user.id is not None
    replaced = identity.set_room_id(session, user.id, channel, scope, room_id, now)
    audit.record(
        session,
        action="link.room_linked",
        actor_id=user.id,
        actor_ref=label,
        subject=f"user:{user.id}",
        before={"room_id": replaced} if replaced else None,
        after={"channel": channel, "scope": scope, "room_id": room_id},
        at=now,
    )
    session.flush()
    return Redeemed(user=user)


def _scoped_problem(
    session: Session, channel: str, scope: str, room_id: str, row: LinkCode | None, now: datetime
) -> str | None:
    if (spent := invites.spent(row, now)) is not None:
        return spent
    assert row is not None
    owner = identity.owner_of_room_id(session, channel, scope, room_id)
    if owner is not None:
        return "already" if owner == row.user_id else "taken"
    user = session.get(User, row.user_id)
    if user is None or user.status == UserStatus.SUSPENDED:
        return "unknown"
    return None


def choose_alert_channel(session: Session, user: User, typed: str, now: datetime) -> str | None:
    """Store where ``user``'s alerts go: a channel's name, or a word of ``EVERY_CHANNEL``;
    returns the channel, None for all.

    A single channel must be one they have an account on, or alerts would reach nobody.
    """
    word = typed.strip().lower().replace("-", "_")
    channel = None if word in EVERY_CHANNEL else word
    if channel is not None and channel not in limits.channels():
        raise ChoiceRefused("unknown")
    if channel is not None and identity.account_on(session, user.id, channel) is None:
        raise ChoiceRefused("no_account")
    stored = session.get(User, user.id)
    assert stored is not None
    before = stored.alert_channel
    stored.alert_channel = channel
    stored.updated_at = now
    audit.by_self(
        session,
        stored.id,
        action="user.alert_channel",
        before={"channel": before},
        after={"channel": channel},
        at=now,
    )
    session.flush()
    return channel


# --------------------------------------------------------------------------- for the flows
# Each opens a unit of work of its own (the flows in handlers/ open none).


def issue_code_now(runtime: Runtime, user: User, channel: str) -> IssuedCode:
    """:func:`issue_code` at the runtime's clock (``/lienket`` without a code)."""
    with runtime.db.session() as session:
        return issue_code(session, user, channel, runtime.clock.now())


def redeem_now(runtime: Runtime, who: PersonRef, typed: str) -> tuple[Redeemed, list[str]]:
    """:func:`redeem` at the runtime's clock, committed whatever the outcome (the refusals are
    counted from the audit log); with the channels the linked person is on now."""
    with runtime.db.session() as session:
        result = redeem(session, who, typed, runtime.clock.now())
        if result.user is None:
            return result, []
        user_id = result.user.id or 0
        return result, identity.channels_of(session, [user_id]).get(user_id, [])


async def redeem_in_scope_now(
    runtime: Runtime, channel: str, scope: str, room_id: str, typed: str
) -> Redeemed:
    """:func:`redeem_in_scope` at the runtime's clock, committed whatever the outcome; then the
    person linked is told in their private chat with the bot (the provider's own chat is not
    the bot's to answer in). A refusal tells nobody: the id typing belongs to no one known."""
    with runtime.db.session() as session:
        result = redeem_in_scope(session, channel, scope, room_id, typed, runtime.clock.now())
        user = result.user
        if user is None:
            log.info("room id %s refused a linking code: %s", room_id, result.refused)
            return result
        to = identity.direct_chat(session, user.id, runtime.notifier.channel)
        text = runtime.renderer.render(
            "link_message", user.language, code="room_linked", name=user.full_name
        )
    if to is not None:
        try:
            await runtime.notifier.send_text(to, text)
        except DeliveryError as exc:
            log.warning("user %s not told their room id was linked: %s", user.id, exc)
    return result


@dataclass(frozen=True)
class AlertChoice:
    """What ``/nhantin`` shows: the refusal of a choice (``ChoiceRefused.reason``), the channels
    the person is on, and where their alerts go now."""

    problem: str | None
    channels: list[str]
    chosen: list[str]


def alert_choice(runtime: Runtime, user: User, typed: str | None) -> AlertChoice:
    """Store ``typed`` as where ``user``'s alerts go (:func:`choose_alert_channel`; None: only
    ask), then read where they stand."""
    problem: str | None = None
    with runtime.db.session() as session:
        if typed is not None:
            try:
                choose_alert_channel(session, user, typed, runtime.clock.now())
            except ChoiceRefused as exc:
                problem = exc.reason
        fresh = session.get(User, user.id)
        assert fresh is not None
        user_id = fresh.id or 0
        channels = identity.channels_of(session, [user_id]).get(user_id, [])
        chosen = identity.alert_channels(session, [fresh]).get(user_id, [])
    return AlertChoice(problem, channels, chosen)
