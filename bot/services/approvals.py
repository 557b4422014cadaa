"""Supervisor approval of a statement, and its publication. Nothing goes out unapproved.

Rules (the agency's policy: ``approvals_required`` N, ``approval_pin``, ``public_channel``):

* Submitting sends one exact version (its SHA-256 is in ``Draft.body_sha256``) to the approvers:
  active supervisors and admins of the crisis's agency, and crisis members with the approver
  role. The author never approves their own draft.
* An approval is an ``Approval`` row bound to the version's id and hash; editing makes a new
  version, so approvals of an older one no longer count and a press on an old request is refused.
* One decision per person per version (unique constraint), and the draft's status changes only
  from ``submitted`` through a conditional UPDATE that first locks the row: two approvers
  pressing at once, or one pressing twice, give one decision.
* With ``approval_pin`` the approver confirms with their PIN (``/pin``; scrypt hash + salt).
* N approvals → ``approved``, and a ``draft.publish`` due row publishes it (room, author, public
  channel) from the tick, so a restart between approval and publication loses nothing.
* Reminders (``settings.approval_reminder_minutes``) and an escalation after a further period are
  Due rows, cancelled by any decision or a new version.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.channels.base import Attachment, Button, DeliveryError, RecipientUnreachable, SentMessage
from bot.channels.limits import max_text
from bot.channels.refs import ChatRef
from bot.services import audit, due, identity, outbox, states, stored_refs
from bot.services import drafts as dr
from bot.services.approval_reminders import ESCALATE, REMIND, cancel_reminders, schedule_reminders
from bot.services.permissions import Actor
from storage.models import (
    Agency,
    Approval,
    ConversationState,
    Crisis,
    CrisisMember,
    CrisisRole,
    Decision,
    Delivery,
    Draft,
    DraftStatus,
    Role,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

FLOW_PIN_SET = "pin_set"
FLOW_PIN_APPROVE = "pin_approve"
FLOW_REASON = "approval_reason"
PUBLISH = "draft.publish"
DELIVERY_REQUEST = "approval_request"
PIN_RE = re.compile(r"^\d{4,12}$")
PIN_ATTEMPTS = 3
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


# --------------------------------------------------------------------------- who approves


def approvers_for(session: Session, crisis: Crisis) -> list[User]:
    """Active supervisors/admins of the crisis's agency and the crisis's approver members."""
    people = {
        u.id: u
        for u in session.exec(
            select(User).where(
                User.agency_id == crisis.agency_id,
                User.status == UserStatus.ACTIVE,
                col(User.role).in_([Role.SUPERVISOR, Role.ADMIN]),
            )
        )
    }
    members = session.exec(
        select(User)
        .join(CrisisMember, col(CrisisMember.user_id) == col(User.id))
        .where(
            CrisisMember.crisis_id == crisis.id,
            CrisisMember.role == CrisisRole.APPROVER,
            col(CrisisMember.state).not_in(["declined", "removed"]),
            User.status == UserStatus.ACTIVE,
        )
    )
    for user in members:
        people.setdefault(user.id, user)
    return [people[k] for k in sorted(k for k in people if k is not None)]


def is_approver(session: Session, actor: Actor, draft_id: int) -> bool:
    """The button rule of Approve / Request changes / Reject, reloaded on every press."""
    if actor.user is None or not actor.active:
        return False
    draft = session.get(Draft, draft_id)
    crisis = session.get(Crisis, draft.crisis_id) if draft else None
    if crisis is None:
        return False
    return any(u.id == actor.user.id for u in approvers_for(session, crisis))


def _policy(session: Session, crisis: Crisis) -> Agency:
    agency = session.get(Agency, crisis.agency_id)
    assert agency is not None
    return agency


# --------------------------------------------------------------------------- submitting


@dataclass
class Submitted:
    draft: Draft
    crisis: Crisis
    approvers: list[User]
    required: int


def submit(
    session: Session, draft: Draft, actor: Actor, at: datetime, remind_after: timedelta
) -> Submitted:
    """Send the exact latest version for approval; schedule reminder and escalation."""
    crisis = session.get(Crisis, draft.crisis_id)
    if crisis is None:
        raise dr.DraftError("draft_crisis_gone")
    if not dr.can_work_on(session, actor, crisis):
        raise dr.DraftError("draft_not_allowed")
    newest = dr.latest(session, draft.crisis_id, draft.number)
    assert newest is not None
    if newest.id != draft.id:
        raise dr.DraftError("approval_stale", version=draft.version, latest=newest.version)
    if draft.status == DraftStatus.SUBMITTED:
        raise dr.DraftError("draft_already_submitted", version=draft.version)
    if draft.status != DraftStatus.DRAFTING:
        raise dr.DraftError("draft_not_submittable", status=draft.status, version=draft.version)
    if dr.sha256(draft.body) != draft.body_sha256:
        raise dr.DraftError("approval_hash_mismatch")
    agency = _policy(session, crisis)
    approvers = [u for u in approvers_for(session, crisis) if u.id != draft.author_id]
    if len(approvers) < agency.approvals_required:
        raise dr.DraftError(
            "approval_too_few", required=agency.approvals_required, available=len(approvers)
        )
    moved = session.execute(
        update(Draft)
        .where(col(Draft.id) == draft.id, col(Draft.status) == DraftStatus.DRAFTING)
        .values(status=DraftStatus.SUBMITTED, submitted_at=at)
    )
    if cast(Any, moved).rowcount != 1:
        raise dr.DraftError("draft_already_submitted", version=draft.version)
    session.refresh(draft)
    dr.record_step(
        session,
        draft,
        "draft.submitted",
        actor.user_id,
        at,
        text=f"#{draft.number} v{draft.version} → {', '.join(u.full_name for u in approvers)}",
        extra={"approvers": [u.id for u in approvers], "required": agency.approvals_required},
    )
    schedule_reminders(session, draft, at, remind_after)
    return Submitted(draft, crisis, approvers, agency.approvals_required)


# --------------------------------------------------------------------------- deciding


class NeedsPin(Exception):
    """The agency asks approvers to confirm with their PIN before an approval is recorded."""

    def __init__(self, has_pin: bool) -> None:
        super().__init__("PIN required")
        self.has_pin = has_pin


@dataclass
class Outcome:
    draft: Draft
    crisis: Crisis
    decision: Decision
    approver: User
    comment: str
    approvals: int
    required: int
    final: bool  # the draft's status changed (approved, changes requested, rejected)


def precheck(session: Session, draft_id: int, approver: User) -> tuple[Draft, Crisis, Agency]:
    """Refuse early what can never be recorded: stale, decided, own draft, tampered text."""
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise dr.DraftError("approval_unknown")
    crisis = session.get(Crisis, draft.crisis_id)
    assert crisis is not None
    newest = dr.latest(session, draft.crisis_id, draft.number)
    assert newest is not None
    if newest.id != draft.id:
        raise dr.DraftError("approval_stale", version=draft.version, latest=newest.version)
    if draft.author_id == approver.id:
        raise dr.DraftError("approval_self")
    if draft.status != DraftStatus.SUBMITTED:
        raise dr.DraftError("approval_already_decided", status=draft.status)
    if dr.sha256(draft.body) != draft.body_sha256:
        raise dr.DraftError("approval_hash_mismatch")
    return draft, crisis, _policy(session, crisis)


def decide(
    session: Session,
    draft_id: int,
    approver: User,
    decision: Decision,
    *,
    comment: str = "",
    at: datetime,
    pin_confirmed: bool = False,
) -> Outcome:
    """Record one approver's decision on one exact version, at most once, atomically."""
    draft, crisis, agency = precheck(session, draft_id, approver)
    if decision != Decision.APPROVE and not comment.strip():
        raise dr.DraftError("approval_reason_needed")
    if decision == Decision.APPROVE and agency.approval_pin and not pin_confirmed:
        raise NeedsPin(approver.pin_hash is not None)
    # Lock the draft row first (a no-op UPDATE guarded by the status): a concurrent decision
    # waits here on PostgreSQL and then sees the status it left; SQLite serialises writers.
    guard = session.execute(
        update(Draft)
        .where(col(Draft.id) == draft.id, col(Draft.status) == DraftStatus.SUBMITTED)
        .values(status=DraftStatus.SUBMITTED)
    )
    if cast(Any, guard).rowcount != 1:
        raise dr.DraftError("approval_already_decided", status=draft.status)
    row = Approval(
        draft_id=draft.id or 0,
        approver_id=approver.id or 0,
        body_sha256=draft.body_sha256,
        decision=decision,
        comment=comment.strip()[:2000],
        at=at,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise dr.DraftError("approval_already_voted", version=draft.version) from None
    approvals = len(
        session.exec(
            select(Approval.id).where(
                Approval.draft_id == draft.id,
                Approval.decision == Decision.APPROVE,
                Approval.body_sha256 == draft.body_sha256,
            )
        ).all()
    )
    required = agency.approvals_required
    new_status: DraftStatus | None = None
    if decision == Decision.REQUEST_CHANGES:
        new_status = DraftStatus.CHANGES_REQUESTED
    elif decision == Decision.REJECT:
        new_status = DraftStatus.REJECTED
    elif approvals >= required:
        new_status = DraftStatus.APPROVED
    extra = {
        "decision": str(decision),
        "reason": row.comment,
        "approvals": approvals,
        "required": required,
        "pin": pin_confirmed,
    }
    if new_status is not None:
        moved = session.execute(
            update(Draft)
            .where(col(Draft.id) == draft.id, col(Draft.status) == DraftStatus.SUBMITTED)
            .values(status=new_status)
        )
        if cast(Any, moved).rowcount != 1:
            raise dr.DraftError("approval_already_decided", status=draft.status)
        session.refresh(draft)
        cancel_reminders(session, draft, at)
        if new_status == DraftStatus.APPROVED:
            due.schedule(session, PUBLISH, at, ref_id=draft.id, dedupe_key=f"{PUBLISH}:{draft.id}")
    action = {
        DraftStatus.APPROVED: "draft.approved",
        DraftStatus.CHANGES_REQUESTED: "draft.changes_requested",
        DraftStatus.REJECTED: "draft.rejected",
        None: "draft.approval",
    }[new_status]
    dr.record_step(
        session,
        draft,
        action,
        approver.id,
        at,
        text=f"#{draft.number} v{draft.version} {approver.full_name}: {decision}"
        + (f" — {row.comment}" if row.comment else ""),
        extra=extra,
    )
    return Outcome(
        draft,
        crisis,
        decision,
        approver,
        row.comment,
        approvals,
        required,
        final=new_status is not None,
    )


def refuse(session: Session, actor: Actor, draft_id: int, code: str, at: datetime) -> None:
    """Record a refused approval attempt (self-approval, stale, double press) for the inquiry."""
    draft = session.get(Draft, draft_id)
    audit.by_actor(
        session,
        actor,
        action="approval.refused",
        subject=dr.subject(draft.crisis_id, draft.number) if draft else f"draft:{draft_id}",
        after={"draft_id": draft_id, "reason": code, "version": draft.version if draft else None},
        at=at,
    )


# --------------------------------------------------------------------------- PIN


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_pin(stored: str | None, pin: str) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        pin.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(candidate.hex(), digest)


def valid_pin(pin: str) -> bool:
    return bool(PIN_RE.match(pin.strip()))


# The flows open and find their conversations by these names.
state_for = states.find
open_state = states.put


ANSWERED_FLOWS = (FLOW_PIN_SET, FLOW_PIN_APPROVE, FLOW_REASON)


def awaited_answer(
    session: Session, chat_ref: str, user_ref: str, prompt_id: str | None
) -> ConversationState | None:
    """The question a person's private text answers: the one whose prompt they replied to,
    else (no such prompt, or a channel without replies) the one asked last."""
    states = [s for flow in ANSWERED_FLOWS if (s := state_for(session, chat_ref, user_ref, flow))]
    # States written before message ids were strings hold numbers.
    exact = [s for s in states if str(s.data.get("prompt_message_id")) == prompt_id]
    waiting = exact or sorted(states, key=lambda s: s.updated_at)
    return waiting[-1] if waiting else None


def pin_answer(
    session: Session, state_id: int | None, user_id: int, text: str, at: datetime
) -> tuple[str, int | None]:
    """One answer in the ``/pin`` conversation: the message code to show, and the state still
    waiting for the next answer (None once the PIN is saved)."""
    state = session.get(ConversationState, state_id)
    user = session.get(User, user_id)
    if state is None or user is None:
        return "pin_new", None
    code = pin_step(session, state, user, text, at)
    return code, (state.id if code != "pin_saved" else None)


def pin_step(
    session: Session, state: ConversationState, user: User, text: str, at: datetime
) -> str:
    """One answer in the ``/pin`` conversation; returns the message code to show."""
    pin = text.strip()
    if not valid_pin(pin):
        return "pin_invalid"
    if state.step == "new":
        # Keep only a hash of the first entry while waiting for the confirmation.
        state.data = {**state.data, "first": hash_pin(pin)}
        state.step = "confirm"
        state.updated_at = at
        return "pin_confirm"
    if not verify_pin(state.data.get("first"), pin):
        state.data = {k: v for k, v in state.data.items() if k != "first"}
        state.step = "new"
        return "pin_mismatch"
    had = user.pin_hash is not None
    user.pin_hash = hash_pin(pin)
    user.updated_at = at
    session.add(user)
    session.delete(state)
    audit.by_self(session, user.id, action="user.pin_changed" if had else "user.pin_set", at=at)
    return "pin_saved"


def pin_attempt(
    session: Session, state: ConversationState, user: User, text: str, at: datetime
) -> Outcome | str:
    """The approver typed their PIN: record the approval, or say why not."""
    draft_id = int(state.data["draft_id"])
    if not verify_pin(user.pin_hash, text.strip()):
        attempts = int(state.data.get("attempts", 0)) + 1
        audit.by_self(
            session,
            user.id,
            action="approval.pin_failed",
            after={"draft_id": draft_id, "attempts": attempts},
            at=at,
        )
        if attempts >= PIN_ATTEMPTS:
            session.delete(state)
            return "pin_locked"
        state.data = {**state.data, "attempts": attempts}
        return "pin_wrong"
    session.delete(state)
    return decide(session, draft_id, user, Decision.APPROVE, at=at, pin_confirmed=True)


# --------------------------------------------------------------------------- telling people


def _label(runtime: Runtime, lang: str, which: str) -> str:
    return runtime.renderer.render("approval_label", lang, which=which)


def approval_buttons(runtime: Runtime, lang: str, draft_id: int) -> list[list[Button]]:
    return [
        [Button(_label(runtime, lang, "approve"), "appr.ok", draft_id)],
        [
            Button(_label(runtime, lang, "changes"), "appr.changes", draft_id),
            Button(_label(runtime, lang, "reject"), "appr.reject", draft_id),
        ],
    ]


def _names(users: list[User]) -> str:
    return ", ".join(u.full_name or f"#{u.id}" for u in users)


async def send_requests(runtime: Runtime, submitted: Submitted) -> list[User]:
    """The exact version to each approver's private chat with the decision buttons.

    Returns the approvers who could not be reached (they have not started the bot).
    """
    draft = submitted.draft
    with runtime.db.session() as session:
        author = session.get(User, draft.author_id) if draft.author_id else None
        title = dr.template_title(dr.library(runtime), draft)
    unreachable: list[User] = []
    for person in submitted.approvers:
        to = _private_chat(runtime, person)
        if to is None or not person.reachable:
            unreachable.append(person)
            continue
        header = runtime.renderer.render(
            "approval_request",
            person.language,
            draft=draft,
            title=title,
            crisis=submitted.crisis,
            author=author.full_name if author else "",
            required=submitted.required,
            short_hash=draft.body_sha256[:12],
        )
        try:
            sent = await dr.send_long(
                runtime,
                to,
                header,
                draft.body,
                approval_buttons(runtime, person.language, draft.id or 0),
            )
        except DeliveryError as exc:
            log.info("approval request to %s failed: %s", person.id, exc)
            unreachable.append(person)
            continue
        with runtime.db.session() as session:
            session.add(
                stored_refs.sent_delivery(
                    sent[-1],
                    kind=DELIVERY_REQUEST,
                    ref_id=draft.id or 0,
                    user_id=person.id or 0,
                    part="buttons",
                    at=runtime.clock.now(),
                )
            )
    return unreachable


def _private_chat(runtime: Runtime, person: User | None) -> ChatRef | None:
    """The person's private chat on the notifier's channel, if they have an account there."""
    if person is None:
        return None
    with runtime.db.session() as session:
        return identity.direct_chat(session, person.id, runtime.notifier.channel)


async def close_requests(runtime: Runtime, draft_id: int, code: str, **context: Any) -> None:
    """Replace the buttons of every approver's request for this version with the outcome."""
    with runtime.db.session() as session:
        rows = session.exec(
            select(Delivery, User)
            .join(User, col(User.id) == col(Delivery.user_id))
            .where(Delivery.kind == DELIVERY_REQUEST, Delivery.ref_id == draft_id)
        ).all()
        requests = [(stored_refs.delivered(d), u.language) for d, u in rows]
    for message, lang in requests:
        if message is None:
            continue
        text = runtime.renderer.render("approval_closed", lang, code=code, **context)
        try:
            await runtime.notifier.edit_text(message, text)
        except DeliveryError as exc:
            log.info("could not close approval request %s: %s", message, exc)


async def _tell(runtime: Runtime, person: User | None, template: str, **context: Any) -> None:
    to = _private_chat(runtime, person)
    if person is None or to is None or not person.reachable:
        return
    try:
        await runtime.notifier.send_text(
            to,
            runtime.renderer.render(template, person.language, **context),
        )
    except RecipientUnreachable:
        with runtime.db.session() as session:
            fresh = session.get(User, person.id)
            if fresh is not None:
                fresh.reachable = False
    except DeliveryError as exc:
        log.info("could not tell %s: %s", person.id, exc)


async def _room(runtime: Runtime, crisis: Crisis, template: str, lang: str, **context: Any) -> None:
    room = stored_refs.crisis_room(crisis)
    if room is None:
        return
    try:
        await runtime.notifier.send_text(room, runtime.renderer.render(template, lang, **context))
    except DeliveryError as exc:
        log.warning("could not post to the room of crisis %s: %s", crisis.id, exc)


async def announce(runtime: Runtime, outcome: Outcome) -> None:
    """After a decision: the room, the author, and the other approvers' requests."""
    draft, crisis = outcome.draft, outcome.crisis
    with runtime.db.session() as session:
        author = session.get(User, draft.author_id) if draft.author_id else None
    lang = author.language if author else "vi"
    context = {
        "draft": draft,
        "who": outcome.approver.full_name,
        "reason": outcome.comment,
        "approvals": outcome.approvals,
        "required": outcome.required,
        "decision": str(outcome.decision),
        "final": outcome.final,
    }
    await _room(runtime, crisis, "approval_decided", lang, **context)
    private, room = _private_chat(runtime, author), stored_refs.crisis_room(crisis)
    if room is None or private is None or private.chat_id != room.chat_id:
        await _tell(runtime, author, "approval_decided", **context)  # not twice in one chat
    if outcome.final:
        await close_requests(
            runtime,
            draft.id or 0,
            str(outcome.decision),
            number=draft.number,
            version=draft.version,
            who=outcome.approver.full_name,
        )


async def announce_superseded(runtime: Runtime, previous: Draft, fresh: Draft) -> None:
    await close_requests(
        runtime,
        previous.id or 0,
        "superseded",
        number=previous.number,
        version=previous.version,
        latest=fresh.version,
        who="",
    )


# --------------------------------------------------------------------------- due kinds


@dataclass(frozen=True)
class _Waiting:
    draft: Draft
    crisis: Crisis
    minutes: int  # since it was submitted

    async def remind(self, runtime: Runtime, people: list[User], **context: Any) -> None:
        """Each of ``people`` gets the reminder in their language (an escalation says so)."""
        for person in people:
            await _tell(
                runtime,
                person,
                "approval_reminder",
                draft=self.draft,
                crisis=self.crisis,
                minutes=self.minutes,
                **context,
            )


def _waiting(runtime: Runtime, session: Session, draft_id: int | None) -> _Waiting | None:
    """The submitted latest version still waiting for approvals, or None once it moved on."""
    draft = session.get(Draft, draft_id) if draft_id else None
    if draft is None or draft.status != DraftStatus.SUBMITTED or not dr.is_latest(session, draft):
        return None
    crisis = session.get(Crisis, draft.crisis_id)
    if crisis is None:
        return None
    now = runtime.clock.now()
    return _Waiting(draft, crisis, int((now - (draft.submitted_at or now)).total_seconds() // 60))


def _undecided(session: Session, draft: Draft, crisis: Crisis) -> list[User]:
    decided = set(session.exec(select(Approval.approver_id).where(Approval.draft_id == draft.id)))
    return [
        u for u in approvers_for(session, crisis) if u.id not in decided and u.id != draft.author_id
    ]


@due.due_handler(REMIND)
async def fire_reminder(runtime: Runtime, session: Session, row: Any) -> None:
    waiting = _waiting(runtime, session, row.ref_id)
    if waiting is None:
        return
    draft = waiting.draft
    await waiting.remind(runtime, _undecided(session, draft, waiting.crisis), escalation=False)
    audit.record(
        session,
        action="approval.reminded",
        subject=dr.subject(draft.crisis_id, draft.number),
        after={"draft_id": draft.id, "version": draft.version},
        at=runtime.clock.now(),
    )


@due.due_handler(ESCALATE)
async def fire_escalation(runtime: Runtime, session: Session, row: Any) -> None:
    waiting = _waiting(runtime, session, row.ref_id)
    if waiting is None:
        return
    draft, crisis = waiting.draft, waiting.crisis
    approvers = {u.id for u in approvers_for(session, crisis)}
    global_admins = identity.global_admins(runtime.settings, runtime.notifier.channel)
    people = {
        u.id: u
        for u in session.exec(
            select(User).where(
                User.status == UserStatus.ACTIVE,
                (col(User.agency_id) == crisis.agency_id)
                & col(User.role).in_([Role.SUPERVISOR, Role.ADMIN])
                | col(User.id).in_(identity.user_ids(session, global_admins))
                | (col(User.agency_id).is_(None) & (col(User.role) == Role.ADMIN)),
            )
        )
    }
    pending = _undecided(session, draft, crisis)
    recipients = [
        u
        for k, u in sorted(people.items(), key=lambda kv: kv[0] or 0)
        if u.id != draft.author_id and (u.id not in approvers or u in pending)
    ]
    await waiting.remind(runtime, recipients, escalation=True, waiting_for=_names(pending))
    audit.record(
        session,
        action="approval.escalated",
        subject=dr.subject(draft.crisis_id, draft.number),
        after={"draft_id": draft.id, "version": draft.version, "to": [u.id for u in recipients]},
        at=runtime.clock.now(),
    )


DELIVERY_PUBLISH = "publication"


async def _post_once(
    runtime: Runtime,
    draft: Draft,
    ledger_user: int,
    place: str,
    to: ChatRef,
    texts: list[str],
    files: Sequence[Attachment] = (),
) -> list[SentMessage]:
    """Post texts then files to one place, each message once across restarts (``outbox``)."""
    sent: list[SentMessage] = []
    sends: list[tuple[str, Any]] = [
        (f"{place}.{i + 1}", lambda t=text: runtime.notifier.send_text(to, t))
        for i, text in enumerate(texts)
    ]
    sends += [
        (f"{place}.doc{i + 1}", lambda f=file: runtime.notifier.send_document(to, f))
        for i, file in enumerate(files)
    ]
    for part, send in sends:
        message = await outbox.send_once(
            runtime,
            kind=DELIVERY_PUBLISH,
            ref_id=draft.id or 0,
            user_id=ledger_user,
            part=part,
            send=send,
        )
        if message is not None:
            sent.append(message)
    return sent


@due.due_handler(PUBLISH)
async def fire_publish(runtime: Runtime, session: Session, row: Any) -> None:
    """Publish an approved version: the room, the author, the agency's public channel.

    Every message is claimed in the ledger before it is sent and marked right after
    (``bot.services.outbox``), so the due row, run again after a failure or a kill, sends only
    what did not go out and never posts a part twice. The final state change is its own short
    transaction, so it never waits on the tick's long-lived read.
    """
    draft = session.get(Draft, row.ref_id)
    if draft is None or draft.status != DraftStatus.APPROVED:
        return
    crisis = session.get(Crisis, draft.crisis_id)
    assert crisis is not None
    agency = _policy(session, crisis)
    author = session.get(User, draft.author_id) if draft.author_id else None
    templates = dr.library(runtime)
    try:
        template = templates.get(draft.template, draft.language)
        public = template.public
        title = template.title
    except Exception:  # a template removed since drafting: publish, but not to the public
        public, title = False, draft.template
    approvers = session.exec(
        select(User.id, User.full_name)
        .join(Approval, col(Approval.approver_id) == col(User.id))
        .where(Approval.draft_id == draft.id, Approval.decision == Decision.APPROVE)
    ).all()
    # The ledger's rows need a person: the author, or the first approver of an orphaned draft.
    ledger_user = draft.author_id or next(uid for uid, _ in approvers if uid is not None)
    now = runtime.clock.now()
    lang = author.language if author else "vi"
    text_limit = max_text(runtime.notifier.channel)
    header_context = {
        "draft": draft,
        "title": title,
        "approvers": ", ".join(name for _, name in approvers),
        "short_hash": draft.body_sha256[:12],
        "at": now,
    }
    room = stored_refs.crisis_room(crisis)
    if room is not None:
        header = runtime.renderer.render("approval_published", lang, **header_context)
        await _post_once(
            runtime,
            draft,
            ledger_user,
            "room",
            room,
            dr.long_pieces(header, draft.body, text_limit),
            dr.attachments(draft, title),
        )
    author_chat = _private_chat(runtime, author)
    if author is not None and author_chat is not None:
        header = runtime.renderer.render("approval_published", author.language, **header_context)
        # An author who blocked the bot: the room and the channel still get it.
        with contextlib.suppress(RecipientUnreachable):
            await _post_once(
                runtime,
                draft,
                ledger_user,
                "author",
                author_chat,
                dr.long_pieces(header, draft.body, text_limit),
            )
    channel_result: dict[str, Any] = {}
    if public and agency.public_channel:
        channel_result["channel"] = agency.public_channel
        target = agency.public_channel
        try:
            # The channel adapter takes a public name (Telegram's "@username") or an id.
            sent = await _post_once(
                runtime,
                draft,
                ledger_user,
                "channel",
                ChatRef(runtime.notifier.channel, target),
                dr.long_pieces("", draft.body, text_limit),
            )
            channel_result["message_ids"] = [m.message_id for m in sent]
        except DeliveryError as exc:
            channel_result["error"] = str(exc)
            if room is not None:
                await _room(
                    runtime, crisis, "approval_channel_failed", lang, channel=target, error=str(exc)
                )
    with runtime.db.session() as own:
        moved = own.execute(
            update(Draft)
            .where(col(Draft.id) == draft.id, col(Draft.status) == DraftStatus.APPROVED)
            .values(status=DraftStatus.PUBLISHED, published_at=now)
        )
        if cast(Any, moved).rowcount != 1:
            return
        fresh = own.get(Draft, draft.id)
        assert fresh is not None
        dr.record_step(
            own,
            fresh,
            "draft.published",
            None,
            now,
            text=f"#{draft.number} v{draft.version} {title}",
            extra={"public": public, **channel_result},
        )


# --------------------------------------------------------------------------- units of work
# What ``/pin`` and the private answers call (``handlers.drafts``): each opens and commits its
# own transaction, so a question is stored before it is asked.


def private_question(
    runtime: Runtime, chat_ref: str, user_ref: str, prompt_id: str | None
) -> ConversationState | None:
    """``awaited_answer``: the question a person's private text answers, if any."""
    with runtime.db.session() as session:
        return awaited_answer(session, chat_ref, user_ref, prompt_id)


def answer_pin(
    runtime: Runtime, state_id: int | None, user_id: int, text: str
) -> tuple[str, int | None]:
    """``pin_answer``: the message code to show and the state still waiting, if any."""
    with runtime.db.session() as session:
        return pin_answer(session, state_id, user_id, text, runtime.clock.now())


# --------------------------------------------------------------------------- for the flows
# Each opens a unit of work of its own (the flows in handlers/ open none) and has committed
# before the flow answers or announces.


def _approver(session: Session, actor: Actor) -> User:
    """The presser's row, reloaded (the button's rule checked that they are an approver)."""
    assert actor.user is not None
    user = session.get(User, actor.user.id)
    assert user is not None
    return user


def refuse_now(runtime: Runtime, actor: Actor, draft_id: int, code: str) -> None:
    """:func:`refuse` at the runtime's clock, in a transaction of its own."""
    with runtime.db.session() as session:
        refuse(session, actor, draft_id, code, runtime.clock.now())


def submit_latest(runtime: Runtime, actor: Actor, draft_id: int) -> Submitted:
    """:func:`submit` the pressed draft, reminding the approvers after the configured time
    (raises ``DraftError``)."""
    remind = timedelta(minutes=runtime.settings.approval_reminder_minutes)
    with runtime.db.session() as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None  # the button's rule found it
        return submit(session, draft, actor, runtime.clock.now(), remind)


def open_question(
    runtime: Runtime, chat_ref: str, user_ref: str, flow: str, step: str, data: dict[str, Any]
) -> int | None:
    """Commit the conversation state of a question about to be asked (a restart between the
    two resumes it); its id."""
    with runtime.db.session() as session:
        return open_state(session, chat_ref, user_ref, flow, step, data, runtime.clock.now()).id


def approve_now(runtime: Runtime, actor: Actor, draft_id: int) -> Outcome:
    """The presser approves (raises ``DraftError``, or ``NeedsPin`` where the agency asks for
    their PIN first)."""
    with runtime.db.session() as session:
        user = _approver(session, actor)
        return decide(session, draft_id, user, Decision.APPROVE, at=runtime.clock.now())


def draft_label(runtime: Runtime, draft_id: int) -> tuple[int, int]:
    """The draft's number and version, as questions about it name it."""
    with runtime.db.session() as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None
        return draft.number, draft.version


def decide_with_reason(
    runtime: Runtime, actor: Actor, draft_id: int, decision: Decision, reason: str
) -> tuple[int, int, Outcome | None]:
    """Check the decision can be recorded (raises ``DraftError``) and, given a ``reason``,
    record it: the draft's number and version, and the outcome (None: no reason yet)."""
    with runtime.db.session() as session:
        user = _approver(session, actor)
        draft, _crisis, _agency = precheck(session, draft_id, user)
        outcome = None
        if reason:
            outcome = decide(
                session, draft_id, user, decision, comment=reason, at=runtime.clock.now()
            )
        return draft.number, draft.version, outcome


@dataclass(frozen=True)
class Answer:
    """What an approver's answer did: the ``outcome``, a PIN ``problem`` (``pin_message``
    code), or the ``error`` that refused the decision."""

    outcome: Outcome | None = None
    problem: str | None = None
    error: dr.DraftError | None = None


def answer_question(
    runtime: Runtime, actor: Actor, state: ConversationState, text: str
) -> Answer | None:
    """The approver answered a question: their PIN, or the reason for their decision; None if
    the question or the approver is gone.

    The decision and the state's removal commit together; a refused one is audited and the
    state dropped, so a stale question cannot be answered twice."""
    found = int(state.data["draft_id"])
    try:
        with runtime.db.session() as session:
            fresh = session.get(ConversationState, state.id)
            user = session.get(User, actor.user_id)
            if fresh is None or user is None:
                return None
            if fresh.flow == FLOW_PIN_APPROVE:
                result = pin_attempt(session, fresh, user, text, runtime.clock.now())
                return Answer(problem=result) if isinstance(result, str) else Answer(result)
            decision = Decision(fresh.data["decision"])
            session.delete(fresh)
            at = runtime.clock.now()
            return Answer(decide(session, found, user, decision, comment=text, at=at))
    except dr.DraftError as exc:
        with runtime.db.session() as session:
            refuse(session, actor, found, exc.code, runtime.clock.now())
            leftover = session.get(ConversationState, state.id)
            if leftover is not None:
                session.delete(leftover)
        return Answer(error=exc)
