"""The last line of defence: log the failure and tell the person something useful."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.channels.telegram.conversation import TelegramSurface, runtime_of

log = logging.getLogger(__name__)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB's error handler: a press is answered with an alert, a message with a reply."""
    log.error(
        "unhandled error for update %s", getattr(update, "update_id", None), exc_info=context.error
    )
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    user = update.effective_user
    text = runtime_of(context).renderer.render(
        "error_generic", user.language_code if user else None
    )
    try:  # sent here, not queued: a queued notice that failed would come back here
        await TelegramSurface(update).notice(text, alert=True)
    except TelegramError:
        log.warning("could not tell the person about the error", exc_info=True)
