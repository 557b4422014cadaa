"""How a worker receives updates, agreed through PostgreSQL: one poller, or any webhook workers.

Telegram serves ``getUpdates`` to one caller at a time, and a poller's start deletes the webhook
the other workers live on. The 409 guard (``bot.polling``) only notices a second poller after
both have polled, and only when both use the same token; two workers on one database but on
different hosts need to agree before either talks to Telegram. So each worker takes an advisory
lock on a dedicated connection for its whole life: a poller takes it exclusively, a webhook
worker shared. A second poller, a poller beside webhook workers and a webhook worker beside a
poller are refused at start with one line; any number of webhook workers run together. The lock
goes when the process dies (its connection closes), so nothing stale is left to clear. The same
connection holds the process's liveness lock (``storage.liveness``), which tells the others
whether a message it claimed is still in its hands.

SQLite needs none of this: one process per file is already enforced (``storage.lock``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage import liveness
from storage.leader import LOCK_CLASS, SCHEMA_KEY
from storage.lock import DatabaseInUse

RECEIVE_CLASS = LOCK_CLASS + 1  # per schema, like the leader's lock


class ReceiveLock:
    """The receiving mode of this process, held until :meth:`release` or its death."""

    def __init__(self, connection: Connection) -> None:
        self._connection: Connection | None = connection

    @classmethod
    def acquire(cls, engine: Engine, *, polling: bool) -> ReceiveLock | None:
        """Take the lock (None on SQLite); raises :class:`DatabaseInUse` if the mode clashes."""
        if engine.dialect.name != "postgresql":
            return None
        function = "pg_try_advisory_lock" if polling else "pg_try_advisory_lock_shared"
        connection = engine.connect()
        try:
            got = connection.execute(
                sa.text(f"select {function}(:cls, {SCHEMA_KEY})"), {"cls": RECEIVE_CLASS}
            ).scalar()
            connection.commit()
            if got:
                liveness.hold(connection)
        except BaseException:
            connection.invalidate()
            connection.close()
            raise
        if got:
            return cls(connection)
        connection.close()
        if polling:
            raise DatabaseInUse(
                "another worker already receives updates for this database (a poller or "
                "webhook workers); run one poller per bot, or set CRISISDESK_WEBHOOK_URL on "
                "every worker",
                "another worker",
            )
        raise DatabaseInUse(
            "a worker polls Telegram for this database; stop it before starting webhook "
            "workers (every worker of one database must use webhook mode)",
            "a poller",
        )

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.exec_driver_sql("select pg_advisory_unlock_all()")
                self._connection.commit()
            except sa.exc.DBAPIError:
                self._connection.invalidate()  # the session is gone, and its locks with it
            finally:
                self._connection.close()
                self._connection = None
