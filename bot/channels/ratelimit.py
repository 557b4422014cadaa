"""Telegram's flood limits, kept by the bot before Telegram has to enforce them.

PTB's ``AIORateLimiter`` uses leaky buckets that let through up to twice the rate in a sliding
window, has no per-private-chat limit, and retries nothing by default. CrisisDesk fans an alert out
to hundreds of people at once and must get no 429 doing it, so this limiter *reserves a send time*
for each message that satisfies every window Telegram checks, then sleeps until it:

* overall: sends at least ``1/29`` s apart, so no one-second window ever holds more than 30;
* per chat (private or group): a token bucket of 3 refilled at 1 per second ("about one message
  per second, short bursts tolerated");
* per group or channel additionally: at most 20 in any 60-second window.

Only calls that produce or change messages count (``send*``, ``edit*``, ``copy*``,
``forward*``), as in Telegram's own accounting; answering a button or pinning is never delayed.
A 429 that happens anyway is retried after its ``retry_after`` when that is short (at most
``INLINE_RETRY_MAX`` seconds; every send waits meanwhile); a longer one is raised at once, so the
caller can put the message off (the alert ledger does, honouring ``retry_after``) instead of a
whole fan-out standing still for it.

Reserving times (rather than acquiring several limiters one after the other) matters: waiting in
one limiter while holding a slot of another compresses the sends when they finally go out, which
is exactly what trips a sliding window.

Replies to people come before bulk fan-out. Sends made inside :func:`bulk_sends` (the alert
delivery job) never reserve far ahead: they pass a gate of ``BULK_AHEAD`` places, each first
waiting for its own chat's limits without holding a place, then reserving the next overall slot
and holding its place until that slot. So at most ``BULK_AHEAD`` bulk sends are booked in the
future, and a reply booked at any moment waits for those few (about 0.14 s) instead of behind
1,000 reserved fan-out slots. More than one place keeps the fan-out at full speed when a sender
wakes late and books again: the others are already booked behind it.

Several workers (PostgreSQL): the overall window is the bot's, not the process's, so each send
books its slot in the database (``shared``: ``storage.send_budget``, which also keeps a group's
20-a-minute window for all workers) instead of spacing the sends locally, then reserves its
chat's windows at that slot. A private chat's window stays per process (docs/operations.md,
"Several workers").
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from telegram.error import BadRequest, RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
OVERALL_SPACING = 1 / 29
CHAT_BURST, CHAT_RATE = 3.0, 1.0
GROUP_MAX, GROUP_WINDOW = 20, 60.0
SAFETY = 0.02  # seconds added to every computed bound, for clock and network jitter
LATE_TOLERANCE = 0.010  # a sender woken later than this after its slot reserves a new one
INLINE_RETRY_MAX = 5.0  # a 429 asking for a longer wait is the caller's to schedule
BULK_AHEAD = 4  # bulk sends booked in the future at once: a reply waits for at most these

_BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("crisisdesk_bulk_sends", default=False)


@contextlib.contextmanager
def bulk_sends() -> Iterator[None]:
    """Mark the sends made inside (and in tasks started inside) as bulk: served after replies."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


@dataclass
class _Bucket:
    tokens: float = CHAT_BURST
    at: float = 0.0

    def earliest(self, t: float) -> float:
        """The earliest time ≥ t at which one token is available (after the last reservation)."""
        t = max(t, self.at)
        tokens = min(CHAT_BURST, self.tokens + (t - self.at) * CHAT_RATE)
        return t if tokens >= 1 else t + (1 - tokens) / CHAT_RATE + SAFETY

    def take(self, t: float) -> None:
        self.tokens = min(CHAT_BURST, self.tokens + (t - self.at) * CHAT_RATE) - 1
        self.at = t


@dataclass
class _Schedule:
    """Reserved send times: overall (sorted), per chat (token buckets), per group (windows)."""

    overall: list[float] = field(default_factory=list)
    #: Keep the overall spacing here; off when the workers' shared budget keeps it instead.
    spaced: bool = True
    buckets: dict[int | str, _Bucket] = field(default_factory=dict)
    groups: dict[int | str, deque[float]] = field(default_factory=dict)

    def reserve(
        self, now: float, chat: int | str | None, group: bool, not_before: float = 0.0
    ) -> float:
        self._forget(now)
        t = max(now, not_before)
        while True:
            start = t
            if chat is not None:
                bucket = self.buckets.setdefault(chat, _Bucket(at=now))
                t = bucket.earliest(t)
                if group:
                    window = self.groups.setdefault(chat, deque())
                    recent = [x for x in window if x > t - GROUP_WINDOW]
                    if len(recent) >= GROUP_MAX:
                        t = max(t, recent[-GROUP_MAX] + GROUP_WINDOW + SAFETY)
            t = self._free_overall_slot(t)
            if t == start:
                break
        bisect.insort(self.overall, t)
        if chat is not None:
            self.buckets[chat].take(t)
            if group:
                self.groups[chat].append(t)
        return t

    def chat_earliest(self, now: float, chat: int | str | None, group: bool) -> float:
        """The earliest time ≥ now that this chat's own limits allow, reserving nothing."""
        self._forget(now)
        if chat is None:
            return now
        bucket = self.buckets.get(chat)
        t = now if bucket is None else bucket.earliest(now)
        if group and chat in self.groups:
            recent = [x for x in self.groups[chat] if x > t - GROUP_WINDOW]
            if len(recent) >= GROUP_MAX:
                t = max(t, recent[-GROUP_MAX] + GROUP_WINDOW + SAFETY)
        return t

    def _free_overall_slot(self, t: float) -> float:
        """The earliest time ≥ t at least OVERALL_SPACING away from every reserved send."""
        if not self.spaced:
            return t
        i = bisect.bisect_left(self.overall, t - OVERALL_SPACING)
        while i < len(self.overall) and self.overall[i] < t + OVERALL_SPACING:
            t = max(t, self.overall[i] + OVERALL_SPACING)
            i += 1
        return t

    def _forget(self, now: float) -> None:
        cut = bisect.bisect_left(self.overall, now - 1.0)
        del self.overall[:cut]
        for chat, window in list(self.groups.items()):
            while window and window[0] <= now - GROUP_WINDOW:
                window.popleft()
            if not window:
                del self.groups[chat]
        for chat, bucket in list(self.buckets.items()):
            if bucket.at + CHAT_BURST / CHAT_RATE < now:
                del self.buckets[chat]


class TelegramRateLimiter(BaseRateLimiter[int]):
    """A ``BaseRateLimiter`` for PTB that keeps every Telegram flood window (see module doc)."""

    def __init__(
        self,
        max_retries: int = 3,
        *,
        clock: Callable[[], float] = time.monotonic,
        shared: Callable[[float, int | None, int | None], Awaitable[tuple[float, int]]]
        | None = None,
    ) -> None:
        self._max_retries = max_retries
        self._clock = clock
        #: Several workers: books the overall slot in the budget they share (given the delay
        #: this process wants, the group sent to and a missed slot to give back, if any;
        #: returns when the granted slot starts on ``clock``, and the slot);
        #: ``storage.send_budget``.
        self._shared = shared
        self._schedule = _Schedule(spaced=shared is None)
        self._resume = asyncio.Event()
        self._resume.set()
        self._bulk_gate = asyncio.Semaphore(BULK_AHEAD)  # bulk sends booked ahead (module doc)
        self.waiting = 0  # sends sleeping until their slot (the send queue depth, for /metrics)
        self.flood_waits = 0  # 429 answers received

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def _wait_for_bulk_slot(self, chat: int | str | None, group: bool) -> None:
        """A bulk send: wait for its chat's limits ungated, then book a slot through the gate."""
        while True:
            delay = self._schedule.chat_earliest(self._clock(), chat, group) - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._bulk_gate:
                now = self._clock()
                if self._schedule.chat_earliest(now, chat, group) > now + OVERALL_SPACING:
                    continue  # another send took this chat's turn meanwhile: wait ungated again
                await self._wait_for_slot(chat, group)
                return

    async def _wait_for_slot(self, chat: int | str | None, group: bool) -> None:
        """Sleep until a reserved send time; if the event loop woke us late, reserve again.

        A stalled loop (a slow handler, a long database call) wakes every overdue sender at the
        same instant; sending them together would compress many reservations into one burst,
        which is exactly what trips a sliding window. A late sender takes a fresh slot instead.
        """
        missed: int | None = None  # a shared slot this send woke too late for
        while True:
            if self._shared is None:
                at = self._schedule.reserve(self._clock(), chat, group)
            else:
                # The shared slot first, from the earliest time this chat allows; then the
                # chat's own reservation at that slot. (The other way round, a slot granted
                # late would send a chat's reserved burst closer together than reserved.)
                now = self._clock()
                wanted = self._schedule.chat_earliest(now, chat, group) - now
                shared_group = chat if group and isinstance(chat, int) else None
                granted, slot = await self._shared(wanted, shared_group, missed)
                missed = slot  # given back if this send books again (a group counts its slots)
                at = self._schedule.reserve(self._clock(), chat, group, not_before=granted)
                if at > granted + LATE_TOLERANCE:
                    continue  # another send took this chat's turn meanwhile: book again
            delay = at - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._clock() - at <= LATE_TOLERANCE:
                return

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        counted = endpoint.lower().startswith(COUNTED_PREFIXES)
        chat: Any = data.get("chat_id")
        with contextlib.suppress(TypeError, ValueError):
            chat = int(chat)
        group = isinstance(chat, str) or (isinstance(chat, int) and chat < 0)
        retries = self._max_retries if rate_limit_args is None else rate_limit_args
        target = chat if isinstance(chat, int | str) else None
        for attempt in range(retries + 1):
            if counted:  # answering a button is never held, not even by a 429 pause
                await self._resume.wait()
                self.waiting += 1
                try:
                    if _BULK.get():
                        await self._wait_for_bulk_slot(target, group)
                    else:
                        await self._wait_for_slot(target, group)
                finally:
                    self.waiting -= 1
            try:
                return await callback(*args, **kwargs)
            except BadRequest as exc:
                if endpoint.lower() != "answercallbackquery" or "too old" not in str(exc).lower():
                    raise
                # A press that waited for a restarting bot can no longer be answered; the
                # answer is only a toast, and the press's work must still go on.
                log.info("callback query expired before it was answered: %s", exc)
                return True
            except RetryAfter as exc:
                self.flood_waits += 1
                if attempt == retries or _seconds(exc.retry_after) > INLINE_RETRY_MAX:
                    raise
                wait = _seconds(exc.retry_after) + 0.1
                log.warning("429 on %s; pausing all sends for %.1f s", endpoint, wait)
                self._resume.clear()
                try:
                    await asyncio.sleep(wait)
                finally:
                    self._resume.set()
        raise AssertionError("unreachable: the loop returns or raises")


def _seconds(value: Any) -> float:
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)
