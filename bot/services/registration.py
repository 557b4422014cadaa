"""Registration, verification and people management: who may become a verified official.

Pure Python over storage (never imports ``telegram``), so the Zalo adapter can reuse it. The
registration conversation is an explicit ``ConversationState`` row (flow ``register``); each step
changes the row in the caller's transaction, which the handler commits *before* replying, so a hard
kill resumes exactly where the person was. Steps::

    language -> name -> agency -> role -> phone -> (pending | active via invite)

Invites pre-fill agency and role (``name -> phone``). Decisions on pending requests are one
conditional ``UPDATE … WHERE status = 'pending'``: two deciders pressing at once give exactly one
decision, and the other is told who decided.

What follows a state change is owed in the same transaction as a due row: the requests to the
deciders (``registration.review``) and the announcement of a decision
(``registration.decided``). The handler sends them at once; after a kill the tick finishes them,
each message through the ``outbox`` ledger, so nobody is asked or told twice and nobody is left
unasked.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import phonenumbers
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from bot.channels.refs import ChatRef, MessageRef, PersonRef
from bot.config import Settings
from bot.services import audit, due, identity, invites, states
from bot.services.people import active_with_role, agency_name
from bot.services.permissions import ROLE_RANK, Actor, can_act_for_agency, has_role, is_admin
from bot.templating import LANGUAGES
from storage.counts import count_rows
from storage.models import Agency, AuditEvent, ConversationState, Invite, Role, User, UserStatus

if TYPE_CHECKING:
    from bot.runtime import Runtime

FLOW_REGISTER = "register"
FLOW_REJECT = "reject_reason"
FLOW_REVIEW = "review"
REVIEW_KIND = "registration.review"  # due: ask the deciders about a pending request
DECIDED_KIND = "registration.decided"  # due: edit the deciders' copies, tell the applicant
FLOW_ME_NAME = "me_name"

STEP_LANGUAGE = "language"
STEP_NAME = "name"
STEP_AGENCY = "agency"
STEP_ROLE = "role"
STEP_PHONE = "phone"
STEPS = (STEP_LANGUAGE, STEP_NAME, STEP_AGENCY, STEP_ROLE, STEP_PHONE)

NAME_MIN = 2
NAME_MAX = 100
REASON_MAX = 500
AGENCIES_PER_PAGE = 8
REQUESTABLE_ROLES = (Role.SPOKESPERSON, Role.MEMBER)

# Control characters, surrogates and line/paragraph separators are refused in names; format
# characters (Cf: ZWJ in emoji sequences, right-to-left marks) are allowed.
_REFUSED_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}


class RegistrationError(Exception):
    """A step that cannot be taken; ``code`` names the template-facing reason."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


class InvalidName(RegistrationError):
    """``code`` is too_short | too_long | control."""


class NotAllowed(Exception):
    """The actor may not do this (checked again on the server, whatever buttons they saw)."""


class AlreadyDecided(Exception):
    def __init__(self, status: str, by: str) -> None:
        super().__init__(f"already {status} by {by}")
        self.status = status
        self.by = by


# --------------------------------------------------------------------------- text checks


def clean_name(raw: str) -> str:
    """A person's name: NFC, trimmed, inner whitespace collapsed, 2-100 characters.

    Emoji and right-to-left scripts are welcome; control characters are not.
    """
    text = unicodedata.normalize("NFC", raw)
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in text):
        raise InvalidName("control", minimum=NAME_MIN, maximum=NAME_MAX)
    text = " ".join(text.split())
    if len(text) > NAME_MAX:
        raise InvalidName("too_long", minimum=NAME_MIN, maximum=NAME_MAX, length=len(text))
    if len(text) < NAME_MIN:
        raise InvalidName("too_short", minimum=NAME_MIN, maximum=NAME_MAX)
    return text


def clean_reason(raw: str) -> str:
    """A rejection reason: NFC, trimmed, at most 500 characters (newlines allowed)."""
    text = unicodedata.normalize("NFC", raw).strip()
    text = "".join(
        c for c in text if c == "\n" or unicodedata.category(c) not in _REFUSED_CATEGORIES
    )
    if len(text) > REASON_MAX:
        raise RegistrationError("reason_too_long", maximum=REASON_MAX)
    return text


def typed_phone(raw: str) -> str:
    """A typed number as E.164 if it is a valid Vietnamese number (``0912 345 678``,
    ``+84 912 345 678``); channels that cannot vouch for a number accept only these, so a
    verifier can at least call it. ``phonenumbers`` holds the numbering plan we would
    otherwise copy by hand."""
    try:
        number = phonenumbers.parse(raw, "VN")
    except phonenumbers.NumberParseException as exc:
        raise RegistrationError("bad_typed_phone") from exc
    if number.country_code != 84 or not phonenumbers.is_valid_number(number):
        raise RegistrationError("bad_typed_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_phone(raw: str) -> str:
    digits = "".join(c for c in raw if c.isdigit())
    if not 6 <= len(digits) <= 15:
        raise RegistrationError("bad_phone")
    return "+" + digits


# --------------------------------------------------------------------------- conversation rows


def fresh(session: Session, state: ConversationState) -> ConversationState:
    """``state`` as this session sees it (a step reads the row, then writes it anew)."""
    row = session.get(ConversationState, state.id)
    if row is None:
        raise RegistrationError("stale")
    return row


get_state = states.find  # the flows find their conversations by this name


def _advance(
    session: Session, state: ConversationState, step: str, now: datetime, **data: Any
) -> ConversationState:
    state.step = step
    state.data = {**state.data, **data}  # a new dict, so the JSON column is marked dirty
    state.updated_at = now
    session.add(state)
    session.flush()
    return state


def _expect(state: ConversationState, step: str) -> None:
    if state.flow != FLOW_REGISTER or state.step != step:
        raise RegistrationError("wrong_step", expected=step, actual=state.step)


def registration_of(session: Session, user_ref: str) -> ConversationState | None:
    """The person's open registration, whatever chat it is in (buttons only know the person)."""
    return session.exec(
        select(ConversationState).where(
            ConversationState.user_ref == user_ref, ConversationState.flow == FLOW_REGISTER
        )
    ).first()


# --------------------------------------------------------------------------- registration


def begin(
    session: Session,
    *,
    chat_ref: str,
    user_ref: str,
    now: datetime,
    invite: Invite | None = None,
    username: str | None = None,
) -> ConversationState:
    """Start (or restart) a registration at the language step."""
    old = get_state(session, chat_ref, user_ref, FLOW_REGISTER)
    if (
        old is not None
        and old.data.get("invite_id")
        and (invite is None or invite.id != old.data["invite_id"])
    ):
        invites.release(session, int(old.data["invite_id"]), actor_ref=user_ref, now=now)
    data: dict[str, Any] = {"username": username}
    if invite is not None:
        data.update(invite_id=invite.id, agency_id=invite.agency_id, role=invite.role)
    return states.put(
        session,
        chat_ref=chat_ref,
        user_ref=user_ref,
        flow=FLOW_REGISTER,
        step=STEP_LANGUAGE,
        data=data,
        at=now,
    )


def begin_with_invite(
    session: Session,
    *,
    chat_ref: str,
    user_ref: str,
    code: str,
    now: datetime,
    username: str | None = None,
) -> ConversationState:
    """Claim ``code`` (raises ``invites.InviteRefused``) and start a pre-filled registration."""
    invite = invites.claim(session, code, actor_ref=user_ref, now=now)
    return begin(
        session, chat_ref=chat_ref, user_ref=user_ref, now=now, invite=invite, username=username
    )


def choose_language(
    session: Session, state: ConversationState, language: str, now: datetime
) -> ConversationState:
    _expect(state, STEP_LANGUAGE)
    if language not in LANGUAGES:
        raise RegistrationError("bad_language")
    return _advance(session, state, STEP_NAME, now, language=language)


def give_name(
    session: Session, state: ConversationState, raw: str, now: datetime
) -> ConversationState:
    """Store the name (raises :class:`InvalidName`); invited people skip agency and role."""
    _expect(state, STEP_NAME)
    name = clean_name(raw)
    step = STEP_PHONE if state.data.get("invite_id") else STEP_AGENCY
    return _advance(session, state, step, now, full_name=name)


def agencies_page(
    session: Session, page: int, per_page: int = AGENCIES_PER_PAGE
) -> tuple[list[Agency], int, int]:
    """One page of agencies by code: (rows, page clamped to range, number of pages)."""
    pages = max(1, -(-count_rows(session, Agency) // per_page))
    page = min(max(page, 0), pages - 1)
    rows = session.exec(
        select(Agency).order_by(col(Agency.code)).offset(page * per_page).limit(per_page)
    ).all()
    return list(rows), page, pages


def choose_agency(
    session: Session, state: ConversationState, agency_id: int, now: datetime
) -> ConversationState:
    _expect(state, STEP_AGENCY)
    if session.get(Agency, agency_id) is None:
        raise RegistrationError("unknown_agency")
    return _advance(session, state, STEP_ROLE, now, agency_id=agency_id)


def choose_role(
    session: Session, state: ConversationState, role: str, now: datetime
) -> ConversationState:
    _expect(state, STEP_ROLE)
    if role not in {r.value for r in REQUESTABLE_ROLES}:
        raise RegistrationError("bad_role")
    return _advance(session, state, STEP_PHONE, now, role=role)


@dataclass
class Registered:
    user: User
    invited: bool


def give_phone(
    session: Session,
    state: ConversationState,
    *,
    phone: str,
    contact_owner_ref: str | None,
    who: PersonRef,
    username: str | None,
    now: datetime,
    typed: bool = False,
) -> Registered:
    """Finish: the sender's own contact (``contact_owner_ref``, vouched by the channel), or,
    where the channel has no contact sharing, a ``typed`` Vietnamese number that the
    verifier is shown as typed. Creates or renews the User row."""
    _expect(state, STEP_PHONE)
    if typed:
        number = typed_phone(phone)
    elif contact_owner_ref != state.user_ref:
        raise RegistrationError("not_own_contact")
    else:
        number = clean_phone(phone)
    data = state.data
    invite_id = data.get("invite_id")
    user = identity.person_for(session, who)
    before = _snapshot(user) if user is not None else None
    if user is not None and user.status in (
        UserStatus.ACTIVE,
        UserStatus.PENDING,
        UserStatus.SUSPENDED,
    ):
        raise RegistrationError("already_registered")
    if user is None:
        user = identity.add_person(session, who, User(created_at=now, updated_at=now))
    user.username = _clean_username(username or data.get("username"))
    user.full_name = data["full_name"]
    user.phone = number
    user.phone_typed = typed
    user.agency_id = int(data["agency_id"])
    user.language = data.get("language", "vi")
    user.updated_at = now
    if invite_id:
        user.role = data["role"]
        user.requested_role = data["role"]
        user.status = UserStatus.ACTIVE
    else:
        user.role = Role.MEMBER
        user.requested_role = data["role"]
        user.status = UserStatus.PENDING
    session.add(user)
    session.flush()
    assert user.id is not None
    if invite_id:
        invites.attach_user(session, int(invite_id), user.id)
    audit.record(
        session,
        action="user.registered",
        actor_id=user.id,
        actor_ref=state.user_ref,
        subject=f"user:{user.id}",
        before=before,
        after={**_snapshot(user), "invite_id": invite_id},
        at=now,
    )
    if not invite_id:
        due.schedule(session, REVIEW_KIND, now, ref_id=user.id)
    session.delete(state)
    session.flush()
    return Registered(user, bool(invite_id))


def review_round(session: Session, applicant_id: int) -> int:
    """The id of the applicant's latest ``user.registered`` event: the ledger key of one round of
    review requests (someone rejected who registers again is asked about again)."""
    event_id = session.exec(
        select(func.max(AuditEvent.id)).where(
            AuditEvent.subject == f"user:{applicant_id}", AuditEvent.action == "user.registered"
        )
    ).one()
    return int(event_id or 0)


def cancel(session: Session, *, chat_ref: str, user_ref: str, now: datetime) -> bool:
    """Abandon whatever conversation the person has open in this chat; True if there was one."""
    found = False
    for flow in (FLOW_REGISTER, FLOW_REJECT, FLOW_ME_NAME):
        state = get_state(session, chat_ref, user_ref, flow)
        if state is None:
            continue
        found = True
        if flow == FLOW_REGISTER and state.data.get("invite_id"):
            invites.release(session, int(state.data["invite_id"]), actor_ref=user_ref, now=now)
        session.delete(state)
    session.flush()
    return found


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Recipient:
    """Someone to tell: their account (a private chat goes to it) and the language to write in."""

    account: PersonRef
    language: str
    user_id: int | None = None


@dataclass(frozen=True)
class ReviewMessage:
    message: MessageRef
    language: str


def agency_supervisors(session: Session, agency_id: int) -> list[User]:
    """Active supervisors of an agency (who decide its requests and manage its people)."""
    return active_with_role(session, agency_id, Role.SUPERVISOR)


def deciders_for(
    session: Session, admins: Sequence[PersonRef], applicant: User, channel: str
) -> list[Recipient]:
    """Global admins (by account; they may have no row) and the agency's supervisors, on
    ``channel``."""
    seen: set[PersonRef] = set()
    out: list[Recipient] = []
    own = identity.account_on(session, applicant.id, channel)
    for account in admins:
        if account in seen or account == own:
            continue
        row = identity.person_for(session, account)
        out.append(Recipient(account, row.language if row else "vi", row.id if row else None))
        seen.add(account)
    if applicant.agency_id is not None:
        for sup in agency_supervisors(session, applicant.agency_id):
            theirs = identity.account_on(session, sup.id, channel)
            if theirs is None or theirs in seen or sup.id == applicant.id:
                continue
            out.append(Recipient(theirs, sup.language, sup.id))
            seen.add(theirs)
    return out


def record_review_messages(
    session: Session, applicant_id: int, sent: list[ReviewMessage], now: datetime
) -> None:
    """Remember where each decider's copy of a request is, to edit it once someone decides."""
    for message in sent:
        states.put(
            session,
            chat_ref=message.message.chat.chat_id,
            user_ref=f"user:{applicant_id}",
            flow=FLOW_REVIEW,
            step="sent",
            data={"message_id": message.message.message_id, "language": message.language},
            at=now,
            channel=message.message.chat.channel,
        )


def _review_messages(session: Session, applicant_id: int) -> list[ReviewMessage]:
    rows = session.exec(
        select(ConversationState).where(
            ConversationState.flow == FLOW_REVIEW,
            ConversationState.user_ref == f"user:{applicant_id}",
        )
    ).all()
    out = []
    for row in rows:
        chat = ChatRef(row.channel, row.chat_ref)
        message = MessageRef(chat, str(row.data["message_id"]))
        out.append(ReviewMessage(message, row.data.get("language", "vi")))
        session.delete(row)
    return out


def can_decide(session: Session, actor: Actor, applicant_id: int) -> bool:
    """Admins decide for every agency; supervisors only for their own (checked at every press)."""
    applicant = session.get(User, applicant_id)
    if applicant is None or applicant.id == actor.user_id:
        return False
    return can_act_for_agency(actor, applicant.agency_id, Role.SUPERVISOR) and (
        is_admin(actor) or has_role(actor, Role.SUPERVISOR)
    )


def decided_by(session: Session, applicant_id: int) -> tuple[str, str]:
    """(status, decider's name) of the last decision on a request, from the audit log."""
    event = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.subject == f"user:{applicant_id}",
            col(AuditEvent.action).in_(("user.approved", "user.rejected")),
        )
        .order_by(col(AuditEvent.id).desc())
    ).first()
    if event is None or not event.after:
        user = session.get(User, applicant_id)
        return (user.status if user else "unknown", "?")
    return (str(event.after.get("status", "")), str(event.after.get("by", "?")))


@dataclass(frozen=True)
class Standing:
    """Where a person's own registration request stands, for /me."""

    status: str  # pending or rejected
    agency: str
    requested_role: str
    asked_at: datetime
    decided_at: datetime | None
    reason: str | None


def standing(session: Session, user: User) -> Standing:
    """The request's agency, role, dates and (when refused) the reason, from the audit log."""
    event = session.exec(
        select(AuditEvent)
        .where(AuditEvent.subject == f"user:{user.id}", AuditEvent.action == "user.rejected")
        .order_by(col(AuditEvent.id).desc())
    ).first()
    refused = user.status == UserStatus.REJECTED and event is not None
    reason = event.after.get("reason") if refused and event and event.after else None
    return Standing(
        status=user.status,
        agency=agency_name(session, user.agency_id),
        requested_role=user.requested_role or user.role,
        asked_at=user.created_at,
        decided_at=event.at if refused and event else None,
        reason=str(reason) if reason else None,
    )


@dataclass
class DecisionResult:
    applicant: User
    approved: bool
    by: str
    reason: str | None
    reviews: list[ReviewMessage] = field(default_factory=list)
    event_id: int = 0  # the decision's audit event: the ledger key of its announcement

    def payload(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "by": self.by,
            "reason": self.reason,
            "event_id": self.event_id,
            "reviews": [
                [r.message.chat.channel, r.message.chat.chat_id, r.message.message_id, r.language]
                for r in self.reviews
            ],
        }

    @classmethod
    def from_payload(cls, applicant: User, data: dict[str, Any]) -> DecisionResult:
        # Rows owed from before references named their channel ([chat, message, language])
        # cannot say where their copies are; those copies just keep their buttons.
        reviews = [
            ReviewMessage(MessageRef(ChatRef(str(ch), str(c)), str(m)), str(lang))
            for ch, c, m, lang in (r for r in data["reviews"] if len(r) == 4)
        ]
        return cls(
            applicant,
            bool(data["approved"]),
            str(data["by"]),
            data["reason"],
            reviews,
            int(data["event_id"]),
        )


def decide(
    session: Session,
    *,
    actor: Actor,
    applicant_id: int,
    approve: bool,
    decider_name: str,
    now: datetime,
    reason: str | None = None,
) -> DecisionResult:
    """Approve (active, requested role) or reject a pending request, exactly once.

    Raises :class:`NotAllowed` if the actor may not decide for the applicant's agency and
    :class:`AlreadyDecided` if someone was first.
    """
    if not can_decide(session, actor, applicant_id):
        raise NotAllowed(f"{actor.channel_ref} may not decide on user {applicant_id}")
    applicant = session.get(User, applicant_id)
    assert applicant is not None
    before = _snapshot(applicant)
    values: dict[str, Any] = {"updated_at": now}
    if approve:
        values.update(status=UserStatus.ACTIVE, role=applicant.requested_role or Role.MEMBER)
    else:
        values.update(status=UserStatus.REJECTED)
    result = session.execute(
        sa.update(User)
        .where(col(User.id) == applicant_id, col(User.status) == UserStatus.PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        status, by = decided_by(session, applicant_id)
        raise AlreadyDecided(status, by)
    session.refresh(applicant)
    event = audit.by_actor(
        session,
        actor,
        action="user.approved" if approve else "user.rejected",
        subject=f"user:{applicant_id}",
        before=before,
        after={**_snapshot(applicant), "by": decider_name, "reason": reason},
        at=now,
    )
    due.cancel(session, kind=REVIEW_KIND, ref_id=applicant_id, at=now)  # nobody else to ask
    session.flush()
    decision = DecisionResult(
        applicant,
        approve,
        decider_name,
        reason,
        _review_messages(session, applicant_id),
        event.id or 0,
    )
    due.schedule(session, DECIDED_KIND, now, ref_id=applicant_id, payload=decision.payload())
    return decision


def ask_reject_reason(
    session: Session, *, actor: Actor, applicant_id: int, chat_ref: str, now: datetime
) -> User:
    """Remember that the decider's next text in this chat is the reason for rejecting."""
    if not can_decide(session, actor, applicant_id):
        raise NotAllowed(f"{actor.channel_ref} may not decide on user {applicant_id}")
    applicant = session.get(User, applicant_id)
    assert applicant is not None
    if applicant.status != UserStatus.PENDING:
        status, by = decided_by(session, applicant_id)
        raise AlreadyDecided(status, by)
    states.put(
        session,
        chat_ref=chat_ref,
        user_ref=actor.channel_ref,
        flow=FLOW_REJECT,
        step="reason",
        data={"applicant_id": applicant_id},
        at=now,
    )
    return applicant


def finish_reject(
    session: Session,
    state: ConversationState,
    *,
    actor: Actor,
    decider_name: str,
    reason: str | None,
    now: datetime,
) -> DecisionResult:
    """Reject with the reason typed (or none with /skip); the reason row is removed either way."""
    text = clean_reason(reason) if reason is not None else None
    applicant_id = int(state.data["applicant_id"])
    session.delete(state)
    session.flush()
    return decide(
        session,
        actor=actor,
        applicant_id=applicant_id,
        approve=False,
        decider_name=decider_name,
        reason=text or None,
        now=now,
    )


# --------------------------------------------------------------------------- people


def _clean_username(username: str | None) -> str | None:
    return username.removeprefix("@")[:64] if username else None


def sender(session: Session, settings: Settings, who: PersonRef, username: str | None) -> Actor:
    """Whoever sent an update, with their @username kept fresh on the way (one read): what
    every update passes through first (``handlers.start``)."""
    user = refresh_username(session, who, username)
    return Actor(str(who), user, identity.is_global_admin(settings, who))


def refresh_username(session: Session, who: PersonRef, username: str | None) -> User | None:
    """Keep a known person's @username fresh (one indexed read; a write only on change)."""
    user = identity.person_for(session, who)
    if user is None:
        return None
    clean = _clean_username(username)
    if user.username != clean:
        user.username = clean
        session.add(user)
    return user


def _snapshot(user: User | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {
        "status": user.status,
        "role": user.role,
        "agency_id": user.agency_id,
        "full_name": user.full_name,
        "language": user.language,
    }


def can_manage(session: Session, actor: Actor, target_id: int) -> bool:
    """Admins manage anyone; supervisors their agency's members and spokespersons; not oneself."""
    target = session.get(User, target_id)
    if target is None or target.id == actor.user_id:
        return False
    if is_admin(actor):
        return True
    return (
        can_act_for_agency(actor, target.agency_id, Role.SUPERVISOR)
        and ROLE_RANK.get(Role(target.role), 0) < ROLE_RANK[Role.SUPERVISOR]
    )


def grantable_roles(actor: Actor) -> list[Role]:
    """Roles the actor may give: supervisors up to spokesperson; admins any role."""
    if is_admin(actor):
        return [Role.MEMBER, Role.SPOKESPERSON, Role.SUPERVISOR, Role.ADMIN]
    if has_role(actor, Role.SUPERVISOR):
        return [Role.MEMBER, Role.SPOKESPERSON]
    return []


def _change(
    session: Session, *, actor: Actor, target_id: int, action: str, now: datetime, **values: Any
) -> User:
    if not can_manage(session, actor, target_id):
        raise NotAllowed(f"{actor.channel_ref} may not manage user {target_id}")
    user = session.get(User, target_id)
    assert user is not None
    before = _snapshot(user)
    for key, value in values.items():
        setattr(user, key, value)
    user.updated_at = now
    session.add(user)
    session.flush()
    audit.by_actor(
        session,
        actor,
        action=action,
        subject=f"user:{target_id}",
        before=before,
        after=_snapshot(user),
        at=now,
    )
    return user


def suspend(session: Session, *, actor: Actor, target_id: int, now: datetime) -> User:
    return _set_status(session, actor, target_id, now, UserStatus.SUSPENDED)


def reactivate(session: Session, *, actor: Actor, target_id: int, now: datetime) -> User:
    return _set_status(session, actor, target_id, now, UserStatus.ACTIVE)


# A status change: the status it needs, the refusal code otherwise, the audited action.
_STATUS_CHANGES = {
    UserStatus.SUSPENDED: (UserStatus.ACTIVE, "not_active", "user.suspended"),
    UserStatus.ACTIVE: (UserStatus.SUSPENDED, "not_suspended", "user.reactivated"),
}


def _set_status(
    session: Session, actor: Actor, target_id: int, now: datetime, status: UserStatus
) -> User:
    needed, refusal, action = _STATUS_CHANGES[status]
    target = session.get(User, target_id)
    if target is None or target.status != needed:
        raise RegistrationError(refusal)
    return _change(session, actor=actor, target_id=target_id, action=action, now=now, status=status)


def change_role(
    session: Session, *, actor: Actor, target_id: int, role: str, now: datetime
) -> User:
    try:
        wanted = Role(role)
    except ValueError:
        raise RegistrationError("bad_role") from None
    if wanted not in grantable_roles(actor):
        raise NotAllowed(f"{actor.channel_ref} may not grant {role}")
    return _change(
        session,
        actor=actor,
        target_id=target_id,
        action="user.role_changed",
        now=now,
        role=wanted,
        requested_role=wanted,
    )


def set_language(session: Session, user_id: int, language: str, now: datetime) -> User:
    """``/me``: the person's own language (their messages and command menu from now on)."""
    if language not in LANGUAGES:
        raise RegistrationError("bad_language")
    return _own_change(session, user_id, "user.language_changed", now, language=language)


def _own_change(session: Session, user_id: int, action: str, now: datetime, **values: Any) -> User:
    """A change someone makes to their own row (``/me``), audited as theirs."""
    user = session.get(User, user_id)
    if user is None:
        raise RegistrationError("stale")
    before = _snapshot(user)
    for key, value in values.items():
        setattr(user, key, value)
    user.updated_at = now
    session.add(user)
    audit.by_self(
        session,
        user.id,
        action=action,
        before=before,
        after=_snapshot(user),
        at=now,
    )
    return user


def ask_new_name(
    session: Session, *, user: User, chat_ref: str, user_ref: str, now: datetime
) -> None:
    states.put(
        session,
        chat_ref=chat_ref,
        user_ref=user_ref,
        flow=FLOW_ME_NAME,
        step="name",
        data={},
        at=now,
    )


def set_name(
    session: Session, state: ConversationState, user_id: int, raw: str, now: datetime
) -> User:
    """Rename from ``/me`` (raises :class:`InvalidName`, keeping the state to try again)."""
    user = _own_change(session, user_id, "user.renamed", now, full_name=clean_name(raw))
    session.delete(state)
    return user


# --------------------------------------------------------------------------- units of work
# What the chat flows (``handlers.start``, ``handlers.people``) call: each opens and commits its
# own transaction, so the flow replies only once the change is durable.

# A change to someone else (``suspend``, ``reactivate``, ``change_role`` with its actor and
# target bound), called as ``change(session, now=…)``.
Change = Callable[..., User]


def admit_sender(runtime: Runtime, who: PersonRef, username: str | None) -> Actor:
    """``sender`` in a transaction of its own: the fresh @username is kept even if the event
    is then refused."""
    with runtime.db.session() as session:
        return sender(session, runtime.settings, who, username)


def request_standing(runtime: Runtime, user: User) -> Standing:
    """Where ``user``'s own pending or rejected request stands (``/me`` before approval)."""
    with runtime.db.session() as session:
        return standing(session, user)


def open_rename(runtime: Runtime, user: User, chat_ref: str, user_ref: str) -> None:
    """Open the ``/me`` rename question, committed before the bot asks it (a restart keeps it)."""
    with runtime.db.session() as session:
        ask_new_name(
            session, user=user, chat_ref=chat_ref, user_ref=user_ref, now=runtime.clock.now()
        )


def rename(runtime: Runtime, chat_ref: str, user_ref: str, user_id: int, raw: str) -> User | None:
    """The name typed after ``/me`` ✏️: the renamed person, or None when no rename is open in
    this chat (the text is someone else's business). A name refused by ``clean_name`` raises
    :class:`RegistrationError` and keeps the question open."""
    with runtime.db.session() as session:
        state = get_state(session, chat_ref, user_ref, FLOW_ME_NAME)
        if state is None:
            return None
        return set_name(session, state, user_id, raw, runtime.clock.now())


def choose_own_language(runtime: Runtime, user_id: int, language: str) -> User:
    """``/me``'s language button: ``set_language`` committed before the menu is republished."""
    with runtime.db.session() as session:
        return set_language(session, user_id, language, runtime.clock.now())


def manage(runtime: Runtime, change: Change) -> User:
    """Make a ``Change`` to someone, re-checking the right on the server (raises
    :class:`NotAllowed` or :class:`RegistrationError` with nothing written)."""
    with runtime.db.session() as session:
        return change(session, now=runtime.clock.now())


# --------------------------------------------------------------------------- for the flows
# Each opens a unit of work of its own (the flows in handlers/ open none): every step commits
# before the flow replies, so a hard kill resumes where the person was.

# A registration choice applied to the person's conversation row.
StepChange = Callable[[Session, ConversationState, datetime], ConversationState]


def states_of(
    runtime: Runtime, chat_ref: str, user_ref: str, *flows: str
) -> list[ConversationState | None]:
    """The person's conversation of each of ``flows`` in this chat (None: not in it)."""
    with runtime.db.session() as session:
        return [get_state(session, chat_ref, user_ref, flow) for flow in flows]


def registration_now(runtime: Runtime, user_ref: str) -> ConversationState | None:
    """:func:`registration_of`, read now."""
    with runtime.db.session() as session:
        return registration_of(session, user_ref)


def agencies_page_of(runtime: Runtime, page: int) -> tuple[list[Agency], int, int]:
    """:func:`agencies_page`, read now."""
    with runtime.db.session() as session:
        return agencies_page(session, page)


def agency_name_of(runtime: Runtime, agency_id: Any) -> str:
    """The agency's name, as the registration's questions and answers show it."""
    with runtime.db.session() as session:
        return agency_name(session, agency_id)


@dataclass(frozen=True)
class Started:
    """What ``/start`` did: the ``state`` of a registration begun or ``resumed`` (None: the
    person is settled already), or the reason an invite was ``refused``."""

    state: ConversationState | None = None
    resumed: bool = False
    refused: str | None = None


def start(
    runtime: Runtime,
    actor: Actor,
    *,
    chat_ref: str,
    user_ref: str,
    code: str | None,
    username: str | None,
) -> Started:
    """``/start`` (with an invite ``code`` or without): begin a registration, resume the one
    under way, or nothing for someone active or pending (a global admin without a row too,
    unless they bring an invite)."""
    row = actor.user
    settled = row is not None and row.status in (UserStatus.ACTIVE, UserStatus.PENDING)
    if settled or (actor.global_admin and row is None and code is None):
        return Started()
    now = runtime.clock.now()
    with runtime.db.session() as session:
        if code is not None:
            try:
                return Started(
                    begin_with_invite(
                        session,
                        chat_ref=chat_ref,
                        user_ref=user_ref,
                        code=code,
                        now=now,
                        username=username,
                    )
                )
            except invites.InviteRefused as exc:
                return Started(refused=exc.reason)
        state = get_state(session, chat_ref, user_ref, FLOW_REGISTER)
        if state is not None:
            return Started(state, resumed=True)
        begun = begin(session, chat_ref=chat_ref, user_ref=user_ref, now=now, username=username)
        return Started(begun)


def cancel_now(
    runtime: Runtime, chat_ref: str, user_ref: str
) -> tuple[ConversationState | None, bool]:
    """``/cancel``: the registration that was under way (for its language), and whether there
    was one to cancel."""
    with runtime.db.session() as session:
        state = get_state(session, chat_ref, user_ref, FLOW_REGISTER)
        found = cancel(session, chat_ref=chat_ref, user_ref=user_ref, now=runtime.clock.now())
    return state, found


def give_name_now(runtime: Runtime, state: ConversationState, raw: str) -> ConversationState:
    """:func:`give_name` on the row as it is now (raises :class:`RegistrationError`)."""
    with runtime.db.session() as session:
        return give_name(session, fresh(session, state), raw, runtime.clock.now())


def give_phone_now(
    runtime: Runtime,
    state: ConversationState,
    *,
    phone: str,
    contact_owner_ref: str | None,
    who: PersonRef,
    username: str | None,
    typed: bool,
) -> Registered:
    """:func:`give_phone` on the row as it is now (raises :class:`RegistrationError`)."""
    with runtime.db.session() as session:
        return give_phone(
            session,
            fresh(session, state),
            phone=phone,
            contact_owner_ref=contact_owner_ref,
            who=who,
            username=username,
            now=runtime.clock.now(),
            typed=typed,
        )


def apply_step(
    runtime: Runtime, user_ref: str, change: StepChange
) -> tuple[ConversationState, bool]:
    """Apply a registration choice (a pressed button) to the person's row: the row, and
    whether the choice was stale (its step passed; the row is then as it was)."""
    with runtime.db.session() as session:
        state = registration_of(session, user_ref)
        assert state is not None  # the button's rule checked it
        try:
            return change(session, state, runtime.clock.now()), False
        except RegistrationError:
            return state, True


def decide_now(
    runtime: Runtime, actor: Actor, applicant_id: int, approve: bool, decider_name: str
) -> DecisionResult:
    """:func:`decide` at the runtime's clock (raises :class:`AlreadyDecided`)."""
    with runtime.db.session() as session:
        return decide(
            session,
            actor=actor,
            applicant_id=applicant_id,
            approve=approve,
            decider_name=decider_name,
            now=runtime.clock.now(),
        )


def ask_reject_reason_now(runtime: Runtime, actor: Actor, applicant_id: int, chat_ref: str) -> User:
    """:func:`ask_reject_reason` at the runtime's clock (raises :class:`AlreadyDecided`)."""
    with runtime.db.session() as session:
        return ask_reject_reason(
            session,
            actor=actor,
            applicant_id=applicant_id,
            chat_ref=chat_ref,
            now=runtime.clock.now(),
        )


@dataclass(frozen=True)
class Rejection:
    """What a rejection's reason (or ``/skip``) did: the ``result``, or the ``problem``
    template (with its context) saying why not."""

    result: DecisionResult | None = None
    problem: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


def finish_reject_now(
    runtime: Runtime,
    actor: Actor,
    *,
    chat_ref: str,
    user_ref: str,
    decider_name: str,
    reason: str | None,
) -> Rejection | None:
    """:func:`finish_reject` of the rejection this person was asked the reason for (None: no
    such question)."""
    with runtime.db.session() as session:
        state = get_state(session, chat_ref, user_ref, FLOW_REJECT)
        if state is None:
            return None
        try:
            return Rejection(
                finish_reject(
                    session,
                    state,
                    actor=actor,
                    decider_name=decider_name,
                    reason=reason,
                    now=runtime.clock.now(),
                )
            )
        except AlreadyDecided as exc:
            return Rejection(
                problem="reg_already_decided", context={"status": exc.status, "by": exc.by}
            )
        except NotAllowed:
            return Rejection(problem="not_allowed")
        except RegistrationError as exc:
            return Rejection(problem="reg_reason_invalid", context=exc.details)
