"""RoomAdmin over python-telegram-bot: forum topics, join-request links, member removal.

``bot.wiring`` registers it for ``TelegramNotifier``, so ``room_admin_for(runtime.notifier)``
finds it.
"""

from __future__ import annotations

from datetime import datetime

from telegram import Bot
from telegram.constants import ChatMemberStatus

from bot.channels.refs import ChatRef, PersonRef
from bot.channels.telegram.notifier import (
    CHANNEL,
    TelegramNotifier,
    _call,
    call_unless_done,
    chat_id,
    chat_ref,
    thread_id,
)

_MEMBER_STATUSES = {
    ChatMemberStatus.OWNER,
    ChatMemberStatus.ADMINISTRATOR,
    ChatMemberStatus.MEMBER,
    ChatMemberStatus.RESTRICTED,
}


class TelegramRoomAdmin:
    """Implements ``bot.channels.rooms.RoomAdmin`` with a PTB ``Bot``."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def create_topic(self, chat: ChatRef, name: str) -> ChatRef:
        topic = await _call(lambda: self.bot.create_forum_topic(chat_id(chat), name[:128]))
        return chat_ref(chat_id(chat), topic.message_thread_id)

    async def close_topic(self, topic: ChatRef) -> None:
        thread = thread_id(topic)
        assert thread is not None, "closing a topic needs its thread"
        await call_unless_done(
            lambda: self.bot.close_forum_topic(chat_id(topic), thread), "topic_not_modified"
        )

    async def set_title(self, chat: ChatRef, title: str) -> None:
        await _call(lambda: self.bot.set_chat_title(chat_id(chat), title[:128]))

    async def set_description(self, chat: ChatRef, description: str) -> None:
        await call_unless_done(
            lambda: self.bot.set_chat_description(chat_id(chat), description[:255]), "not modified"
        )

    async def create_invite_link(
        self, chat: ChatRef, name: str, expire_at: datetime | None = None
    ) -> str:
        link = await _call(
            lambda: self.bot.create_chat_invite_link(
                chat_id(chat), name=name[:32], expire_date=expire_at, creates_join_request=True
            )
        )
        return link.invite_link

    async def revoke_invite_link(self, chat: ChatRef, link: str) -> None:
        await call_unless_done(
            lambda: self.bot.revoke_chat_invite_link(chat_id(chat), link), "invite_hash_expired"
        )

    async def approve_join(self, chat: ChatRef, person: PersonRef) -> None:
        await _call(lambda: self.bot.approve_chat_join_request(chat_id(chat), _user(person)))

    async def decline_join(self, chat: ChatRef, person: PersonRef) -> None:
        await _call(lambda: self.bot.decline_chat_join_request(chat_id(chat), _user(person)))

    async def remove_member(self, chat: ChatRef, person: PersonRef) -> None:
        user = _user(person)
        await _call(lambda: self.bot.ban_chat_member(chat_id(chat), user))
        await _call(lambda: self.bot.unban_chat_member(chat_id(chat), user, only_if_banned=True))

    async def is_member(self, chat: ChatRef, person: PersonRef) -> bool:
        member = await _call(lambda: self.bot.get_chat_member(chat_id(chat), _user(person)))
        return member.status in _MEMBER_STATUSES

    async def unpin_all(self, chat: ChatRef) -> None:
        await _call(lambda: self.bot.unpin_all_chat_messages(chat_id(chat)))


def _user(person: PersonRef) -> int:
    if person.channel != CHANNEL:
        raise ValueError(f"a {person.channel} person given to the Telegram adapter")
    return int(person.external_id)


def room_admin_of(notifier: TelegramNotifier) -> TelegramRoomAdmin:
    """The RoomAdmin that goes with a Telegram notifier (same bot)."""
    return TelegramRoomAdmin(notifier.bot)
