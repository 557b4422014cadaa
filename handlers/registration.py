"""Registration (``/start``, ``/cancel``), its steps, and the verifier's Approve / Reject
(``/skip`` leaves a rejection without a reason); written once for every channel
(``handlers.conversation``).

The conversation state is the ``ConversationState`` row (``bot.services.registration``): each
step reads the row, commits the change and only then replies, so a hard kill resumes where the
person was. The requests to the verifiers and the announcements of their decision are
``bot.services.verification``.

On a channel without buttons every choice is a numbered line; on a channel that cannot vouch
for a phone number (no ``contact_share``) the number is typed, and the verifier is told so.
"""

from __future__ import annotations

from typing import Any

from bot.buttons import register
from bot.channels.base import Button, Buttons
from bot.services import registration as reg
from bot.services import verification
from bot.services.commands import publish_person_commands
from bot.services.permissions import Actor
from bot.services.verification import announce_decision, send_review_requests
from bot.services.wording import label, role_name
from handlers.conversation.dispatch import on_command, on_message, on_press
from handlers.conversation.turn import Turn
from storage.models import ConversationState, Role, UserStatus


def _int(ident: str) -> int | None:
    return int(ident) if ident.isdigit() and len(ident) <= 18 else None


def _in_registration(session: Any, actor: Actor, _ident: str) -> bool:
    return reg.registration_of(session, actor.channel_ref) is not None


def _may_decide(session: Any, actor: Actor, ident: str) -> bool:
    applicant_id = _int(ident)
    return applicant_id is not None and reg.can_decide(session, actor, applicant_id)


LANG = register("reg.lang", _in_registration, "registration: choose language")
AGENCY = register("reg.agency", _in_registration, "registration: choose agency")
AGENCY_PAGE = register("reg.apage", _in_registration, "registration: page of agencies")
ROLE = register("reg.role", _in_registration, "registration: requested role")
APPROVE = register(verification.APPROVE, _may_decide, "approve a registration request")
REJECT = register(verification.REJECT, _may_decide, "reject a registration request")


# --------------------------------------------------------------------------- small helpers


def _refs(turn: Turn) -> tuple[str, str]:
    """The conversation row's keys: the chat's id and the sender's ``PersonRef`` label."""
    return turn.event.where.chat_id, str(turn.event.who)


def _flow_language(turn: Turn, state: ConversationState | None) -> str:
    if state is not None and state.data.get("language"):
        return str(state.data["language"])
    return turn.lang


def display_name(turn: Turn) -> str:
    user = turn.actor.user
    if user is not None and user.full_name:
        return user.full_name
    return turn.event.name or "?"


# --------------------------------------------------------------------------- prompts


def _agency_choices(turn: Turn, lang: str, page: int) -> tuple[str, Buttons | None]:
    runtime = turn.runtime
    rows, page, pages = reg.agencies_page_of(runtime, page)
    if not rows:
        return runtime.renderer.render("reg_no_agencies", lang), None
    buttons = [[Button(f"{a.name} ({a.code})", AGENCY.name, a.id or 0)] for a in rows]
    nav = []
    if page > 0:
        nav.append(Button("◀", AGENCY_PAGE.name, page - 1))
    if page < pages - 1:
        nav.append(Button("▶", AGENCY_PAGE.name, page + 1))
    if nav:
        buttons.append(nav)
    text = runtime.renderer.render("reg_ask_agency", lang, page=page + 1, pages=pages)
    return text, buttons


async def _ask_phone(turn: Turn, lang: str, text: str) -> None:
    await turn.replies.ask_contact(text, label(turn.runtime, lang, "share_phone"))


async def prompt(turn: Turn, state: ConversationState) -> None:
    """Ask the question of the step the person is at (used for every step and for resuming)."""
    runtime = turn.runtime
    lang = _flow_language(turn, state)
    render = runtime.renderer.render
    replies = turn.replies
    if state.step == reg.STEP_LANGUAGE:
        buttons = [[Button("Tiếng Việt", LANG.name, "vi"), Button("English", LANG.name, "en")]]
        await replies.say(render("reg_choose_language", lang), buttons)
    elif state.step == reg.STEP_NAME:
        await replies.end_contact(render("reg_ask_name", lang))
    elif state.step == reg.STEP_AGENCY:
        await replies.say(*_agency_choices(turn, lang, 0))
    elif state.step == reg.STEP_ROLE:
        buttons = [
            [Button(role_name(runtime, lang, r), ROLE.name, r.value)] for r in reg.REQUESTABLE_ROLES
        ]
        await replies.say(render("reg_ask_role", lang), buttons)
    elif state.step == reg.STEP_PHONE:
        agency = reg.agency_name_of(runtime, state.data.get("agency_id"))
        text = render(
            "reg_ask_phone",
            lang,
            invited=bool(state.data.get("invite_id")),
            agency=agency,
            role=role_name(runtime, lang, str(state.data.get("role", ""))),
            typed=not replies.capabilities.contact_share,
        )
        await _ask_phone(turn, lang, text)


# --------------------------------------------------------------------------- /start /cancel /skip


@on_command("start", None)
async def start_command(turn: Turn) -> None:
    runtime = turn.runtime
    event = turn.event
    if not event.private:
        await turn.say("reg_group_private", link=turn.replies.private_link)
        return
    chat_ref, user_ref = _refs(turn)
    actor = turn.actor
    started = reg.start(
        runtime,
        actor,
        chat_ref=chat_ref,
        user_ref=user_ref,
        code=event.args[0] if event.args else None,
        username=event.username,
    )
    if started.refused is not None:
        await turn.say("invite_refused", reason=started.refused)
        return
    state = started.state
    row = actor.user
    if state is None:
        if row is not None and row.status == UserStatus.PENDING:
            await turn.say("reg_already_pending")
        else:
            role = Role.ADMIN if actor.global_admin else Role(row.role if row else Role.MEMBER)
            await turn.say(
                "reg_already_active",
                person=display_name(turn),
                role=role_name(runtime, turn.lang, role),
            )
        return
    if started.resumed:
        await turn.replies.say(runtime.renderer.render("reg_resume", _flow_language(turn, state)))
    elif state.data.get("invite_id"):
        await turn.say("invite_welcome")
    await prompt(turn, state)


@on_command("cancel", None)
async def cancel_command(turn: Turn) -> None:
    runtime = turn.runtime
    state, found = reg.cancel_now(runtime, *_refs(turn))
    lang = turn.actor.user.language if turn.actor.user is not None else _flow_language(turn, state)
    text = runtime.renderer.render("reg_cancelled" if found else "reg_nothing_to_cancel", lang)
    if turn.event.private:
        await turn.replies.end_contact(text)
    else:
        await turn.replies.say(text)


@on_command("skip", None, listed=False)
async def skip_command(turn: Turn) -> None:
    [state] = reg.states_of(turn.runtime, *_refs(turn), reg.FLOW_REJECT)
    if state is None:
        await turn.say("reg_nothing_to_skip")
        return
    await _finish_reject(turn, None)


# --------------------------------------------------------------------------- text in the flows


@on_message
async def flow_message(turn: Turn) -> bool:
    """Private text or a contact from someone in registration or giving a rejection reason."""
    if not turn.event.private:
        return False
    flows = (reg.FLOW_REJECT, reg.FLOW_REGISTER)
    rejecting, registering = reg.states_of(turn.runtime, *_refs(turn), *flows)
    typed = turn.event.contact is None
    if rejecting is not None and typed:
        await _finish_reject(turn, turn.event.text)
    elif registering is not None:
        await _registration_message(turn, registering)
    else:
        return False
    return True


async def _registration_message(turn: Turn, state: ConversationState) -> None:
    runtime = turn.runtime
    event = turn.event
    lang = _flow_language(turn, state)
    render = runtime.renderer.render
    if state.step == reg.STEP_NAME and event.contact is None:
        try:
            state = reg.give_name_now(runtime, state, event.text)
        except reg.RegistrationError as exc:
            await turn.replies.say(render("reg_name_invalid", lang, code=exc.code, **exc.details))
            return
        await prompt(turn, state)
        return
    if state.step != reg.STEP_PHONE:
        await turn.replies.say(render("reg_use_buttons", lang))
        await prompt(turn, state)
        return
    vouching = turn.replies.capabilities.contact_share
    contact = event.contact
    if contact is None and vouching:
        await _ask_phone(turn, lang, render("reg_phone_expected", lang))
        return
    owner = str(contact.owner) if contact is not None and contact.owner is not None else None
    try:
        done = reg.give_phone_now(
            runtime,
            state,
            phone=contact.phone if contact is not None else event.text,
            contact_owner_ref=owner,
            who=event.who,
            username=event.username,
            typed=contact is None,
        )
    except reg.RegistrationError as exc:
        await _ask_phone(turn, lang, render(f"reg_{exc.code}", lang))
        return
    applicant = done.user
    assert applicant.id is not None
    agency = reg.agency_name_of(runtime, applicant.agency_id)
    role = role_name(
        runtime, lang, applicant.role if done.invited else applicant.requested_role or ""
    )
    template = "reg_done_active" if done.invited else "reg_done_pending"
    await turn.replies.end_contact(
        render(template, lang, person=applicant.full_name, agency=agency, role=role)
    )
    if done.invited:
        await publish_person_commands(runtime, applicant)
    else:
        await send_review_requests(runtime, applicant.id)


# --------------------------------------------------------------------------- registration choices


async def _step(turn: Turn, change: reg.StepChange) -> None:
    """Apply a registration choice to the person's row, then ask the next question."""
    runtime = turn.runtime
    state, stale = reg.apply_step(runtime, turn.actor.channel_ref, change)
    lang = _flow_language(turn, state)
    if stale:
        await turn.replies.notice(runtime.renderer.render("reg_stale_button", lang), alert=True)
    else:
        await turn.replies.notice()
        await turn.replies.clear_buttons(turn.event.message)
    await prompt(turn, state)


@on_press(LANG)
async def on_language(turn: Turn, ident: str) -> None:
    await _step(turn, lambda s, st, now: reg.choose_language(s, st, ident, now))


@on_press(AGENCY)
async def on_agency(turn: Turn, ident: str) -> None:
    agency_id = _int(ident) or 0
    await _step(turn, lambda s, st, now: reg.choose_agency(s, st, agency_id, now))


@on_press(ROLE)
async def on_role(turn: Turn, ident: str) -> None:
    await _step(turn, lambda s, st, now: reg.choose_role(s, st, ident, now))


@on_press(AGENCY_PAGE)
async def on_agency_page(turn: Turn, ident: str) -> None:
    state = reg.registration_now(turn.runtime, turn.actor.channel_ref)
    await turn.replies.notice()
    text, buttons = _agency_choices(turn, _flow_language(turn, state), _int(ident) or 0)
    await turn.replies.replace(turn.event.message, text, buttons)


# --------------------------------------------------------------------------- verification


async def _already(turn: Turn, exc: reg.AlreadyDecided) -> None:
    await turn.replies.notice(
        turn.render("reg_already_decided", status=exc.status, by=exc.by), alert=True
    )


@on_press(APPROVE, command="accept")
async def on_approve(turn: Turn, ident: str) -> None:
    runtime = turn.runtime
    try:
        result = reg.decide_now(runtime, turn.actor, int(ident), True, display_name(turn))
    except reg.AlreadyDecided as exc:
        await _already(turn, exc)
        return
    await turn.replies.notice(turn.render("reg_decision_saved"))
    await announce_decision(runtime, result)


@on_press(REJECT, command="decline")
async def on_reject(turn: Turn, ident: str) -> None:
    try:
        applicant = reg.ask_reject_reason_now(
            turn.runtime, turn.actor, int(ident), turn.event.where.chat_id
        )
    except reg.AlreadyDecided as exc:
        await _already(turn, exc)
        return
    await turn.replies.notice()
    await turn.say("reg_reject_ask_reason", person=applicant.full_name)


async def _finish_reject(turn: Turn, text: str | None) -> None:
    chat_ref, user_ref = _refs(turn)
    rejection = reg.finish_reject_now(
        turn.runtime,
        turn.actor,
        chat_ref=chat_ref,
        user_ref=user_ref,
        decider_name=display_name(turn),
        reason=text,
    )
    if rejection is None:
        return
    if rejection.problem is not None:
        if rejection.problem == "not_allowed":
            turn.audit_refusal(rejection.problem)
        await turn.say(rejection.problem, **rejection.context)
        return
    assert rejection.result is not None
    await turn.say("reg_decision_saved")
    await announce_decision(turn.runtime, rejection.result)
