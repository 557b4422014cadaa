"""The Notifier protocol: how services talk to people without knowing the messenger.

Services decide *what* to say (rendered text, buttons as ``Button`` triples, files as bytes) and
call a Notifier; the Telegram implementation turns that into Bot API calls and a Zalo one will do
the same for Zalo. Failures come back as the channel-neutral exceptions below so that services can
react (mark a person unreachable, retry later) without importing ``telegram``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from bot.channels.refs import ChatRef, MessageRef
from storage.db import LOOP_WRITERS, SQLITE_WRITE_PATIENCE_S, is_busy

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 64  # Telegram's limit on a button's data; the scheme keeps to it everywhere
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_.]{0,31}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,28}$")


@dataclass(frozen=True)
class Button:
    """A button as services describe it: a label and the ``action:id`` it triggers (the
    registry of actions and their permission rules is ``bot.buttons``)."""

    label: str
    action: str
    id: str | int = 0

    @property
    def data(self) -> str:
        return encode(self.action, self.id)


def encode(action: str, ident: str | int = 0) -> str:
    """The ``action:id`` data a button carries; refuses what a press could not bring back."""
    ident_text = str(ident)
    if not ACTION_PATTERN.match(action) or not ID_PATTERN.match(ident_text):
        raise ValueError(f"bad button action or id: {action!r}, {ident_text!r}")
    data = f"{action}:{ident_text}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data over {MAX_CALLBACK_BYTES} bytes: {data!r}")
    return data


@dataclass(frozen=True)
class SentMessage(MessageRef):
    """A message the channel accepted, and the id of its photo or document if it had one (to
    send the same file again without uploading it)."""

    file_id: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A file to send: the bytes and the name people will see, or the id of an earlier upload
    (Telegram sends a known ``file_id`` again without the bytes: a fan-out uploads a chart once).
    """

    filename: str
    data: bytes = b""
    file_id: str | None = None


Buttons = Sequence[Sequence[Button]]
Keyboard = list[list[Button]]  # rows of buttons as a flow builds them


class DeliveryError(Exception):
    """A message could not be delivered; ``permanent`` says whether retrying can help."""

    permanent = False


class RecipientUnreachable(DeliveryError):
    """The person blocked the bot, never started it, or the chat is gone."""

    permanent = True


# Awaited by the channel right before a request's bytes leave the process — after any
# flood-limit wait, once its connection is up and the whole request is ready, with the write
# following in the same step of the event loop — in the task that sends it. The ledgers
# (``bot.services.outbox``, ``bot.services.delivery``) claim a message there through
# :class:`WireClaim`, so a kill during the wait or while a connection opens leaves the
# message owed, not in doubt.
ON_WIRE: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar("on_wire", default=None)

CLAIM_FIRST_PAUSE_S = 0.05  # between claims refused by a busy database, doubling …
CLAIM_MAX_PAUSE_S = 0.2  # … up to this (a writer off the loop gives way meanwhile)


class ClaimBusy(DeliveryError):
    """The claim could not be written: the database stayed busy (SQLite's write lock held by
    another writer) for all of ``SQLITE_WRITE_PATIENCE_S``. Nothing was sent and nothing was
    claimed, so sending again later is safe."""


class ClaimLost(Exception):
    """The ledger's row was no longer this process's to send when its request was about to
    leave: another worker claimed, settled or took it over. A claim raises it to stop the send
    before anything reaches the channel; the caller leaves the message to that worker."""


class WireClaim:
    """The ``ON_WIRE`` hook of one send: runs ``claim`` the first time a request is about to
    leave, and never again for that send (the rate limiter retries a short 429 inline, and the
    claim already covers the retry).

    ``claim`` runs synchronously on the event loop, in the sending task, with nothing but the
    socket write after it: claimed from a thread, before the connection was opened, or before
    the headers with the body still to write, the send could wait for the loop or the network
    after the commit, and a kill in that gap left a claimed message that never went out (crash
    matrix, ``fanout.chart.3`` and ``pub.approve-answer``). Telegram's transport holds the
    request's bytes until the claim has run and then writes them whole in the same step of the
    loop (``bot/channels/telegram/wire.py``). The channel reports what the claim raised as a
    failed request; :meth:`send` raises it again, so the caller sees the claim's own exception.

    A claim refused by a busy SQLite database (``storage.db.is_busy``: it wrote nothing) is
    tried again after an ``asyncio.sleep``, for up to ``SQLITE_WRITE_PATIENCE_S``, then raises
    :class:`ClaimBusy`. Every claimed send (alert parts, room and channel posts, registration
    messages) thus waits out another writer *before* its request leaves, instead of each
    ledger handling it (the outbox did not: a busy claim failed the due row after earlier parts
    had gone out, and the part was then skipped as queued). The wait yields to the loop, so a
    holder suspended on this loop can finish, and the claim still runs right before the write.
    Each try waits only ``storage.db.BRIEF_BUSY_MS`` on the loop (it waited a whole busy
    timeout, 10 s, and a scan's back-to-back slices starved it: the loop stood still for 7 s),
    and while a claim waits, writers off the loop give way to it (``storage.db.LOOP_WRITERS``)."""

    def __init__(self, claim: Callable[[], None]) -> None:
        self._claim = claim
        self.done = False
        self.failed: Exception | None = None

    async def __call__(self) -> None:
        if self.done:
            return
        started = time.monotonic()
        pause = CLAIM_FIRST_PAUSE_S
        with contextlib.ExitStack() as waiting:
            while True:
                try:
                    self._claim()
                except Exception as exc:
                    waited = time.monotonic() - started
                    if not is_busy(exc):
                        self.failed = exc
                        raise
                    if waited >= SQLITE_WRITE_PATIENCE_S:
                        self.failed = ClaimBusy(f"database busy for {waited:.0f} s; nothing sent")
                        raise self.failed from exc
                    if pause == CLAIM_FIRST_PAUSE_S:
                        log.warning("a send waits for SQLite's write lock to claim its message")
                        waiting.enter_context(LOOP_WRITERS.waiting())  # the scan gives way
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, CLAIM_MAX_PAUSE_S)
                    continue
                self.done = True
                return

    async def send(self, request: Awaitable[T]) -> T:
        """Await ``request`` under this claim; a claim that raised raises here, unwrapped."""
        token = ON_WIRE.set(self)
        try:
            return await request
        except Exception:
            if self.failed is not None:
                raise self.failed from None
            raise
        finally:
            ON_WIRE.reset(token)


class RateLimited(DeliveryError):
    """The channel asked us to slow down; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = retry_after


class OutcomeUnknown(DeliveryError):
    """The request reached the channel but its answer was lost (a read timeout, a connection
    dropped mid-answer): the message may or may not have been delivered. Sending it again may
    duplicate it; the Bot API offers no way to ask which it was."""


class Rejected(DeliveryError):
    """The channel refused the request itself (bad markup, missing rights): a bug or setup issue."""

    permanent = True


class Notifier(Protocol):
    #: The channel this notifier speaks on (``ChatRef.channel``); services find a person's
    #: account on it through ``ChannelIdentity``.
    channel: str

    def link_to(self, chat: ChatRef) -> str | None:
        """A link that opens ``chat`` (or its thread) for someone already in it, if the
        channel has such links."""
        ...

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage: ...

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage: ...

    async def send_document(
        self, to: ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage: ...

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        """Replace a message's text; editing to identical content is not an error."""
        ...

    async def pin(self, message: MessageRef) -> None: ...


@runtime_checkable
class CommandMenus(Protocol):
    """A channel that shows each chat a menu of commands (Telegram's ``setMyCommands``).

    Optional: services look for it on the notifier and skip menus where the channel has none.
    ``commands`` are ``(name, description)`` pairs in menu order.
    """

    async def set_default_commands(
        self, commands: Sequence[tuple[str, str]], language: str | None = None
    ) -> None:
        """The menu of every chat without its own (of those in ``language`` if given)."""
        ...

    async def set_chat_commands(self, commands: Sequence[tuple[str, str]], to: ChatRef) -> None:
        """Chat ``to``'s own menu (already in its person's language)."""
        ...

    async def clear_commands(self, to: ChatRef) -> None:
        """Drop chat ``to``'s own menu: it sees the default one again."""
        ...
