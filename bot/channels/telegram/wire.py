"""The bot's HTTP transport: runs the ``ON_WIRE`` claim once the request's connection is up.

A ledger claims a message right before its request leaves (``bot.channels.base.WireClaim``); a
kill after the claim leaves the message in doubt, never re-sent. Claimed before PTB handed the
request to httpx (in the rate limiter, as first done), the request could still wait for a free
connection or open one — a TCP connect, several turns of a loaded event loop — and a kill there
lost a message that never left (crash matrix, ``pub.approve-answer`` on SQLite). httpcore's
``trace`` extension reports ``send_request_headers.started`` on a connection that is up, just
before the request's bytes are written: the claim runs there, so only the socket write follows
its commit. The hook is awaited (a claim refused by a busy database waits there, before
anything is written: ``WireClaim``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from telegram.request import HTTPXRequest

from bot.channels.base import ON_WIRE

CONNECTIONS = 256  # python-telegram-bot's own default for the bot's requests
_HEADERS_GO = "send_request_headers.started"  # http11.… and http2.…

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]


class ClaimingTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, with the sending task's ``ON_WIRE`` hook run as the headers go."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        on_wire = ON_WIRE.get()
        if on_wire is not None:
            request.extensions = {
                **request.extensions,
                "trace": _tracer(on_wire, request.extensions.get("trace")),
            }
        return await super().handle_async_request(request)


def _tracer(on_wire: Callable[[], Awaitable[None]], inner: Trace | None) -> Trace:
    async def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith(_HEADERS_GO):
            await on_wire()
        if inner is not None:
            await inner(event, info)

    return trace


def bot_request() -> HTTPXRequest:
    """The request object of the bot's calls (not of ``getUpdates``, which claims nothing).

    A transport given to httpx replaces the client's connection limits, so they are set here."""
    return HTTPXRequest(
        connection_pool_size=CONNECTIONS,
        httpx_kwargs={
            "transport": ClaimingTransport(limits=httpx.Limits(max_connections=CONNECTIONS))
        },
    )
