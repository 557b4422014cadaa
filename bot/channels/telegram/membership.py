"""Telegram's membership updates, handed to the task-force flows as plain values.

A join request to a room's link, the bot's own standing in a group (``my_chat_member``: added,
given rights, removed) and members added by hand are not conversations, so they have no
``Incoming`` event: this module reads them out of PTB updates and calls
``handlers.taskforce`` with channel-neutral references.
"""

from __future__ import annotations

from typing import Any

from telegram import Chat, Update
from telegram.constants import ChatMemberStatus
from telegram.ext import (
    BaseHandler,
    ChatJoinRequestHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.channels.telegram.conversation import runtime_of
from bot.channels.telegram.notifier import chat_ref, person_ref
from bot.services import room_rights, rooms
from bot.services.taskforces.room import BotStanding
from handlers.taskforce import bot_standing, join_requested, members_added

# Every admin right a flow may ask about: the pool's and the hub's.
_RIGHTS = (*rooms.POOL_RIGHTS, *room_rights.HUB_NEEDS)


async def join_request(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    request = update.chat_join_request
    if request is None:
        return
    link = request.invite_link.invite_link if request.invite_link else None
    await join_requested(
        runtime_of(context), chat_ref(request.chat.id), person_ref(request.from_user), link
    )


async def bot_membership(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    change = update.my_chat_member
    if change is None:
        return
    new = change.new_chat_member
    status = "administrator" if new.status == ChatMemberStatus.ADMINISTRATOR else str(new.status)
    standing = BotStanding(
        chat=chat_ref(change.chat.id),
        title=change.chat.title or "",
        chat_type=change.chat.type,
        status=status,
        rights={r: bool(getattr(new, r, False)) for r in _RIGHTS},
        by=person_ref(change.from_user) if change.from_user else None,
    )
    user = update.effective_user
    await bot_standing(runtime_of(context), standing, user.language_code if user else None)


async def members_arrived(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or not message.new_chat_members:
        return
    people = [person_ref(p) for p in message.new_chat_members if not p.is_bot]
    members_added(runtime_of(context), chat_ref(message.chat_id), people)


class _GroupBotMembership(ChatMemberHandler[ContextTypes.DEFAULT_TYPE, None]):
    """``my_chat_member`` in groups only: private-chat blocks belong to other modules."""

    def check_update(self, update: object) -> bool:
        if not super().check_update(update):
            return False
        chat = update.effective_chat if isinstance(update, Update) else None
        return chat is not None and chat.type in (Chat.GROUP, Chat.SUPERGROUP)


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    return [
        ChatJoinRequestHandler(join_request),
        _GroupBotMembership(bot_membership, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.NEW_CHAT_MEMBERS, members_arrived),
    ]
