"""The last command handler: an unknown command in a private chat gets a pointer to /help."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, ContextTypes, MessageHandler, filters

from handlers.common import actor_of, language_of, reply, runtime_of


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    await reply(update, runtime.renderer.render("help_unknown_command", language_of(update, actor)))


def handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    return [MessageHandler(filters.ChatType.PRIVATE & filters.COMMAND, unknown_command)]
