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

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.buttons import register
from bot.channels.base import Button, Buttons
from bot.services import invites, verification
from bot.services import registration as reg
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

StepChange = Callable[[Session, ConversationState, datetime], ConversationState]


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
    with runtime.db.session() as session:
        rows, page, pages = reg.agencies_page(session, page)
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
        with runtime.db.session() as session:
            agency = reg.agency_name(session, state.data.get("agency_id"))
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
    code = event.args[0] if event.args else None
    now = runtime.clock.now()
    actor = turn.actor
    refused: str | None = None
    state: ConversationState | None = None
    resumed = False
    row = actor.user
    with runtime.db.session() as session:
        settled = row is not None and row.status in (UserStatus.ACTIVE, UserStatus.PENDING)
        if settled or (actor.global_admin and row is None and code is None):
            pass
        elif code is not None:
            try:
                state = reg.begin_with_invite(
                    session,
                    chat_ref=chat_ref,
                    user_ref=user_ref,
                    code=code,
                    now=now,
                    username=event.username,
                )
            except invites.InviteRefused as exc:
                refused = exc.reason
        else:
            state = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REGISTER)
            resumed = state is not None
            if state is None:
                state = reg.begin(
                    session, chat_ref=chat_ref, user_ref=user_ref, now=now, username=event.username
                )
    if refused is not None:
        await turn.say("invite_refused", reason=refused)
        return
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
    if resumed:
        await turn.replies.say(runtime.renderer.render("reg_resume", _flow_language(turn, state)))
    elif state.data.get("invite_id"):
        await turn.say("invite_welcome")
    await prompt(turn, state)


@on_command("cancel", None)
async def cancel_command(turn: Turn) -> None:
    runtime = turn.runtime
    chat_ref, user_ref = _refs(turn)
    with runtime.db.session() as session:
        state = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REGISTER)
        found = reg.cancel(session, chat_ref=chat_ref, user_ref=user_ref, now=runtime.clock.now())
    lang = turn.actor.user.language if turn.actor.user is not None else _flow_language(turn, state)
    text = runtime.renderer.render("reg_cancelled" if found else "reg_nothing_to_cancel", lang)
    if turn.event.private:
        await turn.replies.end_contact(text)
    else:
        await turn.replies.say(text)


@on_command("skip", None, listed=False)
async def skip_command(turn: Turn) -> None:
    chat_ref, user_ref = _refs(turn)
    with turn.runtime.db.session() as session:
        state = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REJECT)
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
    chat_ref, user_ref = _refs(turn)
    with turn.runtime.db.session() as session:
        rejecting = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REJECT)
        registering = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REGISTER)
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
    now = runtime.clock.now()
    if state.step == reg.STEP_NAME and event.contact is None:
        try:
            with runtime.db.session() as session:
                state = reg.give_name(session, reg.fresh(session, state), event.text, now)
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
        with runtime.db.session() as session:
            done = reg.give_phone(
                session,
                reg.fresh(session, state),
                phone=contact.phone if contact is not None else event.text,
                contact_owner_ref=owner,
                who=event.who,
                username=event.username,
                now=now,
                typed=contact is None,
            )
    except reg.RegistrationError as exc:
        await _ask_phone(turn, lang, render(f"reg_{exc.code}", lang))
        return
    applicant = done.user
    assert applicant.id is not None
    with runtime.db.session() as session:
        agency = reg.agency_name(session, applicant.agency_id)
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


async def _step(turn: Turn, change: StepChange) -> None:
    """Apply a registration choice to the person's row, then ask the next question."""
    runtime = turn.runtime
    stale = False
    with runtime.db.session() as session:
        state = reg.registration_of(session, turn.actor.channel_ref)
        assert state is not None  # the button rule checked it
        try:
            state = change(session, state, runtime.clock.now())
        except reg.RegistrationError:
            stale = True
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
    with turn.runtime.db.session() as session:
        state = reg.registration_of(session, turn.actor.channel_ref)
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
        with runtime.db.session() as session:
            result = reg.decide(
                session,
                actor=turn.actor,
                applicant_id=int(ident),
                approve=True,
                decider_name=display_name(turn),
                now=runtime.clock.now(),
            )
    except reg.AlreadyDecided as exc:
        await _already(turn, exc)
        return
    await turn.replies.notice(turn.render("reg_decision_saved"))
    await announce_decision(runtime, result)


@on_press(REJECT, command="decline")
async def on_reject(turn: Turn, ident: str) -> None:
    runtime = turn.runtime
    try:
        with runtime.db.session() as session:
            applicant = reg.ask_reject_reason(
                session,
                actor=turn.actor,
                applicant_id=int(ident),
                chat_ref=turn.event.where.chat_id,
                now=runtime.clock.now(),
            )
    except reg.AlreadyDecided as exc:
        await _already(turn, exc)
        return
    await turn.replies.notice()
    await turn.say("reg_reject_ask_reason", person=applicant.full_name)


async def _finish_reject(turn: Turn, text: str | None) -> None:
    runtime = turn.runtime
    chat_ref, user_ref = _refs(turn)
    problem: str | None = None
    extra: dict[str, Any] = {}
    with runtime.db.session() as session:
        state = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REJECT)
        if state is None:
            return
        try:
            result = reg.finish_reject(
                session,
                state,
                actor=turn.actor,
                decider_name=display_name(turn),
                reason=text,
                now=runtime.clock.now(),
            )
        except reg.AlreadyDecided as exc:
            problem, extra = "reg_already_decided", {"status": exc.status, "by": exc.by}
        except reg.NotAllowed:
            problem = "not_allowed"
        except reg.RegistrationError as exc:
            problem, extra = "reg_reason_invalid", exc.details
    if problem is not None:
        if problem == "not_allowed":
            turn.audit_refusal(problem)
        await turn.say(problem, **extra)
        return
    await turn.say("reg_decision_saved")
    await announce_decision(runtime, result)
