"""Webhook mode needs a secret of Telegram's form, binds where told, refuses forgeries quietly
(issue 16, item 4)."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from webhook_support import forged_update, webhook_settings

from bot.app import build_application
from bot.cli import main
from bot.clock import SimulatedClock
from bot.config import ConfigError
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.webhook import SECRET_HEADER, start_webhook
from storage.db import Database


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        (None, "CRISISDESK_WEBHOOK_SECRET is not"),
        ("has space", "1-256 characters"),
        ("s" * 257, "1-256 characters"),
        ("ünïcode", "1-256 characters"),
    ],
)
def test_webhook_url_without_a_valid_secret_is_refused(
    make_settings: Any, secret: str | None, fragment: str
) -> None:
    env = {"CRISISDESK_WEBHOOK_URL": "https://bot.example.vn/hook"}
    if secret is not None:
        env["CRISISDESK_WEBHOOK_SECRET"] = secret
    with pytest.raises(ConfigError, match=fragment) as caught:
        make_settings(env)
    if secret is not None:
        assert secret not in str(caught.value)  # a mistyped secret is not echoed


def test_run_refuses_with_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setenv("CRISISDESK_TELEGRAM_TOKEN", "123456:TEST")
    monkeypatch.setenv("CRISISDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRISISDESK_WEBHOOK_URL", "https://bot.example.vn/hook")
    monkeypatch.delenv("CRISISDESK_WEBHOOK_SECRET", raising=False)
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "WEBHOOK_SECRET" in err and "Traceback" not in err


def test_valid_secret_is_accepted(make_settings: Any) -> None:
    settings = make_settings(
        {
            "CRISISDESK_WEBHOOK_URL": "https://bot.example.vn/hook",
            "CRISISDESK_WEBHOOK_SECRET": "A-z_09" * 40,
            "CRISISDESK_WEBHOOK_LISTEN": "127.0.0.1",
        }
    )
    assert settings.webhook_listen == "127.0.0.1"
    assert make_settings({}).webhook_listen == "0.0.0.0"


async def test_binds_the_configured_address_and_logs_forgeries_without_the_body(
    emulator: TelegramEmulator,
    sqlite_db: Database,
    make_settings: Any,
    clock: SimulatedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = emulator.create_user("Admin", language_code="en")
    settings, url, port = webhook_settings(
        make_settings, emulator, admin.id, "right-secret_1", CRISISDESK_WEBHOOK_LISTEN="127.0.0.1"
    )
    application = build_application(settings, sqlite_db, clock)
    forged = forged_update(admin.id, "BODY-MARKER", "/status BODY-MARKER")
    caplog.set_level(logging.DEBUG)
    async with application:
        await application.start()
        runner = await start_webhook(application, settings)  # host and port from settings
        try:
            assert [a[:2] for a in runner.addresses] == [("127.0.0.1", port)]
            async with aiohttp.ClientSession() as http:
                for headers in ({SECRET_HEADER: "wrong"}, {}, {SECRET_HEADER: "right-secret_"}):
                    async with http.post(url, json=forged, headers=headers) as resp:
                        assert resp.status == 403
        finally:
            await runner.cleanup()
            await application.stop()
    refusals = [r for r in caplog.records if "refused a POST" in r.getMessage()]
    assert len(refusals) == 3
    assert "BODY-MARKER" not in caplog.text
    assert emulator.calls_to("sendMessage") == []
