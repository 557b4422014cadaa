"""Whether the process behind a claim is alive: PostgreSQL's advisory lock per boot id, held by
every receiving worker for its life and gone with its session; on SQLite, only this process."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from storage import liveness
from storage.db import Database
from storage.lock import DatabaseInUse
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


def test_a_worker_whose_lock_session_was_cut_takes_its_locks_again(pg_schema_url: str) -> None:
    """A server restart or an idle timeout ends the session under a live worker: its keeper
    takes both locks again, so the others see it alive, and a poller is refused again."""
    worker, other = sa.create_engine(pg_schema_url), sa.create_engine(pg_schema_url)
    probe = sa.text("select pg_try_advisory_lock_shared(hashtext(current_schema()), hashtext(:b))")
    try:
        lock = ReceiveLock.acquire(worker, polling=False)
        assert lock is not None
        pid = lock._connection.exec_driver_sql("select pg_backend_pid()").scalar_one()  # type: ignore[union-attr]
        lock._connection.commit()  # type: ignore[union-attr]
        with other.connect() as admin:
            admin.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
            gone = sa.text("select count(*) = 0 from pg_stat_activity where pid = :pid")
            deadline = time.monotonic() + 10
            while not admin.execute(gone, {"pid": pid}).scalar_one():
                admin.rollback()  # a fresh snapshot of the server's sessions
                assert time.monotonic() < deadline
                time.sleep(0.05)
            admin.rollback()
            assert lock.confirm()  # found the session gone, took both locks again
            assert admin.execute(probe, {"b": liveness.BOOT}).scalar_one() is False
            admin.rollback()
        with pytest.raises(DatabaseInUse):
            ReceiveLock.acquire(other, polling=True)
        lock.release()
        assert not lock.confirm()
    finally:
        worker.dispose()
        other.dispose()
