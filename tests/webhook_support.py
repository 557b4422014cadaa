"""Helpers for the webhook tests: the settings of a bot served by webhook on loopback, and an
update forged by someone who does not know the secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot_process import free_port

from bot.config import Settings
from bot.sandbox.telegram_emulator import TelegramEmulator


def webhook_settings(
    make_settings: Callable[[dict[str, str]], Settings],
    emulator: TelegramEmulator,
    admin_id: int,
    secret: str,
    **env: str,
) -> tuple[Settings, str, int]:
    """Settings for the bot on ``emulator`` by webhook on a free loopback port, with
    ``admin_id`` its admin (``env``: more variables); with the hook's URL and port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    settings = make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_ADMIN_IDS": str(admin_id),
            "CRISISDESK_WEBHOOK_URL": url,
            "CRISISDESK_WEBHOOK_SECRET": secret,
            "CRISISDESK_WEBHOOK_PORT": str(port),
            **env,
        }
    )
    return settings, url, port


def forged_update(user_id: int, first_name: str, text: str) -> dict[str, Any]:
    """A message update as if from ``user_id``, for posting to the hook without the secret."""
    return {
        "update_id": 10**9,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "text": text,
        },
    }
