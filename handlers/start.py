"""Registration (``/start``), the Approve / Reject buttons of verification (the requests and
the announcements are ``bot.services.verification``), and the guards every update passes.

The conversation state is the ``ConversationState`` row (``bot.services.registration``), never
PTB's in-memory ``ConversationHandler``: each handler reads the row, dispatches on its step,
commits the change and only then replies, so a hard kill resumes where the person was.

Handler groups (see :func:`install`):

* ``-2`` :func:`gatekeeper` keeps @usernames fresh and refuses suspended people;
* ``-1`` :func:`flow_message` takes private text and contacts that belong to an open flow
  (registration, a rejection reason, a new name) and stops there; other text falls through;
* ``0``  the commands of :func:`handlers` and of the other modules.
"""

from __future__ import annotations

from typing import Any

from telegram import (
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.buttons import register
from bot.channels.base import Button
from bot.channels.telegram.notifier import keyboard, person_ref
from bot.runtime import Runtime
from bot.services import commands as command_lists
from bot.services import invites, verification
from bot.services import registration as reg
from bot.services.commands import publish_person_commands
from bot.services.permissions import Actor
from bot.services.verification import announce_decision, send_review_requests
from bot.services.wording import label, role_name
from bot.templating import normalise_language
from handlers.buttons import on_button
from handlers.common import actor_in, audit_refusal, audited, language_of, reply, runtime_of
from handlers.people import rename_from_text  # the /me flow lives with /me
from storage.models import Agency, ConversationState, Role, User, UserStatus


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


def _refs(update: Update) -> tuple[str, str]:
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None
    return str(chat.id), str(person_ref(user))


def _client_language(update: Update) -> str:
    user = update.effective_user
    return normalise_language(user.language_code if user else None)


def _flow_language(update: Update, state: ConversationState | None) -> str:
    if state is not None and state.data.get("language"):
        return str(state.data["language"])
    return _client_language(update)


async def _send(update: Update, text: str, markup: Any = None) -> None:
    chat = update.effective_chat
    assert chat is not None
    await chat.send_message(
        text, parse_mode=ParseMode.HTML, reply_markup=markup, disable_web_page_preview=True
    )


def display_name(update: Update, actor: Actor) -> str:
    if actor.user is not None and actor.user.full_name:
        return actor.user.full_name
    user = update.effective_user
    return user.full_name if user else "?"


# --------------------------------------------------------------------------- prompts


def _agency_keyboard(runtime: Runtime, lang: str, page: int) -> tuple[str, Any]:
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
    return text, keyboard(buttons)


def _phone_keyboard(runtime: Runtime, lang: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [[KeyboardButton(label(runtime, lang, "share_phone"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def prompt(update: Update, runtime: Runtime, state: ConversationState) -> None:
    """Ask the question of the step the person is at (used for every step and for resuming)."""
    lang = _flow_language(update, state)
    render = runtime.renderer.render
    if state.step == reg.STEP_LANGUAGE:
        buttons = [[Button("Tiếng Việt", LANG.name, "vi"), Button("English", LANG.name, "en")]]
        await _send(update, render("reg_choose_language", lang), keyboard(buttons))
    elif state.step == reg.STEP_NAME:
        await _send(update, render("reg_ask_name", lang), ReplyKeyboardRemove())
    elif state.step == reg.STEP_AGENCY:
        text, markup = _agency_keyboard(runtime, lang, 0)
        await _send(update, text, markup)
    elif state.step == reg.STEP_ROLE:
        buttons = [
            [Button(role_name(runtime, lang, r), ROLE.name, r.value)] for r in reg.REQUESTABLE_ROLES
        ]
        await _send(update, render("reg_ask_role", lang), keyboard(buttons))
    elif state.step == reg.STEP_PHONE:
        with runtime.db.session() as session:
            agency = session.get(Agency, int(state.data.get("agency_id") or 0))
        await _send(
            update,
            render(
                "reg_ask_phone",
                lang,
                invited=bool(state.data.get("invite_id")),
                agency=agency.name if agency else "",
                role=role_name(runtime, lang, str(state.data.get("role", ""))),
            ),
            _phone_keyboard(runtime, lang),
        )


# --------------------------------------------------------------------------- /start /cancel /skip


async def start_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    if chat.type != ChatType.PRIVATE:
        bot_name = context.bot.username
        await reply(
            update,
            runtime.renderer.render("reg_group_private", _client_language(update), bot=bot_name),
        )
        return
    chat_ref, user_ref = _refs(update)
    code = context.args[0] if context.args else None
    now = runtime.clock.now()
    refused: str | None = None
    state: ConversationState | None = None
    resumed = False
    with runtime.db.session() as session:
        actor = actor_in(session, runtime, user)
        row = actor.user
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
                    username=user.username,
                )
            except invites.InviteRefused as exc:
                refused = exc.reason
        else:
            state = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REGISTER)
            resumed = state is not None
            if state is None:
                state = reg.begin(
                    session, chat_ref=chat_ref, user_ref=user_ref, now=now, username=user.username
                )
    lang = language_of(update, actor)
    render = runtime.renderer.render
    if refused is not None:
        await reply(update, render("invite_refused", lang, reason=refused))
        return
    if state is None:
        if row is not None and row.status == UserStatus.PENDING:
            await reply(update, render("reg_already_pending", lang))
        else:
            role = Role.ADMIN if actor.global_admin else Role(row.role if row else Role.MEMBER)
            await reply(
                update,
                render(
                    "reg_already_active",
                    lang,
                    person=display_name(update, actor),
                    role=role_name(runtime, lang, role),
                ),
            )
        return
    if resumed:
        await reply(update, render("reg_resume", _flow_language(update, state)))
    elif state.data.get("invite_id"):
        await reply(update, render("invite_welcome", lang))
    await prompt(update, runtime, state)


async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    if update.effective_chat is None or update.effective_user is None:
        return
    chat_ref, user_ref = _refs(update)
    with runtime.db.session() as session:
        state = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REGISTER)
        lang = _flow_language(update, state)
        actor = actor_in(session, runtime, update.effective_user)
        if actor.user is not None:
            lang = actor.user.language
        found = reg.cancel(session, chat_ref=chat_ref, user_ref=user_ref, now=runtime.clock.now())
    template = "reg_cancelled" if found else "reg_nothing_to_cancel"
    markup = ReplyKeyboardRemove() if update.effective_chat.type == ChatType.PRIVATE else None
    await _send(update, runtime.renderer.render(template, lang), markup)


async def skip_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    if update.effective_user is None:
        return
    chat_ref, user_ref = _refs(update)
    with runtime.db.session() as session:
        state = reg.get_state(session, chat_ref, user_ref, reg.FLOW_REJECT)
        actor = actor_in(session, runtime, update.effective_user)
    if state is None:
        await reply(
            update, runtime.renderer.render("reg_nothing_to_skip", language_of(update, actor))
        )
        return
    await _finish_reject(update, context, actor, None)


# --------------------------------------------------------------------------- free text in flows


async def flow_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text or a contact from someone in one of our flows; otherwise let other handlers see it."""
    runtime = runtime_of(context)
    if update.effective_user is None or update.effective_message is None:
        return
    chat_ref, user_ref = _refs(update)
    with runtime.db.session() as session:
        flows = {
            flow: reg.get_state(session, chat_ref, user_ref, flow)
            for flow in (reg.FLOW_REJECT, reg.FLOW_ME_NAME, reg.FLOW_REGISTER)
        }
        actor = actor_in(session, runtime, update.effective_user)
    text = update.effective_message.text
    if flows[reg.FLOW_REJECT] is not None and text is not None:
        await _finish_reject(update, context, actor, text)
    elif flows[reg.FLOW_ME_NAME] is not None and text is not None:
        await rename_from_text(update, context, actor, text)
    elif flows[reg.FLOW_REGISTER] is not None:
        await _registration_message(update, runtime, flows[reg.FLOW_REGISTER])  # type: ignore[arg-type]
    else:
        return
    raise ApplicationHandlerStop


async def _registration_message(update: Update, runtime: Runtime, state: ConversationState) -> None:
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    lang = _flow_language(update, state)
    render = runtime.renderer.render
    now = runtime.clock.now()
    if state.step == reg.STEP_NAME and message.text is not None:
        error: reg.RegistrationError | None = None
        with runtime.db.session() as session:
            fresh = session.get(ConversationState, state.id)
            assert fresh is not None
            try:
                state = reg.give_name(session, fresh, message.text, now)
            except reg.RegistrationError as exc:
                error = exc
        if error is not None:
            await reply(update, render("reg_name_invalid", lang, code=error.code, **error.details))
            return
        await prompt(update, runtime, state)
        return
    if state.step != reg.STEP_PHONE:
        await reply(update, render("reg_use_buttons", lang))
        await prompt(update, runtime, state)
        return
    contact = message.contact
    if contact is None:
        await _send(update, render("reg_phone_expected", lang), _phone_keyboard(runtime, lang))
        return
    owner = str(person_ref(contact.user_id)) if contact.user_id else None
    failure: str | None = None
    with runtime.db.session() as session:
        fresh = session.get(ConversationState, state.id)
        assert fresh is not None
        try:
            done = reg.give_phone(
                session,
                fresh,
                phone=contact.phone_number,
                contact_owner_ref=owner,
                who=person_ref(user),
                username=user.username,
                now=now,
            )
        except reg.RegistrationError as exc:
            failure = exc.code
    if failure is not None:
        await _send(update, render(f"reg_{failure}", lang), _phone_keyboard(runtime, lang))
        return
    applicant = done.user
    assert applicant.id is not None
    with runtime.db.session() as session:
        agency = session.get(Agency, applicant.agency_id or 0)
    role = role_name(
        runtime, lang, applicant.role if done.invited else applicant.requested_role or ""
    )
    template = "reg_done_active" if done.invited else "reg_done_pending"
    await _send(
        update,
        render(
            template,
            lang,
            person=applicant.full_name,
            agency=agency.name if agency else "",
            role=role,
        ),
        ReplyKeyboardRemove(),
    )
    if done.invited:
        await publish_person_commands(runtime, applicant)
    else:
        await send_review_requests(runtime, applicant.id)


# --------------------------------------------------------------------------- registration buttons


async def _step_button(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    actor: Actor,
    change: Any,
) -> None:
    """Apply a registration button to the person's row, then ask the next question."""
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None
    stale = False
    with runtime.db.session() as session:
        state = reg.registration_of(session, actor.channel_ref)
        assert state is not None  # the button rule checked it
        try:
            state = change(session, state, runtime.clock.now())
        except reg.RegistrationError:
            stale = True
    lang = _flow_language(update, state)
    if stale:
        await query.answer(runtime.renderer.render("reg_stale_button", lang), show_alert=True)
    else:
        await query.answer()
        await query.edit_message_reply_markup(None)
    await prompt(update, runtime, state)


@on_button(LANG.name)
async def on_language(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    await _step_button(
        update, context, actor, lambda s, st, now: reg.choose_language(s, st, ident, now)
    )


@on_button(AGENCY.name)
async def on_agency(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    agency_id = _int(ident) or 0
    await _step_button(
        update, context, actor, lambda s, st, now: reg.choose_agency(s, st, agency_id, now)
    )


@on_button(ROLE.name)
async def on_role(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    await _step_button(
        update, context, actor, lambda s, st, now: reg.choose_role(s, st, ident, now)
    )


@on_button(AGENCY_PAGE.name)
async def on_agency_page(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None
    with runtime.db.session() as session:
        state = reg.registration_of(session, actor.channel_ref)
    lang = _flow_language(update, state)
    await query.answer()
    text, markup = _agency_keyboard(runtime, lang, _int(ident) or 0)
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


# --------------------------------------------------------------------------- verification


@on_button(APPROVE.name)
async def on_approve(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None
    lang = language_of(update, actor)
    result: reg.DecisionResult | None = None
    already: reg.AlreadyDecided | None = None
    with runtime.db.session() as session:
        try:
            result = reg.decide(
                session,
                actor=actor,
                applicant_id=int(ident),
                approve=True,
                decider_name=display_name(update, actor),
                now=runtime.clock.now(),
            )
        except reg.AlreadyDecided as exc:
            already = exc
    if already is not None or result is None:
        assert already is not None
        await query.answer(
            runtime.renderer.render(
                "reg_already_decided", lang, status=already.status, by=already.by
            ),
            show_alert=True,
        )
        return
    await query.answer(runtime.renderer.render("reg_decision_saved", lang))
    await announce_decision(runtime, result)


@on_button(REJECT.name)
async def on_reject(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None and query.message is not None
    lang = language_of(update, actor)
    applicant: User | None = None
    already: reg.AlreadyDecided | None = None
    with runtime.db.session() as session:
        try:
            applicant = reg.ask_reject_reason(
                session,
                actor=actor,
                applicant_id=int(ident),
                chat_ref=str(query.message.chat.id),
                now=runtime.clock.now(),
            )
        except reg.AlreadyDecided as exc:
            already = exc
    if already is not None or applicant is None:
        assert already is not None
        await query.answer(
            runtime.renderer.render(
                "reg_already_decided", lang, status=already.status, by=already.by
            ),
            show_alert=True,
        )
        return
    await query.answer()
    await query.message.chat.send_message(
        runtime.renderer.render("reg_reject_ask_reason", lang, person=applicant.full_name),
        parse_mode=ParseMode.HTML,
    )


async def _finish_reject(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, text: str | None
) -> None:
    runtime = runtime_of(context)
    chat_ref, user_ref = _refs(update)
    lang = language_of(update, actor)
    render = runtime.renderer.render
    result: reg.DecisionResult | None = None
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
                actor=actor,
                decider_name=display_name(update, actor),
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
        await reply(
            update, audited(update, runtime, actor, problem, render(problem, lang, **extra))
        )
        return
    assert result is not None
    await reply(update, render("reg_decision_saved", lang))
    await announce_decision(runtime, result)


# --------------------------------------------------------------------------- command menus


async def publish_default_commands(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start-up job: the default command menus and the global admins' own."""
    await command_lists.publish_default_commands(runtime_of(context))


# --------------------------------------------------------------------------- guards


async def gatekeeper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every update: keep a known person's @username fresh; refuse suspended people."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    runtime = runtime_of(context)
    with runtime.db.session() as session:
        row = reg.refresh_username(session, person_ref(user), user.username)
    suspended = (
        row is not None
        and row.status == UserStatus.SUSPENDED
        and user.id not in runtime.settings.admin_ids
    )
    message = update.message
    if not suspended or message is None:
        return  # buttons: the dispatcher refuses suspended people itself
    assert row is not None
    chat = update.effective_chat
    if (message.text or "").startswith("/"):
        audit_refusal(update, runtime, Actor(str(person_ref(user)), row), "suspended")
    if (chat is not None and chat.type == ChatType.PRIVATE) or (message.text or "").startswith("/"):
        await reply(update, runtime.renderer.render("suspended", row.language))
    raise ApplicationHandlerStop


def install(application: Application) -> None:
    """Add the guards (groups -2 and -1) and the start-up job publishing the command menus."""
    private_input = filters.ChatType.PRIVATE & ((filters.TEXT & ~filters.COMMAND) | filters.CONTACT)
    application.add_handler(TypeHandler(Update, gatekeeper), group=-2)
    application.add_handler(MessageHandler(private_input, flow_message), group=-1)
    job_queue = application.job_queue
    assert job_queue is not None
    job_queue.run_once(publish_default_commands, when=0, name="publish_commands")


def handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    return [
        CommandHandler("start", start_command),
        CommandHandler("cancel", cancel_command),
        CommandHandler("skip", skip_command),
    ]
