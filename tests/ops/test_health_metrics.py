"""``/healthz`` and ``/metrics`` over HTTP, served for the real application on the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from emulator_fixtures import running_app
from prometheus_client.parser import text_string_to_metric_families
from telegram.ext import Application

from bot.app import build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.health import bound_port, serve_monitoring, start_monitoring
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from bot.startup_errors import StartupError
from storage.db import Database
from storage.models import Delivery, DeliveryStatus, Source, User


def _settings(make_settings: Any, emulator: TelegramEmulator, admin_id: int) -> Any:
    return make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_ADMIN_IDS": str(admin_id),
            "CRISISDESK_TICK_SECONDS": "0.2",
            "CRISISDESK_SCAN_INTERVAL": "300",
        }
    )


@asynccontextmanager
async def serving(application: Application) -> AsyncIterator[str]:  # type: ignore[type-arg]
    """The running app with its monitoring server on a free loopback port; yields its root."""
    async with running_app(application):
        runner = await start_monitoring(application, host="127.0.0.1", port=0)
        assert runner is not None
        try:
            yield f"http://127.0.0.1:{bound_port(runner)}"
        finally:
            await runner.cleanup()


def _samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def _wait_for(predicate: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_healthz_and_metrics_report_the_running_bot(
    emulator: TelegramEmulator, db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    """On both databases: the collector's queries and the leader lock differ."""
    admin = emulator.create_user("Admin", language_code="en")
    settings = _settings(make_settings, emulator, admin.id)
    with db.session() as session:
        person = User(full_name="Lan", status="active")
        identity.add_person(session, person_ref(777), person)
        session.flush()
        assert person.id is not None
        statuses = (DeliveryStatus.SENT, DeliveryStatus.SENT, DeliveryStatus.FAILED)
        for ref_id, status in enumerate(statuses, start=1):
            session.add(Delivery(kind="alert", ref_id=ref_id, user_id=person.id, status=status))
    application = build_application(settings, db, clock)
    monitor = application.bot_data["runtime"].monitor
    async with serving(application) as root, aiohttp.ClientSession() as http:
        await _wait_for(lambda: monitor.last_tick is not None)
        async with http.get(f"{root}/healthz") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["status"] == "ok"
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["scheduler"]["running"] is True
        assert body["checks"]["scan"] == {
            "ok": True,
            "limit_s": 960.0,
            "sources": False,
            "last_scan_age_s": None,
        }
        assert body["leader"] is True

        asked = emulator.send_text(admin.id, "/help")
        await emulator.wait_for_message(admin.id, after=asked.message_id)
        await _wait_for(lambda: monitor.scans.labels("idle")._value.get() >= 1)
        async with http.get(f"{root}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            page = await resp.text()
    samples = _samples(page)
    assert samples[("crisisdesk_update_seconds_count", ())] >= 1
    assert samples[("crisisdesk_scans_total", (("outcome", "idle"),))] >= 1
    assert samples[("crisisdesk_scans_total", (("outcome", "error"),))] == 0
    assert samples[("crisisdesk_delivery_rows", (("status", "sent"),))] == 2
    assert samples[("crisisdesk_delivery_rows", (("status", "failed"),))] == 1
    assert samples[("crisisdesk_leader", ())] == 1
    assert samples[("crisisdesk_send_queue_depth", ())] == 0
    assert samples[("crisisdesk_flood_waits_total", ())] == 0
    assert samples[("crisisdesk_open_alerts", ())] == 0
    assert ("crisisdesk_deliveries_total", (("outcome", "sent"),)) in samples


async def test_healthz_fails_when_the_last_scan_is_too_old(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    admin = emulator.create_user("Admin", language_code="en")
    settings = _settings(make_settings, emulator, admin.id)
    with sqlite_db.session() as session:  # a source nobody answers: the scan runs and fails it
        session.add(Source(name="Down", outlet="Down", url="http://127.0.0.1:9/rss"))
    application = build_application(settings, sqlite_db, clock)
    monitor = application.bot_data["runtime"].monitor
    async with serving(application) as root, aiohttp.ClientSession() as http:
        await _wait_for(lambda: monitor.scans.labels("ok")._value.get() >= 1, seconds=15)
        async with http.get(f"{root}/healthz") as resp:
            assert resp.status == 200
            fresh = (await resp.json())["checks"]["scan"]
        assert fresh["ok"] is True and fresh["sources"] is True
        assert fresh["last_scan_age_s"] < 60

        clock.advance(timedelta(minutes=17))  # past 3 × 300 s + 60 s, and no scan since
        async with http.get(f"{root}/healthz") as resp:
            assert resp.status == 503
            body = await resp.json()
        assert body["status"] == "fail"
        assert body["checks"]["scan"]["ok"] is False
        assert body["checks"]["scan"]["last_scan_age_s"] >= 17 * 60
        assert body["checks"]["database"]["ok"] is True


async def test_a_taken_port_is_one_line(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    admin = emulator.create_user("Admin", language_code="en")
    application = build_application(_settings(make_settings, emulator, admin.id), sqlite_db, clock)
    async with serving(application) as root:
        taken = int(root.rsplit(":", 1)[1])
        other = build_application(_settings(make_settings, emulator, admin.id), sqlite_db, clock)
        with pytest.raises(StartupError, match=r"cannot serve /healthz and /metrics on "):
            await start_monitoring(other, host="127.0.0.1", port=taken)


async def test_polling_mode_serves_it_between_post_init_and_post_stop(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    admin = emulator.create_user("Admin", language_code="en")
    settings = _settings(make_settings, emulator, admin.id)
    settings.http_port = port
    application = build_application(settings, sqlite_db, clock)
    serve_monitoring(application)  # what run_bot does before run_polling
    assert application.post_init is not None and application.post_stop is not None
    async with running_app(application), aiohttp.ClientSession() as http:
        await application.post_init(application)
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            assert "crisisdesk_leader 1.0" in await resp.text()
        await application.post_stop(application)
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port}/healthz")
