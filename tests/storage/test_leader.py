"""Only one process leads (tick and scan) on PostgreSQL; SQLite is always single-process."""

from __future__ import annotations

import sqlalchemy as sa

from storage.db import Database
from storage.leader import Leadership


def test_one_leader_at_a_time_on_postgresql(pg_schema_url: str) -> None:
    first_engine = sa.create_engine(pg_schema_url)
    second_engine = sa.create_engine(pg_schema_url)
    first, second = Leadership(first_engine), Leadership(second_engine)
    try:
        assert first.is_leader()
        assert first.is_leader()  # keeps it
        assert not second.is_leader()
        first.release()
        assert second.is_leader()
        assert not first.is_leader()
    finally:
        first.release()
        second.release()
        first_engine.dispose()
        second_engine.dispose()


def test_a_dead_leaders_lock_passes_on(pg_schema_url: str) -> None:
    first_engine = sa.create_engine(pg_schema_url)
    second_engine = sa.create_engine(pg_schema_url)
    first, second = Leadership(first_engine), Leadership(second_engine)
    try:
        assert first.is_leader()
        first_engine.dispose()  # the process died: its connections are gone
        assert first._connection is not None
        first._connection.invalidate()
        assert second.is_leader()
    finally:
        second.release()
        second_engine.dispose()


def test_sqlite_is_always_leader(sqlite_db: Database) -> None:
    assert Leadership(sqlite_db.engine).is_leader()


async def test_leadership_is_checked_off_the_loop_and_lapses_without_confirmation(
    pg_schema_url: str,
) -> None:
    """``holds`` does no I/O; it turns false once the lease passes without a confirmation, and a
    leader whose connection was cut stops leading at its next check."""
    now = [0.0]
    engine = sa.create_engine(pg_schema_url)
    other_engine = sa.create_engine(pg_schema_url)
    leader = Leadership(engine, interval=1.0, clock=lambda: now[0])
    other = Leadership(other_engine, interval=1.0)
    try:
        assert not leader.holds and leader.lost.is_set()
        assert await leader.refresh()
        assert leader.holds and not leader.lost.is_set()
        now[0] += leader.lease - 0.1
        assert leader.holds
        now[0] += 0.2  # no check confirmed it for a whole lease (a hung check, say)
        assert not leader.holds
        assert await leader.refresh()  # confirmed again
        assert leader._connection is not None
        pid = leader._connection.exec_driver_sql("select pg_backend_pid()").scalar()
        leader._connection.commit()
        with other_engine.begin() as conn:  # the database drops the leader's session
            conn.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
        assert await other.refresh()  # the lock went with the session
        assert not await leader.refresh()
        assert leader.lost.is_set()
    finally:
        leader.release()
        other.release()
        engine.dispose()
        other_engine.dispose()
