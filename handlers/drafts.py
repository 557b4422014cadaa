"""Press-response drafts in chat: ``/draft``, ``/set``, ``/history``, ``/pin``, Edit and Discard,
and the answers to the questions they ask; written once for every channel
(``handlers.conversation``).

Thin on purpose: parse the event, call ``bot.services.drafts`` / ``approvals``, render a message
template. Questions (a field to fill, a reason, a PIN) are answered by *replying* where the
channel has replies, because in a room under privacy mode the bot sees only commands and replies
to its own messages; elsewhere the next plain text in the chat answers them
(``degrade.answers_question``). The conversation itself is a ``ConversationState`` row committed
before each question, so a restart resumes it.

A new full text for a version is a reply to it; on a channel without replies it is typed as the
Edit button's short command, ``/sua <id> <toàn văn mới>`` (``/edit`` in English). Discard is
``/huydt <id>`` there.
"""

from __future__ import annotations

from typing import Any

from bot.buttons import register
from bot.channels.base import Button
from bot.channels.refs import ChatRef
from bot.runtime import Runtime
from bot.services import approvals as ap
from bot.services import drafts as dr
from bot.services import press_templates as pt
from bot.services.commands import register_command
from bot.services.permissions import Role
from handlers.approvals import SUBMIT, answer_state, draft_id, drafter_rule
from handlers.conversation.degrade import answers_question
from handlers.conversation.dispatch import on_command, on_message, on_press
from handlers.conversation.turn import Turn
from storage.models import ConversationState

register_command("draft", Role.MEMBER)  # used in a crisis room; listed so people find it

EDIT = register("draft.edit", drafter_rule, "how to edit a draft")
DISCARD = register("draft.discard", drafter_rule, "discard a draft")
EDIT_COMMAND = "sua"


# --------------------------------------------------------------------------- helpers


def _refs(turn: Turn) -> tuple[str, str]:
    """The conversation row's keys: the chat (and forum topic) and the sender's label."""
    return dr.chat_key(turn.event.where), str(turn.event.who)


def _typed(turn: Turn) -> bool:
    """Whether questions and edits are typed here rather than replies (the templates' say)."""
    return not turn.replies.capabilities.replies


def _how_to_edit(turn: Turn) -> dict[str, Any]:
    """What the templates saying how to edit need: typed, the typed command goes with the id."""
    return {"typed": _typed(turn), "command": EDIT_COMMAND}


def _error(turn: Turn, code: str, **ctx: Any) -> str:
    return turn.render("draft_error", code=code, ctx=ctx)


def _refusal(turn: Turn, exc: dr.DraftError) -> str:
    """The message for a refused step, audited if it was a refusal of right."""
    return turn.audited(exc.code, _error(turn, exc.code, **exc.context))


def draft_buttons(runtime: Runtime, lang: str, draft_id: int) -> list[list[Button]]:
    def label(which: str) -> str:
        return runtime.renderer.render("draft_label", lang, which=which)

    return [
        [
            Button(label("edit"), EDIT.name, draft_id),
            Button(label("submit"), SUBMIT.name, draft_id),
        ],
        [Button(label("discard"), DISCARD.name, draft_id)],
    ]


async def post_draft(
    turn: Turn, draft_id: int, lang: str, diff: dr.DiffSummary | None = None
) -> None:
    """Show a version in its room with Edit / Submit / Discard."""
    runtime = turn.runtime
    draft, title = dr.titled_version(runtime, draft_id)
    header = runtime.renderer.render(
        "draft_header",
        lang,
        draft=draft,
        title=title,
        diff=diff.as_dict() if diff else None,
        **_how_to_edit(turn),
    )
    await dr.post_version(
        runtime, draft_id, header=header, buttons=draft_buttons(runtime, lang, draft_id)
    )


def _prompt(turn: Turn, started: dr.Started) -> str:
    return turn.render(
        "draft_prompt", prompt=started.prompt, prefilled=started.prefilled, typed=_typed(turn)
    )


def _start(turn: Turn, crisis_id: int, kind: str, lang: str) -> tuple[dr.Started, ChatRef]:
    """Start statement ``kind`` in ``lang`` for the crisis, asked in its room."""
    who = str(turn.event.who)
    return dr.begin_in_room(turn.runtime, crisis_id, turn.actor, kind, lang, turn.lang, who)


async def _after_fill(turn: Turn, started: dr.Started, room: ChatRef | None = None) -> None:
    """Ask the next question (in this chat, or in ``room`` when the person is elsewhere), or
    show the finished first version."""
    if started.prompt is not None:
        text = _prompt(turn, started)
        if room is None:
            asked = await turn.replies.ask(text)
        else:
            asked = await turn.runtime.notifier.send_text(room, text)
        if asked is not None:
            dr.note_prompt(turn.runtime, started.prompt.state_id, asked.message_id)
    elif started.draft is not None and started.draft.id is not None:
        await post_draft(turn, started.draft.id, turn.lang)


# --------------------------------------------------------------------------- commands


@on_command("draft", None, listed=False)
async def draft_command(turn: Turn) -> None:
    runtime = turn.runtime
    args = [a.lower() for a in turn.event.args]
    chat_ref, user_ref = _refs(turn)
    templates = dr.library(runtime)
    if args[:1] == ["cancel"]:
        done = dr.cancel_own_fill(runtime, chat_ref, user_ref)
        await turn.say("draft_notice", code="cancelled" if done else "nothing")
        return
    crisis_id = dr.room_crisis_id(runtime, turn.event.where)
    if crisis_id is None:
        await turn.replies.say(_error(turn, "draft_not_room"))
        return
    lang = turn.lang
    if not args:
        kinds = [
            (pt.kind_word(k, lang), templates.get(k, lang).title) for k in templates.kinds(lang)
        ]
        await turn.say("draft_usage", kinds=kinds)
        return
    statement_lang = args[1] if len(args) > 1 and args[1] in ("vi", "en") else lang
    try:
        started, _room = _start(turn, crisis_id, pt.kind_from_word(args[0]), statement_lang)
    except dr.DraftError as exc:
        await turn.replies.say(_refusal(turn, exc))
        return
    await _after_fill(turn, started)


async def _edit(
    turn: Turn, draft_id: int, *, body: str | None = None, set_text: str | None = None
) -> None:
    runtime = turn.runtime
    try:
        fresh, previous, diff = dr.edit_version(
            runtime, draft_id, turn.actor, turn.lang, body, set_text
        )
    except dr.DraftError as exc:
        await turn.replies.say(_refusal(turn, exc))
        return
    if previous.status == "superseded":
        await ap.announce_superseded(runtime, previous, fresh)
    assert fresh.id is not None
    await post_draft(turn, fresh.id, turn.lang, diff)


@on_command("set", None, listed=False)
async def set_command(turn: Turn) -> None:
    # The field may be several words ("Cập nhật tiếp theo"): the service tells it from the value.
    rest = turn.event.text.partition(" ")[2].strip()
    crisis, target = dr.statement_to_set(turn.runtime, turn.event.where, turn.event.reply_to)
    if crisis is None:
        await turn.replies.say(_error(turn, "draft_not_room"))
    elif target is None or target.id is None:
        await turn.replies.say(_error(turn, "draft_no_draft"))
    else:
        await _edit(turn, target.id, set_text=rest)


@on_command("history", None, listed=False)
async def history_command(turn: Turn) -> None:
    args = turn.event.args
    number = int(args[0].lstrip("#")) if args and args[0].lstrip("#").isdigit() else None
    found = dr.statement_history(turn.runtime, turn.actor, turn.event.where, number)
    if found.problem:
        text = _error(turn, found.problem, number=number)
        await turn.replies.say(turn.audited(found.problem, text))
        return
    await turn.say("history_statement", number=number, title=found.title, entries=found.entries)


@on_command("pin", None, listed=False)
async def pin_command(turn: Turn) -> None:
    if not turn.event.private:
        await turn.say("pin_message", code="pin_private_only")
        return
    if turn.actor.user is None or not turn.actor.active:
        turn.audit_refusal("not_registered")
        await turn.say("pin_message", code="pin_not_registered")
        return
    chat_ref, user_ref = _refs(turn)
    await _ask_pin(
        turn,
        ap.open_question(turn.runtime, chat_ref, user_ref, ap.FLOW_PIN_SET, "new", {}),
        "pin_new",
    )


async def _ask_pin(turn: Turn, state_id: int | None, code: str) -> None:
    asked = await turn.replies.ask(turn.render("pin_message", code=code, typed=_typed(turn)))
    if asked is not None:
        dr.note_prompt(turn.runtime, state_id, asked.message_id)


# --------------------------------------------------------------------------- answers


@on_message
async def answer_message(turn: Turn) -> bool:
    """Text answering the bot: a field to fill or a new full text (in a room), a reason or a
    PIN (in private). Taken only when the person has such a question open."""
    if not answers_question(turn.replies.capabilities, turn.event):
        return False
    if turn.event.private:
        return await _private_answer(turn)
    return await _room_answer(turn)


async def _room_answer(turn: Turn) -> bool:
    runtime = turn.runtime
    _chat_ref, user_ref = _refs(turn)
    edited, state = dr.room_answer_target(runtime, turn.event.where, user_ref, turn.event.reply_to)
    if edited is not None and edited.id is not None:
        await _edit(turn, edited.id, body=turn.event.text)
        return True
    if state is None:
        return False
    try:
        started = dr.answer_question(runtime, state.id, turn.event.text)
    except dr.DraftError as exc:
        await turn.replies.ask(_refusal(turn, exc))
        return True
    if started is not None:
        await _after_fill(turn, started)
    return True


async def _private_answer(turn: Turn) -> bool:
    chat_ref, user_ref = _refs(turn)
    replied = turn.event.reply_to
    prompt_id = replied.message_id if replied else None
    state = ap.private_question(turn.runtime, chat_ref, user_ref, prompt_id)
    if state is None or turn.actor.user_id is None:
        return False
    if state.flow in (ap.FLOW_PIN_SET, ap.FLOW_PIN_APPROVE):
        await turn.replies.forget(turn.event.message)  # the PIN should not stay on screen
    if state.flow == ap.FLOW_PIN_SET:
        await _pin_answer(turn, state, turn.actor.user_id)
    else:
        await answer_state(turn, state, turn.event.text)
    return True


async def _pin_answer(turn: Turn, state: ConversationState, user_id: int) -> None:
    code, waiting = ap.answer_pin(turn.runtime, state.id, user_id, turn.event.text)
    if waiting is None:
        await turn.say("pin_message", code=code, typed=_typed(turn))
    else:
        await _ask_pin(turn, waiting, code)


# --------------------------------------------------------------------------- drafter buttons


@on_press(EDIT, command=EDIT_COMMAND, free_text=True, aliases=("edit",))
async def edit_pressed(turn: Turn, ident: str) -> None:
    """How to edit; typed with a text after the id (``/sua 45 <toàn văn>``), that text is the
    new version, as a reply to the draft would be where the channel has replies."""
    found = draft_id(ident)
    words = turn.event.text.split(maxsplit=2) if turn.event.command else []
    if len(words) > 2 and words[2].strip():
        await turn.replies.notice()
        await _edit(turn, found, body=words[2])
        return
    number, fields = dr.parts_to_edit(turn.runtime, found, turn.lang)
    await turn.replies.notice()
    await turn.say(
        "draft_edit_help", number=number, fields=fields, draft_id=found, **_how_to_edit(turn)
    )


@on_press(DISCARD, command="huydt", aliases=("discard",))
async def discard_pressed(turn: Turn, ident: str) -> None:
    runtime = turn.runtime
    try:
        discarded, room = dr.discard_version(runtime, draft_id(ident), turn.actor)
    except dr.DraftError as exc:
        await turn.replies.notice(_error(turn, exc.code, **exc.context)[:190], alert=True)
        return
    await turn.replies.notice()
    await ap.close_requests(
        runtime, discarded.id or 0, "closed", number=discarded.number, version=discarded.version
    )
    if room is not None:
        who = turn.actor.user.full_name if turn.actor.user else ""
        text = turn.render("draft_notice", code="discarded", number=discarded.number, who=who)
        await runtime.notifier.send_text(room, text)


# --------------------------------------------------------------------------- for other areas


async def start_in_room(turn: Turn, crisis_id: int, kind: str = "holding") -> str | None:
    """Start a draft for ``crisis_id`` on behalf of the sender (the alerts' "Draft response").

    The first question is posted in the crisis room, addressed to the person, who answers
    there. Returns None on success, else the error text to show the person.
    """
    try:
        started, room = _start(turn, crisis_id, kind, turn.lang)
    except dr.DraftError as exc:
        return _refusal(turn, exc)
    await _after_fill(turn, started, room)
    return None
