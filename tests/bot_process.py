"""``crisisdesk run`` as a real subprocess on the Telegram emulator, for the tests that kill it
hard (SIGKILL, no shutdown code runs) and start it again on the same database; and a free
port for a bot's web server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.sandbox.telegram_emulator import TelegramEmulator

CLI = [sys.executable, "-m", "bot.cli", "run"]


def free_port() -> int:
    """A loopback port free now, for a bot's web server (webhook, charts) that must be told its
    port before it starts (its public URL names it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def telegram_env(
    emulator: TelegramEmulator, url: str, data: Path, **settings: str
) -> dict[str, str]:
    """The environment of ``crisisdesk run`` on ``emulator`` and the database ``url``: none of
    the caller's own ``CRISISDESK_*`` settings (a TOML or a token in the shell must not change
    the test), /healthz on a free port (two workers start bots at once), the tick at 0.2 s so
    that due rows fire promptly; ``settings`` adds or overrides, as ``scan_interval="3600"``
    for ``CRISISDESK_SCAN_INTERVAL``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    given = {
        "telegram_token": emulator.token,
        "telegram_api_url": emulator.root_url,
        "database_url": url,
        "data_dir": str(data),
        "tick_seconds": "0.2",
        "http_port": "0",
        **settings,
    }
    env.update({f"CRISISDESK_{name.upper()}": value for name, value in given.items()})
    return env


@asynccontextmanager
async def killed_at_exit(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """``crisisdesk run`` in ``env`` until the block ends, then SIGKILL: the process dies
    wherever it is, as in a power cut, and the next start must pick up from the database."""
    process = await asyncio.create_subprocess_exec(
        *CLI, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
