"""The Notifier over python-telegram-bot.

Text is sent as Telegram HTML (templates escape what people typed); buttons become an inline
keyboard whose callback data is the ``action:id`` of each ``Button``. PTB exceptions are mapped to
the channel-neutral ones of ``bot.channels.base``.

Services hold channel-neutral references (``bot.channels.refs``: string ids); this adapter is
where they become the Bot API's numbers and where Telegram's answers become references again.

A send that fails before its request was fully written cannot have reached Telegram and is safe
to repeat; one that fails after it (the answer timed out or the connection dropped mid-answer) may
have been delivered, and the Bot API has no way to ask, so it raises ``OutcomeUnknown`` and the
caller decides. Sends get a read timeout long enough (the ``SEND_TIMEOUT`` setting) that a merely
slow answer is waited for rather than turned into that doubt.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import httpx

# Opt in to PTB 23's timedelta durations (RetryAfter.retry_after) now, so the code reads them one
# way only and PTB's deprecation warning does not fire on every 429.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    User,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.channels.base import (
    Attachment,
    Buttons,
    DeliveryError,
    OutcomeUnknown,
    RateLimited,
    RecipientUnreachable,
    Rejected,
    SentMessage,
)
from bot.channels.refs import ChatRef, MessageRef, PersonRef
from bot.channels.telegram.sends import ChatSends

CHANNEL = "telegram"

T = TypeVar("T")

# Transport failures that happen after the whole request went out: Telegram may have acted on it.
# Connect errors, pool and write timeouts happen before, and an HTTP error status is Telegram's
# own answer that it did not.
_AFTER_REQUEST_SENT = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


def keyboard(buttons: Buttons | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons]
    )


def chat_id(chat: ChatRef) -> int | str:
    """The Bot API's ``chat_id``: a number, or a public chat's ``@username``."""
    if chat.channel != CHANNEL:
        raise ValueError(f"a {chat.channel} chat given to the Telegram adapter")
    return int(chat.chat_id) if chat.chat_id.lstrip("-").isdigit() else chat.chat_id


def thread_id(chat: ChatRef) -> int | None:
    """The Bot API's ``message_thread_id`` (forum topic), if the reference has one."""
    return int(chat.thread_id) if chat.thread_id is not None else None


def message_id(message: MessageRef) -> int:
    return int(message.message_id)


def chat_ref(chat: int | str, thread: int | None = None) -> ChatRef:
    """A Telegram chat (and forum topic) as a channel-neutral reference."""
    return ChatRef(CHANNEL, str(chat), str(thread) if thread is not None else None)


def person_ref(user: User | int) -> PersonRef:
    """The person behind a Telegram user (or user id) as a channel-neutral reference."""
    return PersonRef(CHANNEL, str(user if isinstance(user, int) else user.id))


def message_ref(message: Message) -> MessageRef:
    """A received or sent Telegram message as a channel-neutral reference."""
    thread = message.message_thread_id if message.is_topic_message else None
    return MessageRef(chat_ref(message.chat_id, thread), str(message.message_id))


def room_link(chat: ChatRef) -> str | None:
    """A t.me link that opens a supergroup (or one of its forum topics) for its members.

    Only supergroups (ids starting ``-100``) have such links; other chats get none.
    """
    if not chat.chat_id.startswith("-100"):
        return None
    internal = chat.chat_id[4:]
    if chat.thread_id is not None:
        return f"https://t.me/c/{internal}/{chat.thread_id}"
    return f"https://t.me/c/{internal}"


def _sent(message: Message) -> SentMessage:
    file_id = None
    if message.photo:
        file_id = message.photo[-1].file_id
    elif message.document:
        file_id = message.document.file_id
    chat = chat_ref(message.chat_id, message.message_thread_id)
    return SentMessage(chat, str(message.message_id), file_id)


def _file(attachment: Attachment) -> str | InputFile:
    return attachment.file_id or InputFile(attachment.data, filename=attachment.filename)


def _bot_commands(commands: Sequence[tuple[str, str]]) -> list[BotCommand]:
    return [BotCommand(name, description) for name, description in commands]


async def _call(request: Callable[[], Awaitable[T]]) -> T:
    try:
        return await request()
    except RetryAfter as exc:
        retry = exc.retry_after
        seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
        raise RateLimited(seconds) from exc
    except Forbidden as exc:
        raise RecipientUnreachable(exc.message) from exc
    except ChatMigrated as exc:
        raise RecipientUnreachable(f"chat migrated to {exc.new_chat_id}") from exc
    except BadRequest as exc:
        if "chat not found" in exc.message.lower():
            raise RecipientUnreachable(exc.message) from exc
        raise Rejected(exc.message) from exc
    except NetworkError as exc:
        if isinstance(exc.__cause__, _AFTER_REQUEST_SENT):
            raise OutcomeUnknown(f"no answer to a sent request: {exc.message}") from exc
        raise DeliveryError(exc.message) from exc
    except TelegramError as exc:
        raise DeliveryError(exc.message) from exc


async def call_unless_done(request: Callable[[], Awaitable[object]], done: str) -> None:
    """Make a request that Telegram refuses, with ``done`` in its answer, when what it asks for
    is already so (an edit to identical content, a topic already closed): that is success."""
    try:
        await _call(request)
    except Rejected as exc:
        if done not in str(exc).lower():
            raise


class TelegramNotifier:
    """Implements ``bot.channels.base.Notifier`` with a PTB ``Bot``.

    ``send_timeout`` is the read timeout of every send (seconds): how long a slow Bot API is
    waited for before the send's outcome counts as unknown. With ``sends`` (the app's), every
    message and edit takes its turn in its chat's queue behind what handlers queued there
    (``bot.channels.telegram.sends``).
    """

    channel = CHANNEL

    def __init__(
        self, bot: Bot, *, send_timeout: float = 30.0, sends: ChatSends | None = None
    ) -> None:
        self.bot = bot
        self.send_timeout = send_timeout
        self.sends = sends

    async def _in_turn(self, to: ChatRef, request: Callable[[], Awaitable[T]]) -> T:
        if self.sends is None:
            return await request()
        return await self.sends.send(chat_id(to), request)

    async def _call_in_turn(self, to: ChatRef, request: Callable[[], Awaitable[T]]) -> T:
        """A Bot API ``request`` in ``to``'s turn, its errors made channel-neutral."""
        return await self._in_turn(to, lambda: _call(request))

    def link_to(self, chat: ChatRef) -> str | None:
        return room_link(chat)

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        message = await self._call_in_turn(
            to,
            lambda: self.bot.send_message(
                chat_id=chat_id(to),
                message_thread_id=thread_id(to),
                text=text,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(buttons),
                disable_web_page_preview=True,
                read_timeout=self.send_timeout,
            ),
        )
        return _sent(message)

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        return await self._send_file(self.bot.send_photo, to, caption, buttons, photo=_file(photo))

    async def send_document(
        self, to: ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        return await self._send_file(
            self.bot.send_document, to, caption, None, document=_file(document)
        )

    async def _send_file(
        self,
        send: Callable[..., Awaitable[Message]],
        to: ChatRef,
        caption: str,
        buttons: Buttons | None,
        **file: str | InputFile,
    ) -> SentMessage:
        """A photo or a document: one request but for the method and the file's field name."""
        message = await self._call_in_turn(
            to,
            lambda: send(
                chat_id=chat_id(to),
                message_thread_id=thread_id(to),
                caption=caption or None,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(buttons),
                read_timeout=self.send_timeout,
                **file,
            ),
        )
        return _sent(message)

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        await self._in_turn(
            message.chat,
            lambda: call_unless_done(
                lambda: self.bot.edit_message_text(
                    chat_id=chat_id(message.chat),
                    message_id=message_id(message),
                    text=text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(buttons),
                    disable_web_page_preview=True,
                ),
                "message is not modified",
            ),
        )

    async def pin(self, message: MessageRef) -> None:
        await self._call_in_turn(
            message.chat,
            lambda: self.bot.pin_chat_message(
                chat_id=chat_id(message.chat),
                message_id=message_id(message),
                disable_notification=True,
            ),
        )

    async def set_default_commands(
        self, commands: Sequence[tuple[str, str]], language: str | None = None
    ) -> None:
        menu = _bot_commands(commands)
        await _call(lambda: self.bot.set_my_commands(menu, language_code=language))

    async def set_chat_commands(self, commands: Sequence[tuple[str, str]], to: ChatRef) -> None:
        menu = _bot_commands(commands)
        scope = BotCommandScopeChat(chat_id(to))
        await _call(lambda: self.bot.set_my_commands(menu, scope=scope))

    async def clear_commands(self, to: ChatRef) -> None:
        await _call(lambda: self.bot.delete_my_commands(scope=BotCommandScopeChat(chat_id(to))))
