"""Telegram's guards around the conversation layer, and the command menus at start-up.

Handler groups (see :func:`install`):

* ``-2`` :func:`gatekeeper`: every update passes ``handlers.start.admit`` (fresh @usernames,
  suspended people stopped);
* ``-1`` :func:`flow_message`: private text and contacts go to the layer's message flows
  (registration, a rejection reason, a new name from ``/me``) and stop there if one took them;
  other text falls through to the remaining modules;
* ``0``  the commands of the other modules and of the conversation layer.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.channels.telegram.conversation import (
    incoming,
    on_update,
    remember_sender,
    runtime_of,
    surface_of,
)
from bot.services import commands as command_lists
from handlers.start import admit


async def gatekeeper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every update from a person; only new messages can be stopped (the dispatcher refuses
    presses itself)."""
    user = update.effective_user
    event = incoming(update)
    if user is None or user.is_bot or event is None:
        return
    fresh = update.message is not None
    actor = await admit(runtime_of(context), event, surface_of(update, context), fresh)
    if actor is None:
        raise ApplicationHandlerStop
    remember_sender(context, actor)


async def flow_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if await on_update(update, context):
        raise ApplicationHandlerStop


async def publish_default_commands(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start-up job: the default command menus and the global admins' own."""
    await command_lists.publish_default_commands(runtime_of(context))


def install(application: Application) -> None:
    """Add the guards (groups -2 and -1) and the start-up job publishing the command menus."""
    private_input = filters.ChatType.PRIVATE & ((filters.TEXT & ~filters.COMMAND) | filters.CONTACT)
    application.add_handler(TypeHandler(Update, gatekeeper), group=-2)
    application.add_handler(MessageHandler(private_input, flow_message), group=-1)
    job_queue = application.job_queue
    assert job_queue is not None
    job_queue.run_once(publish_default_commands, when=0, name="publish_commands")
