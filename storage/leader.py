"""Leader election for scale-out: one process runs the tick, the scan and the fan-out.

With several webhook workers on one PostgreSQL database, each would otherwise fire the same due
rows, fetch the same feeds and send the same alerts. A session-level PostgreSQL advisory lock,
held on a dedicated connection for the life of the process, makes exactly one of them the
leader; if it dies, its connection closes, the lock is released and another worker's next check
takes it. SQLite means a single process, which is always the leader.

Checking costs a database round trip, so it never runs on the event loop: :meth:`Leadership.refresh`
(a job every ``interval`` seconds) runs :meth:`Leadership.is_leader` in a thread, and the jobs read
:attr:`Leadership.holds`, which does no I/O. ``holds`` is a lease: it turns false by itself when
the last confirmation is older than ``lease`` seconds, so a leader whose check hangs (the
database host vanished and the TCP connection has not noticed yet) stops leading within the lease
instead of whenever the socket gives up, and the jobs it runs can stop (``lost`` is set).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

# The lock is (class, schema): one per application schema, so CrisisDesk deployments that share a
# PostgreSQL database in separate schemas (and tests, each in a schema of its own) never hold
# each other's leadership. Two int4 keys: pg_try_advisory_lock(int, int).
LOCK_CLASS = 0x43524953  # "CRIS"
SCHEMA_KEY = "hashtext(current_schema())"


class Leadership:
    """This process's view of the leader lock (module doc)."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        on_acquired: Callable[[], object] | None = None,
    ) -> None:
        self.engine = engine
        #: Run (in the check's thread) each time this process takes the lock, before ``holds``
        #: turns true: the new leader settles what the old one left before its jobs start.
        self.on_acquired = on_acquired
        self.interval = interval
        #: Leadership without a confirmation for this long is given up (three missed checks).
        self.lease = 3 * interval
        self._clock = clock
        self._connection: Connection | None = None
        self._confirmed_at: float | None = None
        self._lock = threading.Lock()  # one check at a time, whatever thread runs it
        self._checks = 0  # checks finished, whatever their outcome
        self._pending: asyncio.Future[bool] | None = None
        # A thread of its own: in the shared default pool a busy fan-out's database writes
        # would queue the check behind them until the lease ran out.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="leader-check")
        #: Set while this process does not lead (never on SQLite); long jobs wait on it to stop.
        self.lost = asyncio.Event()
        if self.shared:
            self.lost.set()

    @property
    def shared(self) -> bool:
        """Whether several processes may share the database (only PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    @property
    def holds(self) -> bool:
        """Whether this process leads, from the last check (no database I/O)."""
        if not self.shared:
            return True
        confirmed = self._confirmed_at
        return (
            self._connection is not None
            and confirmed is not None
            and self._clock() - confirmed < self.lease
        )

    @property
    def checked(self) -> bool:
        """Whether a check has finished since start (before it, ``holds`` is only a guess)."""
        return not self.shared or self._checks > 0

    def is_leader(self) -> bool:
        """Confirm or try to take the lock: blocking database I/O, run it off the event loop."""
        if not self.shared:
            return True
        try:
            return self._check()
        finally:
            self._checks += 1

    def _check(self) -> bool:
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.exec_driver_sql("select 1")
                    self._connection.commit()
                    self._confirmed_at = self._clock()
                    return True
                except sa.exc.DBAPIError:
                    log.warning("lost the leader connection; trying to take the lock again")
                    self._drop()
            connection = self.engine.connect()
            try:
                got = connection.execute(
                    sa.text(f"select pg_try_advisory_lock(:cls, {SCHEMA_KEY})"), {"cls": LOCK_CLASS}
                ).scalar()
                connection.commit()
            except sa.exc.DBAPIError:
                connection.invalidate()
                connection.close()
                raise
            if got:
                if self.on_acquired is not None:
                    try:
                        self.on_acquired()
                    except BaseException:
                        connection.invalidate()  # closing the session gives the lock back
                        connection.close()
                        raise
                self._connection = connection
                self._confirmed_at = self._clock()
                log.info("this process is now the leader (tick, scan and fan-out)")
                return True
            connection.close()
            return False

    async def refresh(self) -> bool:
        """One check in a thread, waiting for it at most the lease; returns :attr:`holds`.

        A check that hangs holds nothing up: the next call waits on the same check instead of
        starting another, ``holds`` turns false on its own when the lease runs out, and ``lost``
        is set then.
        """
        if self._pending is None or self._pending.done():
            loop = asyncio.get_running_loop()
            self._pending = loop.run_in_executor(self._executor, self.is_leader)
        await asyncio.wait({self._pending}, timeout=self.lease)
        if self._pending.done() and self._pending.exception() is not None:
            log.warning("leader check failed: %s", self._pending.exception())
        self._publish()
        return self.holds

    def _publish(self) -> None:
        if self.holds:
            self.lost.clear()
        elif not self.lost.is_set():
            log.warning("this process no longer leads; its jobs stop")
            self.lost.set()

    def release(self) -> None:
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute(
                        sa.text(f"select pg_advisory_unlock(:cls, {SCHEMA_KEY})"),
                        {"cls": LOCK_CLASS},
                    )
                    self._connection.commit()
                finally:
                    self._drop()
            if self.shared:
                self.lost.set()

    def _drop(self) -> None:
        self._confirmed_at = None
        if self._connection is not None:
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
