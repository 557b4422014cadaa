"""Whether the process behind a claim is alive: PostgreSQL's advisory lock per boot id, held by
every receiving worker for its life and gone with its session; on SQLite, only this process."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlmodel import Session

from storage import liveness
from storage.db import Database
from storage.receive_lock import ReceiveLock

OTHER = "0123456789ab"


def _alive(engine: sa.Engine, boot: str) -> bool:
    with Session(engine) as session:
        return liveness.alive(session, boot)


def test_a_process_is_alive_while_its_session_holds_the_lock(pg_schema_url: str) -> None:
    holder, prober = sa.create_engine(pg_schema_url), sa.create_engine(pg_schema_url)
    try:
        assert not _alive(prober, OTHER)
        connection = holder.connect()
        liveness.hold(connection, OTHER)
        assert _alive(prober, OTHER)
        assert _alive(prober, OTHER)  # a probe takes nothing the holder needs
        connection.invalidate()  # the process is killed: its session ends
        connection.close()
        # The server ends the session a moment after the socket closes, not at once.
        deadline = time.monotonic() + 10
        while _alive(prober, OTHER) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(prober, OTHER)
    finally:
        holder.dispose()
        prober.dispose()


def test_a_receiving_worker_holds_its_liveness_lock_until_released(pg_schema_url: str) -> None:
    worker, prober = sa.create_engine(pg_schema_url), sa.create_engine(pg_schema_url)
    probe = sa.text("select pg_try_advisory_lock_shared(hashtext(current_schema()), hashtext(:b))")
    try:
        lock = ReceiveLock.acquire(worker, polling=False)
        assert lock is not None
        with prober.connect() as other:  # liveness.alive says True for BOOT without asking
            assert other.execute(probe, {"b": liveness.BOOT}).scalar_one() is False
            lock.release()
            assert other.execute(probe, {"b": liveness.BOOT}).scalar_one() is True
    finally:
        worker.dispose()
        prober.dispose()


def test_on_sqlite_only_this_process_is_alive(sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        assert liveness.alive(session, liveness.BOOT)
        assert not liveness.alive(session, OTHER)
