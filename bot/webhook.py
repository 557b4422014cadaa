"""Webhook mode, served by aiohttp instead of PTB's tornado server.

Telegram POSTs each update to ``WEBHOOK_URL`` with the secret in the
``X-Telegram-Bot-Api-Secret-Token`` header; we compare it in constant time, decode the update and
hand it to the Application's queue. Serving it ourselves keeps one HTTP stack (aiohttp) in the
project and lets several workers share a PostgreSQL database behind one URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.config import Settings
from bot.health import start_monitoring

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024


def webhook_app(application: Application, secret: str | None, path: str) -> web.Application:
    """The aiohttp app that feeds POSTed updates into ``application.update_queue``."""

    async def receive(request: web.Request) -> web.Response:
        if secret is not None:
            given = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                log.warning("webhook call with a wrong secret from %s", request.remote)
                return web.Response(status=403, text="wrong secret token")
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.Response(status=400, text="body is not JSON")
        if not isinstance(data, dict) or "update_id" not in data:
            return web.Response(status=400, text="not a Telegram update")
        await application.update_queue.put(Update.de_json(data, application.bot))
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app.router.add_post(path, receive)
    return app


async def start_webhook(
    application: Application,
    settings: Settings,
    *,
    host: str = "0.0.0.0",  # a webhook receiver listens for Telegram on every interface
    port: int | None = None,
) -> web.AppRunner:
    """Serve the webhook and register it with the Bot API; the caller has started the app."""
    assert settings.webhook_url is not None
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    path = urlsplit(settings.webhook_url).path or "/"
    runner = web.AppRunner(webhook_app(application, secret, path), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, settings.webhook_port if port is None else port).start()
    await application.bot.set_webhook(
        settings.webhook_url, secret_token=secret, allowed_updates=Update.ALL_TYPES
    )
    return runner


async def run_webhook(application: Application) -> None:
    """Run until SIGINT/SIGTERM in webhook mode."""
    runtime = application.bot_data["runtime"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with application:
        await application.start()
        runner = await start_webhook(application, runtime.settings)
        log.info("webhook mode: listening on port %s", runtime.settings.webhook_port)
        monitoring = await start_monitoring(application)
        try:
            await stop.wait()
        finally:
            if monitoring is not None:
                await monitoring.cleanup()
            await runner.cleanup()
            await application.stop()
