"""Verification of a registration request: asking the deciders, and announcing their decision.

A pending request goes to every decider of the applicant's agency (and the global admins) with
Approve / Reject buttons; the decision (``bot.services.registration.decide``) edits every
decider's copy ("✓ Approved by …"), tells the applicant and refreshes their command menu.

Restart safety: each message goes through the ``outbox`` ledger; the ``registration.review``
and ``registration.decided`` due rows (committed with the request and the decision) finish the
work after a kill, asking nobody twice and telling the applicant once. A later change to
someone's status or role (``/people``) is announced to them too (``announce_change``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from bot.channels.base import Button, DeliveryError
from bot.channels.refs import ChatRef, MessageRef
from bot.services import due, identity, outbox
from bot.services import registration as reg
from bot.services.commands import publish_person_commands
from bot.services.wording import label, role_name
from storage.models import Due, Role, User, UserStatus

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

# Button actions (registered with their rules in handlers/registration.py).
APPROVE = "reg.approve"
REJECT = "reg.reject"

REVIEW_DELIVERY = "reg_review"
DECISION_DELIVERY = "reg_decision"
_AGAIN = timedelta(seconds=5)  # a due row that finds its work under way looks again after
_REVIEWING: set[int] = set()  # applicants whose requests this process is sending now
_ANNOUNCING: set[int] = set()  # applicants whose decision this process is announcing now


def review_text(runtime: Runtime, lang: str, applicant: User, **extra: Any) -> str:
    """A decider's copy of the request; with ``decided``/``by``/``reason`` once decided."""
    with runtime.db.session() as session:
        agency = reg.agency_name(session, applicant.agency_id)
    return runtime.renderer.render(
        "reg_review_request",
        lang,
        person=applicant.full_name,
        username=applicant.username,
        phone=applicant.phone or "",
        agency=agency,
        role=role_name(runtime, lang, applicant.requested_role or Role.MEMBER),
        phone_typed=applicant.phone_typed,
        **{"decided": None, "by": "", "reason": None, **extra},
    )


def review_buttons(runtime: Runtime, lang: str, applicant_id: int) -> list[list[Button]]:
    return [
        [
            Button(label(runtime, lang, "approve"), APPROVE, applicant_id),
            Button(label(runtime, lang, "reject"), REJECT, applicant_id),
        ]
    ]


async def send_review_requests(runtime: Runtime, applicant_id: int) -> int:
    """Send the request with Approve/Reject to every decider; returns how many have it.

    Each request goes through the ``outbox`` ledger (keyed by the registration round), so the
    ``registration.review`` due row, which finishes this after a kill, asks nobody twice."""
    if applicant_id in _REVIEWING:
        return 0
    _REVIEWING.add(applicant_id)
    try:
        return await _send_review_requests(runtime, applicant_id)
    finally:
        _REVIEWING.discard(applicant_id)


async def _send_review_requests(runtime: Runtime, applicant_id: int) -> int:
    with runtime.db.session() as session:
        applicant = session.get(User, applicant_id)
        assert applicant is not None
        if applicant.status != UserStatus.PENDING:
            return 0  # decided meanwhile
        admins = identity.global_admins(runtime.settings, runtime.notifier.channel)
        recipients = reg.deciders_for(session, admins, applicant, runtime.notifier.channel)
        round_id = reg.review_round(session, applicant_id)
    for person in recipients:
        text = review_text(runtime, person.language, applicant)
        buttons = review_buttons(runtime, person.language, applicant_id)
        private = person.account.direct_chat()

        def send(chat: ChatRef = private, text: str = text, buttons: Any = buttons) -> Any:
            return runtime.notifier.send_text(chat, text, buttons)

        try:
            copy = await outbox.send_once(
                runtime,
                kind=REVIEW_DELIVERY,
                ref_id=round_id,
                user_id=applicant_id,
                part=f"rv{person.account.external_id}",
                send=send,
            )
        except DeliveryError as exc:
            log.warning(
                "could not send the request of user %s to %s: %s", applicant_id, person.account, exc
            )
            continue
        if copy is not None and not _keep_copy(runtime, applicant_id, copy, person.language):
            await _close_late_copy(runtime, applicant_id, copy, person.language)
            break  # decided meanwhile: nobody else is asked
    languages = {p.account.direct_chat(): p.language for p in recipients}
    sent = [
        reg.ReviewMessage(m, languages.get(m.chat, "vi"))
        for m in outbox.sent(runtime, REVIEW_DELIVERY, round_id)
    ]
    with runtime.db.session() as session:
        if not sent:
            log.warning("nobody could be asked to verify user %s", applicant_id)
        still = session.get(User, applicant_id)
        if still is not None and still.status == UserStatus.PENDING:  # copies sent before a kill
            reg.record_review_messages(session, applicant_id, sent, runtime.clock.now())
        due.cancel(session, kind=reg.REVIEW_KIND, ref_id=applicant_id, at=runtime.clock.now())
    return len(sent)


def _keep_copy(runtime: Runtime, applicant_id: int, copy: MessageRef, language: str) -> bool:
    """Remember a decider's copy as soon as it is sent, while the request is still pending;
    False once it is decided.

    Recorded only after every decider had been asked, a copy was unknown to a decision taken
    meanwhile — the first decider pressing Approve while the second one's request was still on
    its way — and no copy was edited to "✓ Approved by …" (crash matrix, ``reg.copy-edited``
    never reached on a loaded machine)."""
    with runtime.db.session() as session:
        applicant = session.get(User, applicant_id)
        if applicant is None or applicant.status != UserStatus.PENDING:
            return False
        reg.record_review_messages(
            session, applicant_id, [reg.ReviewMessage(copy, language)], runtime.clock.now()
        )
        return True


async def _close_late_copy(
    runtime: Runtime, applicant_id: int, copy: MessageRef, language: str
) -> None:
    """Show a copy that left just as the request was decided as decided, like the others.

    The decision's edits (``announce_decision``) went to the copies recorded by then; this one
    was still on its way, so its buttons would stay live (a press would only hear "already
    decided"). The decision's own due row holds who decided and why."""
    with runtime.db.session() as session:
        applicant = session.get(User, applicant_id)
        row = session.exec(
            select(Due)
            .where(Due.kind == reg.DECIDED_KIND, Due.ref_id == applicant_id)
            .order_by(col(Due.id).desc())
        ).first()
    if applicant is None or row is None:
        return
    result = reg.DecisionResult.from_payload(applicant, row.payload)
    decided = "approved" if result.approved else "rejected"
    text = review_text(
        runtime, language, applicant, decided=decided, by=result.by, reason=result.reason
    )
    try:
        await runtime.notifier.edit_text(copy, text)
    except DeliveryError as exc:
        log.warning("could not update the late request copy in %s: %s", copy, exc)


@due.due_handler(reg.REVIEW_KIND)
async def _review_due(runtime: Runtime, session: Session, row: Due) -> None:
    # Own sessions only (see bot.services.taskforces.room._retry_room).
    if row.ref_id is None:
        return
    if row.ref_id in _REVIEWING:  # being sent by this process right now: look again shortly
        due.schedule(session, reg.REVIEW_KIND, runtime.clock.now() + _AGAIN, ref_id=row.ref_id)
        return
    await send_review_requests(runtime, row.ref_id)


async def announce_decision(runtime: Runtime, result: reg.DecisionResult) -> None:
    """Edit every decider's copy ("✓ Approved by …"), tell the applicant, refresh their menu.

    Finishes the ``registration.decided`` due row the decision committed; the tick runs it
    again after a kill (edits are idempotent, the applicant's message goes through the
    ``outbox`` ledger)."""
    applicant = result.applicant
    assert applicant.id is not None
    if applicant.id in _ANNOUNCING:
        return
    _ANNOUNCING.add(applicant.id)
    try:
        await _announce_decision(runtime, result)
    finally:
        _ANNOUNCING.discard(applicant.id)
    with runtime.db.session() as session:
        due.cancel(session, kind=reg.DECIDED_KIND, ref_id=applicant.id, at=runtime.clock.now())


async def _announce_decision(runtime: Runtime, result: reg.DecisionResult) -> None:
    applicant = result.applicant
    status = "approved" if result.approved else "rejected"
    for review in result.reviews:
        text = review_text(
            runtime, review.language, applicant, decided=status, by=result.by, reason=result.reason
        )
        try:
            await runtime.notifier.edit_text(review.message, text)
        except DeliveryError as exc:
            log.warning("could not update the request copy in %s: %s", review.message, exc)
    with runtime.db.session() as session:
        chat = identity.direct_chat(session, applicant.id, runtime.notifier.channel)
    if chat is not None:
        lang = applicant.language
        text = runtime.renderer.render(
            f"reg_{status}",
            lang,
            role=role_name(runtime, lang, applicant.role),
            reason=result.reason,
        )
        try:
            await outbox.send_once(
                runtime,
                kind=DECISION_DELIVERY,
                ref_id=result.event_id,
                user_id=applicant.id or 0,
                part="told",
                send=lambda: runtime.notifier.send_text(chat, text),
            )
        except DeliveryError as exc:
            log.warning("could not tell user %s about the decision: %s", applicant.id, exc)
    await publish_person_commands(runtime, applicant)


async def announce_change(runtime: Runtime, person: User, what: str) -> None:
    """After a supervisor or admin changed ``person`` (``what``: suspended, reactivated,
    role): refresh their command menu and tell them, if they have an account on this
    channel. Telling is a courtesy: a failed send changes nothing."""
    await publish_person_commands(runtime, person)
    with runtime.db.session() as session:
        chat = identity.direct_chat(session, person.id, runtime.notifier.channel)
    if chat is None:
        return
    lang = person.language
    note = runtime.renderer.render(
        "people_you_changed", lang, what=what, role=role_name(runtime, lang, person.role)
    )
    try:
        await runtime.notifier.send_text(chat, note)
    except DeliveryError as exc:
        log.info("could not tell user %s about the change: %s", person.id, exc)


@due.due_handler(reg.DECIDED_KIND)
async def _decided_due(runtime: Runtime, session: Session, row: Due) -> None:
    if row.ref_id is None:
        return
    if row.ref_id in _ANNOUNCING:
        due.schedule(
            session,
            reg.DECIDED_KIND,
            runtime.clock.now() + _AGAIN,
            ref_id=row.ref_id,
            payload=row.payload,
        )
        return
    with runtime.db.session() as own:
        applicant = own.get(User, row.ref_id)
    if applicant is None:
        return
    await announce_decision(runtime, reg.DecisionResult.from_payload(applicant, row.payload))
