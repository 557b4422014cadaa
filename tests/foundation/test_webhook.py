"""Webhook mode: the emulator POSTs updates with the secret header to our aiohttp receiver."""

from __future__ import annotations

from typing import Any

import aiohttp
from webhook_support import forged_update, webhook_settings

from bot.app import build_application
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.webhook import SECRET_HEADER, start_webhook
from storage.db import Database


async def test_updates_arrive_by_webhook_and_forged_posts_are_refused(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    admin = emulator.create_user("Admin", language_code="en")
    settings, url, _ = webhook_settings(make_settings, emulator, admin.id, "s3cret-token")
    application = build_application(settings, sqlite_db, clock)
    async with application:
        await application.start()
        runner = await start_webhook(application, settings, host="127.0.0.1")
        try:
            info = await application.bot.get_webhook_info()
            assert info.url == url
            asked = emulator.send_text(admin.id, "/status")
            reply = await emulator.wait_for_message(admin.id, after=asked.message_id)
            assert "CrisisDesk status" in reply.data["text"]

            forged = forged_update(admin.id, "X", "/status")
            async with aiohttp.ClientSession() as http:
                async with http.post(url, json=forged, headers={SECRET_HEADER: "wrong"}) as resp:
                    assert resp.status == 403
                async with http.post(url, json=forged) as resp:
                    assert resp.status == 403
                async with http.post(
                    url, data=b"not json", headers={SECRET_HEADER: "s3cret-token"}
                ) as resp:
                    assert resp.status == 400
        finally:
            await runner.cleanup()
            await application.stop()
    assert len(emulator.messages(admin.id, from_bot=True)) == 1


def test_webhook_url_must_be_https_except_locally(make_settings: Any) -> None:
    import pytest

    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="CRISISDESK_WEBHOOK_URL: must be an https:// URL"):
        make_settings({"CRISISDESK_WEBHOOK_URL": "http://bot.example.vn/hook"})
    local = {"CRISISDESK_WEBHOOK_URL": "http://127.0.0.1:8080/h", "CRISISDESK_WEBHOOK_SECRET": "s"}
    assert make_settings(local).webhook_url
