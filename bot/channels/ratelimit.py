"""Telegram's flood limits, kept by the bot before Telegram has to enforce them.

PTB's ``AIORateLimiter`` uses leaky buckets that let through up to twice the rate in a sliding
window, has no per-private-chat limit, and retries nothing by default. CrisisDesk fans an alert out
to hundreds of people at once and must get no 429 doing it, so this limiter *reserves a send time*
for each message that satisfies every window Telegram checks, then sleeps until it:

* overall: at most 30 in any one-second window, counted as Telegram counts them (``_Window``),
  and at most ``1/29.5`` s apart so that a steady fan-out never presses on that window;
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
and holding its place until it has left. So at most ``BULK_AHEAD`` bulk sends are booked in the
future, and a reply booked at any moment waits for those few (about 0.14 s) instead of behind
1,000 reserved fan-out slots. More than one place keeps the fan-out at full speed when a sender
wakes late and books again: the others are already booked behind it. At the window, where
every sender waits while Telegram's second is full, the first reply waiting passes before any
bulk send (``_Queue``; at most ``REPLIES_BEFORE_BULK`` replies in a row while a bulk send
waits, so replies never starve the fan-out): in arrival order the replies queued behind the
booked fan-out sends, 0.5-1 s each at 20 replies a second. The senders waiting there are let
through together, in that order, by whoever makes room (``_Window``), not one per turn of the
event loop. A chat's messages keep their order (``ChatSends``), so a reply queued behind a
person's alert part *lifts* it (:class:`Standing`): the part stops waiting for a gate place and
passes the window as a reply, and the answer follows it.

A sender that wakes late keeps its slot. On a loaded machine the event loop wakes a sleeper
10-50 ms late now and then; giving that slot up and booking the next free one cost a whole slot
each time (the 1,000-person fan-out ran at 1.06-1.22 × Telegram's bound). Sending late is safe
as long as Telegram's own window is kept, so every counted send passes ``_Window`` first. It
counts each earlier send from when it left until its answer came back, less half the quickest
round trip of the last second (the answer's way back): Telegram counted it somewhere in
between, so 30 in a second is never exceeded however the requests bunched on their way (a
request held up by a busy event loop or a slow database claim arrives late, next to the ones
sent after it). A request still unanswered counts until it is. A chat's own reservation moves
with its late send when it is the chat's last; a busy chat with later reservations books again
instead (moving one would bunch the chat's sends), giving its reservation back; a sender that
was late for ``LATE_REBOOKS`` slots leaves late for the next one, through ``_Window``, since on
a loop that is late for every slot it would book for ever.

Several workers (PostgreSQL): the overall window is the bot's, not the process's, so each send
books its slot in the database (``shared``: ``storage.send_budget``, which also keeps each
chat's windows for all workers, counted on the chat's slots) instead of spacing the sends
locally, then reserves its chat's windows at that slot. ``_Window`` sees only this process's
sends, so a late sender keeps its shared slot only when no other worker booked a slot in the
second before it (the budget says so), and then at most ``SHARED_LATE_MAX`` after it (the
others count the chat's window on the slot); otherwise a late send would bunch against the
others' on-time ones and it books again.
A worker alone also books slots missed in the last ``CATCH_UP`` seconds (slots pass unused while
the window holds the sends back, and the database only grants slots from now on otherwise): the
window alone bounds the catch-up, as it does the gate's few booked places in a single process.

Replies before bulk across workers: ``_Queue`` and the gate order one process's sends, not
another worker's replies against this one's fan-out, which meet only in the database. There
the first free slot goes to whoever books first, so the fan-out took its share whatever the
replies needed, and with the budget near full the replies queued (two workers, 20 replies a
second during a fan-out: first reply p50 0.7 s). So a crowded worker's bulk send asks for a
slot ``CROWDED_BULK_AHEAD`` ahead (the nearest ones are the replies'), and when at least
``CROWDED_BULK_BELOW`` of the slots in the second before it are booked it gives the slot back
after ``CROWDED_BULK_PAUSE`` and books again: a busy second's free slots are left to replies,
and the fan-out takes what they leave.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import contextvars
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from telegram.error import BadRequest, RetryAfter
from telegram.ext import BaseRateLimiter

from storage.send_budget import (
    CHAT_BURST,
    CHAT_LATE_MAX,
    GROUP_MAX,
    GROUP_SECONDS,
    SLOTS_PER_SECOND,
)

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
T = TypeVar("T")
COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
OVERALL_MAX, OVERALL_WINDOW = 30, 1.0  # Telegram's window per bot, as the emulator enforces it
OVERALL_SPACING = 1 / SLOTS_PER_SECOND  # the same steady pace as several workers' budget
CHAT_RATE = 1.0  # a chat's bucket (of ``CHAT_BURST``) refills at this many a second
GROUP_WINDOW = float(GROUP_SECONDS)
SAFETY = 0.02  # seconds added to every computed bound, for clock and network jitter
LATE_TOLERANCE = 0.010  # later than this, a send that cannot move its reservations books again
LATE_REBOOKS = 3  # slots a sender may wake late for and book again; late for one more, it leaves
INLINE_RETRY_MAX = 5.0  # a 429 asking for a longer wait is the caller's to schedule
BULK_AHEAD = 4  # bulk sends booked in the future at once: a reply waits for at most these
REPLIES_BEFORE_BULK = 9  # replies passing the window in a row while a bulk send waits (_Queue)
CATCH_UP = 0.25  # a worker alone may book a slot missed this long ago (module doc)
CROWDED_BULK_AHEAD = 0.2  # with other workers sending, a bulk send's slot is this far ahead
CROWDED_BULK_BELOW = 22  # ... and taken only when fewer of the 30 slots before it are booked
CROWDED_BULK_PAUSE = 0.1  # seconds a bulk send waits, its slot still held, before booking again
#: How late after its shared slot a send may leave (module doc); the rest of the chat's
#: allowance in the budget is the request's way to Telegram.
SHARED_LATE_MAX = CHAT_LATE_MAX - 0.1
SWEEP_EVERY = 1.0  # seconds between sweeps of the chats' stale windows (``_Schedule._forget``)

#: Books a send's slot in the budget several workers share (``TelegramRateLimiter``'s
#: ``shared``): (delay wanted, chat, missed slot, crowded) → (slot's start, slot, slots booked
#: in the second before it, of which by other workers).
SharedBooking = Callable[
    [float, int | None, int | None, bool], Awaitable[tuple[float, int, int, int]]
]

_BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("crisisdesk_bulk_sends", default=False)
#: The standing of the send being made, when its chat's queue (``ChatSends``) gave it one.
_STANDING: contextvars.ContextVar[Standing | None] = contextvars.ContextVar(
    "crisisdesk_send_standing", default=None
)
#: Set by the update processor (``bot.updates``) for an update's handler: entered while a send
#: of that handler sleeps until its slot, it gives the update's running slot back meanwhile (a
#: handler waiting for Telegram's budget is not running; holding the slot, it kept other chats'
#: updates, button presses included, from starting).
WHILE_WAITING: contextvars.ContextVar[contextlib.AbstractAsyncContextManager[Any] | None] = (
    contextvars.ContextVar("crisisdesk_while_waiting", default=None)
)


@contextlib.contextmanager
def bulk_sends() -> Iterator[None]:
    """Mark the sends made inside (and in tasks started inside) as bulk: served after replies."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


class Standing:
    """A bulk send's standing, which a reply in the same chat lifts.

    A chat's messages leave in the order they were queued (``ChatSends``), so a reply queued
    behind a person's alert waits for that alert, and a bulk send waits as long as the fan-out
    and the replies make it: lifted, the alert goes as a reply would, and the person's answer
    right after it."""

    def __init__(self) -> None:
        self.bulk = True
        self._waiter: asyncio.Future[bool] | None = None  # its wait for a place at the gate

    def lift(self) -> None:
        """Serve the send as a reply from now on (it stops waiting for a bulk place too)."""
        self.bulk = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(False)


def bulk_standing() -> Standing | None:
    """The standing for a send queued now: a bulk one inside :func:`bulk_sends`, else none."""
    return Standing() if _BULK.get() else None


@contextlib.contextmanager
def sent_with(standing: Standing | None) -> Iterator[None]:
    """Make the sends inside with ``standing`` (its chat's queue may lift it meanwhile)."""
    token = _STANDING.set(standing)
    try:
        yield
    finally:
        _STANDING.reset(token)


class _Gate:
    """The ``BULK_AHEAD`` places of bulk sends booked ahead, taken in arrival order. A send
    lifted while it waits for one takes none: it goes as a reply."""

    def __init__(self, places: int) -> None:
        self._free = places
        self._waiting: deque[asyncio.Future[bool]] = deque()

    @contextlib.asynccontextmanager
    async def place(self, standing: Standing) -> AsyncIterator[bool]:
        """A place held for the block (True), or none (False) once ``standing`` is lifted."""
        placed = await self._enter(standing)
        try:
            yield placed
        finally:
            if placed:
                self._hand_on()

    async def _enter(self, standing: Standing) -> bool:
        if not standing.bulk:
            return False
        if self._free and not self._waiting:
            self._free -= 1
            return True
        waiter = standing._waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiter)
            elif waiter.result():  # given a place just as it was cancelled: pass it on
                self._hand_on()
            raise
        finally:
            standing._waiter = None

    def _hand_on(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # (a lifted send's waiter is done: it left)
                waiter.set_result(True)
                return
        self._free += 1


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
    swept: float = -math.inf  # when the chats' stale windows were last dropped (``_forget``)

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

    def move(self, chat: int | str | None, group: bool, at: float, now: float) -> bool:
        """Move the chat's reservation at ``at`` to ``now``, when its send leaves late.

        Only the chat's last reservation moves (False otherwise): moved past later ones it
        would bunch the chat's sends. Without the move, the chat's next send would be reserved
        as if this one had left on time, too soon after it for Telegram's bucket."""
        if chat is None:
            return True
        bucket = self.buckets.get(chat)
        if bucket is None:  # forgotten after a long stall: a fresh bucket, this send taken
            bucket = self.buckets[chat] = _Bucket(at=now)
            bucket.take(now)
        elif bucket.at != at:
            return False
        else:  # the token taken at ``at``, taken at ``now`` instead (no refill in between)
            bucket.tokens = min(CHAT_BURST, bucket.tokens + 1 + (now - at) * CHAT_RATE) - 1
            bucket.at = now
        if group:
            window = self.groups.setdefault(chat, deque())
            if window and window[-1] == at:
                window[-1] = now
            else:
                window.append(now)
        return True

    def give_back(self, chat: int | str | None, group: bool, at: float) -> None:
        """Undo the reservation at ``at`` of a send that books again instead.

        Kept, each such attempt used up a token of its chat and a place of a group's twenty a
        minute that no message took: a room message on the shared budget, which books again
        whenever it wakes late, pushed its room a minute ahead after twenty late wakes, and
        again after that (crash matrix, ``pub.author.part1`` on PostgreSQL: the publication's
        sends never left the limiter). The token comes back only while the reservation is the
        chat's last (a later one was reserved after it)."""
        with contextlib.suppress(ValueError):
            self.overall.remove(at)
        if chat is None:
            return
        with contextlib.suppress(ValueError):
            self.groups.get(chat, deque()).remove(at)
        bucket = self.buckets.get(chat)
        if bucket is not None and bucket.at == at:
            bucket.tokens = min(CHAT_BURST, bucket.tokens + 1)

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
        """Drop what no window counts any more. The chats' buckets and group windows are swept
        at most every ``SWEEP_EVERY`` seconds: a walk over every chat heard from in the last
        seconds on each reservation was 2 % of the bot's CPU at 200 updates a second, and a
        stale entry is harmless meanwhile (a full bucket, window times that no bound counts)."""
        cut = bisect.bisect_left(self.overall, now - 1.0)
        del self.overall[:cut]
        if now - self.swept < SWEEP_EVERY:
            return
        self.swept = now
        for chat, window in list(self.groups.items()):
            while window and window[0] <= now - GROUP_WINDOW:
                window.popleft()
            if not window:
                del self.groups[chat]
        for chat, bucket in list(self.buckets.items()):
            if bucket.at + CHAT_BURST / CHAT_RATE < now:
                del self.buckets[chat]


@dataclass
class _Sent:
    """One counted send of this process: when it left, and when its answer came back."""

    left: float
    answered: float | None = None


class _Queue(Generic[T]):
    """The senders waiting at the window, in the order they pass: the first reply, else the
    first bulk send (``Standing``, read when the next is taken, so a send lifted while it
    waits goes as a reply). While a bulk send waits, at most ``REPLIES_BEFORE_BULK`` replies
    in a row go ahead of it: a stream of replies never starves the fan-out."""

    def __init__(self) -> None:
        self._waiting: deque[tuple[Standing | None, T]] = deque()
        self._replies_in_a_row = 0  # replies taken while a bulk send waited

    def __len__(self) -> int:
        return len(self._waiting)

    def push(self, standing: Standing | None, item: T) -> None:
        self._waiting.append((standing, item))

    def remove(self, item: T) -> None:
        """Take ``item`` out of the queue, if it is still there."""
        for entry in self._waiting:
            if entry[1] is item:
                self._waiting.remove(entry)
                return

    def pop(self) -> T:
        """The next to pass (the queue must not be empty)."""

        def bulk(entry: tuple[Standing | None, T]) -> bool:
            return entry[0] is not None and entry[0].bulk

        bulk_waits = any(bulk(entry) for entry in self._waiting)
        reply = next((entry for entry in self._waiting if not bulk(entry)), None)
        if reply is None or (bulk_waits and self._replies_in_a_row >= REPLIES_BEFORE_BULK):
            entry = next(entry for entry in self._waiting if bulk(entry))
            self._replies_in_a_row = 0
        else:
            entry = reply
            self._replies_in_a_row += 1 if bulk_waits else 0
        self._waiting.remove(entry)
        return entry[1]


@dataclass
class _Admission:
    """A sender waiting at the window: ``goes(now)`` says, when its turn has come and the
    window has room, whether it leaves now (True) or must book again (False)."""

    goes: Callable[[float], bool]
    outcome: asyncio.Future[_Sent | None]


class _Window:
    """Telegram's window per bot, kept on the sends themselves rather than on reservations.

    A send leaves only when fewer than ``OVERALL_MAX`` earlier ones can have reached Telegram
    in the second before it: a send counts from when it left until its answer came back (module
    doc). Senders pass in the order of ``_Queue``, replies first.

    The senders are let through by whoever makes room, in one step of the event loop: an
    arriving sender, an answer coming back, or the timer set for the time the window has room
    again. They used to pass a lock one at a time, each woken by the one before it: one send per
    turn of the event loop, and with the loop busy (handlers, a scan, in the bench the emulator)
    that, not Telegram's 30 a second, was the pace: 17 sends a second in the busy bench, replies
    queued at the lock for seconds (docs/benchmarks.md, "Concurrent updates")."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._sent: list[_Sent] = []
        self._waiting: _Queue[_Admission] = _Queue()
        self._timer: asyncio.TimerHandle | None = None

    def room_at(self, now: float) -> float:
        """The earliest time ≥ now at which one more send keeps the window."""
        self._sent = [x for x in self._sent if x.answered is None or x.answered > now - 1.0]
        if len(self._sent) < OVERALL_MAX:
            return now
        arrived = sorted(
            (math.inf if x.answered is None else x.answered for x in self._sent), reverse=True
        )
        return max(now, arrived[OVERALL_MAX - 1] + OVERALL_WINDOW)

    async def leave(self, standing: Standing | None, goes: Callable[[float], bool]) -> _Sent | None:
        """Wait for this sender's turn and for room, then leave (counted from now) when
        ``goes`` agrees; None when it said the send must book again."""
        admission = _Admission(goes, asyncio.get_running_loop().create_future())
        self._waiting.push(standing, admission)
        self._let_through()
        try:
            return await admission.outcome
        except asyncio.CancelledError:
            if admission.outcome.cancelled():
                self._waiting.remove(admission)
            elif (
                admission.outcome.exception() is None
                and (sent := admission.outcome.result()) is not None
            ):
                self.answered(sent)  # counted, never sent: it counts for a second, harmlessly
            raise

    def count(self, now: float) -> _Sent:
        """Count a send leaving at ``now``."""
        sent = _Sent(now)
        self._sent.append(sent)
        return sent

    def answered(self, sent: _Sent) -> None:
        sent.answered = self._clock()
        self._let_through()

    def _let_through(self) -> None:
        """Let the waiting senders leave, in their order, while the window has room; then
        wait for the time it has room again (or for an answer: an unanswered send counts
        until it is answered)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting:
            now = self._clock()
            room = self.room_at(now)
            if room > now:
                if room != math.inf:
                    loop = asyncio.get_running_loop()
                    self._timer = loop.call_later(room - now, self._let_through)
                return
            admission = self._waiting.pop()
            if admission.outcome.done():
                continue  # cancelled meanwhile
            try:
                goes = admission.goes(now)
            except Exception as exc:  # the sender's to raise, not the timer's or an answer's
                admission.outcome.set_exception(exc)
                continue
            admission.outcome.set_result(self.count(now) if goes else None)


class TelegramRateLimiter(BaseRateLimiter[int]):
    """A ``BaseRateLimiter`` for PTB that keeps every Telegram flood window (see module doc)."""

    def __init__(
        self,
        max_retries: int = 3,
        *,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedBooking | None = None,
    ) -> None:
        self._max_retries = max_retries
        self._clock = clock
        #: Several workers: books the overall slot in the budget they share (given the delay
        #: this process wants, the chat sent to, a missed slot to give back, if any, and
        #: whether other workers were sending at its last booking;
        #: returns when the granted slot starts on ``clock``, the slot, and how many slots
        #: of the second before it were booked); ``storage.send_budget``.
        self._shared = shared
        self._alone = False  # the last booking found no other worker's slot before its own
        self._schedule = _Schedule(spaced=shared is None)
        #: How late a send may leave with its reservation moved (module doc).
        self._late_max = math.inf if shared is None else SHARED_LATE_MAX
        self._window = _Window(clock)
        self._resume = asyncio.Event()
        self._resume.set()
        self._bulk_gate = _Gate(BULK_AHEAD)  # bulk sends booked ahead (module doc)
        self.waiting = 0  # sends sleeping until their slot (the send queue depth, for /metrics)
        self.flood_waits = 0  # 429 answers received

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def _wait_for_bulk_slot(
        self, chat: int | str | None, group: bool, standing: Standing
    ) -> _Sent:
        """A bulk send: wait for its chat's limits ungated, then book a slot through the gate
        (lifted meanwhile, it books as a reply does)."""
        while True:
            delay = self._schedule.chat_earliest(self._clock(), chat, group) - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._bulk_gate.place(standing) as placed:
                now = self._clock()
                if placed and self._schedule.chat_earliest(now, chat, group) > now + (
                    OVERALL_SPACING
                ):
                    continue  # another send took this chat's turn meanwhile: wait ungated again
                return await self._wait_for_slot(chat, group, standing)

    async def _wait_for_slot(
        self, chat: int | str | None, group: bool, standing: Standing | None = None
    ) -> _Sent:
        """Sleep until a reserved send time, then leave through the window (module doc), a
        bulk send (``standing``) after the replies waiting there.

        A sender woken late keeps its slot when its chat's reservation can move with it (and,
        with several workers, when no other worker booked the second before its slot); a busy
        chat's late sender books again."""
        missed: int | None = None  # a shared slot this send woke too late for
        late = 0  # slots this send woke too late for
        while True:
            movable = True
            if self._shared is None:
                at = due = self._schedule.reserve(self._clock(), chat, group)
            else:
                # The shared slot first, from the earliest time this chat allows; then the
                # chat's own reservation at that slot. (The other way round, a slot granted
                # late would send a chat's reserved burst closer together than reserved.)
                now = self._clock()
                wanted = self._schedule.chat_earliest(now, chat, group) - now
                if wanted <= 0 and self._alone and not group:
                    wanted = -CATCH_UP  # a slot missed while the window held the sends back
                elif standing is not None and standing.bulk and not self._alone:
                    wanted = max(wanted, CROWDED_BULK_AHEAD)  # the nearest slots for replies
                shared_chat = chat if isinstance(chat, int) else None
                due, slot, booked, others = await self._shared(
                    wanted, shared_chat, missed, not self._alone
                )
                missed = slot  # given back if this send books again (a group counts its slots)
                now = self._clock()
                at = self._schedule.reserve(now, chat, group, not_before=due)
                if at > max(now, due) + LATE_TOLERANCE:
                    self._schedule.give_back(chat, group, at)
                    continue  # another send took this chat's turn meanwhile: book again
                # (A group's minute is counted on slots in the database: never moved.)
                self._alone = others == 0
                movable = not group and self._alone
                if (
                    standing is not None
                    and standing.bulk
                    and not self._alone
                    and booked >= CROWDED_BULK_BELOW
                ):
                    self._schedule.give_back(chat, group, at)
                    await _sleep_given_back(CROWDED_BULK_PAUSE)
                    continue  # a busy second: its free slots are for replies (module doc)
            delay = at - self._clock()
            if delay > 0:
                await _sleep_given_back(delay)
            last_try = late >= LATE_REBOOKS
            goes = partial(self._goes, chat, group, at, due, movable, last_try)
            if (sent := await self._window.leave(standing, goes)) is not None:
                return sent
            late += 1
            self._schedule.give_back(chat, group, at)

    def _goes(
        self,
        chat: int | str | None,
        group: bool,
        at: float,
        due: float,
        movable: bool,
        last_try: bool,
        now: float,
    ) -> bool:
        """Whether a send reserved at ``at`` (its slot due at ``due``) leaves at ``now``: on
        time, or late with its chat's reservation moved (module doc). ``last_try``: late for
        ``LATE_REBOOKS`` slots already, it leaves now with its reservation moved, since booking
        again could go on for ever."""
        if now - due <= LATE_TOLERANCE or (
            movable and now - due <= self._late_max and self._schedule.move(chat, group, at, now)
        ):
            return True
        if last_try:
            self._schedule.move(chat, group, at, now)
        return last_try

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
            sent: _Sent | None = None
            if counted:  # answering a button is never held, not even by a 429 pause
                await self._resume.wait()
                self.waiting += 1
                try:
                    standing = _STANDING.get() or (Standing() if _BULK.get() else None)
                    if standing is not None and standing.bulk:
                        sent = await self._wait_for_bulk_slot(target, group, standing)
                    else:
                        sent = await self._wait_for_slot(target, group)
                finally:
                    self.waiting -= 1
            try:
                return await self._answered(sent, callback(*args, **kwargs))
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

    async def _answered(self, sent: _Sent | None, request: Awaitable[T]) -> T:
        """``request``'s result, noting when its answer came (the window counts it until then)."""
        try:
            return await request
        finally:
            if sent is not None:
                self._window.answered(sent)


async def _sleep_given_back(delay: float) -> None:
    """Sleep ``delay`` s with the update's running slot given back (``WHILE_WAITING``); waking
    late because the slot is taken again late is the late sender's case (module doc)."""
    paused = WHILE_WAITING.get()
    if paused is None:
        await asyncio.sleep(delay)
        return
    async with paused:
        await asyncio.sleep(delay)


def _seconds(value: Any) -> float:
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)
