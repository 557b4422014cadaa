"""Receiving Zalo Bot Platform updates by webhook, on the bot's own aiohttp server.

Zalo POSTs each update with the ``secret_token`` given to ``setWebhook`` in the
``X-Bot-Api-Secret-Token`` header, checked (in constant time, before the body is read) by
``bot.channels.webhook_post``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.channels.webhook_post import verified_json

from .bot_api import SECRET_MAX, SECRET_MIN
from .updates import UpdateFormatError, ZaloUpdate, parse_update

SECRET_HEADER = "X-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024

UpdateHandler = Callable[[ZaloUpdate], Awaitable[None]]


def webhook_handler(
    secret: str, on_update: UpdateHandler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler that checks the secret, parses the update and awaits ``on_update``.

    ``on_update`` should only hand the update over (a queue put, a row insert): Zalo waits for
    the answer, and an answer other than 200 makes it deliver the update again.
    """
    if not SECRET_MIN <= len(secret) <= SECRET_MAX:
        raise ValueError(f"the Zalo webhook secret must be {SECRET_MIN}-{SECRET_MAX} characters")
    expected = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        data = await verified_json(request, SECRET_HEADER, expected, "zalo webhook")
        try:
            update = parse_update(data)
        except UpdateFormatError as error:
            return web.Response(status=400, text=str(error))
        await on_update(update)
        return web.Response(text="ok")

    return receive


def add_webhook_route(
    app: web.Application, path: str, secret: str, on_update: UpdateHandler
) -> None:
    """Mount the receiver at ``path`` of an existing aiohttp application."""
    app.router.add_post(path, webhook_handler(secret, on_update))
