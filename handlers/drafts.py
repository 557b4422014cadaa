"""Press-response drafts in chat: ``/draft``, ``/set``, ``/history``, ``/pin`` and the buttons.

Thin on purpose: parse the update, call ``bot.services.drafts`` / ``approvals``, render a message
template. Questions (a field to fill, a reason, a PIN) are sent with ``ForceReply`` and answered
by *replying*, because in a room under privacy mode the bot sees only commands and replies to its
own messages; the conversation itself is a ``ConversationState`` row committed before each
question, so a restart resumes it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram import ForceReply, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.buttons import register
from bot.channels.base import Button
from bot.channels.telegram import notifier as tg
from bot.channels.telegram.conversation import turn_of
from bot.channels.telegram.notifier import message_ref, person_ref
from bot.runtime import Runtime
from bot.services import approvals as ap
from bot.services import drafts as dr
from bot.services import press_templates as pt
from bot.services import stored_refs
from bot.services.commands import register_command
from bot.services.permissions import Actor
from handlers.approvals import SUBMIT, answer_state, draft_id, drafter_rule, remember
from handlers.buttons import on_button
from handlers.common import (
    actor_in,
    actor_of,
    audit_refusal,
    audited,
    language_of,
    reply,
    runtime_of,
)
from storage.models import ConversationState, Crisis, Draft, Role, User

register_command("draft", Role.MEMBER)  # used in a crisis room; listed so people find it

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- button rules


EDIT = register("draft.edit", drafter_rule, "how to edit a draft")
DISCARD = register("draft.discard", drafter_rule, "discard a draft")


# --------------------------------------------------------------------------- helpers


def _refs(update: Update) -> tuple[str, str]:
    message = update.effective_message
    user = update.effective_user
    assert message is not None and user is not None
    thread = message.message_thread_id if message.is_topic_message else None
    return f"{message.chat_id}:{thread or 0}", str(person_ref(user))


def _error(runtime: Runtime, lang: str, exc: dr.DraftError) -> str:
    return runtime.renderer.render("draft_error", lang, code=exc.code, ctx=exc.context)


def _error_code(runtime: Runtime, lang: str, code: str, **ctx: Any) -> str:
    return runtime.renderer.render("draft_error", lang, code=code, ctx=ctx)


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
    runtime: Runtime, draft_id: int, lang: str, diff: dr.DiffSummary | None = None
) -> None:
    """Show a version in its room with Edit / Submit / Discard."""
    with runtime.db.session() as session:
        draft = session.get(Draft, draft_id)
        assert draft is not None
        title = dr.template_title(dr.library(runtime), draft)
    header = runtime.renderer.render(
        "draft_header", lang, draft=draft, title=title, diff=diff.as_dict() if diff else None
    )
    await dr.post_version(
        runtime, draft_id, header=header, buttons=draft_buttons(runtime, lang, draft_id)
    )


async def _ask(message: Message, text: str) -> Message:
    """A question answered by replying (ForceReply also works under privacy mode)."""
    return await message.reply_text(
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=ForceReply(selective=True),
        do_quote=True,
    )


async def _ask_private(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str) -> Message:
    return await context.bot.send_message(
        chat_id, text, parse_mode=ParseMode.HTML, reply_markup=ForceReply(selective=True)
    )


async def _after_fill(update: Update, runtime: Runtime, lang: str, started: dr.Started) -> None:
    message = update.effective_message
    assert message is not None
    if started.prompt is not None:
        text = runtime.renderer.render(
            "draft_prompt", lang, prompt=started.prompt, prefilled=started.prefilled
        )
        asked = await _ask(message, text)
        with runtime.db.session() as session:
            dr.remember_prompt(session, started.prompt.state_id, str(asked.message_id))
    elif started.draft is not None and started.draft.id is not None:
        await post_draft(runtime, started.draft.id, lang)


# --------------------------------------------------------------------------- commands


async def draft_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    message = update.effective_message
    assert message is not None
    args = [a.lower() for a in (context.args or [])]
    chat_ref, user_ref = _refs(update)
    templates = dr.library(runtime)
    if args[:1] == ["cancel"]:
        with runtime.db.session() as session:
            done = dr.cancel_fill(session, chat_ref, user_ref)
        await reply(
            update,
            runtime.renderer.render("draft_notice", lang, code="cancelled" if done else "nothing"),
        )
        return
    with runtime.db.session() as session:
        crisis = dr.crisis_for_room(session, message_ref(message).chat)
    if crisis is None:
        await reply(update, _error_code(runtime, lang, "draft_not_room"))
        return
    if not args:
        kinds = [
            (pt.kind_word(k, lang), templates.get(k, lang).title) for k in templates.kinds(lang)
        ]
        await reply(update, runtime.renderer.render("draft_usage", lang, kinds=kinds))
        return
    statement_lang = args[1] if len(args) > 1 and args[1] in ("vi", "en") else lang
    try:
        with runtime.db.session() as session:
            fresh = session.get(Crisis, crisis.id)
            assert fresh is not None
            started = dr.start_draft(
                session,
                crisis=fresh,
                actor=actor_in(session, runtime, update.effective_user),  # type: ignore[arg-type]
                kind=pt.kind_from_word(args[0]),
                lang=statement_lang,
                ui_lang=lang,
                chat_ref=chat_ref,
                user_ref=user_ref,
                at=runtime.clock.now(),
                tz=runtime.settings.tz,
                templates=templates,
            )
    except dr.DraftError as exc:
        await reply(update, audited(update, runtime, actor, exc.code, _error(runtime, lang, exc)))
        return
    await _after_fill(update, runtime, lang, started)


def _target(session: Any, message: Message, crisis: Crisis) -> Draft | None:
    replied = message.reply_to_message
    if replied is not None:
        found = dr.draft_for_message(session, message_ref(replied))
        if found is not None:
            return found
    return dr.current_for_room(session, crisis.id or 0)


async def _edit(
    update: Update,
    runtime: Runtime,
    actor: Actor,
    lang: str,
    draft_id: int,
    *,
    body: str | None = None,
    set_text: str | None = None,
) -> None:
    try:
        with runtime.db.session() as session:
            draft = session.get(Draft, draft_id)
            assert draft is not None
            fresh, previous, diff = dr.new_version(
                session,
                draft,
                actor,
                body=body,
                set_text=set_text,
                ui_lang=lang,
                at=runtime.clock.now(),
                tz=runtime.settings.tz,
                templates=dr.library(runtime),
            )
    except dr.DraftError as exc:
        await reply(update, audited(update, runtime, actor, exc.code, _error(runtime, lang, exc)))
        return
    if previous.status == "superseded":
        await ap.announce_superseded(runtime, previous, fresh)
    assert fresh.id is not None
    await post_draft(runtime, fresh.id, lang, diff)


async def set_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    message = update.effective_message
    assert message is not None and message.text is not None
    # The field may be several words ("Cập nhật tiếp theo"): the service tells it from the value.
    rest = message.text.partition(" ")[2].strip()
    with runtime.db.session() as session:
        crisis = dr.crisis_for_room(session, message_ref(message).chat)
        target = _target(session, message, crisis) if crisis else None
    if crisis is None:
        await reply(update, _error_code(runtime, lang, "draft_not_room"))
        return
    if target is None or target.id is None:
        await reply(update, _error_code(runtime, lang, "draft_no_draft"))
        return
    await _edit(update, runtime, actor, lang, target.id, set_text=rest)


async def history_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    message = update.effective_message
    assert message is not None
    args = context.args or []
    number = int(args[0].lstrip("#")) if args and args[0].lstrip("#").isdigit() else None
    with runtime.db.session() as session:
        crisis = dr.crisis_for_room(session, message_ref(message).chat)
        entries: list[dr.HistoryEntry] = []
        title = ""
        if crisis is None or number is None:
            problem = "draft_not_room" if crisis is None else "history_usage"
        elif not dr.can_work_on(session, actor, crisis):
            problem = "draft_not_allowed"
        else:
            newest = dr.latest(session, crisis.id or 0, number)
            problem = "" if newest else "history_not_found"
            entries = dr.history(session, crisis.id or 0, number)[-40:]
            title = dr.template_title(dr.library(runtime), newest) if newest else ""
    if problem:
        text = _error_code(runtime, lang, problem, number=number)
        await reply(update, audited(update, runtime, actor, problem, text))
        return
    await reply(
        update,
        runtime.renderer.render(
            "history_statement", lang, number=number, title=title, entries=entries
        ),
    )


async def pin_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    message = update.effective_message
    chat = update.effective_chat
    assert message is not None and chat is not None
    if chat.type != ChatType.PRIVATE:
        await reply(update, runtime.renderer.render("pin_message", lang, code="pin_private_only"))
        return
    if actor.user is None or not actor.active:
        audit_refusal(update, runtime, actor, "not_registered")
        await reply(update, runtime.renderer.render("pin_message", lang, code="pin_not_registered"))
        return
    chat_ref, user_ref = _refs(update)
    with runtime.db.session() as session:
        state = ap.open_state(
            session, chat_ref, user_ref, ap.FLOW_PIN_SET, "new", {}, runtime.clock.now()
        )
        state_id = state.id
    asked = await _ask(message, runtime.renderer.render("pin_message", lang, code="pin_new"))
    with runtime.db.session() as session:
        remember(session, state_id, str(asked.message_id))


# --------------------------------------------------------------------------- replies


async def reply_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply to one of the bot's messages: an answer, a reason, a PIN, or a new full text."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or message.text is None or update.effective_user is None:
        return
    if chat.type == ChatType.PRIVATE:
        await _private_reply(update, context, message)
    else:
        await _room_reply(update, context, message)


async def _room_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    chat_ref, user_ref = _refs(update)
    replied = message.reply_to_message
    assert replied is not None and message.text is not None
    with runtime.db.session() as session:
        edited = dr.draft_for_message(session, message_ref(replied))
        state = dr.fill_state(session, chat_ref, user_ref) if edited is None else None
    if edited is not None and edited.id is not None:
        await _edit(update, runtime, actor, lang, edited.id, body=message.text)
        return
    if state is None:
        return
    try:
        with runtime.db.session() as session:
            fresh = session.get(ConversationState, state.id)
            if fresh is None:
                return
            started = dr.answer(
                session, fresh, message.text, at=runtime.clock.now(), templates=dr.library(runtime)
            )
    except dr.DraftError as exc:
        await _ask(message, audited(update, runtime, actor, exc.code, _error(runtime, lang, exc)))
        return
    await _after_fill(update, runtime, lang, started)


async def _private_reply(
    update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message
) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    chat_ref, user_ref = _refs(update)
    replied = message.reply_to_message
    assert replied is not None and message.text is not None
    with runtime.db.session() as session:
        states = [
            s
            for flow in (ap.FLOW_PIN_SET, ap.FLOW_PIN_APPROVE, ap.FLOW_REASON)
            if (s := ap.state_for(session, chat_ref, user_ref, flow)) is not None
        ]
    if not states or actor.user is None:
        return
    prompt = str(replied.message_id)  # states written before ids were strings hold numbers
    exact = [s for s in states if str(s.data.get("prompt_message_id")) == prompt]
    state = (exact or sorted(states, key=lambda s: s.updated_at))[-1]
    if state.flow in (ap.FLOW_PIN_SET, ap.FLOW_PIN_APPROVE):
        with contextlib.suppress(TelegramError):
            await message.delete()  # the PIN should not stay on screen
    if state.flow == ap.FLOW_PIN_SET:
        with runtime.db.session() as session:
            fresh = session.get(ConversationState, state.id)
            user = session.get(User, actor.user.id)
            assert user is not None
            code = (
                ap.pin_step(session, fresh, user, message.text, runtime.clock.now())
                if fresh
                else "pin_new"
            )
            state_id = fresh.id if fresh is not None and code != "pin_saved" else None
        text = runtime.renderer.render("pin_message", lang, code=code)
        if state_id is None:
            await reply(update, text)
        else:
            asked = await _ask_private(context, message.chat_id, text)
            with runtime.db.session() as session:
                remember(session, state_id, str(asked.message_id))
        return
    await answer_state(turn_of(update, context, actor), state, message.text)


# --------------------------------------------------------------------------- drafter buttons


@on_button(EDIT.name)
async def edit_pressed(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    lang = language_of(update, actor)
    query = update.callback_query
    assert query is not None
    with runtime.db.session() as session:
        draft = session.get(Draft, draft_id(ident))
        assert draft is not None
        try:
            fields = dr.library(runtime).get(draft.template, draft.language).labels(lang)
        except Exception:
            fields = sorted(k for k in draft.fields if not k.startswith("_"))
    await query.answer()
    if query.message is not None:
        await query.message.reply_text(  # type: ignore[attr-defined]
            runtime.renderer.render("draft_edit_help", lang, number=draft.number, fields=fields),
            parse_mode=ParseMode.HTML,
            do_quote=False,
        )


@on_button(DISCARD.name)
async def discard_pressed(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    lang = language_of(update, actor)
    query = update.callback_query
    assert query is not None
    try:
        with runtime.db.session() as session:
            draft = session.get(Draft, draft_id(ident))
            assert draft is not None
            discarded = dr.discard(session, draft, actor, runtime.clock.now())
            crisis = session.get(Crisis, discarded.crisis_id)
    except dr.DraftError as exc:
        await query.answer(_error(runtime, lang, exc)[:190], show_alert=True)
        return
    await query.answer()
    await ap.close_requests(
        runtime, discarded.id or 0, "closed", number=discarded.number, version=discarded.version
    )
    room = stored_refs.crisis_room(crisis) if crisis else None
    if room is not None:
        who = actor.user.full_name if actor.user else ""
        await runtime.notifier.send_text(
            room,
            runtime.renderer.render(
                "draft_notice", lang, code="discarded", number=discarded.number, who=who
            ),
        )


# --------------------------------------------------------------------------- for other areas


async def start_in_room(
    context: ContextTypes.DEFAULT_TYPE,
    crisis_id: int,
    telegram_user_id: int,
    kind: str = "holding",
    lang: str | None = None,
) -> str | None:
    """Start a draft for ``crisis_id`` on behalf of a person (the alerts' "Draft response").

    The first question is posted in the crisis room, addressed to the person, who answers by
    replying there. Returns None on success, else the error text to show the person.
    """
    runtime = runtime_of(context)
    with runtime.db.session() as session:
        actor = actor_in(session, runtime, telegram_user_id)
        crisis = session.get(Crisis, crisis_id)
        ui_lang = actor.user.language if actor.user else "vi"
        if crisis is None or crisis.room_chat_id is None:
            return _error_code(runtime, ui_lang, "draft_not_room")
        chat_ref = f"{crisis.room_chat_id}:{crisis.room_thread_id or 0}"
        try:
            started = dr.start_draft(
                session,
                crisis=crisis,
                actor=actor,
                kind=kind,
                lang=lang or ui_lang,
                ui_lang=ui_lang,
                chat_ref=chat_ref,
                user_ref=str(person_ref(telegram_user_id)),
                at=runtime.clock.now(),
                tz=runtime.settings.tz,
                templates=dr.library(runtime),
            )
        except dr.DraftError as exc:
            return _error(runtime, ui_lang, exc)
        room = stored_refs.crisis_room(crisis)
    assert room is not None
    if started.prompt is not None:
        text = runtime.renderer.render(
            "draft_prompt", ui_lang, prompt=started.prompt, prefilled=started.prefilled
        )
        asked = await context.bot.send_message(
            tg.chat_id(room),
            text,
            message_thread_id=tg.thread_id(room),
            parse_mode=ParseMode.HTML,
            reply_markup=ForceReply(selective=False),
        )
        with runtime.db.session() as session:
            dr.remember_prompt(session, started.prompt.state_id, str(asked.message_id))
    elif started.draft is not None and started.draft.id is not None:
        await post_draft(runtime, started.draft.id, ui_lang)
    return None


class _ReplyToBot(filters.MessageFilter):
    """Text that replies to a message of a bot (ours: the only bot that sends our prompts)."""

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        return bool(replied and replied.from_user and replied.from_user.is_bot)


def handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    return [
        CommandHandler("draft", draft_command),
        CommandHandler("set", set_command),
        CommandHandler("history", history_command),
        CommandHandler("pin", pin_command),
        MessageHandler(filters.TEXT & ~filters.COMMAND & _ReplyToBot(), reply_message),
    ]
