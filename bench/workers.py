"""Several real ``crisisdesk run`` webhook workers behind a small round-robin front, on loopback.

Used by the two-worker failover test (tests/ops/test_two_workers.py) and the two-worker mode of
bench/handler_load.py. The front is what nginx's ``upstream`` does in production: each POST from
the Bot API goes to the next worker, a dead worker is skipped (``proxy_next_upstream``). With
``redeliver`` it then also posts the update to every other live worker, the way Telegram re-sends
an update whose answer was slow, so the workers' update claims decide who handles it. With
``parallel`` it answers the Bot API at once and forwards in the background: the emulator posts
one update at a time and waits for the answer, where Telegram keeps up to 40 connections open
(``max_connections``), so without it a load test measures the emulator's one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web

from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.webhook import SECRET_HEADER

SECRET = "several-workers-secret"
HOOK_PATH = "/hook"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Front:
    """Round robin over the workers' webhook ports (module doc)."""

    def __init__(
        self, ports: list[int], *, redeliver: bool = False, parallel: bool = False
    ) -> None:
        self.ports = ports
        self.redeliver = redeliver
        self.parallel = parallel
        self.turn = 0
        self._session: aiohttp.ClientSession | None = None
        self._forwarding: set[asyncio.Task[int]] = set()

    async def _post(self, port: int, body: bytes, secret: str) -> int:
        assert self._session is not None
        async with self._session.post(
            f"http://127.0.0.1:{port}{HOOK_PATH}", data=body, headers={SECRET_HEADER: secret}
        ) as answer:
            return answer.status

    async def handle(self, request: web.Request) -> web.Response:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        body, secret = await request.read(), request.headers.get(SECRET_HEADER, "")
        self.turn += 1
        first = self.turn % len(self.ports)
        order = self.ports[first:] + self.ports[:first]
        if not self.parallel:
            return web.Response(status=await self._forward(order, body, secret))
        task = asyncio.create_task(self._forward(order, body, secret))
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)
        return web.Response(text="ok")

    async def _forward(self, order: list[int], body: bytes, secret: str) -> int:
        status = 502
        for i, port in enumerate(order):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                status = await self._post(port, body, secret)
                if status == 200:
                    if self.redeliver:
                        for other in order[i + 1 :] + order[:i]:
                            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                                await self._post(other, body, secret)
                    break
        return status

    async def close(self) -> None:
        await asyncio.gather(*self._forwarding, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


@contextlib.asynccontextmanager
async def serve_on_loopback(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_front(front: Front) -> AsyncIterator[str]:
    """Serve ``front`` on a free loopback port; yields the webhook URL to give the workers."""
    app = web.Application()
    app.router.add_post(HOOK_PATH, front.handle)
    try:
        async with serve_on_loopback(app) as base:
            yield f"{base}{HOOK_PATH}"
    finally:
        await front.close()


class Worker:
    """One ``crisisdesk run`` process in webhook mode, logging to ``<tmp>/<name>.log``."""

    def __init__(
        self,
        name: str,
        url: str,
        emulator: TelegramEmulator,
        tmp: Path,
        **settings: str,
    ) -> None:
        self.name = name
        self.hook_port, self.http_port = free_port(), free_port()
        self.log = tmp / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
        self.env.update(
            CRISISDESK_TELEGRAM_TOKEN=emulator.token,
            CRISISDESK_TELEGRAM_API_URL=emulator.root_url,
            CRISISDESK_DATABASE_URL=url,
            CRISISDESK_DATA_DIR=str(tmp / name),
            CRISISDESK_SCAN_INTERVAL="3600",
            CRISISDESK_WEBHOOK_SECRET=SECRET,
            CRISISDESK_WEBHOOK_LISTEN="127.0.0.1",
            CRISISDESK_WEBHOOK_PORT=str(self.hook_port),
            CRISISDESK_HTTP_PORT=str(self.http_port),
        )
        self.env.update({f"CRISISDESK_{k.upper()}": v for k, v in settings.items()})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, front_url: str | None) -> None:
        """Run in webhook mode behind ``front_url``; None: long-poll the emulator instead (how
        one ``crisisdesk run`` is usually deployed)."""
        if front_url is None:
            for name in ("SECRET", "LISTEN", "PORT"):
                self.env.pop(f"CRISISDESK_WEBHOOK_{name}", None)
        else:
            self.env["CRISISDESK_WEBHOOK_URL"] = front_url
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"], env=self.env, stdout=out, stderr=out
            )

    def cpu_seconds(self) -> float:
        """CPU time the worker process has used so far (user + system, from ``/proc``: Linux)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def health(self) -> dict[str, Any] | None:
        """The worker's ``/healthz`` JSON; None while it does not answer."""
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                answer = await client.get(f"http://127.0.0.1:{self.http_port}/healthz")
            body: dict[str, Any] = answer.json()
            return body
        except (httpx.HTTPError, ValueError):
            return None

    async def leads(self) -> bool:
        health = await self.health()
        return bool(health and health.get("leader"))

    async def ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait until the worker serves /healthz (it has set its webhook by then)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.health() is None:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log}")
            if loop.time() > deadline:
                raise TimeoutError(f"{self.name} did not start within {timeout} s")
            await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            await asyncio.to_thread(self.process.wait)

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)
