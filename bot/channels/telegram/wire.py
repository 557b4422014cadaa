"""The bot's HTTP transport: a claimed request leaves whole, in one write, right after its claim.

A ledger claims a message right before its request leaves (``bot.channels.base.WireClaim``); a
kill after the claim leaves the message in doubt, never re-sent, so the gap between the claim's
commit and the request on the wire is a gap in which a kill loses the message. It was first
the rate limiter's wait and the connection's opening (crash matrix, ``pub.approve-answer`` on
SQLite), then — with the claim run as httpcore began the headers — the writes themselves:
httpcore writes the headers, then each part of the body, and anyio's ``send`` yields to the
event loop before each write; on a loaded loop that is several turns of other tasks, and a kill
there left the statement's first room part claimed and never received (``pub.approve-answer``
on PostgreSQL). Here the connection's stream holds back a claimed request's bytes while httpcore
writes them, and once the body is complete (httpcore's ``send_request_body.complete`` trace)
the claim runs and the whole request goes to the socket in the same step of the loop: nothing
else runs between the commit and the write. What is left is the commit's own acknowledgement
(PostgreSQL committed, the answer not yet read) — docs/reliability.md, crash matrix residual
risks. The streams are asyncio's own (``StreamWriter.write`` hands the bytes to the socket at
once); requests without a claim (``getUpdates``, ``getMe``) are written as they come.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx
from telegram.request import HTTPXRequest

from bot.channels.base import ON_WIRE

CONNECTIONS = 256  # python-telegram-bot's own default for the bot's requests
# Idle connections kept open: httpcore looks through every pooled connection on each request, so
# after a burst left hundreds open each call paid for them all (about 6 % of the CPU per update
# at 200 updates a second, bench/handler_load.py); 32 stay for the next burst (httpx keeps 20).
KEEPALIVE = 32
_BODY_DONE = "http11.send_request_body.complete"

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


@dataclass
class _Held:
    """The bytes of one claimed request, held back until its claim has run."""

    stream: _Stream | None = None
    parts: list[bytes] = field(default_factory=list)


# Set by the transport for a claimed request, in the task that sends it (httpcore writes in it).
_HOLDING: ContextVar[_Held | None] = ContextVar("holding", default=None)


class _Stream(httpcore.AsyncNetworkStream):
    """A connection on asyncio's streams: ``write`` reaches the socket without a turn of the
    loop before it (anyio's yields first), and a claimed request's writes are held. The
    ``timeout`` parameters are httpcore's interface."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        held = _HOLDING.get()
        if held is not None:
            held.stream = self
            held.parts.append(buffer)
            return
        self.put(buffer)
        await self.drain(timeout)

    def put(self, buffer: bytes) -> None:
        """Hand ``buffer`` to the socket now (what the kernel does not take yet, asyncio keeps
        and sends as the socket drains)."""
        if self._writer.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._writer.write(buffer)

    async def drain(self, within: float | None) -> None:
        try:
            async with asyncio.timeout(within):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()

    def _socket_readable(self) -> bool:
        """Whether the socket has something to read: on an idle connection, the server's
        close. Asked of the kernel, as httpcore's own backends do: what the event loop has
        read lags behind it, and a connection closed a moment before looked alive — the next
        claimed request was claimed, written into it and never received, so its message was
        in doubt for ever without a kill (``tests/channels/test_wire_claim.py``)."""
        sock = self._writer.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            return True
        if not hasattr(select, "poll"):  # Windows
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
            return bool(readable)
        poll = select.poll()  # not select(): a descriptor past 1,023 would be refused
        poll.register(sock.fileno(), select.POLLIN)
        return bool(poll.poll(0))

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection the server closed (httpcore asks)
            return self._writer.is_closing() or self._reader.at_eof() or self._socket_readable()
        names = {"client_addr": "sockname", "server_addr": "peername"}
        return self._writer.get_extra_info(names.get(info, info))


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's streams (``_Stream``)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ClaimingTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on :class:`_Backend`: a request sent under an ``ON_WIRE`` hook is held
    until its body is complete, then claimed and written in one go (HTTP/1.1 only: HTTP/2
    would interleave the requests' frames on one connection)."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_Backend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        on_wire = ON_WIRE.get()
        if on_wire is None:
            return await super().handle_async_request(request)
        held = _Held()
        timeout = request.extensions.get("timeout", {}).get("write")
        request.extensions = {
            **request.extensions,
            "trace": _tracer(on_wire, held, timeout, request.extensions.get("trace")),
        }
        token = _HOLDING.set(held)
        try:
            return await super().handle_async_request(request)
        finally:
            _HOLDING.reset(token)


def _tracer(
    on_wire: Callable[[], Awaitable[None]],
    held: _Held,
    timeout: float | None,
    inner: Trace | None,
) -> Trace:
    async def trace(event: str, info: dict[str, Any]) -> None:
        if event == _BODY_DONE and held.stream is not None:
            await on_wire()  # a claim that raises sends nothing: httpcore drops the connection
            stream, request = held.stream, b"".join(held.parts)
            held.stream, held.parts = None, []
            stream.put(request)  # in the loop step the claim committed in
            await stream.drain(timeout)
        if inner is not None:
            await inner(event, info)

    return trace


def bot_request() -> HTTPXRequest:
    """The request object of the bot's calls (not of ``getUpdates``, which claims nothing).

    A transport given to httpx replaces the client's connection limits, so they are set here."""
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=KEEPALIVE)
    return HTTPXRequest(
        connection_pool_size=CONNECTIONS,
        httpx_kwargs={"transport": ClaimingTransport(limits=limits)},
    )
