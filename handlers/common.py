"""Plumbing shared by handlers: the runtime, the actor, and replying from templates."""

from __future__ import annotations

from typing import cast

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.runtime import Runtime
from bot.services.people import actor_for_telegram
from bot.services.permissions import Actor
from bot.templating import normalise_language


def runtime_of(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    return cast(Runtime, context.bot_data["runtime"])


def actor_of(update: Update, runtime: Runtime) -> Actor:
    user = update.effective_user
    assert user is not None, "handlers that need an actor only run on updates with a user"
    with runtime.db.session() as session:
        return actor_for_telegram(session, runtime.settings, user.id)


def language_of(update: Update, actor: Actor | None) -> str:
    """A registered person's chosen language, else their Telegram client's."""
    if actor is not None and actor.user is not None:
        return actor.user.language
    user = update.effective_user
    return normalise_language(user.language_code if user else None)


async def reply(update: Update, text: str) -> None:
    """Answer in the chat (and forum topic) the update came from, as Telegram HTML."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        text, parse_mode=ParseMode.HTML, do_quote=False, disable_web_page_preview=True
    )
