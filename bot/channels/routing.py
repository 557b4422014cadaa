"""One notifier over several messengers: each message goes through the notifier of its chat.

``crisisdesk run`` with both a Telegram and a Zalo token serves both in one process; services
still hold one notifier (``Runtime.notifier``) and never name a channel. Every ``ChatRef`` says
its channel, so routing a send is a dictionary look-up. The router's own ``channel`` is
:data:`~bot.channels.refs.ANY_CHANNEL`: looking a person up "on the notifier's channel" then
finds them on whichever messenger reaches them (``bot.services.identity``). A chat that names no
channel this process speaks (a public channel addressed by name, built from ``ANY_CHANNEL``)
goes to the first notifier, the one with rooms and channels (Telegram).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.channels.base import Attachment, Buttons, CommandMenus, Notifier, SentMessage
from bot.channels.refs import ANY_CHANNEL, ChatRef, MessageRef


class RoutingNotifier:
    """Sends through ``notifiers[chat.channel]``; the first one is the primary (rooms, menus)."""

    channel = ANY_CHANNEL

    def __init__(self, notifiers: Mapping[str, Notifier]) -> None:
        if not notifiers:
            raise ValueError("a routing notifier needs at least one notifier")
        self.notifiers = dict(notifiers)
        self.primary = next(iter(self.notifiers.values()))

    def on(self, channel: str) -> Notifier:
        """The notifier of ``channel`` (the primary for a channel this process does not speak)."""
        return self.notifiers.get(channel, self.primary)

    def link_to(self, chat: ChatRef) -> str | None:
        return self.on(chat.channel).link_to(chat)

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        return await self.on(to.channel).send_text(self._own(to), text, buttons)

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        return await self.on(to.channel).send_photo(self._own(to), photo, caption, buttons)

    async def send_document(
        self, to: ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        return await self.on(to.channel).send_document(self._own(to), document, caption)

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        await self.on(message.chat.channel).edit_text(message, text, buttons)

    async def pin(self, message: MessageRef) -> None:
        await self.on(message.chat.channel).pin(message)

    async def set_default_commands(
        self, commands: Sequence[tuple[str, str]], language: str | None = None
    ) -> None:
        """The default menu on every channel that has menus."""
        for notifier in self.notifiers.values():
            if isinstance(notifier, CommandMenus):
                await notifier.set_default_commands(commands, language)

    async def set_chat_commands(self, commands: Sequence[tuple[str, str]], to: ChatRef) -> None:
        menus = self._menus_of(to)
        if menus is not None:
            await menus.set_chat_commands(commands, to)

    async def clear_commands(self, to: ChatRef) -> None:
        menus = self._menus_of(to)
        if menus is not None:
            await menus.clear_commands(to)

    def _menus_of(self, chat: ChatRef) -> CommandMenus | None:
        """The notifier of ``chat`` if its channel has command menus (Zalo has none)."""
        notifier = self.on(chat.channel)
        return notifier if isinstance(notifier, CommandMenus) else None

    def _own(self, to: ChatRef) -> ChatRef:
        """``to`` on the channel of the notifier that sends it (a chat built on ANY_CHANNEL)."""
        if to.channel in self.notifiers:
            return to
        return ChatRef(self.primary.channel, to.chat_id, to.thread_id)
