"""The Notifier over python-telegram-bot.

Text is sent as Telegram HTML (templates escape what people typed); buttons become an inline
keyboard whose callback data is the ``action:id`` of each ``Button``. PTB exceptions are mapped to
the channel-neutral ones of ``bot.channels.base``.

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
    ChatRef,
    DeliveryError,
    OutcomeUnknown,
    RateLimited,
    RecipientUnreachable,
    Rejected,
    SentMessage,
)

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


def _sent(message: Message) -> SentMessage:
    file_id = None
    if message.photo:
        file_id = message.photo[-1].file_id
    elif message.document:
        file_id = message.document.file_id
    return SentMessage(message.chat_id, message.message_id, message.message_thread_id, file_id)


def _file(attachment: Attachment) -> str | InputFile:
    return attachment.file_id or InputFile(attachment.data, filename=attachment.filename)


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
    waited for before the send's outcome counts as unknown.
    """

    def __init__(self, bot: Bot, *, send_timeout: float = 30.0) -> None:
        self.bot = bot
        self.send_timeout = send_timeout

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        message = await _call(
            lambda: self.bot.send_message(
                chat_id=to.chat_id,
                message_thread_id=to.thread_id,
                text=text,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(buttons),
                disable_web_page_preview=True,
                read_timeout=self.send_timeout,
            )
        )
        return _sent(message)

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        message = await _call(
            lambda: self.bot.send_photo(
                chat_id=to.chat_id,
                message_thread_id=to.thread_id,
                photo=_file(photo),
                caption=caption or None,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(buttons),
                read_timeout=self.send_timeout,
            )
        )
        return _sent(message)

    async def send_document(
        self, to: ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        message = await _call(
            lambda: self.bot.send_document(
                chat_id=to.chat_id,
                message_thread_id=to.thread_id,
                document=_file(document),
                caption=caption or None,
                parse_mode=ParseMode.HTML,
                read_timeout=self.send_timeout,
            )
        )
        return _sent(message)

    async def edit_text(
        self, message: SentMessage, text: str, buttons: Buttons | None = None
    ) -> None:
        await call_unless_done(
            lambda: self.bot.edit_message_text(
                chat_id=message.chat_id,
                message_id=message.message_id,
                text=text,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(buttons),
                disable_web_page_preview=True,
            ),
            "message is not modified",
        )

    async def pin(self, message: SentMessage) -> None:
        await _call(
            lambda: self.bot.pin_chat_message(
                chat_id=message.chat_id, message_id=message.message_id, disable_notification=True
            )
        )

    async def set_commands(
        self,
        commands: Sequence[tuple[str, str]],
        to: ChatRef | None = None,
        language: str | None = None,
    ) -> None:
        menu = [BotCommand(name, description) for name, description in commands]
        scope = BotCommandScopeChat(to.chat_id) if to is not None else None
        await _call(lambda: self.bot.set_my_commands(menu, scope=scope, language_code=language))

    async def clear_commands(self, to: ChatRef) -> None:
        await _call(lambda: self.bot.delete_my_commands(scope=BotCommandScopeChat(to.chat_id)))
