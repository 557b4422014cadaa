"""One CallbackQueryHandler for every inline button.

Each press is decoded (``bot.buttons``), refused if forged, refused if the presser is suspended or
fails the action's rule, and only then handed to the action's callback. Refusals are answered with
a clear toast and written to the audit log, because a forged or unauthorised press is exactly what
an inquiry will ask about.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.buttons import ButtonAction, ForgedButton, decode
from bot.runtime import Runtime
from bot.services.permissions import Actor
from handlers.common import actor_in, audit_refusal, language_of, runtime_of

log = logging.getLogger(__name__)

ButtonCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE, Actor, str], Awaitable[None]]
_CALLBACKS: dict[str, ButtonCallback] = {}


def on_button(action: str) -> Callable[[ButtonCallback], ButtonCallback]:
    """Route presses of ``action`` (registered in ``bot.buttons``) to the decorated callback."""

    def decorate(func: ButtonCallback) -> ButtonCallback:
        _CALLBACKS[action] = func
        return func

    return decorate


async def _refuse(
    update: Update, runtime: Runtime, actor: Actor, *, action: str, reason: str, template: str
) -> None:
    query = update.callback_query
    assert query is not None
    audit_refusal(update, runtime, actor, reason, action.removeprefix("button."))
    await query.answer(
        runtime.renderer.render(template, language_of(update, actor)), show_alert=True
    )


def _resolve(data: str | None) -> tuple[ButtonAction, str, ButtonCallback]:
    button, ident = decode(data)
    callback = _CALLBACKS.get(button.name)
    if callback is None:
        raise ForgedButton(f"no handler for {button.name!r}")
    return button, ident, callback


async def dispatch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    runtime = runtime_of(context)
    with runtime.db.session() as session:
        actor = actor_in(session, runtime, query.from_user)
        try:
            button, ident, callback = _resolve(query.data)
            # Rules parse the id too (int_id): a malformed id is forged, not an error.
            allowed = not actor.suspended and button.rule(session, actor, ident)
        except ForgedButton as exc:
            log.warning("forged button from %s: %s", actor.channel_ref, exc)
            forged = str(exc)
        else:
            forged = ""
    if forged:
        await _refuse(
            update, runtime, actor, action="button.forged", reason=forged, template="button_invalid"
        )
    elif not allowed:
        template = "suspended" if actor.suspended else "button_not_allowed"
        await _refuse(
            update, runtime, actor, action="button.refused", reason=button.name, template=template
        )
    else:
        await callback(update, context, actor, ident)


def button_handler() -> CallbackQueryHandler[ContextTypes.DEFAULT_TYPE, None]:
    return CallbackQueryHandler(dispatch)
