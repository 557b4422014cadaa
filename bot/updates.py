"""Updates of different chats handled in parallel, each chat's updates strictly in order.

PTB handles updates one at a time unless told otherwise, so one slow handler (a send sleeping in
the rate limiter while a crisis room is at Telegram's 20-messages-a-minute cap) stalls every other
chat and leaves button presses unanswered past Telegram's timeout. PTB's own concurrent mode runs
updates in any order, which breaks conversations and "submit, then approve" sequences in a chat.

:class:`ChatOrderedUpdateProcessor` chains updates by :func:`order_key`: an update waits for the
previous update with the same key to finish, then for one of ``max_running`` running slots.
Waiting for the turn comes *before* taking a slot, so a busy chat with a long queue holds one slot,
not all of them. PTB's own semaphore (taken before :meth:`do_process_update`) is set to
``max_queued`` and only bounds how many updates may be waiting at all.

A handler whose send sleeps until its slot in the rate limiter gives its running slot back
meanwhile (``bot.channels.ratelimit.WHILE_WAITING``) and takes one again before the send leaves:
otherwise ``max_running`` handlers waiting for Telegram's budget (replies when the bot's 30
messages a second are spent) kept every other update, button presses included, from starting.
Its chat's turn it keeps: the chat's next update still waits for it.

Updates reach :meth:`do_process_update` in arrival order: PTB creates one task per update in the
order it fetched them, the event loop starts tasks in creation order, and the chain is extended
before the first ``await``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Hashable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.channels.ratelimit import WHILE_WAITING

MAX_RUNNING = 64
MAX_QUEUED = 10_000


def order_key(update: object) -> Hashable | None:
    """What an update must stay in order with; ``None`` for "with nothing".

    * Most updates: their chat. A person's private chat has the person's id, so their commands,
      replies and button presses there form one sequence; a room's messages form another.
    * A button press in a group or channel: the chat *and* the presser. Answering it must not wait
      behind the room's other traffic (a handler sending into a room at its message cap waits
      for minutes), while one person's presses there still come in the order they were made.
    * No chat (inline queries, polls): the person; no person either: no order.
    """
    if not isinstance(update, Update):
        return None
    chat, user = update.effective_chat, update.effective_user
    if update.callback_query is not None and chat is not None and user is not None:
        return chat.id if chat.id == user.id else ("press", chat.id, user.id)
    if chat is not None:
        return chat.id
    if user is not None:
        return user.id
    return None


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Run updates concurrently across keys and in arrival order within a key (module doc)."""

    def __init__(self, max_running: int = MAX_RUNNING, max_queued: int = MAX_QUEUED) -> None:
        if not 1 < max_running <= max_queued:
            raise ValueError("need 1 < max_running <= max_queued")
        super().__init__(max_queued)
        self._running = asyncio.BoundedSemaphore(max_running)
        self._tails: dict[Hashable, asyncio.Future[None]] = {}

    @property
    def chains(self) -> int:
        """How many keys have an update running or waiting (for tests and diagnostics)."""
        return len(self._tails)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release: PTB waits for the running updates itself."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = order_key(update)
        if key is None:
            await self._run(coroutine)
            return
        previous = self._tails.get(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = done  # extended before any await: arrival order is kept
        try:
            if previous is not None:
                await asyncio.shield(previous)  # our cancellation must not cancel theirs
            await self._run(coroutine)
        finally:
            if previous is not None and not previous.done():
                # Cancelled while waiting: the next update still waits for the one before us.
                previous.add_done_callback(lambda _f: self._finish(key, done))
            else:
                self._finish(key, done)

    async def _run(self, coroutine: Awaitable[Any]) -> None:
        slot = _RunningSlot(self._running)
        try:
            await slot.take()
        finally:
            if not slot.held and inspect.iscoroutine(coroutine):
                coroutine.close()  # cancelled before its turn: never awaited, no warning
        token = WHILE_WAITING.set(slot)
        try:
            await coroutine
        finally:
            WHILE_WAITING.reset(token)
            slot.give_back()

    def _finish(self, key: Hashable, done: asyncio.Future[None]) -> None:
        if not done.done():
            done.set_result(None)
        if self._tails.get(key) is done:
            del self._tails[key]


class _RunningSlot:
    """One update's place among the running ones; entered (as ``WHILE_WAITING``) around a
    send's sleep, it is given back and taken again. Only the update's own task gives it back:
    a task the handler started inherits the context, not the slot."""

    def __init__(self, running: asyncio.BoundedSemaphore) -> None:
        self._running = running
        self._owner: asyncio.Task[Any] | None = None
        self.held = False

    async def take(self) -> None:
        await self._running.acquire()
        self.held = True
        self._owner = asyncio.current_task()

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._running.release()

    async def __aenter__(self) -> None:
        if asyncio.current_task() is self._owner:
            self.give_back()

    async def __aexit__(self, *_exc: object) -> None:
        if asyncio.current_task() is self._owner and not self.held:
            await self.take()
