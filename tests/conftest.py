"""Shared fixtures: settings, databases on SQLite and PostgreSQL, a simulated clock.

PostgreSQL tests use ``CRISISDESK_TEST_DATABASE_URL``. Elsewhere they skip with a clear line when
it is unset or unreachable; in CI (``CI`` set) an unreachable server is a failure, never a skip.
Each PostgreSQL test gets its own schema, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.clock import SimulatedClock
from bot.config import Settings, load_settings
from bot.wiring import wire
from storage.db import Database
from storage.migrate import upgrade

pytest_plugins = ["emulator_fixtures"]

# Bots the tests spawn (``crisisdesk run`` subprocesses inherit this) serve /healthz on a free
# port, not the fixed default: two test workers start bots at the same time.
os.environ.setdefault("CRISISDESK_HTTP_PORT", "0")


@pytest.fixture(autouse=True, scope="session")
def wired() -> None:
    """The registries filled as the app fills them (``bot.wiring``), also for the tests that
    call services without building the app."""
    wire()


PG_ENV = "CRISISDESK_TEST_DATABASE_URL"
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội, a Monday


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def make_settings(tmp_path: Path) -> Any:
    """Build Settings from keyword overrides, with an isolated data dir and no real environment."""

    def factory(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = {"CRISISDESK_DATA_DIR": str(tmp_path / "data"), **(environ or {})}
        return load_settings(env, **overrides)

    return factory


def _postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set in CI; PostgreSQL tests cannot be skipped there")
        pytest.skip(f"PostgreSQL tests skipped: set {PG_ENV} to run them")
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ENV} is unreachable in CI: {exc.orig}")
        pytest.skip(f"PostgreSQL tests skipped: {PG_ENV} unreachable ({type(exc.orig).__name__})")
    return url


@pytest.fixture
def pg_server_url() -> str:
    """The PostgreSQL URL itself, for code that creates databases of its own on that server
    (the crash matrix: the workers' leader lock is one per database)."""
    return _postgres_url()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = _postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrises a test over both backends (migrated to head)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    upgrade(url)
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database.from_url(db_url)
    yield database
    database.dispose()


@pytest.fixture
def bot_db(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """A migrated SQLite file for ``crisisdesk run`` (by its URL) and the test (by a Database)."""
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    upgrade(url)
    db = Database.from_url(url)
    yield url, db
    db.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database for tests that need only one backend."""
    url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
    upgrade(url)
    database = Database.from_url(url)
    yield database
    database.dispose()
