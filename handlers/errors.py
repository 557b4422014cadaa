"""The last line of defence: log the failure and tell the person something useful."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from handlers.common import reply, runtime_of

log = logging.getLogger(__name__)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error(
        "unhandled error for update %s", getattr(update, "update_id", None), exc_info=context.error
    )
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    runtime = runtime_of(context)
    user = update.effective_user
    lang = user.language_code if user else None
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(
                runtime.renderer.render("error_generic", lang), show_alert=True
            )
        else:
            await reply(update, runtime.renderer.render("error_generic", lang))
    except TelegramError:
        log.warning("could not tell the person about the error", exc_info=True)
