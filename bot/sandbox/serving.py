"""Serving an aiohttp app on loopback for the sandbox and its emulators."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Self, TypeVar

from aiohttp import web

T = TypeVar("T")


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` (port 0 picks a free one); the runner and the bound port.

    aiohttp keeps the listening socket only on the site's private server, which is where the
    port chosen for 0 can be read; a failed start cleans the runner up before raising."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    server = site._server
    assert server is not None and hasattr(server, "sockets")
    return runner, server.sockets[0].getsockname()[1]


class LoopbackEmulator(ABC):
    """What every emulator of a messenger shares: its HTTP server on ``host:port`` (started by
    ``async with``) and :meth:`wait_for`, which tests use to wait for the bot's reaction.

    A subclass says which routes it serves and what to release before the server closes, and
    calls :meth:`_changed` whenever its state moves (a message, a call, a member), so that a
    waiting test re-checks its condition at once instead of polling."""

    client_max_size = 1024**2  # aiohttp's own default; an emulator with a stricter limit says so

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.root_url = ""
        self._runner: web.AppRunner | None = None
        self._change = asyncio.Event()

    @abstractmethod
    def _routes(self) -> Sequence[web.AbstractRouteDef]:
        """Every route the emulator serves (the messenger's API and ``/_control/``)."""

    @abstractmethod
    async def _release(self) -> None:
        """Let go of what outlives a request (long polls, webhook deliveries, waits)."""

    async def start(self) -> str:
        """Serve on ``host:port`` (port 0 picks a free one) and return the root URL."""
        app = web.Application(client_max_size=self.client_max_size)
        app.add_routes(self._routes())
        self._runner, self.port = await serve(app, self.host, self.port)
        self.root_url = f"http://{self.host}:{self.port}"
        return self.root_url

    async def stop(self) -> None:
        """Release what is pending, then close the server."""
        await self._release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - tests state how long they are willing to wait
    ) -> T:
        """Re-check ``predicate`` after every change until it returns something truthy;
        TimeoutError once ``timeout`` seconds have passed without."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            change = self._change  # taken before the check: a change during it is not missed
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(change.wait(), remaining)

    def _changed(self) -> None:
        """Wake every :meth:`wait_for` (each then waits on a fresh event)."""
        self._change.set()
        self._change = asyncio.Event()
