"""Webhook mode, served by aiohttp instead of PTB's tornado server.

Telegram POSTs each update to ``WEBHOOK_URL`` with the secret in the
``X-Telegram-Bot-Api-Secret-Token`` header; we compare it in constant time, decode the update,
claim its id in the database (``storage.received_updates``: behind a round-robin proxy the same
update may reach two workers, and only the first claim handles it) and hand it to the
Application's queue. Serving it ourselves keeps one HTTP stack (aiohttp) in the project and lets
several workers share a PostgreSQL database behind one URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.channels.webhook_post import verified_json
from bot.config import WEBHOOK_SECRET_RE, WEBHOOK_SECRET_RULE, Settings
from bot.health import start_monitoring
from bot.runtime import Runtime
from storage import received_updates

if TYPE_CHECKING:
    from bot.channels.zalo.app import ZaloSide

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024


Claim = Callable[[int], Awaitable[bool]]


def webhook_app(
    application: Application, secret: str, path: str, claim: Claim | None = None
) -> web.Application:
    """The aiohttp app that feeds POSTed updates into ``application.update_queue``.

    Every POST must carry ``secret``: without it anyone who learns the URL could post an update
    that acts as any user id. A refused post is logged with its origin only; its body may hold
    whatever the forger chose (or a real person's data) and is never read. ``claim`` (given an
    update id, True if this worker takes it) drops updates another worker already took; when it
    fails the answer is 500, so Telegram delivers the update again.
    """
    if not WEBHOOK_SECRET_RE.fullmatch(secret):
        raise ValueError(f"webhook secret must be {WEBHOOK_SECRET_RULE}")
    expected = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        data = await verified_json(request, SECRET_HEADER, expected, "webhook")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="not a Telegram update")
        if claim is not None:
            try:
                mine = await claim(data["update_id"])
            except Exception:
                log.exception(
                    "webhook: could not record update %s; Telegram will retry", data["update_id"]
                )
                return web.Response(status=500, text="try again")
            if not mine:
                log.info("webhook: update %s was already taken by a worker", data["update_id"])
                return web.Response(text="ok")
        await application.update_queue.put(Update.de_json(data, application.bot))
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app.router.add_post(path, receive)
    return app


def claimer(runtime: Runtime) -> Claim:
    """Claims update ids in ``runtime``'s database, off the event loop."""

    async def claim(update_id: int) -> bool:
        now = runtime.clock.now()
        return await asyncio.to_thread(
            partial(received_updates.claim, runtime.db.engine, update_id, now)
        )

    return claim


async def start_webhook(
    application: Application,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    routes: Callable[[web.Application], None] | None = None,
) -> web.AppRunner:
    """Serve the webhook on ``WEBHOOK_LISTEN`` and register it with the Bot API; the caller
    has started the app. Settings refuse a webhook URL without a secret; this checks again.
    ``routes`` mounts more on the same server (Zalo's charts and webhook share the port)."""
    if settings.webhook_url is None or settings.webhook_secret is None:
        raise ValueError("webhook mode needs CRISISDESK_WEBHOOK_URL and CRISISDESK_WEBHOOK_SECRET")
    secret = settings.webhook_secret.get_secret_value()
    path = urlsplit(settings.webhook_url).path or "/"
    served = webhook_app(application, secret, path, claimer(application.bot_data["runtime"]))
    if routes is not None:
        routes(served)
    runner = web.AppRunner(served, access_log=None)
    await runner.setup()
    await web.TCPSite(
        runner,
        settings.webhook_listen if host is None else host,
        settings.webhook_port if port is None else port,
    ).start()
    await application.bot.set_webhook(
        settings.webhook_url, secret_token=secret, allowed_updates=Update.ALL_TYPES
    )
    return runner


async def run_webhook(application: Application, zalo: ZaloSide | None = None) -> None:
    """Run until SIGINT/SIGTERM in webhook mode, with ``zalo``'s side on the same server."""
    runtime = application.bot_data["runtime"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with application:
        if zalo is not None:
            await zalo.connect()
        await application.start()
        runner = await start_webhook(
            application, runtime.settings, routes=zalo.add_routes if zalo is not None else None
        )
        if zalo is not None:
            await zalo.start(runtime)
            for task in zalo.tasks:  # a dead Zalo receiver stops the process
                task.add_done_callback(lambda _: stop.set())
        log.info(
            "webhook mode: listening on %s port %s",
            runtime.settings.webhook_listen,
            runtime.settings.webhook_port,
        )
        monitoring = await start_monitoring(application)
        try:
            await stop.wait()
        finally:
            if monitoring is not None:
                await monitoring.cleanup()
            if zalo is not None:
                await zalo.stop()
            await runner.cleanup()
            await application.stop()
