"""Flood limits: when Telegram would answer ``429 Too Many Requests: retry after N``.

Telegram does not publish exact limits (https://core.telegram.org/bots/faq). The emulator uses
the documented rules of thumb as hard, deterministic windows so that a bot's throttling can be
tested:

* per bot: at most 30 counted calls in any 1-second window (sliding);
* per chat: a token bucket of capacity 3 refilled at 1 per second (1/s sustained, bursts of 3);
* per group, supergroup or channel: at most 20 counted calls in any 60-second window (sliding).

"Counted calls" are the methods in :data:`COUNTED_METHODS`: every send and every edit of a
message. Telegram counts edits in groups against the same limits, so an alert that is sent and
then edited twice costs three. Answers to callback queries, chat actions, pins and
administrative calls are not counted.

A call is only charged when it succeeds, and ``retry_after`` is the whole number of seconds
(rounded up) until every limit that refused it would accept it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

COUNTED_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
    }
)

GLOBAL_MAX = 30
GLOBAL_WINDOW = 1.0
CHAT_BURST = 3
CHAT_REFILL_PER_SECOND = 1.0
GROUP_MAX = 20
GROUP_WINDOW = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class FloodLimiter:
    """Decides whether a counted call may go through now, and charges it when it did."""

    def __init__(self, now: Callable[[], float], *, enabled: bool = True) -> None:
        self._now = now
        self.enabled = enabled
        self._global: deque[float] = deque()
        self._buckets: dict[int, _Bucket] = {}
        self._groups: dict[int, deque[float]] = {}

    def retry_after(self, chat_id: int, is_group: bool) -> int | None:
        """Seconds to wait before a call to ``chat_id`` is allowed, or ``None`` if allowed now."""
        if not self.enabled:
            return None
        now = self._now()
        waits: list[float] = []
        _expire(self._global, now - GLOBAL_WINDOW)
        if len(self._global) >= GLOBAL_MAX:
            waits.append(self._global[0] + GLOBAL_WINDOW - now)
        tokens = self._tokens(chat_id, now)
        if tokens < 1:
            waits.append((1 - tokens) / CHAT_REFILL_PER_SECOND)
        if is_group:
            window = self._groups.setdefault(chat_id, deque())
            _expire(window, now - GROUP_WINDOW)
            if len(window) >= GROUP_MAX:
                waits.append(window[0] + GROUP_WINDOW - now)
        if not waits:
            return None
        return max(1, math.ceil(max(waits)))

    def charge(self, chat_id: int, is_group: bool) -> None:
        """Record a successful counted call."""
        if not self.enabled:
            return
        now = self._now()
        self._global.append(now)
        self._buckets[chat_id] = _Bucket(self._tokens(chat_id, now) - 1, now)
        if is_group:
            self._groups.setdefault(chat_id, deque()).append(now)

    def reset(self) -> None:
        """Forget all history (used when limits are switched back on)."""
        self._global.clear()
        self._buckets.clear()
        self._groups.clear()

    def _tokens(self, chat_id: int, now: float) -> float:
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            return float(CHAT_BURST)
        refilled = bucket.tokens + (now - bucket.updated) * CHAT_REFILL_PER_SECOND
        return min(float(CHAT_BURST), refilled)


def _expire(window: deque[float], cutoff: float) -> None:
    while window and window[0] <= cutoff:
        window.popleft()
