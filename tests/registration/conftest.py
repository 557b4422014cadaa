"""Fixtures for registration tests: settings pointed at the emulator, agencies, and chat helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.sandbox.telegram_emulator import TelegramEmulator


@pytest.fixture
def app_settings(emulator: TelegramEmulator, make_settings: Any) -> Callable[..., Any]:
    def factory(admin_ids: str = "", **env: str) -> Any:
        return make_settings(
            {
                "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
                "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
                "CRISISDESK_ADMIN_IDS": admin_ids,
                "CRISISDESK_TICK_SECONDS": "30",
                **env,
            }
        )

    return factory
