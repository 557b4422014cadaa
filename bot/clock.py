"""The one source of time.

Everything that depends on "now" (deadlines, escalations, buckets, the tick) asks a ``Clock``, so
tests, ``trends replay`` and the sandbox's compressed news day can run on simulated time while
production runs on the wall clock. All times are aware UTC.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to, or runs ``speed`` times faster than real time.

    With ``speed`` 0 it is frozen (unit tests advance it explicitly); with ``speed`` 144 a news
    day passes in ten minutes (the sandbox). Thread-safe, because the scanner may read it from a
    worker thread.
    """

    def __init__(self, start: datetime, *, speed: float = 0.0) -> None:
        if start.tzinfo is None:
            raise ValueError(
                "SimulatedClock needs an aware start time, e.g. datetime(..., tzinfo=UTC)"
            )
        self._lock = threading.Lock()
        self._base = start.astimezone(UTC)
        self._speed = speed
        self._anchor = datetime.now(UTC)

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        if self._speed == 0:
            return self._base
        return self._base + (datetime.now(UTC) - self._anchor) * self._speed

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new now."""
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        with self._lock:
            self._base = self._now_locked() + delta
            self._anchor = datetime.now(UTC)
            return self._base

    def set_speed(self, speed: float) -> None:
        with self._lock:
            self._base = self._now_locked()
            self._anchor = datetime.now(UTC)
            self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed
