"""Engine and session factory: the one way into the database.

SQLite is the default (a file in ``DATA_DIR``) and is tuned for a single bot process with
concurrent readers: WAL journal, foreign keys on, and a busy timeout so that the scan job and a
handler writing at the same moment wait for each other instead of failing. PostgreSQL is used
through ``DATABASE_URL`` for scale-out.

Text the databases refuse (NUL, lone surrogates: :mod:`storage.text`) is cleaned here, in two
hooks every session and statement pass through: ``before_flush`` cleans the ORM objects being
written (so the objects a service goes on using say what was stored), and
``before_cursor_execute`` cleans the parameters of every statement, Core and raw SQL included.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from storage.lock import DatabaseLock
from storage.text import clean_deep, clean_text, needs_cleaning
from storage.urls import is_sqlite, sqlite_file

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: How long a write waits, in busy timeouts, for SQLite's write lock before it gives up.
SQLITE_WRITE_PATIENCE_S = 600.0


def sqlite_url(data_dir: Path) -> str:
    """The default database: ``crisisdesk.sqlite3`` inside ``data_dir``."""
    return f"sqlite:///{(data_dir / 'crisisdesk.sqlite3').resolve()}"


def make_engine(
    url: str, *, echo: bool = False, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> Engine:
    """Create an engine for ``url`` with the pragmas and pool settings CrisisDesk relies on.

    ``busy_timeout_ms`` is SQLite's wait for a lock per attempt (tests shorten it); a write
    waits several of them (:func:`begin_write`).
    """
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": busy_timeout_ms / 1000,
        }
        database = sqlite_file(url)
        if database is None:
            # In memory: one shared connection, or every session would see its own empty one.
            kwargs["poolclass"] = StaticPool
        else:
            database.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_timeout_ms))
        return engine
    kwargs["pool_pre_ping"] = True
    return create_engine(url, **kwargs)


def _sqlite_pragmas(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _clean_parameters(
    _conn: Any,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    """``before_cursor_execute``: every string parameter made storable (see storage.text)."""
    # With "insertmanyvalues" SQLAlchemy passes one flattened parameter set for a batch even
    # when ``executemany`` is set, so the shape decides, not the flag.
    if (
        executemany
        and isinstance(parameters, list | tuple)
        and parameters
        and isinstance(parameters[0], dict | list | tuple)
    ):
        # All sets checked at once: a batch of thousands of rows (storage.bulk) is nearly
        # always clean as a whole.
        if not _refused(parameters):
            return statement, parameters
        return statement, [_clean_set(p) for p in parameters]
    return statement, _clean_set(parameters)


def _refused(parameter_sets: Sequence[Any]) -> bool:
    """Whether a string of these parameter sets (dicts, lists or tuples) holds a character the
    databases refuse. Checked joined, by one :func:`~storage.text.needs_cleaning` call: the
    sets hold one exactly when the join of their strings does (a surrogate stays a code point
    of its own when joined). A multi-row INSERT is one set of thousands of values, and a
    check per string cost more than the rest of the hook."""
    strings = [
        v
        for p in parameter_sets
        for v in (p.values() if isinstance(p, dict) else p)
        if isinstance(v, str)
    ]
    return needs_cleaning("".join(strings))


def _clean_set(parameters: Any) -> Any:
    """One parameter set made storable; itself when it is clean (nearly always)."""
    if not isinstance(parameters, dict | list | tuple) or not _refused((parameters,)):
        return parameters
    if isinstance(parameters, dict):
        return {k: clean_text(v) if isinstance(v, str) else v for k, v in parameters.items()}
    cleaned = [clean_text(v) if isinstance(v, str) else v for v in parameters]
    return tuple(cleaned) if isinstance(parameters, tuple) else cleaned


@event.listens_for(OrmSession, "before_flush")
def _clean_objects(session: OrmSession, _context: Any, _instances: Any) -> None:
    """Clean the text (and JSON) attributes of the objects about to be written, in place."""
    for obj in (*session.new, *session.dirty):
        state = inspect(obj)
        for attr in state.mapper.column_attrs:
            value = state.dict.get(attr.key)
            if value is None or isinstance(value, int | float | bool):
                continue
            cleaned = clean_deep(value)
            if cleaned is not value:
                setattr(obj, attr.key, cleaned)


#: How long a send's claim (``begin_write(..., brief=True)``, on the event loop) waits in
#: SQLite's busy handler per try: the loop stands still meanwhile, so ``WireClaim`` waits out
#: the rest between tries, with the loop free.
BRIEF_BUSY_MS = 5
#: The longest a patient writer (off the loop) holds back for the loop's waiting writers.
GIVE_WAY_MAX_S = 2.0


class _LoopWriters:
    """The writers on the event loop's thread waiting for SQLite's write lock right now.

    A patient writer off the loop (the scan's slices) takes the lock again the moment it has
    committed, and SQLite's busy handler, sleeping between polls, hands it no turn: a send's
    claim waited out a whole scan of 10,000 items, the event loop standing still for 7 s and
    every reply behind it (``bench/handler_load.py --mode busy``). So a patient writer gives
    way while one of these waits, for at most ``GIVE_WAY_MAX_S``: the loop's writer then waits
    for one slice at most."""

    def __init__(self) -> None:
        self._count = 0
        self._guard = threading.Lock()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        with self._guard:
            self._count += 1
        try:
            yield
        finally:
            with self._guard:
                self._count -= 1

    def give_way(self) -> None:
        deadline = time.monotonic() + GIVE_WAY_MAX_S
        while self._count and time.monotonic() < deadline:
            time.sleep(0.002)


LOOP_WRITERS = _LoopWriters()


def begin_write(session: OrmSession, *, brief: bool = False) -> None:
    """On SQLite, take the write lock now (``BEGIN IMMEDIATE``), waiting out a busy database.

    pysqlite begins a transaction only at the first data-changing statement, and that statement
    waits one busy timeout for SQLite's single write lock, then fails with "database is
    locked". That failure used to come at the commit that records what was already done
    outside the database (a message sent, then marked sent): the mark was lost and the message
    went out again on the next run (36 of 40 people got an alert twice while another writer held
    the lock for 15 s). ``BEGIN IMMEDIATE`` either gets the lock or changes nothing, so it can
    simply be tried again; once it is held, the flush and the commit cannot be refused a lock.

    Off the event loop's thread (``asyncio.to_thread`` work: the delivery marks, the scan's
    store) it is retried for up to :data:`SQLITE_WRITE_PATIENCE_S`. On the loop's thread it is
    tried once (one busy timeout, as before): the lock's holder may be a coroutine suspended on
    this very loop, which a longer wait would only deadlock; a patient writer gives way to it
    meanwhile (``LOOP_WRITERS``). ``brief``: wait only ``BRIEF_BUSY_MS`` (a send's claim, which
    ``WireClaim`` tries again with the loop free). No-op on PostgreSQL (row locks, no
    database-wide writer) and inside a transaction already open.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.driver_connection
    if raw is None or raw.in_transaction:
        return
    patient = not brief and not _on_event_loop()
    started = time.monotonic()
    while True:
        try:
            if patient:
                LOOP_WRITERS.give_way()
                raw.execute("BEGIN IMMEDIATE")
            elif brief:
                _begin_briefly(raw)
            else:
                with LOOP_WRITERS.waiting():
                    raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            waited = time.monotonic() - started
            if not is_busy(exc) or not patient or waited >= SQLITE_WRITE_PATIENCE_S:
                raise
            log.warning("SQLite is locked by another writer (%.0f s so far); still waiting", waited)


def _begin_briefly(raw: Any) -> None:
    (timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute(f"PRAGMA busy_timeout={BRIEF_BUSY_MS}")
    try:
        raw.execute("BEGIN IMMEDIATE")
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(timeout)}")


def commit_unflushed(session: OrmSession) -> None:
    """On PostgreSQL, let this transaction's commit return before its WAL is flushed to disk
    (``synchronous_commit = off`` for this transaction only).

    For a send's claim (``bot.channels.base.WireClaim``), whose request leaves right after the
    commit: a kill of the bot after the server committed and before the request left loses the
    message (it is in doubt, never re-sent), and the flush was most of that window — the
    ``COMMIT`` of a claim took 3.3 ms at the median and up to 28 ms at load 6, 0.1 ms without
    the flush. The price is paid only if PostgreSQL itself crashes within a fraction of a
    second of the claim (``wal_writer_delay``): the claim is then lost and the message may be
    sent again. SQLite in WAL mode with ``synchronous=NORMAL`` does not flush at commit."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("set local synchronous_commit = off")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite refusing a write because another writer holds its lock
    ("database is locked" / "busy"), raw or wrapped by SQLAlchemy: the one failure that waiting
    can cure, and that leaves nothing written."""
    error = getattr(exc, "orig", exc)
    if not isinstance(error, sqlite3.OperationalError):
        return False
    return "locked" in str(error) or "busy" in str(error)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@event.listens_for(OrmSession, "before_flush")
def _take_write_lock(session: OrmSession, _context: Any, _instances: Any) -> None:
    """An ORM flush that will write takes SQLite's write lock first (see begin_write)."""
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        begin_write(session)


class Database:
    """Owns the engine and hands out sessions; shared by handlers, jobs and the scanner."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: The one-process-per-SQLite-file lock, when this process took it (storage.lock).
        self.lock: DatabaseLock | None = None
        if not event.contains(engine, "before_cursor_execute", _clean_parameters):
            event.listen(engine, "before_cursor_execute", _clean_parameters, retval=True)

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(make_engine(url))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back everything on any exception.

        ``expire_on_commit`` is off so that rows returned from a service stay readable after the
        commit (handlers render them once the transaction is durable).
        """
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
        if self.lock is not None:
            self.lock.release()
            self.lock = None
