"""Crisis task forces in chat: ``/crisis`` and the room commands, invitations, join requests and
the room pool.

Thin by design: each handler parses the update, calls a module of ``bot.services.taskforces``
(or ``rooms``) and renders a template. Room commands find their crisis from the chat and forum
topic they are sent in. Every button is re-checked on the server by its rule
(``bot.buttons.register``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, select
from telegram import Chat, Update
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    BaseHandler,
    ChatJoinRequestHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.buttons import int_id, register
from bot.channels.base import Button
from bot.channels.telegram.notifier import chat_ref, keyboard, message_ref, person_ref
from bot.runtime import Runtime
from bot.services import room_rights, rooms
from bot.services.commands import register_command
from bot.services.permissions import Actor
from bot.services.taskforces import convening, resolve
from bot.services.taskforces.convening import convene_more, may_convene, pick_candidates
from bot.services.taskforces.crises import (
    TaskForceError,
    display_name,
    is_participant,
    may_resolve,
)
from bot.services.taskforces.joining import (
    answer_invitation,
    handle_join_request,
    note_member_joined,
)
from bot.services.taskforces.notes import add_note, post_update
from bot.services.taskforces.opening import open_crisis
from bot.services.taskforces.queries import (
    TIMELINE_SHOWN,
    crisis_for_lead,
    for_participant,
    lines_of_timeline,
    roster,
)
from bot.services.taskforces.resolve import resolve_crisis
from bot.services.taskforces.roles import parse_role, set_role
from bot.services.taskforces.room import attach_waiting
from bot.services.taskforces.tasks import (
    TASK_DONE,
    add_task,
    can_close_task,
    complete_task,
    open_tasks,
)
from handlers.buttons import on_button
from handlers.common import actor_of, audited, language_of, reply, runtime_of
from storage.models import Agency, Crisis, CrisisMember, Role, Severity, User

log = logging.getLogger(__name__)

SEVERITY_WORDS = {
    "critical": Severity.CRITICAL,
    "khẩn": Severity.CRITICAL,
    "khan": Severity.CRITICAL,
    "khẩncấp": Severity.CRITICAL,
    "warning": Severity.WARNING,
    "cảnhbáo": Severity.WARNING,
    "info": Severity.INFO,
    "theodõi": Severity.INFO,
}
_USERNAME = re.compile(r"^@[A-Za-z0-9_]{1,64}$")


# --------------------------------------------------------------------------- button rules


def _owns_invitation(session: Any, actor: Actor, ident: str) -> bool:
    member = session.get(CrisisMember, int_id(ident))
    return actor.active and member is not None and member.user_id == actor.user_id


def _may_close_task(session: Any, actor: Actor, ident: str) -> bool:
    return can_close_task(session, actor, int_id(ident))


def _may_resolve(session: Any, actor: Actor, ident: str) -> bool:
    try:
        may_resolve(session, actor, int_id(ident))
    except TaskForceError:
        return False
    return True


def _may_pick(session: Any, actor: Actor, ident: str) -> bool:
    crisis_text, _, user_text = ident.partition("-")
    crisis = session.get(Crisis, int_id(crisis_text)) if user_text else None
    return (
        crisis is not None
        and is_participant(session, actor, crisis)
        and may_convene(crisis, session.get(User, int_id(user_text)))
    )


JOIN = register(convening.JOIN, _owns_invitation, "join a crisis task force")
DECLINE = register(convening.DECLINE, _owns_invitation, "decline a crisis task force")
DONE = register(TASK_DONE, _may_close_task, "close a task")
PICK = register(convening.PICK, _may_pick, "convene a person picked from the list")
RESOLVE = register(
    resolve.RESOLVE,
    lambda s, actor, ident: _may_resolve(s, actor, ident),
    "close a crisis after confirming",
)
register_command("crisis", Role.SPOKESPERSON)  # the room commands are used in the room itself


# --------------------------------------------------------------------------- helpers


def _error(update: Update, runtime: Runtime, actor: Actor, lang: str, exc: TaskForceError) -> str:
    """The message for ``exc``; a refusal is audited on the way."""
    text = runtime.renderer.render("crisis_error", lang, code=exc.code, d=exc.details)
    return audited(update, runtime, actor, exc.code, text)


def _room_crisis_id(update: Update, runtime: Runtime) -> int | None:
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or chat.type == Chat.PRIVATE:
        return None
    with runtime.db.session() as session:
        crisis = rooms.crisis_in_room(session, message_ref(message).chat)
        return crisis.id if crisis else None


async def _in_room(
    update: Update, context: ContextTypes.DEFAULT_TYPE
) -> tuple[Runtime, Actor, str, int] | None:
    """Common start of a room command: the runtime, actor, language and crisis (or a reply)."""
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    crisis_id = _room_crisis_id(update, runtime)
    if crisis_id is None:
        await reply(update, runtime.renderer.render("crisis_error", lang, code="not_in_room", d={}))
        return None
    return runtime, actor, lang, crisis_id


def _args(context: ContextTypes.DEFAULT_TYPE) -> list[str]:
    return list(context.args or [])


def parse_crisis_args(
    words: list[str], agency_codes: set[str]
) -> tuple[str | None, str, list[str], str]:
    """``/crisis [AGENCY] [severity] title [@people …]`` → (agency code, severity, usernames,
    title). Severity and agency code are recognised only before the title."""
    agency: str | None = None
    severity: str = Severity.WARNING
    usernames = [w for w in words if _USERNAME.match(w)]
    rest = [w for w in words if not _USERNAME.match(w)]
    for _ in range(2):
        if not rest:
            break
        head = rest[0]
        key = head.lower().strip("!:[]")
        if (
            agency is None
            and head.strip("[]:").upper() in agency_codes
            and head.strip("[]:").isupper()
        ):
            agency = head.strip("[]:").upper()
            rest = rest[1:]
        elif key in SEVERITY_WORDS and severity == Severity.WARNING and len(rest) > 1:
            severity = SEVERITY_WORDS[key]
            rest = rest[1:]
    return agency, severity, usernames, " ".join(rest)


# --------------------------------------------------------------------------- /crisis


async def crisis_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    chat = update.effective_chat
    if chat is None or chat.type != Chat.PRIVATE:
        await reply(
            update, runtime.renderer.render("crisis_error", lang, code="private_only", d={})
        )
        return
    words = _args(context)
    if not words:
        with runtime.db.session() as session:
            crises = crisis_for_lead(session, actor.user_id)
        await reply(update, runtime.renderer.render("crisis_list", lang, crises=crises))
        return
    with runtime.db.session() as session:
        codes = {a.code: a.id for a in session.exec(select(Agency))}
    code, severity, usernames, title = parse_crisis_args(words, set(codes))
    try:
        opened = await open_crisis(
            runtime,
            actor,
            title,
            severity,
            agency_id=codes.get(code) if code else None,
            usernames=usernames,
        )
    except TaskForceError as exc:
        await reply(update, _error(update, runtime, actor, lang, exc))
        return
    await reply(update, runtime.renderer.render("crisis_opened", lang, o=opened))


# --------------------------------------------------------------------------- invitations


async def _answer(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str, join: bool
) -> None:
    query = update.callback_query
    assert query is not None
    runtime = runtime_of(context)
    lang = language_of(update, actor)
    try:
        answer = await answer_invitation(runtime, actor, int_id(ident), join)
    except TaskForceError as exc:
        await query.answer(_error(update, runtime, actor, lang, exc), show_alert=True)
        return
    await query.answer()
    text = runtime.renderer.render("crisis_invite_answer", lang, a=answer, join=join)
    buttons = None
    if not join:
        buttons = [[Button(runtime.renderer.render("tf_button_join", lang), JOIN.name, ident)]]
    if query.message is not None:
        await query.edit_message_text(
            text,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(buttons),
            disable_web_page_preview=True,
        )


@on_button(JOIN.name)
async def join_pressed(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    await _answer(update, context, actor, ident, True)


@on_button(DECLINE.name)
async def decline_pressed(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    await _answer(update, context, actor, ident, False)


async def join_request(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    request = update.chat_join_request
    if request is None:
        return
    runtime = runtime_of(context)
    link = request.invite_link.invite_link if request.invite_link else None
    try:
        await handle_join_request(
            runtime,
            chat=chat_ref(request.chat.id),
            who=person_ref(request.from_user),
            invite_link=link,
        )
    except Exception:
        log.exception("join request of %s to %s", request.from_user.id, request.chat.id)


# --------------------------------------------------------------------------- the pool


async def bot_membership(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    change = update.my_chat_member
    if change is None:
        return
    runtime = runtime_of(context)
    new = change.new_chat_member
    status = "administrator" if new.status == ChatMemberStatus.ADMINISTRATOR else str(new.status)
    chat = chat_ref(change.chat.id)
    by = person_ref(change.from_user) if change.from_user else None
    with runtime.db.session() as session:
        hub = rooms.is_hub(session, runtime.settings, chat)
    if hub:  # a change of the bot's rights in a hub is reported at once
        await room_rights.hub_rights_changed(
            runtime,
            chat=chat,
            title=change.chat.title or "",
            status=status,
            rights={r: bool(getattr(new, r, False)) for r in room_rights.HUB_NEEDS},
            by=by,
        )
        return
    rights = {r: bool(getattr(new, r, False)) for r in rooms.POOL_RIGHTS}
    with runtime.db.session() as session:
        result = rooms.register_group(
            session,
            runtime.settings,
            chat=chat,
            title=change.chat.title or "",
            chat_type=change.chat.type,
            status=status,
            rights=rights,
            by=by,
            now=runtime.clock.now(),
        )
        free = rooms.pool_counts(session).get("free", 0)
    lang = language_of(update, None)
    if result.state == "free":
        await _say(
            context, change.chat.id, runtime.renderer.render("tf_pool_registered", lang, free=free)
        )
        await attach_waiting(runtime)
    elif result.missing and new.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER):
        await _say(
            context,
            change.chat.id,
            runtime.renderer.render("tf_pool_missing", lang, missing=result.missing),
        )


async def _say(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str) -> None:
    try:
        await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
    except Exception as exc:
        log.info("could not post in %s: %s", chat_id, exc)


async def members_arrived(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or not message.new_chat_members:
        return
    runtime = runtime_of(context)
    for person in message.new_chat_members:
        if not person.is_bot:
            note_member_joined(runtime, chat=chat_ref(message.chat_id), who=person_ref(person))


# --------------------------------------------------------------------------- room commands


async def role_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    room = await _in_room(update, context)
    if room is None:
        return
    runtime, actor, lang, crisis_id = room
    words = _args(context)
    if len(words) < 2 or not words[0].startswith("@"):
        await reply(update, runtime.renderer.render("crisis_error", lang, code="role_usage", d={}))
        return
    try:
        wanted = parse_role(" ".join(words[1:]))
        person, role = set_role(runtime, actor, crisis_id, words[0], wanted)
    except TaskForceError as exc:
        await reply(update, _error(update, runtime, actor, lang, exc))
        return
    await reply(update, runtime.renderer.render("crisis_role_set", lang, person=person, role=role))


async def task_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    room = await _in_room(update, context)
    if room is None:
        return
    runtime, actor, lang, crisis_id = room
    text = " ".join(_args(context))
    try:
        view = add_task(runtime, actor, crisis_id, text)
    except TaskForceError as exc:
        await reply(update, _error(update, runtime, actor, lang, exc))
        return
    message = update.effective_message
    assert message is not None
    label = runtime.renderer.render("tf_button_done", lang)
    await message.reply_text(
        runtime.renderer.render("task_added", lang, t=view),
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard([[Button(label, DONE.name, view.task.id or 0)]]),
        do_quote=False,
    )


async def _room_view(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    view: Callable[[Session, int], Any],
    template: str,
    name: str,
) -> None:
    """A read-only view of the room's crisis for its participants, rendered as ``template``
    with the crisis as ``c`` and the view as ``name``."""
    room = await _in_room(update, context)
    if room is None:
        return
    runtime, actor, lang, crisis_id = room
    try:
        crisis, shown = for_participant(runtime, actor, crisis_id, view)
    except TaskForceError as exc:
        await reply(update, _error(update, runtime, actor, lang, exc))
        return
    await reply(update, runtime.renderer.render(template, lang, c=crisis, **{name: shown}))


async def tasks_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _room_view(update, context, open_tasks, "task_list", "tasks")


@on_button(DONE.name)
async def done_pressed(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    query = update.callback_query
    assert query is not None
    runtime = runtime_of(context)
    lang = language_of(update, actor)
    try:
        view, _changed = complete_task(runtime, actor, int_id(ident))
    except TaskForceError as exc:
        await query.answer(_error(update, runtime, actor, lang, exc), show_alert=True)
        return
    await query.answer()
    if query.message is not None:
        await query.edit_message_text(
            runtime.renderer.render("task_done", lang, t=view), parse_mode=ParseMode.HTML
        )


async def update_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    room = await _in_room(update, context)
    if room is None:
        return
    runtime, actor, lang, crisis_id = room
    try:
        post_update(runtime, actor, crisis_id, " ".join(_args(context)))
    except TaskForceError as exc:
        await reply(update, _error(update, runtime, actor, lang, exc))
        return
    await reply(update, runtime.renderer.render("timeline_updated", lang))


async def note_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    room = await _in_room(update, context)
    if room is None:
        return
    runtime, actor, lang, crisis_id = room
    message = update.effective_message
    assert message is not None
    target = message.reply_to_message
    # In a forum topic every message "replies" to the topic's creation message: not a note.
    if target is not None and target.forum_topic_created is not None:
        target = None
    text = " ".join(_args(context))
    author = None
    if target is not None:
        text = target.text or target.caption or text
        if target.from_user is not None:
            author = target.from_user.full_name
    try:
        add_note(
            runtime,
            actor,
            crisis_id,
            text,
            message_id=target.message_id if target else message.message_id,
            author=author,
        )
    except TaskForceError as exc:
        await reply(update, _error(update, runtime, actor, lang, exc))
        return
    await reply(update, runtime.renderer.render("timeline_noted", lang))


async def timeline_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    recent = functools.partial(lines_of_timeline, limit=TIMELINE_SHOWN)
    await _room_view(update, context, recent, "timeline_list", "lines")


async def roster_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _room_view(update, context, roster, "crisis_roster", "lines")


async def convene_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    room = await _in_room(update, context)
    if room is None:
        return
    runtime, actor, lang, crisis_id = room
    words = _args(context)
    names = [w for w in words if w.startswith("@")]
    if words and not names:
        await reply(
            update, runtime.renderer.render("crisis_error", lang, code="convene_usage", d={})
        )
        return
    if not names:
        try:
            crisis, people = for_participant(runtime, actor, crisis_id, pick_candidates)
        except TaskForceError as exc:
            await reply(update, _error(update, runtime, actor, lang, exc))
            return
        buttons = [[Button(display_name(p), PICK.name, f"{crisis_id}-{p.id}")] for p in people]
        message = update.effective_message
        assert message is not None
        await message.reply_text(
            runtime.renderer.render("crisis_pick", lang, c=crisis, count=len(people)),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(buttons),
            do_quote=False,
        )
        return
    try:
        invited, unknown = await convene_more(runtime, actor, crisis_id, usernames=names)
    except TaskForceError as exc:
        await reply(update, _error(update, runtime, actor, lang, exc))
        return
    await reply(
        update, runtime.renderer.render("crisis_convened", lang, invited=invited, unknown=unknown)
    )


@on_button(PICK.name)
async def pick_pressed(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    query = update.callback_query
    assert query is not None
    runtime = runtime_of(context)
    lang = language_of(update, actor)
    crisis_text, _, user_text = ident.partition("-")
    try:
        invited, _unknown = await convene_more(
            runtime, actor, int_id(crisis_text), user_ids=[int_id(user_text)]
        )
    except TaskForceError as exc:
        await query.answer(_error(update, runtime, actor, lang, exc), show_alert=True)
        return
    await query.answer(
        runtime.renderer.render("crisis_convened", lang, invited=invited, unknown=[])[:190]
    )


async def resolve_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    room = await _in_room(update, context)
    if room is None:
        return
    runtime, actor, lang, crisis_id = room
    try:
        with runtime.db.session() as session:
            crisis = may_resolve(session, actor, crisis_id)
    except TaskForceError as exc:
        await reply(update, _error(update, runtime, actor, lang, exc))
        return
    # Closing cannot be undone (the room is handed back, the report is sent): ask first.
    text = runtime.renderer.render("crisis_resolve_confirm", lang, c=crisis)
    button = runtime.renderer.render("crisis_resolve_button", lang)
    await reply(update, text, [[Button(button, RESOLVE.name, crisis_id)]])


@on_button(RESOLVE.name)
async def resolve_pressed(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    query = update.callback_query
    assert query is not None
    runtime = runtime_of(context)
    lang = language_of(update, actor)
    # Answer at once: closing (the report, handing the room back) takes longer than Telegram
    # waits for an answer. The button rule already checked that this person may close it.
    await query.answer()
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(None)
    try:
        await resolve_crisis(runtime, actor, int_id(ident))
    except TaskForceError as exc:  # closed meanwhile, or the right was lost since
        await reply(update, _error(update, runtime, actor, lang, exc))


class _GroupBotMembership(ChatMemberHandler[ContextTypes.DEFAULT_TYPE, None]):
    """``my_chat_member`` in groups only: private-chat blocks belong to other modules."""

    def check_update(self, update: object) -> bool:
        if not super().check_update(update):
            return False
        chat = update.effective_chat if isinstance(update, Update) else None
        return chat is not None and chat.type in (Chat.GROUP, Chat.SUPERGROUP)


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    group = filters.ChatType.GROUPS
    return [
        CommandHandler("crisis", crisis_command),
        CommandHandler("role", role_command, filters=group),
        CommandHandler("task", task_command, filters=group),
        CommandHandler("tasks", tasks_command, filters=group),
        CommandHandler("update", update_command, filters=group),
        CommandHandler("note", note_command, filters=group),
        CommandHandler("timeline", timeline_command, filters=group),
        CommandHandler("roster", roster_command, filters=group),
        CommandHandler("convene", convene_command, filters=group),
        CommandHandler("resolve", resolve_command, filters=group),
        ChatJoinRequestHandler(join_request),
        _GroupBotMembership(bot_membership, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.NEW_CHAT_MEMBERS, members_arrived),
    ]
