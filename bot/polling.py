"""One poller per bot token: stop, with one clear line, instead of fighting another one.

Telegram serves ``getUpdates`` to one caller at a time: a newer request ends the older one with
409 "Conflict: terminated by other getUpdates request". python-telegram-bot treats that as
just another network error and polls again, so two processes with one token take turns
stealing each other's updates for ever, each answering some of the people some of the time.

Who stops: the newcomer. Its first request ends the incumbent's waiting one; the incumbent
polls again a second later and ends the newcomer's, so the newcomer meets its first 409 within
seconds of starting, while the incumbent has been up for longer. A 409 within ``grace`` seconds
of start therefore stops this process, with one line. An established process keeps the token
and logs a warning (at most once a minute): it was there first, and giving way would let a
stray copy (a laptop with the production token, a restart loop of the refused newcomer) take
over from the process that owns the database. If the other side never gives way (another
program on the token), the two still alternate; the warnings say so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from telegram.error import Conflict
from telegram.ext import ApplicationHandlerStop, ContextTypes

log = logging.getLogger(__name__)

__all__ = ["ConflictGuard", "PollingConflict"]


class PollingConflict(RuntimeError):
    """Another process polls with this token; the message is one line for the operator."""


class ConflictGuard:
    """Counts 409 conflicts of ``getUpdates`` and decides when this process gives way."""

    def __init__(self, *, grace: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self._clock = clock
        self._started = clock()
        self._warned_at: float | None = None
        #: Set when this process gave way: the reason, for the operator.
        self.tripped: str | None = None
        #: Called once when tripped, after polling stopped (``run_bot``: end ``run_polling``).
        self.on_trip: Callable[[], None] | None = None

    def conflict(self) -> bool:
        """One 409 seen; True when this process should stop polling (it is the newcomer)."""
        return self._clock() - self._started < self.grace

    def _should_warn(self) -> bool:
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < 60:
            return False
        self._warned_at = now
        return True

    def message(self) -> str:
        return (
            "another process is polling Telegram with this bot token (409 Conflict), so this "
            "one stopped rather than fight it for updates; run one CrisisDesk per token"
        )

    async def on_error(self, _update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """PTB error handler, registered before the general one: handles 409s only."""
        if not isinstance(context.error, Conflict):
            return
        if self.tripped is None and self.conflict():
            self.tripped = self.message()
            application: Any = context.application
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if self.on_trip is not None:
                self.on_trip()
        elif self.tripped is None and self._should_warn():
            log.warning(
                "another process polls with this bot token (%s); this one was here first and "
                "keeps polling",
                context.error,
            )
        raise ApplicationHandlerStop
