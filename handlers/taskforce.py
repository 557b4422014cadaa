"""Crisis task forces in chat: ``/crisis`` and the room commands, invitations, join requests and
the room pool; written once for every channel (``handlers.conversation``).

Each flow parses the event, calls a module of ``bot.services.taskforces`` and renders a template.
Room commands find their crisis from the chat and thread they are sent in. Every press is
re-checked on the server by its rule (``bot.buttons.register``). On a channel without buttons a
press is typed: ``/thamgia 12`` or ``/khongthamgia 12`` answers an invitation (``/join``,
``/nojoin``), ``/xong 7`` closes a task (``/done``), ``/ketthuc 3`` confirms closing a crisis
(``/endcrisis``), and the people offered by ``/convene`` are numbered choices.

Join requests, the bot's own standing in a group and members added by hand are channel events,
not conversations: the channel's adapter (``bot.channels.telegram.membership``) turns them into
the plain calls at the end of this module.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.buttons import id_rule, int_id, register
from bot.channels.base import Button, DeliveryError
from bot.channels.refs import ChatRef, PersonRef
from bot.runtime import Runtime
from bot.services.commands import register_command
from bot.services.permissions import Actor, Role
from bot.services.taskforces import convening, resolve
from bot.services.taskforces.convening import convene_more, may_pick, pick_candidates
from bot.services.taskforces.crises import TaskForceError, can_resolve, display_name
from bot.services.taskforces.joining import (
    answer_invitation,
    handle_join_request,
    note_member_joined,
    owns_invitation,
)
from bot.services.taskforces.notes import add_note, post_update
from bot.services.taskforces.opening import open_crisis
from bot.services.taskforces.queries import (
    TIMELINE_SHOWN,
    CrisisView,
    agency_codes,
    crisis_for_lead,
    crisis_of_room,
    for_participant,
    lines_of_timeline,
    roster,
)
from bot.services.taskforces.resolve import may_resolve_now, resolve_crisis
from bot.services.taskforces.roles import parse_role, set_role
from bot.services.taskforces.room import BotStanding, attach_waiting, bot_standing_changed
from bot.services.taskforces.tasks import (
    TASK_DONE,
    add_task,
    can_close_task,
    complete_task,
    open_tasks,
)
from bot.templating import normalise_language
from handlers.conversation.dispatch import on_command, on_press
from handlers.conversation.turn import Turn
from storage.models import Severity

log = logging.getLogger(__name__)

TOAST_LIMIT = 190  # characters a Telegram callback answer shows
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


def _pick_rule(session: Any, actor: Actor, ident: str) -> bool:
    crisis_text, _, user_text = ident.partition("-")
    return bool(user_text) and may_pick(session, actor, int_id(crisis_text), int_id(user_text))


_answer_rule = id_rule(owns_invitation)
JOIN = register(convening.JOIN, _answer_rule, "join a crisis task force")
DECLINE = register(convening.DECLINE, _answer_rule, "decline a crisis task force")
DONE = register(TASK_DONE, id_rule(can_close_task), "close a task")
PICK = register(convening.PICK, _pick_rule, "convene a person picked from the list")
RESOLVE = register(resolve.RESOLVE, id_rule(can_resolve), "close a crisis after confirming")
# In the menus for spokespeople; open_crisis checks the right itself and says why not.
register_command("crisis", Role.SPOKESPERSON)


# --------------------------------------------------------------------------- helpers


def _error(turn: Turn, exc: TaskForceError) -> str:
    """The message for ``exc``; a refusal is audited on the way."""
    return turn.audited(exc.code, turn.render("crisis_error", code=exc.code, d=exc.details))


async def _refuse(turn: Turn, exc: TaskForceError) -> None:
    """Answer a press refused by its service (alert: the person must dismiss it)."""
    await turn.replies.notice(_error(turn, exc), alert=True)


async def _room_crisis(turn: Turn) -> int | None:
    """The crisis of the room the command was sent in, or None after saying it needs one."""
    crisis = None if turn.event.private else crisis_of_room(turn.runtime, turn.event.where)
    if crisis is None:
        await turn.say("crisis_error", code="not_in_room", d={})
    return crisis


RoomFlow = Callable[[Turn, int], Awaitable[None]]


def room_command(name: str) -> Callable[[RoomFlow], RoomFlow]:
    """A command typed in a crisis room: the flow gets the room's crisis, and a refusal of its
    service (``TaskForceError``) is answered with its message."""

    def decorate(flow: RoomFlow) -> RoomFlow:
        @on_command(name, None, listed=False)  # /help lists the room commands (ROOM_COMMANDS)
        @functools.wraps(flow)
        async def command(turn: Turn) -> None:
            crisis_id = await _room_crisis(turn)
            if crisis_id is None:
                return
            try:
                await flow(turn, crisis_id)
            except TaskForceError as exc:
                await turn.replies.say(_error(turn, exc))

        return flow

    return decorate


def parse_crisis_args(
    words: Sequence[str], agency_codes: set[str]
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


@on_command("crisis", None, listed=False)
async def crisis_command(turn: Turn) -> None:
    if not turn.event.private:
        await turn.say("crisis_error", code="private_only", d={})
        return
    runtime = turn.runtime
    if not turn.event.args:
        await turn.say("crisis_list", crises=crisis_for_lead(runtime, turn.actor.user_id))
        return
    codes = agency_codes(runtime)
    code, severity, usernames, title = parse_crisis_args(turn.event.args, set(codes))
    try:
        opened = await open_crisis(
            runtime,
            turn.actor,
            title,
            severity,
            agency_id=codes.get(code) if code else None,
            usernames=usernames,
        )
    except TaskForceError as exc:
        await turn.replies.say(_error(turn, exc))
        return
    await turn.say("crisis_opened", o=opened)


# --------------------------------------------------------------------------- invitations


async def _answer(turn: Turn, ident: str, join: bool) -> None:
    try:
        answer = await answer_invitation(turn.runtime, turn.actor, int_id(ident), join)
    except TaskForceError as exc:
        await _refuse(turn, exc)
        return
    await turn.replies.notice()
    text = turn.render("crisis_invite_answer", a=answer, join=join)
    buttons = None if join else [[Button(turn.render("tf_button_join"), JOIN.name, ident)]]
    await turn.replies.replace(turn.event.message, text, buttons)  # typed: a new message


@on_press(JOIN, command="thamgia", aliases=("join",))
async def join_pressed(turn: Turn, ident: str) -> None:
    await _answer(turn, ident, True)


@on_press(DECLINE, command="khongthamgia", aliases=("nojoin",))
async def decline_pressed(turn: Turn, ident: str) -> None:
    await _answer(turn, ident, False)


# --------------------------------------------------------------------------- room commands


@room_command("role")
async def role_command(turn: Turn, crisis_id: int) -> None:
    words = turn.event.args
    if len(words) < 2 or not words[0].startswith("@"):
        await turn.say("crisis_error", code="role_usage", d={})
        return
    wanted = parse_role(" ".join(words[1:]))
    person, role = set_role(turn.runtime, turn.actor, crisis_id, words[0], wanted)
    await turn.say("crisis_role_set", person=person, role=role)


@room_command("task")
async def task_command(turn: Turn, crisis_id: int) -> None:
    view = add_task(turn.runtime, turn.actor, crisis_id, " ".join(turn.event.args))
    done = Button(turn.render("tf_button_done"), DONE.name, view.task.id or 0)
    await turn.replies.say(turn.render("task_added", t=view), [[done]])


@on_press(DONE, command="xong", aliases=("done",))
async def done_pressed(turn: Turn, ident: str) -> None:
    try:
        view, _changed = complete_task(turn.runtime, turn.actor, int_id(ident))
    except TaskForceError as exc:
        await _refuse(turn, exc)
        return
    await turn.replies.notice()
    await turn.replies.replace(turn.event.message, turn.render("task_done", t=view))


def _room_view(view: CrisisView[Any], template: str, name: str) -> RoomFlow:
    """A read-only view of the room's crisis for its participants, rendered as ``template``
    with the crisis as ``c`` and the view as ``name``."""

    async def flow(turn: Turn, crisis_id: int) -> None:
        crisis, shown = for_participant(turn.runtime, turn.actor, crisis_id, view)
        await turn.say(template, c=crisis, **{name: shown})

    return flow


tasks_command = room_command("tasks")(_room_view(open_tasks, "task_list", "tasks"))
timeline_command = room_command("timeline")(
    _room_view(functools.partial(lines_of_timeline, limit=TIMELINE_SHOWN), "timeline_list", "lines")
)
roster_command = room_command("roster")(_room_view(roster, "crisis_roster", "lines"))


@room_command("update")
async def update_command(turn: Turn, crisis_id: int) -> None:
    post_update(turn.runtime, turn.actor, crisis_id, " ".join(turn.event.args))
    await turn.say("timeline_updated")


@room_command("note")
async def note_command(turn: Turn, crisis_id: int) -> None:
    """``/note text``, or ``/note`` in reply to a message of the room (noted with its author)."""
    event = turn.event
    quoted = event.reply_to
    text = (event.reply_text or " ".join(event.args)) if quoted else " ".join(event.args)
    noted = quoted or event.message
    add_note(
        turn.runtime,
        turn.actor,
        crisis_id,
        text,
        message_id=noted.message_id if noted else None,
        author=event.reply_author if quoted else None,
    )
    await turn.say("timeline_noted")


@room_command("convene")
async def convene_command(turn: Turn, crisis_id: int) -> None:
    words = turn.event.args
    names = [w for w in words if w.startswith("@")]
    if words and not names:
        await turn.say("crisis_error", code="convene_usage", d={})
        return
    if names:
        invited, unknown = await convene_more(turn.runtime, turn.actor, crisis_id, usernames=names)
        await turn.say("crisis_convened", invited=invited, unknown=unknown)
        return
    crisis, people = for_participant(turn.runtime, turn.actor, crisis_id, pick_candidates)
    buttons = [[Button(display_name(p), PICK.name, f"{crisis_id}-{p.id}")] for p in people]
    await turn.replies.say(turn.render("crisis_pick", c=crisis, count=len(people)), buttons)


@on_press(PICK)  # numbered choices where there are no buttons
async def pick_pressed(turn: Turn, ident: str) -> None:
    crisis_text, _, user_text = ident.partition("-")
    try:
        invited, _unknown = await convene_more(
            turn.runtime, turn.actor, int_id(crisis_text), user_ids=[int_id(user_text)]
        )
    except TaskForceError as exc:
        await _refuse(turn, exc)
        return
    await turn.replies.notice(
        turn.render("crisis_convened", invited=invited, unknown=[])[:TOAST_LIMIT]
    )


@room_command("resolve")
async def resolve_command(turn: Turn, crisis_id: int) -> None:
    crisis = may_resolve_now(turn.runtime, turn.actor, crisis_id)
    # Closing cannot be undone (the room is handed back, the report is sent): ask first.
    confirm = Button(turn.render("crisis_resolve_button"), RESOLVE.name, crisis_id)
    await turn.replies.say(turn.render("crisis_resolve_confirm", c=crisis), [[confirm]])


@on_press(RESOLVE, command="ketthuc", aliases=("endcrisis",))
async def resolve_pressed(turn: Turn, ident: str) -> None:
    # Answer at once: closing (the report, handing the room back) takes longer than Telegram
    # waits for an answer. The rule already checked that this person may close it.
    await turn.replies.notice()
    try:
        await turn.replies.clear_buttons(turn.event.message)
    except DeliveryError as exc:
        log.info("could not take the confirm button off: %s", exc)
    try:
        await resolve_crisis(turn.runtime, turn.actor, int_id(ident))
    except TaskForceError as exc:  # closed meanwhile, or the right was lost since
        await turn.replies.say(_error(turn, exc))


# --------------------------------------------------------------------------- channel events


async def join_requested(
    runtime: Runtime, chat: ChatRef, who: PersonRef, invite_link: str | None
) -> None:
    """Someone asked to join a room through its link: approved if convened, else declined."""
    try:
        await handle_join_request(runtime, chat=chat, who=who, invite_link=invite_link)
    except Exception:
        log.exception("join request of %s to %s", who, chat.chat_id)


def members_added(runtime: Runtime, chat: ChatRef, people: Sequence[PersonRef]) -> None:
    """People appeared in a room by other means (added by an admin)."""
    for person in people:
        note_member_joined(runtime, chat=chat, who=person)


async def bot_standing(runtime: Runtime, standing: BotStanding, language: str | None) -> None:
    """The bot was added to a group, given or refused rights in it, or removed: the group
    hears whether it joined the room pool (in the language of whoever changed it)."""
    news = await bot_standing_changed(runtime, standing)
    if news is None:
        return
    lang = normalise_language(language)
    if news.change.state == "free":
        await _say(runtime, standing.chat, "tf_pool_registered", lang, free=news.free)
        await attach_waiting(runtime)
    elif news.change.missing and standing.status in ("administrator", "member"):
        await _say(runtime, standing.chat, "tf_pool_missing", lang, missing=news.change.missing)


async def _say(runtime: Runtime, chat: ChatRef, template: str, lang: str, **context: Any) -> None:
    try:
        await runtime.notifier.send_text(chat, runtime.renderer.render(template, lang, **context))
    except DeliveryError as exc:
        log.info("could not post in %s: %s", chat.chat_id, exc)
