"""RoomAdmin over python-telegram-bot: forum topics, join-request links, member removal.

``bot.wiring`` registers it for ``TelegramNotifier``, so ``room_admin_for(runtime.notifier)``
finds it.
"""

from __future__ import annotations

from datetime import datetime

from telegram import Bot
from telegram.constants import ChatMemberStatus

from bot.channels.telegram.notifier import TelegramNotifier, _call, call_unless_done

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

    async def create_topic(self, chat_id: int, name: str) -> int:
        topic = await _call(lambda: self.bot.create_forum_topic(chat_id, name[:128]))
        return topic.message_thread_id

    async def close_topic(self, chat_id: int, thread_id: int) -> None:
        await call_unless_done(
            lambda: self.bot.close_forum_topic(chat_id, thread_id), "topic_not_modified"
        )

    async def set_title(self, chat_id: int, title: str) -> None:
        await _call(lambda: self.bot.set_chat_title(chat_id, title[:128]))

    async def set_description(self, chat_id: int, description: str) -> None:
        await call_unless_done(
            lambda: self.bot.set_chat_description(chat_id, description[:255]), "not modified"
        )

    async def create_invite_link(
        self, chat_id: int, name: str, expire_at: datetime | None = None
    ) -> str:
        link = await _call(
            lambda: self.bot.create_chat_invite_link(
                chat_id, name=name[:32], expire_date=expire_at, creates_join_request=True
            )
        )
        return link.invite_link

    async def revoke_invite_link(self, chat_id: int, link: str) -> None:
        await call_unless_done(
            lambda: self.bot.revoke_chat_invite_link(chat_id, link), "invite_hash_expired"
        )

    async def approve_join(self, chat_id: int, user_ref: int) -> None:
        await _call(lambda: self.bot.approve_chat_join_request(chat_id, user_ref))

    async def decline_join(self, chat_id: int, user_ref: int) -> None:
        await _call(lambda: self.bot.decline_chat_join_request(chat_id, user_ref))

    async def remove_member(self, chat_id: int, user_ref: int) -> None:
        await _call(lambda: self.bot.ban_chat_member(chat_id, user_ref))
        await _call(lambda: self.bot.unban_chat_member(chat_id, user_ref, only_if_banned=True))

    async def is_member(self, chat_id: int, user_ref: int) -> bool:
        member = await _call(lambda: self.bot.get_chat_member(chat_id, user_ref))
        return member.status in _MEMBER_STATUSES

    async def unpin_all(self, chat_id: int) -> None:
        await _call(lambda: self.bot.unpin_all_chat_messages(chat_id))


def room_admin_of(notifier: TelegramNotifier) -> TelegramRoomAdmin:
    """The RoomAdmin that goes with a Telegram notifier (same bot)."""
    return TelegramRoomAdmin(notifier.bot)
