"""`TelegramEmulator`: the Bot API server plus the Python control API tests drive it with.

A test starts one emulator, builds the real PTB ``Application`` against :attr:`bot_url`, then
plays people (``send_text``, ``press_button``, ``request_join``…) and asserts on what chats hold
(``messages``, ``wait_for_message``) and on the call log (``calls``). Every control method is
synchronous except those that wait for the bot. The same methods are reachable over HTTP under
``/_control/`` (see :mod:`.control` and docs/emulator.md).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from bot.sandbox.serving import LoopbackEmulator

from .control import control_routes
from .errors import ControlError
from .html_entities import detect_entities
from .limits import FloodLimiter
from .methods import BotApi
from .server import MAX_REQUEST_BYTES, Call, Fault, Gateway
from .state import (
    Chat,
    InviteLink,
    Member,
    StoredMessage,
    Topic,
    User,
    World,
    normalize_rights,
)
from .updates import UpdateHub

DEFAULT_TOKEN = "123456:TEST"


class TelegramEmulator(LoopbackEmulator):
    """A strict, local Telegram Bot API for one bot, with a control API for tests."""

    client_max_size = MAX_REQUEST_BYTES

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "crisisdesk_test_bot",
        bot_first_name: str = "CrisisDesk",
        flood_limits: bool = True,
        privacy_mode: bool = True,
        now: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError(f"token must look like '<bot id>:<secret>', got {token!r}")
        super().__init__(host, port)
        self.token = token
        self.now = now
        bot = User(int(bot_id), bot_first_name, username=bot_username, is_bot=True)
        self.world = World(bot)
        self.limiter = FloodLimiter(now, enabled=flood_limits)
        self.hub = UpdateHub(now, self._changed)
        self.api = BotApi(self.world, self.hub, self.limiter, now, privacy_mode=privacy_mode)
        self.gateway = Gateway(self.api, token, now, self._changed)
        self._callback_ids = itertools.count(1)

    # ---- lifecycle ------------------------------------------------------------------------

    def _routes(self) -> list[web.AbstractRouteDef]:
        return [*self.gateway.routes(), *control_routes(self)]

    async def _release(self) -> None:
        """Release long polls and pending button answers, stop webhook delivery."""
        await self.hub.close()
        for future in self.api.callbacks.values():
            future.cancel()

    @property
    def bot(self) -> User:
        return self.world.bot

    @property
    def bot_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: PTB appends the token."""
        return f"{self.root_url}/bot"

    @property
    def file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.root_url}/file/bot"

    # ---- people and chats ----------------------------------------------------------------

    def create_user(
        self,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
        user_id: int | None = None,
    ) -> User:
        """A person who has not talked to the bot yet (the bot can't message them)."""
        if user_id is not None and user_id in self.world.users:
            raise ControlError(f"user {user_id} already exists")
        user = User(
            user_id if user_id is not None else self.world.new_user_id(),
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        self.world.users[user.id] = user
        self._changed()
        return user

    def create_group(
        self, title: str, *, owner_id: int | None = None, member_ids: Sequence[int] = ()
    ) -> Chat:
        """A basic group. Without ``owner_id`` an owner user is created."""
        return self._create_chat("group", title, owner_id, member_ids, None, False)

    def create_supergroup(
        self,
        title: str,
        *,
        forum: bool = False,
        owner_id: int | None = None,
        member_ids: Sequence[int] = (),
        username: str | None = None,
    ) -> Chat:
        """A supergroup; ``forum=True`` enables topics. ``username`` makes it public."""
        return self._create_chat("supergroup", title, owner_id, member_ids, username, forum)

    def create_channel(
        self, title: str, *, owner_id: int | None = None, username: str | None = None
    ) -> Chat:
        return self._create_chat("channel", title, owner_id, (), username, False)

    def _create_chat(
        self,
        kind: str,
        title: str,
        owner_id: int | None,
        member_ids: Sequence[int],
        username: str | None,
        forum: bool,
    ) -> Chat:
        owner = (
            self._user(owner_id)
            if owner_id is not None
            else self.create_user("Owner", last_name=f"of {title}")
        )
        chat = Chat(
            id=self.world.new_chat_id(kind),
            type=kind,
            title=title,
            username=username,
            is_forum=forum,
        )
        chat.members[owner.id] = Member(owner.id, "creator")
        for member_id in member_ids:
            chat.members[self._user(member_id).id] = Member(member_id, "member")
        self.world.chats[chat.id] = chat
        self._changed()
        return chat

    def add_bot(
        self,
        chat_id: int,
        *,
        rights: Mapping[str, bool] | None = None,
        by_user_id: int | None = None,
    ) -> None:
        """Add the bot (or change its rights): an administrator with ``rights``, or a plain
        member when ``rights`` is None. Emits ``my_chat_member``."""
        chat = self._chat(chat_id)
        if chat.private_user is not None:
            raise ControlError("the bot is always in its private chats")
        if chat.type == "channel" and rights is None:
            raise ControlError("bots can only be added to channels as administrators")
        if rights is None:
            member = Member(self.bot.id, "member")
        else:
            member = Member(self.bot.id, "administrator", normalize_rights(dict(rights)))
        self.api.set_member(chat, self.bot, member, self._actor(chat, by_user_id))
        self._changed()

    def remove_bot(self, chat_id: int, *, by_user_id: int | None = None) -> None:
        """Kick the bot out, as removing it in a Telegram client does."""
        chat = self._chat(chat_id)
        actor = self._actor(chat, by_user_id)
        self.api.set_member(chat, self.bot, Member(self.bot.id, "kicked"), actor)
        self._changed()

    # ---- acting as a person --------------------------------------------------------------

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> StoredMessage:
        """A person writes; ``chat_id`` None means their private chat with the bot (which
        starts it). Commands get ``bot_command`` entities, so ``/start payload`` works."""
        text = text.strip()
        if not text:
            raise ControlError("Telegram clients do not send empty messages")
        entities = detect_entities(text, [])
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._user_post(user_id, content, chat_id, thread_id, reply_to)

    def send_contact(
        self,
        user_id: int,
        phone_number: str,
        *,
        chat_id: int | None = None,
        contact_user_id: int | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> StoredMessage:
        """Share a contact. By default the sender's own (what a ``request_contact`` button
        sends); pass ``contact_user_id`` for another Telegram user's, or only ``first_name``
        for a phone-book entry with no Telegram account."""
        sender = self._user(user_id)
        if contact_user_id is None and first_name is None:
            contact_user_id = sender.id
        owner = self._user(contact_user_id) if contact_user_id is not None else None
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name or (owner.first_name if owner else ""),
        }
        surname = last_name or (owner.last_name if owner else None)
        if surname:
            contact["last_name"] = surname
        if owner is not None:
            contact["user_id"] = owner.id
        return self._user_post(user_id, {"contact": contact}, chat_id, None, None)

    async def press_button(
        self,
        user_id: int,
        chat_id: int,
        message_id: int,
        *,
        text: str | None = None,
        data: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the bot's answer, by design
    ) -> dict[str, Any]:
        """Press an inline button (by label ``text``, or send ``data`` — which may be forged
        or stale, as a hostile client could) and return the bot's ``answerCallbackQuery``
        arguments: ``{"text", "show_alert", "url", "cache_time"}``."""
        user = self._user(user_id)
        chat = self._chat(chat_id)
        if not chat.member(user.id).is_member:
            raise ControlError(f"user {user_id} is not in chat {chat_id}")
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise ControlError(f"message {message_id} not found in chat {chat_id}")
        if data is None:
            button = next((b for b in message.buttons() if b.get("text") == text), None)
            if button is None or "callback_data" not in button:
                labels = [b.get("text") for b in message.buttons()]
                raise ControlError(f"no callback button {text!r} on the message; it has {labels}")
            data = str(button["callback_data"])
        query_id = f"{self.bot.id}{next(self._callback_ids):010d}"
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.api.callbacks[query_id] = answer
        self.hub.emit(
            "callback_query",
            {
                "id": query_id,
                "from": user.to_api(),
                "message": message.data,
                "chat_instance": str(chat.id),
                "data": data,
            },
        )
        try:
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            self.api.callbacks.pop(query_id, None)
            raise TimeoutError(
                f"the bot did not answer callback query {data!r} within {timeout} s"
            ) from None

    def request_join(self, user_id: int, invite_link: str) -> None:
        """Ask to join through a link with ``creates_join_request``; emits ``chat_join_request``
        (delivered only if the bot is an administrator who can invite users)."""
        user = self._user(user_id)
        link, chat = self._usable_link(invite_link)
        if not link.creates_join_request:
            raise ControlError("this link admits people directly; use join()")
        if chat.member(user.id).is_member:
            raise ControlError(f"user {user_id} is already in chat {chat.id}")
        link.pending.add(user.id)
        if chat.member(self.bot.id).can("can_invite_users"):
            self.hub.emit(
                "chat_join_request",
                {
                    "chat": chat.to_api(),
                    "from": user.to_api(),
                    "user_chat_id": user.id,
                    "date": int(self.now()),
                    "invite_link": link.to_api(self.world.user(link.creator_id)),
                },
            )
        self._changed()

    def join(
        self, user_id: int, chat_id: int | None = None, *, invite_link: str | None = None
    ) -> None:
        """Join a chat directly (public chats, or being added) or through an invite link."""
        user = self._user(user_id)
        link: InviteLink | None = None
        if invite_link is not None:
            link, chat = self._usable_link(invite_link)
            if link.creates_join_request:
                raise ControlError("this link needs approval; use request_join()")
            if link.member_limit is not None and link.joined >= link.member_limit:
                raise ControlError("the invite link's member limit is reached")
            link.joined += 1
        elif chat_id is not None:
            chat = self._chat(chat_id)
        else:
            raise ControlError("give chat_id or invite_link")
        member = chat.member(user.id)
        if member.status == "kicked":
            raise ControlError(f"user {user_id} is banned from chat {chat.id}")
        if member.is_member:
            raise ControlError(f"user {user_id} is already in chat {chat.id}")
        self.api.set_member(chat, user, Member(user.id, "member"), user, invite_link=link)
        self._changed()

    def leave(self, user_id: int, chat_id: int) -> None:
        user = self._user(user_id)
        chat = self._chat(chat_id)
        if not chat.member(user.id).is_member:
            raise ControlError(f"user {user_id} is not in chat {chat_id}")
        self.api.set_member(chat, user, Member(user.id, "left"), user)
        self._changed()

    def block_bot(self, user_id: int) -> None:
        """The person blocks the bot: sends now fail with 403; ``my_chat_member`` says kicked."""
        self._set_blocked(user_id, True)

    def unblock_bot(self, user_id: int) -> None:
        self._set_blocked(user_id, False)

    def _set_blocked(self, user_id: int, blocked: bool) -> None:
        user = self._user(user_id)
        if user.blocked == blocked:
            return
        chat = self.world.private_chat(user)
        user.blocked = blocked
        old = Member(self.bot.id, "member" if blocked else "kicked")
        new = Member(self.bot.id, "kicked" if blocked else "member")
        self.api.member_update(chat, user, self.bot, old, new)
        self._changed()

    # ---- observing -------------------------------------------------------------------------

    def user(self, user_id: int) -> User:
        return self._user(user_id)

    def chat(self, chat_id: int) -> Chat:
        return self._chat(chat_id)

    def messages(
        self,
        chat_id: int,
        *,
        thread_id: int | None = None,
        include_deleted: bool = True,
        from_bot: bool | None = None,
    ) -> list[StoredMessage]:
        """Everything the chat (or one topic) holds, oldest first, with edit history."""
        chat = self._chat(chat_id)
        found = []
        for message in chat.messages.values():
            if thread_id is not None and message.thread_id != thread_id:
                continue
            if message.deleted and not include_deleted:
                continue
            if from_bot is not None and (message.sender_id == self.bot.id) != from_bot:
                continue
            found.append(message)
        return found

    def message(self, chat_id: int, message_id: int) -> StoredMessage:
        try:
            return self._chat(chat_id).messages[message_id]
        except KeyError:
            raise ControlError(f"message {message_id} not found in chat {chat_id}") from None

    @property
    def calls(self) -> list[Call]:
        """Every Bot API request, in order."""
        return self.gateway.calls

    @property
    def held(self) -> list[tuple[str, dict[str, Any]]]:
        """(method, parameters) of the calls an injected delay is holding right now: a test
        kills the bot while one is held, and the call is carried out after the hold."""
        return list(self.gateway.held)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.gateway.calls if call.method.lower() == method.lower()]

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Every update ever produced for the bot (delivered or still pending)."""
        return list(self.hub.history)

    def invite_links(self, chat_id: int, *, include_revoked: bool = False) -> list[InviteLink]:
        links = self._chat(chat_id).invite_links.values()
        return [link for link in links if include_revoked or not link.is_revoked]

    def topics(self, chat_id: int, *, include_deleted: bool = False) -> list[Topic]:
        topics = self._chat(chat_id).topics.values()
        return [topic for topic in topics if include_deleted or not topic.deleted]

    async def wait_for_message(
        self,
        chat_id: int,
        predicate: Callable[[StoredMessage], bool] | None = None,
        *,
        thread_id: int | None = None,
        after: int = 0,
        from_bot: bool = True,
        timeout: float = 5.0,  # noqa: ASYNC109 - tests state how long they are willing to wait
    ) -> StoredMessage:
        """The first message (by default from the bot) with an id above ``after`` that
        matches; pass the id of the message that prompted the reply as ``after``."""

        def match() -> StoredMessage | None:
            for message in self.messages(chat_id, thread_id=thread_id, from_bot=from_bot):
                if message.message_id > after and (predicate is None or predicate(message)):
                    return message
            return None

        return await self.wait_for(match, timeout)

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - tests state how long they are willing to wait
    ) -> Call:
        """The first logged call of ``method`` (any status) matching ``predicate``."""

        def match() -> Call | None:
            for call in self.calls_to(method):
                if predicate is None or predicate(call):
                    return call
            return None

        return await self.wait_for(match, timeout)

    # ---- switches and faults ---------------------------------------------------------------

    @property
    def flood_limits(self) -> bool:
        return self.limiter.enabled

    def set_flood_limits(self, enabled: bool) -> None:
        """Switch flood limits; switching on starts from a clean slate."""
        if enabled and not self.limiter.enabled:
            self.limiter.reset()
        self.limiter.enabled = enabled

    def inject_error(
        self,
        method: str,
        status: int,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        times: int = 1,
        delay: float = 0.0,
        text_contains: str | None = None,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with this error instead of running
        them (429 gets ``retry_after``, default 1; descriptions default to Telegram's), after
        holding each for ``delay`` seconds. ``text_contains`` aims the fault at the calls whose
        text or caption holds it, ``chat_id`` at the calls to that chat; other calls of
        ``method`` pass untouched."""
        self.gateway.inject(
            Fault(
                method.lower(),
                times,
                status,
                description,
                retry_after,
                delay=delay,
                text_contains=text_contains,
                chat_id=chat_id,
            )
        )

    def inject_delay(
        self,
        method: str,
        seconds: float,
        *,
        times: int = 1,
        text_contains: str | None = None,
        chat_id: int | str | None = None,
        after: int = 0,
    ) -> None:
        """Hold the next ``times`` responses of ``method`` for ``seconds`` (client timeouts);
        ``text_contains`` and ``chat_id`` as for :meth:`inject_error`. With ``after``, that
        many matching calls go through first, counted as they arrive (a crash test holds the
        k+1-th call without watching for the k-th)."""
        self.gateway.inject(
            Fault(
                method.lower(),
                times,
                delay=seconds,
                text_contains=text_contains,
                chat_id=chat_id,
                after=after,
            )
        )

    def clear_faults(self) -> None:
        """Drop every injected fault not yet used up (an outage ends)."""
        self.gateway.faults.clear()

    # ---- internals -------------------------------------------------------------------------

    def _user(self, user_id: int) -> User:
        user = self.world.users.get(user_id)
        if user is None:
            raise ControlError(f"no user {user_id}; create_user() first")
        return user

    def _chat(self, chat_id: int) -> Chat:
        chat = self.world.chats.get(chat_id)
        if chat is None:
            raise ControlError(f"no chat {chat_id}")
        return chat

    def _actor(self, chat: Chat, user_id: int | None) -> User:
        if user_id is not None:
            return self._user(user_id)
        owner = next(m.user_id for m in chat.members.values() if m.status == "creator")
        return self.world.user(owner)

    def _usable_link(self, url: str) -> tuple[InviteLink, Chat]:
        for chat in self.world.chats.values():
            link = chat.invite_links.get(url)
            if link is None:
                continue
            if link.is_revoked:
                raise ControlError("the invite link was revoked")
            if link.expire_date is not None and link.expire_date <= self.now():
                raise ControlError("the invite link has expired")
            return link, chat
        raise ControlError(f"unknown invite link {url}")

    def _user_post(
        self,
        user_id: int,
        content: dict[str, Any],
        chat_id: int | None,
        thread_id: int | None,
        reply_to: int | None,
    ) -> StoredMessage:
        user = self._user(user_id)
        if chat_id is None or chat_id == user.id:
            chat = self.world.private_chat(user)
            user.started = True
            user.blocked = False  # writing to a blocked bot means pressing "Restart" first
        else:
            chat = self._chat(chat_id)
            member = chat.member(user.id)
            if not member.is_member:
                raise ControlError(f"user {user_id} is not in chat {chat_id}")
            if chat.type == "channel" and member.status not in ("creator", "administrator"):
                raise ControlError("only channel administrators can post")
        if thread_id is not None:
            topic = chat.topics.get(thread_id)
            if not chat.is_forum or topic is None or topic.deleted:
                raise ControlError(f"no topic {thread_id} in chat {chat.id}")
            if topic.closed and chat.member(user.id).status not in ("creator", "administrator"):
                raise ControlError("the topic is closed")
        target = None
        if reply_to is not None:
            target = chat.messages.get(reply_to)
            if target is None or target.deleted:
                raise ControlError(f"message {reply_to} not found in chat {chat.id}")
        message = self.api.post(chat, user, content, thread_id=thread_id, reply_to=target)
        self.api.deliver(chat, message)
        self._changed()
        return message
