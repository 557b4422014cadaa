"""Pytest fixtures for tests that run the real PTB ``Application`` against the emulator.

Use from any test directory's ``conftest.py``::

    from emulator_fixtures import emulator  # noqa: F401  (re-exported fixture)

then, in a test::

    async def test_start(emulator):
        app = app_builder(emulator).build()
        app.add_handler(CommandHandler("start", start))
        async with running_app(app):
            alice = emulator.create_user("Alice")
            sent = emulator.send_text(alice.id, "/start")
            reply = await emulator.wait_for_message(alice.id, after=sent.message_id)

The ``emulator`` fixture has flood limits **off**; a test about limits calls
``emulator.set_flood_limits(True)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest_asyncio
from aiohttp import web
from telegram import Update
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.sandbox.serving import serve
from bot.sandbox.telegram_emulator import TelegramEmulator


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    """A started emulator on 127.0.0.1 (free port), flood limits off, stopped afterwards."""
    emu = TelegramEmulator(flood_limits=False)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


def app_builder(emulator: TelegramEmulator) -> ApplicationBuilder:  # type: ignore[type-arg]
    """An ``ApplicationBuilder`` already pointed at ``emulator`` (token, API and file URLs).

    Read timeouts are short so that a test waiting on a hung emulator fails in seconds.
    """
    return (
        Application.builder()
        .token(emulator.token)
        .base_url(emulator.bot_url)
        .base_file_url(emulator.file_url)
        .request(HTTPXRequest(connect_timeout=2, read_timeout=5))
        .get_updates_request(HTTPXRequest(connect_timeout=2, read_timeout=5))
    )


@asynccontextmanager
async def running_app(
    app: Application,  # type: ignore[type-arg]
    *,
    polling: bool = True,
    allowed_updates: Sequence[str] | None = Update.ALL_TYPES,
) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """Initialise and start ``app`` (and long polling, unless ``polling=False``); always stop."""
    async with app:
        await app.start()
        try:
            if polling and app.updater is not None:
                await app.updater.start_polling(
                    poll_interval=0, timeout=1, allowed_updates=allowed_updates
                )
            yield app
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            await app.stop()


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL, cleans up afterwards."""
    runner, port = await serve(app, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
