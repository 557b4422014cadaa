"""The messages an update's handler posts, queued per chat and sent after the handler.

A handler that awaited its own replies held its chat's turn (``bot.updates``) for as long as the
rate limiter held the replies: behind a room's 20-a-minute cap, or behind every other chat's
messages when the bot's 30 a second are spent. The person's next update, a button press
included, then waited for all of that before it was even looked at, so a press in a busy minute
went unanswered for seconds. Here a handler hands its messages (sends and edits in its chat) to
the chat's queue and goes on: its database work is done, its press answered, its chat's next
update handled, while the queue sends the messages in the order they were handed in, each
waiting for its slot in the rate limiter outside any handler.

Two edits of one message waiting in the queue are one edit: only the latest is sent (a person
pressing Refresh twice while the first refresh waits sees the second). A handler that needs the
message it posted (a question whose reply it must recognise) awaits that one send; the queue
still keeps it in order behind the chat's earlier messages. The notifier's messages (services:
a registration's outcome, an alert, a room's brief) take their turn in the same queue and are
awaited by their caller, so whatever the bot says in one chat arrives in the order it was said.

A fan-out's messages are bulk sends, served after replies (``bot.channels.ratelimit``); a reply
queued in a chat behind one of them would wait for it, however long the fan-out makes it wait.
So a message queued outside the fan-out lifts the chat's bulk messages queued before it: they
go as replies, and the answer right after them.

A failed send no handler awaits is reported like a handler's error (PTB's error handlers: logged,
and the person told where that can still be done). When the application stops, the queue is given
``DRAIN_SECONDS`` to send what it holds; what is left then is dropped and counted in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, TypeVar, cast

from bot.channels.ratelimit import WHILE_WAITING, Standing, bulk_standing, sent_with

log = logging.getLogger(__name__)

T = TypeVar("T")
DRAIN_SECONDS = 10.0

#: What reports a failed send that nobody awaits: PTB's ``Application.process_error``.
OnError = Callable[[object, Exception], Coroutine[Any, Any, Any]]


class ChatSends:
    """Per chat, the handlers' messages in the order they were handed in (module doc)."""

    def __init__(self, on_error: OnError) -> None:
        self._on_error = on_error
        self._tails: dict[Hashable, asyncio.Future[Any]] = {}
        self._pending: set[asyncio.Task[Any]] = set()
        self._latest_edit: dict[Hashable, int] = {}
        self._handed_in = 0
        self._bulk: dict[Hashable, list[Standing]] = {}  # per chat, its bulk messages queued

    @property
    def pending(self) -> int:
        """Messages handed in and not yet sent (for tests and diagnostics)."""
        return len(self._pending)

    async def send(self, chat: Hashable, send: Callable[[], Awaitable[T]]) -> T:
        """``send``'s result, in its turn behind ``chat``'s earlier messages. The update whose
        handler waits here gives its running slot back meanwhile (``WHILE_WAITING``)."""
        queued = cast(asyncio.Future[T], self._queue(chat, send, None))
        paused = WHILE_WAITING.get()
        if paused is None:
            return await queued
        async with paused:
            return await queued

    def post(self, chat: Hashable, send: Callable[[], Awaitable[Any]], update: object) -> None:
        """Queue ``send`` without waiting for it; a failure goes to the error handlers."""
        self._report_failure(self._queue(chat, send, None), update)

    def edit(
        self, chat: Hashable, message: Hashable, send: Callable[[], Awaitable[Any]], update: object
    ) -> None:
        """Queue an edit of ``message``; a later edit of it handed in before this one's turn
        replaces it."""
        self._report_failure(self._queue(chat, send, (chat, message)), update)

    def _queue(
        self, chat: Hashable, send: Callable[[], Awaitable[Any]], edited: Hashable | None
    ) -> asyncio.Task[Any]:
        self._handed_in += 1
        mark = self._handed_in
        if edited is not None:
            self._latest_edit[edited] = mark
        bulk = bulk_standing()
        if bulk is not None:
            self._bulk.setdefault(chat, []).append(bulk)
        else:  # a reply: the chat's bulk messages before it go as replies too
            for ahead in self._bulk.get(chat, ()):
                ahead.lift()
        previous = self._tails.get(chat)
        task = asyncio.get_running_loop().create_task(
            self._in_turn(previous, send, edited, mark, bulk)
        )
        self._tails[chat] = task
        self._pending.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._pending.discard(finished)
            if self._tails.get(chat) is finished:
                del self._tails[chat]
            if bulk is not None:
                queued = self._bulk[chat]
                queued.remove(bulk)
                if not queued:
                    del self._bulk[chat]

        task.add_done_callback(done)
        return task

    async def _in_turn(
        self,
        previous: asyncio.Future[Any] | None,
        send: Callable[[], Awaitable[Any]],
        edited: Hashable | None,
        mark: int,
        bulk: Standing | None,
    ) -> Any:
        if previous is not None:
            # The earlier message's outcome is its own (reported there); only its turn counts.
            await asyncio.wait([previous])
        if edited is not None:
            if self._latest_edit.get(edited) != mark:
                return None  # a later edit of the same message is queued: it shows the latest
            del self._latest_edit[edited]
        with sent_with(bulk):
            return await send()

    def _report_failure(self, task: asyncio.Task[Any], update: object) -> None:
        def report(finished: asyncio.Task[Any]) -> None:
            if finished.cancelled():
                return
            exc = finished.exception()
            if isinstance(exc, Exception):
                asyncio.get_running_loop().create_task(self._on_error(update, exc))

        task.add_done_callback(report)

    async def drain(self, seconds: float = DRAIN_SECONDS) -> int:
        """Wait up to ``seconds`` for the queued messages; cancel the rest; how many were."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=seconds)
        left = list(self._pending)
        for task in left:
            task.cancel()
        if left:
            log.warning("stopping: %d queued messages to chats dropped unsent", len(left))
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*left, return_exceptions=True)
        return len(left)
