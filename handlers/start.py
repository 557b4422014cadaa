"""Telegram's side of registration: the guards every update passes, the bridge that hands
private text and contacts to the conversation layer, and the command menus at start-up.

The registration flow itself (``/start``, its steps, Approve / Reject) is written once for
every channel in ``handlers.registration``.

Handler groups (see :func:`install`):

* ``-2`` :func:`gatekeeper` keeps @usernames fresh and refuses suspended people;
* ``-1`` :func:`flow_message` takes private text and contacts that belong to an open flow
  (registration, a rejection reason, a new name) and stops there; other text falls through;
* ``0``  the commands of the other modules and of the conversation layer.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.channels.telegram.conversation import on_update
from bot.channels.telegram.notifier import person_ref
from bot.services import commands as command_lists
from bot.services import registration as reg
from bot.services.permissions import Actor
from handlers.common import actor_in, audit_refusal, reply, runtime_of
from handlers.people import rename_from_text  # the /me flow lives with /me
from storage.models import UserStatus


async def flow_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Private text or a contact: the layer's flows first (registration, a rejection reason),
    then the /me rename, which still speaks PTB; otherwise let other handlers see it."""
    if await on_update(update, context):
        raise ApplicationHandlerStop
    runtime = runtime_of(context)
    user, message, chat = update.effective_user, update.effective_message, update.effective_chat
    if user is None or message is None or chat is None or message.text is None:
        return
    with runtime.db.session() as session:
        renaming = reg.get_state(session, str(chat.id), str(person_ref(user)), reg.FLOW_ME_NAME)
        actor = actor_in(session, runtime, user)
    if renaming is None:
        return
    await rename_from_text(update, context, actor, message.text)
    raise ApplicationHandlerStop


# --------------------------------------------------------------------------- command menus


async def publish_default_commands(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start-up job: the default command menus and the global admins' own."""
    await command_lists.publish_default_commands(runtime_of(context))


# --------------------------------------------------------------------------- guards


async def gatekeeper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every update: keep a known person's @username fresh; refuse suspended people."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    runtime = runtime_of(context)
    with runtime.db.session() as session:
        row = reg.refresh_username(session, person_ref(user), user.username)
    suspended = (
        row is not None
        and row.status == UserStatus.SUSPENDED
        and user.id not in runtime.settings.admin_ids
    )
    message = update.message
    if not suspended or message is None:
        return  # buttons: the dispatcher refuses suspended people itself
    assert row is not None
    chat = update.effective_chat
    if (message.text or "").startswith("/"):
        audit_refusal(update, runtime, Actor(str(person_ref(user)), row), "suspended")
    if (chat is not None and chat.type == ChatType.PRIVATE) or (message.text or "").startswith("/"):
        await reply(update, runtime.renderer.render("suspended", row.language))
    raise ApplicationHandlerStop


def install(application: Application) -> None:
    """Add the guards (groups -2 and -1) and the start-up job publishing the command menus."""
    private_input = filters.ChatType.PRIVATE & ((filters.TEXT & ~filters.COMMAND) | filters.CONTACT)
    application.add_handler(TypeHandler(Update, gatekeeper), group=-2)
    application.add_handler(MessageHandler(private_input, flow_message), group=-1)
    job_queue = application.job_queue
    assert job_queue is not None
    job_queue.run_once(publish_default_commands, when=0, name="publish_commands")


def handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    """None of its own: ``/start``, ``/cancel`` and ``/skip`` reach the layer through the
    Telegram adapter's ``handlers()``."""
    return []
