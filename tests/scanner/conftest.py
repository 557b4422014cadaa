"""Fixtures for the scanner: a real local aiohttp feed server and a SQLite database."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from sqlmodel import SQLModel

# The feed builders live beside the tests (the benches import them too); pytest's import mode
# does not put this directory on sys.path for us, so do it explicitly.
sys.path.insert(0, str(Path(__file__).parent))
from scanner_feeds import FeedServer, build_app

from storage.db import Database, make_engine
from storage.models import Agency, Source, Topic


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer(base="")
    runner = web.AppRunner(build_app(server))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(make_engine(f"sqlite:///{tmp_path}/t.db"))
    SQLModel.metadata.create_all(database.engine)
    with database.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        assert agency.id is not None
        s.add(
            Topic(
                agency_id=agency.id, name="Vắc-xin", query='("vắc-xin" OR vaccine) AND NOT "thú y"'
            )
        )
        s.add(Topic(agency_id=agency.id, name="Cháy nổ", query="cháy OR hỏa hoạn OR hoả hoạn"))
        s.add(Topic(agency_id=agency.id, name="Tắt", query="xăng", active=False))
    yield database
    database.dispose()


@pytest.fixture
def add_sources(db: Database) -> Callable[[dict[str, str]], None]:
    """Add Source rows: {name: url}; the outlet is the name up to an optional '#'."""

    def add(urls: dict[str, str]) -> None:
        with db.session() as s:
            for name, url in urls.items():
                s.add(Source(name=name, outlet=name.split("#")[0], url=url))

    return add
