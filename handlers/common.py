"""Plumbing shared by handlers: the runtime, the actor, and replying from templates."""

from __future__ import annotations

from typing import NamedTuple, cast

from sqlmodel import Session
from telegram import CallbackQuery, Update, User
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.channels.base import Buttons
from bot.channels.telegram.notifier import keyboard, person_ref
from bot.runtime import Runtime
from bot.services.people import actor_for
from bot.services.permissions import Actor, has_role
from bot.templating import normalise_language
from handlers.conversation.turn import record_refusal
from storage.models import Role


def runtime_of(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    return cast(Runtime, context.bot_data["runtime"])


def actor_in(session: Session, runtime: Runtime, user: User | int) -> Actor:
    """Who a Telegram user is to CrisisDesk: every handler resolves senders here, through
    their channel identity (``bot.services.identity``), never by a Telegram id on a row."""
    return actor_for(session, runtime.settings, person_ref(user))


def actor_of(update: Update, runtime: Runtime) -> Actor:
    user = update.effective_user
    assert user is not None, "handlers that need an actor only run on updates with a user"
    with runtime.db.session() as session:
        return actor_in(session, runtime, user)


def language_of(update: Update, actor: Actor | None) -> str:
    """A registered person's chosen language, else their Telegram client's."""
    if actor is not None and actor.user is not None:
        return actor.user.language
    user = update.effective_user
    return normalise_language(user.language_code if user else None)


async def reply(update: Update, text: str, buttons: Buttons | None = None) -> None:
    """Answer in the chat (and forum topic) the update came from, as Telegram HTML, with
    inline ``buttons`` if given."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(buttons),
        do_quote=False,
        disable_web_page_preview=True,
    )


class Press(NamedTuple):
    """What a button callback needs: the runtime, the presser's language and the query."""

    runtime: Runtime
    lang: str
    query: CallbackQuery


def press_of(update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor) -> Press:
    query = update.callback_query
    assert query is not None, "button callbacks run on callback queries"
    return Press(runtime_of(context), language_of(update, actor), query)


# Error codes that mean "you may not", as opposed to "that did not work": each is audited.
REFUSAL_CODES = frozenset(
    {
        "not_allowed",
        "not_lead",
        "not_member_self",
        "not_registered",
        "draft_not_allowed",
        "approval_self",
        "suspended",
    }
)


def audit_refusal(
    update: Update, runtime: Runtime, actor: Actor, reason: str, button_action: str = "refused"
) -> None:
    """Record a refused command, message or button press (``button.<button_action>``): who,
    what, and why (``handlers.conversation.turn.record_refusal``)."""
    query = update.callback_query
    if query is not None:
        action, subject = f"button.{button_action}", f"button:{(query.data or '')[:100]}"
    else:
        message = update.effective_message
        text = (message.text or "") if message is not None else ""
        word = text.split(maxsplit=1)[0].split("@")[0][:40] if text.startswith("/") else ""
        action, subject = "command.refused", f"command:{word}" if word else "message"
    record_refusal(runtime, actor, action, subject, reason)


def audited(update: Update, runtime: Runtime, actor: Actor, code: str, text: str) -> str:
    """``text`` (the message for error ``code``), after auditing it if ``code`` is a refusal."""
    if code in REFUSAL_CODES:
        audit_refusal(update, runtime, actor, code)
    return text


async def refuse(
    update: Update, runtime: Runtime, actor: Actor, lang: str, reason: str, template: str
) -> None:
    """Audit a refused command and tell the person with ``template``."""
    audit_refusal(update, runtime, actor, reason)
    await reply(update, runtime.renderer.render(template, lang))


async def gate(
    update: Update, context: ContextTypes.DEFAULT_TYPE, minimum: Role
) -> tuple[Runtime, Actor, str] | None:
    """The runtime, actor and language of a command, or None after telling the person that
    their role does not allow it (checked on the server, whatever menu they were shown)."""
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    if not has_role(actor, minimum):
        await refuse(update, runtime, actor, lang, f"needs {minimum.value}", "not_allowed")
        return None
    return runtime, actor, lang
