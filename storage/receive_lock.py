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

A session can end under a live process (a server restart, an idle-session timeout, a cut
connection): its locks go with it, and the others would take the process for dead and a second
poller for welcome. A keeper thread checks the session every ``KEEP_SECONDS`` and, when it is
gone, takes both locks again on a new connection (or says loudly that another worker took the
receiving mode meanwhile).

SQLite needs none of this: one process per file is already enforced (``storage.lock``).
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage import liveness
from storage.leader import LOCK_CLASS, SCHEMA_KEY
from storage.lock import DatabaseInUse

log = logging.getLogger(__name__)

RECEIVE_CLASS = LOCK_CLASS + 1  # per schema, like the leader's lock
KEEP_SECONDS = 10.0  # how often the keeper checks the locks' session


class ReceiveLock:
    """The receiving mode of this process, held until :meth:`release` or its death."""

    def __init__(
        self, engine: Engine, connection: Connection, *, polling: bool, keep: float = KEEP_SECONDS
    ) -> None:
        self._engine = engine
        self._polling = polling
        self._connection: Connection | None = connection
        self._guard = threading.Lock()  # the keeper and release never share the connection
        self._stop = threading.Event()
        self._keeper = threading.Thread(
            target=self._keep, args=(keep,), name="receive-lock", daemon=True
        )
        self._keeper.start()

    @classmethod
    def acquire(cls, engine: Engine, *, polling: bool) -> ReceiveLock | None:
        """Take the lock (None on SQLite); raises :class:`DatabaseInUse` if the mode clashes."""
        if engine.dialect.name != "postgresql":
            return None
        connection = _take(engine, polling=polling)
        if connection is not None:
            return cls(engine, connection, polling=polling)
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

    def _keep(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.confirm()
            except Exception:  # the keeper must outlive any one failed check
                log.exception("checking the receive lock failed")

    def confirm(self) -> bool:
        """Whether this process holds its locks now: the session answers, or it was gone and
        both locks were taken again on a new connection. Blocking; the keeper thread calls it."""
        with self._guard:
            if self._stop.is_set():
                return False
            if self._connection is not None:
                try:
                    self._connection.exec_driver_sql("select 1")
                    self._connection.commit()
                    return True
                except sa.exc.DBAPIError:
                    log.warning("the receive lock's session is gone; taking its locks again")
                    _close(self._connection)
                    self._connection = None
            try:
                self._connection = _take(self._engine, polling=self._polling)
            except sa.exc.DBAPIError as exc:
                log.warning("could not take the receive lock again yet: %s", exc)
                return False
            if self._connection is None:
                log.error(
                    "another worker took the receive lock while this one's session was gone: "
                    "two workers may now receive updates; restart one of them"
                )
                return False
            log.info("receive lock and liveness lock taken again")
            return True

    def release(self) -> None:
        self._stop.set()
        with self._guard:
            if self._connection is not None:
                try:
                    self._connection.exec_driver_sql("select pg_advisory_unlock_all()")
                    self._connection.commit()
                except sa.exc.DBAPIError:
                    pass  # the session is gone, and its locks with it
                finally:
                    _close(self._connection)
                    self._connection = None


def _take(engine: Engine, *, polling: bool) -> Connection | None:
    """A new connection holding the receive lock in its mode and this process's liveness lock;
    None when the mode clashes with another worker's."""
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
        _close(connection)
        raise
    if got:
        return connection
    connection.close()
    return None


def _close(connection: Connection) -> None:
    """Close without giving the connection back to the pool: its session held the locks."""
    connection.invalidate()
    connection.close()
