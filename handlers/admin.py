"""Admin commands: ``/status``, the health of the desk at a glance, with a Refresh button.

The Refresh button is the reference example of the button scheme: only admins may press it, and
the rule is evaluated on the server for every press.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import CommandHandler, ContextTypes

from bot.buttons import Button, register
from bot.channels.telegram.notifier import keyboard
from bot.services.permissions import Actor, is_admin
from bot.services.status import system_status
from handlers.buttons import on_button
from handlers.common import gate, language_of, reply, runtime_of
from storage.models import Role

REFRESH = register("sys.status", lambda _s, actor, _id: is_admin(actor), "refresh /status")


def _status_text(context: ContextTypes.DEFAULT_TYPE, lang: str) -> str:
    runtime = runtime_of(context)
    with runtime.db.session() as session:
        summary = system_status(session, runtime.clock.now())
    return runtime.renderer.render("status", lang, s=summary)


def _refresh_keyboard(lang: str, context: ContextTypes.DEFAULT_TYPE) -> list[list[Button]]:
    label = runtime_of(context).renderer.render("button_refresh", lang)
    return [[Button(label, REFRESH.name)]]


async def status_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    gated = await gate(update, context, Role.ADMIN)
    if gated is None:
        return
    _runtime, _actor, lang = gated
    await reply(update, _status_text(context, lang), _refresh_keyboard(lang, context))


@on_button(REFRESH.name)
async def refresh_status(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, _ident: str
) -> None:
    query = update.callback_query
    assert query is not None
    lang = language_of(update, actor)
    await query.answer()
    text = _status_text(context, lang)
    message = query.message
    if message is not None and getattr(message, "text_html", None) != text:
        await query.edit_message_text(
            text, parse_mode=ParseMode.HTML, reply_markup=keyboard(_refresh_keyboard(lang, context))
        )


def handlers() -> list[CommandHandler[ContextTypes.DEFAULT_TYPE, None]]:
    return [CommandHandler("status", status_command)]
