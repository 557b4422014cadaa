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
