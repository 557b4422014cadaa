"""Fixtures of the storage tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, sa.Engine]]:
    """An empty database on each backend, for a migration test to take up and down: its URL
    (for ``upgrade``/``downgrade``) and an engine to seed and read it, which enforces foreign
    keys on SQLite as the application does."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    else:
        url = str(request.getfixturevalue("pg_schema_url"))
    engine = sa.create_engine(url)
    if request.param == "sqlite":
        sa.event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))
    yield url, engine
    engine.dispose()
