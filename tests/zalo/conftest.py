"""Fixtures for the Zalo tests: a started emulator and a bot client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from bot.channels.zalo import ZaloBotClient
from bot.sandbox.zalo_emulator import ZaloEmulator


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
