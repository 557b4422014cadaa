"""Leader election for scale-out: one process runs the tick and the scan.

With several webhook workers on one PostgreSQL database, each would otherwise fire the same due
rows and fetch the same feeds. A session-level PostgreSQL advisory lock, held on a dedicated
connection for the life of the process, makes exactly one of them the leader; if it dies, its
connection closes, the lock is released and the next tick of another worker takes over. SQLite
means a single process, which is always the leader.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

LOCK_KEY = 0x43524953_4B  # "CRISK": one key for the whole application


class Leadership:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None

    @property
    def holds(self) -> bool:
        """Whether the last check made this process the leader (no database I/O)."""
        return self.engine.dialect.name != "postgresql" or self._connection is not None

    def is_leader(self) -> bool:
        """True if this process holds (or just acquired) the leader lock."""
        if self.engine.dialect.name != "postgresql":
            return True
        if self._connection is not None:
            try:
                self._connection.exec_driver_sql("select 1")
                self._connection.commit()
                return True
            except sa.exc.DBAPIError:
                log.warning("lost the leader connection; trying to take the lock again")
                self._drop()
        connection = self.engine.connect()
        try:
            got = connection.execute(
                sa.text("select pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
            ).scalar()
            connection.commit()
        except sa.exc.DBAPIError:
            connection.close()
            raise
        if got:
            self._connection = connection
            log.info("this process is now the leader (tick and scan)")
            return True
        connection.close()
        return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(
                    sa.text("select pg_advisory_unlock(:key)"), {"key": LOCK_KEY}
                )
                self._connection.commit()
            finally:
                self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
