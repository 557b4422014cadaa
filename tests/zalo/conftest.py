"""Fixtures for the Zalo tests: a started emulator and a bot client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.channels.zalo import ZaloBotClient
from bot.sandbox.zalo_emulator import ZaloEmulator
from storage.db import Database
from storage.migrate import upgrade


@pytest_asyncio.fixture
async def zalo() -> AsyncIterator[ZaloEmulator]:
    emulator = ZaloEmulator()
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest_asyncio.fixture
async def client(zalo: ZaloEmulator) -> AsyncIterator[ZaloBotClient]:
    async with ZaloBotClient(zalo.token, base_url=zalo.bot_api_url, timeout=5) as bot:
        yield bot


@pytest.fixture
def bot_db(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """A migrated SQLite file for ``crisisdesk run`` (by its URL) and the test (by a Database)."""
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    upgrade(url)
    db = Database.from_url(url)
    yield url, db
    db.dispose()
