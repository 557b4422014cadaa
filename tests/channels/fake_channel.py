"""A second messenger, for tests only: no buttons, no edits, no pins, 2,000 characters.

It is strict the way Zalo is (docs/zalo.md): anything it cannot show is refused with
``Rejected``, so a flow or service that forgets to degrade fails the test instead of passing
silently. It is both the ``Notifier`` services send through (wrapped in
``DegradingNotifier``, as the app would wire a real channel) and the reply surface of the
conversation layer.

People are addressed by their account on this channel (a ``ChannelIdentity`` with channel
``fake``); ``enrol`` gives everyone who has a Telegram account a fake one with the same id, so
the desks the Telegram tests build serve here too (see ``account_of``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import count

from sqlmodel import select

from bot.channels import base
from bot.channels.base import Attachment, Buttons, Rejected, SentMessage
from bot.channels.limits import declare_max_text
from bot.channels.refs import ChatRef, MessageRef, PersonRef
from bot.runtime import Runtime
from bot.services import identity
from handlers.conversation.degrade import DegradingNotifier
from handlers.conversation.dispatch import handle
from handlers.conversation.events import Incoming, parse_command
from handlers.conversation.surface import Capabilities
from storage.db import Database
from storage.models import ChannelIdentity, User

CHANNEL = "fake"
CAPABILITIES = Capabilities(
    buttons=False, edit=False, pin=False, threads=False, join_requests=False, max_text=2000
)


def account_of(telegram_id: int) -> str:
    """A person's account id on the fake channel (``enrol`` made it their Telegram id)."""
    return str(telegram_id)


def enrol(db: Database, at: datetime) -> None:
    """Give every person with a Telegram account an account on the fake channel too."""
    with db.session() as s:
        for account in s.exec(select(ChannelIdentity).where(ChannelIdentity.channel == "telegram")):
            user = s.get(User, account.user_id)
            assert user is not None
            identity.link(s, user, PersonRef(CHANNEL, account_of(int(account.external_id))), at)


@dataclass(frozen=True)
class Post:
    chat: str
    text: str
    photo: str | None = None


class FakeChannel:
    def __init__(self) -> None:
        self.posts: list[Post] = []
        self._ids = count(1)

    def notifier(self) -> DegradingNotifier:
        """Services' notifier on this channel (its text limit declared, as wiring does)."""
        declare_max_text(CHANNEL, CAPABILITIES.max_text)
        return DegradingNotifier(self, CAPABILITIES)

    def inbox(self, account: str) -> list[str]:
        return [p.text for p in self.posts if p.chat == account]

    def _post(self, chat: str, text: str, buttons: Buttons | None, photo: str | None = None) -> str:
        if buttons:
            raise Rejected("this channel has no buttons")
        if photo is None and not text.strip():
            raise Rejected("empty message")
        if len(text) > CAPABILITIES.max_text:
            raise Rejected(f"{len(text)} characters, over {CAPABILITIES.max_text}")
        self.posts.append(Post(chat, text, photo))
        return str(next(self._ids))

    # ---- Notifier (what services call, through DegradingNotifier) -------------------------

    channel = CHANNEL

    def link_to(self, chat: base.ChatRef) -> str | None:
        return None

    async def send_text(
        self, to: base.ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        return SentMessage(to, self._post(to.chat_id, text, buttons))

    async def send_photo(
        self, to: base.ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        ident = self._post(to.chat_id, caption, buttons, photo=photo.filename)
        return SentMessage(to, ident)

    async def send_document(
        self, to: base.ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        raise Rejected("this channel sends no documents")

    async def edit_text(
        self, message: SentMessage, text: str, buttons: Buttons | None = None
    ) -> None:
        raise Rejected("this channel cannot edit")

    async def pin(self, message: SentMessage) -> None:
        raise Rejected("this channel cannot pin")

    # ---- the person's side -----------------------------------------------------------------

    async def type(
        self, runtime: Runtime, account: str, text: str, room: str | None = None
    ) -> list[str]:
        """``account`` writes ``text`` to the bot, or in the group chat ``room``; returns what
        the bot answered there.

        Asserts that a flow of the conversation layer answered it: nothing else is wired.
        """
        command, args = parse_command(text)
        chat = ChatRef(CHANNEL, room or account)
        event = Incoming(PersonRef(CHANNEL, account), chat, text, command, args)
        before = len(self.posts)
        assert await handle(runtime, event, FakeSurface(self, chat)), f"no flow for {text!r}"
        return [p.text for p in self.posts[before:] if p.chat == chat.chat_id]


class FakeSurface:
    capabilities = CAPABILITIES

    def __init__(self, channel: FakeChannel, chat: ChatRef) -> None:
        self.channel = channel
        self.chat = chat

    async def send(self, text: str, buttons: Buttons | None = None) -> MessageRef:
        return MessageRef(self.chat, self.channel._post(self.chat.chat_id, text, buttons))

    async def edit(self, message: MessageRef, text: str, buttons: Buttons | None = None) -> None:
        raise Rejected("this channel cannot edit")

    async def notice(self, text: str, alert: bool = False) -> None:
        if text:
            await self.send(text)
