"""Helpers for the Zalo tests: ``crisisdesk run`` on Zalo as a subprocess (the bot the
end-to-end tests talk to through the Zalo emulator) and answers read from the emulator."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot_process import CLI, free_port

from bot.sandbox.zalo_emulator import ZaloEmulator


@dataclass
class ZaloBot:
    """A running ``crisisdesk run`` on Zalo: its public root (charts, webhook) and process."""

    public: str
    process: subprocess.Popen[bytes]
    log: Path


def zalo_env(zalo: ZaloEmulator, url: str, data: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of ``crisisdesk run`` on Zalo only (no Telegram token), on ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    env.update(
        {
            "CRISISDESK_ZALO_TOKEN": zalo.token,
            "CRISISDESK_ZALO_API_URL": zalo.bot_api_url,
            "CRISISDESK_ZALO_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "CRISISDESK_ZALO_CHART_KEY": "k" * 40,
            "CRISISDESK_WEBHOOK_LISTEN": "127.0.0.1",
            "CRISISDESK_WEBHOOK_PORT": str(port),
            "CRISISDESK_DATABASE_URL": url,
            "CRISISDESK_DATA_DIR": str(data),
            "CRISISDESK_TICK_SECONDS": "0.5",
            "CRISISDESK_SCAN_INTERVAL": "3600",
            "CRISISDESK_ALLOW_PRIVATE_FEEDS": "true",
            "CRISISDESK_HTTP_PORT": "0",
            **{f"CRISISDESK_{name.upper()}": value for name, value in extra.items()},
        }
    )
    return env


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(CLI, env=env, stdout=out, stderr=subprocess.STDOUT)


@asynccontextmanager
async def zalo_bot(
    zalo: ZaloEmulator, url: str, data: Path, port: int | None = None, **extra: str
) -> AsyncIterator[ZaloBot]:
    """``python -m bot.cli run`` on Zalo until the block ends; then SIGTERM, and it must exit
    0 (its output, kept in ``data/bot.log``, is the failure's message). ``port``: the web
    server's (a free one if not given)."""
    port = port or free_port()
    log = data / "bot.log"
    process = _spawn(zalo_env(zalo, url, data, port, **extra), log)
    try:
        yield ZaloBot(f"http://127.0.0.1:{port}", process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 20)
    assert code == 0, log.read_text()[-3000:]


def bot_texts(zalo: ZaloEmulator, chat: str, after: str = "") -> list[str]:
    """The bot's texts in ``chat`` after the message ``after`` (all if empty)."""
    chat_messages = zalo.messages(chat)
    ids = [m.message_id for m in chat_messages]
    start = ids.index(after) + 1 if after in ids else 0
    return [m.text or m.caption or "" for m in chat_messages[start:] if m.from_bot]


async def answer(
    zalo: ZaloEmulator,
    chat: str,
    text: str,
    expect: str = "",
    timeout: float = 20,  # noqa: ASYNC109 - tests state how long they are willing to wait
) -> str:
    """``chat``'s person types ``text``; the bot's first answer containing ``expect``."""
    sent = zalo.send_text(chat, text)
    return str(
        await zalo.wait_for(
            lambda: next((t for t in bot_texts(zalo, chat, sent.message_id) if expect in t), None),
            timeout=timeout,
        )
    )
