"""The last handlers of a private chat: an unknown command or free text gets a pointer onwards.

Text that belongs to a flow (registration, a draft's question) is taken by earlier handlers;
what reaches here was typed outside any flow, and the person should never meet silence.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, ContextTypes, MessageHandler, filters

from handlers.common import actor_of, language_of, reply, runtime_of


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    await reply(update, runtime.renderer.render("help_unknown_command", language_of(update, actor)))


async def free_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say what the bot can do for this person, by where their registration stands."""
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    status = "active" if actor.active else (actor.user.status if actor.user else "new")
    await reply(
        update, runtime.renderer.render("free_text", language_of(update, actor), status=status)
    )


def handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    private = filters.ChatType.PRIVATE
    return [
        MessageHandler(private & filters.COMMAND, unknown_command),
        MessageHandler(private & filters.TEXT & ~filters.COMMAND, free_text),
    ]
