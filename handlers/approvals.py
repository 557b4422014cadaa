"""Submitting a draft for approval, and the approver's decision; written once for every channel
(``handlers.conversation``).

The buttons Submit (``draft.submit``), Approve (``appr.ok``), Request changes
(``appr.changes``) and Reject (``appr.reject``) are re-checked on every press by the layer (the
rules below reload the draft). On a channel without buttons each is a short Vietnamese command:
``/guiduyet 45``, ``/duyet 45``, ``/suadoi 45 <yêu cầu>``, ``/tuchoi 45 <lý do>`` (or in
English ``/submit``, ``/approve``, ``/changes``, ``/reject``). A typed
reason goes with the command, because such channels have no "reply to this message"; a button
press asks for the reason in the approver's private chat, answered by replying
(``answer_state``, reached from the answer flow in ``handlers.drafts``).
"""

from __future__ import annotations

from typing import Any

from bot.buttons import id_rule, int_id, register
from bot.channels.refs import MessageRef
from bot.services import approvals as ap
from bot.services import drafts as dr
from bot.services import stored_refs
from handlers.conversation.dispatch import on_press
from handlers.conversation.turn import Turn
from storage.models import ConversationState, Decision

TOAST_LIMIT = 190  # characters a Telegram callback answer shows; other channels post it whole


def draft_id(ident: str) -> int:
    """The pressed draft's id; a malformed one is forged (``ForgedButton``), as for every
    layer rule, so that it is refused and audited as such rather than as a lack of right."""
    return int_id(ident)


#: Who may work on the pressed draft (its crisis's members): Submit, Edit, Discard.
drafter_rule = id_rule(dr.can_work_on_draft)
_approver_rule = id_rule(ap.is_approver)


SUBMIT = register("draft.submit", drafter_rule, "submit a draft version for approval")
APPROVE = register("appr.ok", _approver_rule, "approve a submitted version")
CHANGES = register("appr.changes", _approver_rule, "request changes to a submitted version")
REJECT = register("appr.reject", _approver_rule, "reject a submitted version")
_TYPED = {Decision.REQUEST_CHANGES: "suadoi", Decision.REJECT: "tuchoi"}


def _error(turn: Turn, exc: dr.DraftError) -> str:
    return turn.render("draft_error", code=exc.code, ctx=exc.context)


async def _refuse(turn: Turn, found: int, exc: dr.DraftError) -> None:
    ap.refuse_now(turn.runtime, turn.actor, found, exc.code)
    await turn.replies.notice(_error(turn, exc)[:TOAST_LIMIT], alert=True)


# --------------------------------------------------------------------------- the drafter


@on_press(SUBMIT, command="guiduyet", aliases=("submit",))
async def submit(turn: Turn, ident: str) -> None:
    """Send the latest version to the approvers; the room hears who was asked."""
    runtime = turn.runtime
    try:
        submitted = ap.submit_latest(runtime, turn.actor, draft_id(ident))
    except dr.DraftError as exc:
        await turn.replies.notice(_error(turn, exc)[:TOAST_LIMIT], alert=True)
        return
    await turn.replies.notice()
    unreachable = await ap.send_requests(runtime, submitted)
    text = turn.render(
        "draft_notice",
        code="submitted",
        number=submitted.draft.number,
        version=submitted.draft.version,
        approvers=", ".join(u.full_name for u in submitted.approvers),
        required=submitted.required,
        unreachable=", ".join(u.full_name for u in unreachable),
    )
    room = stored_refs.crisis_room(submitted.crisis)
    if room is not None:
        await runtime.notifier.send_text(room, text)
    if room is None or room.chat_id != turn.event.where.chat_id:
        await turn.replies.say(text)  # a typed submit from elsewhere: the typist hears too


# --------------------------------------------------------------------------- the approver


async def _ask_private(turn: Turn, text: str) -> tuple[MessageRef | None, bool]:
    """Ask the presser ``text`` in their private chat: the question's message, and whether the
    press came from elsewhere (so the toast points there)."""
    private = turn.event.who.direct_chat()
    if turn.event.where == private:
        return await turn.replies.ask(text), False
    return await turn.runtime.notifier.send_text(private, text), True


async def _open_and_ask(
    turn: Turn, flow: str, step: str, data: dict[str, Any], question: str
) -> None:
    """Commit the conversation state, then ask (a restart between the two resumes it)."""
    runtime = turn.runtime
    private = turn.event.who.direct_chat()
    state_id = ap.open_question(
        runtime, f"{private.chat_id}:0", str(turn.event.who), flow, step, data
    )
    asked, elsewhere = await _ask_private(turn, question)
    await turn.replies.notice(
        turn.render("approval_prompt", code="check_private") if elsewhere else ""
    )
    if asked is not None:
        dr.note_prompt(runtime, state_id, asked.message_id)


@on_press(APPROVE, command="duyet", aliases=("approve",))
async def approve(turn: Turn, ident: str) -> None:
    runtime = turn.runtime
    found = draft_id(ident)
    try:
        outcome = ap.approve_now(runtime, turn.actor, found)
    except dr.DraftError as exc:
        await _refuse(turn, found, exc)
        return
    except ap.NeedsPin as exc:
        await _ask_for_pin(turn, found, exc.has_pin)
        return
    await turn.replies.notice(turn.render("approval_prompt", code="recorded"))
    await ap.announce(runtime, outcome)


async def _ask_for_pin(turn: Turn, found: int, has_pin: bool) -> None:
    if not has_pin:
        text = turn.render("approval_prompt", code="pin_needed")
        await turn.replies.notice(text[:TOAST_LIMIT], alert=True)
        return
    number, version = ap.draft_label(turn.runtime, found)
    question = turn.render("approval_prompt", code="pin", number=number, version=version)
    data = {"draft_id": found, "attempts": 0}
    await _open_and_ask(turn, ap.FLOW_PIN_APPROVE, "pin", data, question)


async def _with_reason(turn: Turn, ident: str, decision: Decision) -> None:
    """Decide at once with a typed reason, else ask for one (in the private chat)."""
    runtime = turn.runtime
    found = draft_id(ident)
    words = turn.event.text.split(maxsplit=2) if turn.event.command else []
    reason = words[2].strip() if len(words) > 2 else ""
    try:
        number, version, outcome = ap.decide_with_reason(
            runtime, turn.actor, found, decision, reason
        )
    except dr.DraftError as exc:
        await _refuse(turn, found, exc)
        return
    if outcome is not None:
        await turn.replies.notice(turn.render("approval_prompt", code="recorded"))
        await ap.announce(runtime, outcome)
        return
    context = {"decision": str(decision), "number": number, "version": version}
    if turn.event.command is not None:  # typed without a reason: say how to give one
        await turn.say(
            "approval_prompt",
            code="reason_typed",
            command=_TYPED[decision],
            draft_id=found,
            **context,
        )
        return
    question = turn.render("approval_prompt", code="reason", **context)
    data = {"draft_id": found, "decision": str(decision)}
    await _open_and_ask(turn, ap.FLOW_REASON, "reason", data, question)


@on_press(CHANGES, command="suadoi", free_text=True, aliases=("changes",))
async def request_changes(turn: Turn, ident: str) -> None:
    await _with_reason(turn, ident, Decision.REQUEST_CHANGES)


@on_press(REJECT, command="tuchoi", free_text=True, aliases=("reject",))
async def reject(turn: Turn, ident: str) -> None:
    await _with_reason(turn, ident, Decision.REJECT)


async def answer_state(turn: Turn, state: ConversationState, text: str) -> None:
    """The approver answered a question: their PIN, or the reason for their decision
    (``bot.services.approvals.answer_question``)."""
    answer = ap.answer_question(turn.runtime, turn.actor, state, text)
    if answer is None:
        return
    if answer.error is not None:
        await turn.replies.say(_error(turn, answer.error))
        return
    if answer.problem is not None:
        await turn.say("pin_message", code=answer.problem)
        return
    assert answer.outcome is not None
    await turn.say("approval_prompt", code="recorded")
    await ap.announce(turn.runtime, answer.outcome)
