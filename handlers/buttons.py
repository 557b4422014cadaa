"""One CallbackQueryHandler for every inline button.

Each press goes through the conversation layer (``handlers.conversation.dispatch``), which
decodes it, refuses it if forged, refuses it if the presser is suspended or fails the action's
rule, audits every refusal, and only then runs the action's flow. Actions whose flows are not
written against the layer yet register a PTB callback here with ``on_button``; they pass the
same checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.channels.telegram.conversation import on_update
from bot.services.permissions import Actor
from handlers.conversation.dispatch import LegacyPress

ButtonCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE, Actor, str], Awaitable[None]]
_CALLBACKS: dict[str, ButtonCallback] = {}


def on_button(action: str) -> Callable[[ButtonCallback], ButtonCallback]:
    """Route presses of ``action`` (registered in ``bot.buttons``) to the decorated callback."""

    def decorate(func: ButtonCallback) -> ButtonCallback:
        _CALLBACKS[action] = func
        return func

    return decorate


async def dispatch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None or query.from_user is None:
        return

    def legacy(action: str) -> LegacyPress | None:
        callback = _CALLBACKS.get(action)
        return partial(callback, update, context) if callback is not None else None

    await on_update(update, context, legacy)


def button_handler() -> CallbackQueryHandler[ContextTypes.DEFAULT_TYPE, None]:
    return CallbackQueryHandler(dispatch)
