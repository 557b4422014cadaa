"""A drill that cannot stall: the news day waits for the trainee, a trainee who follows the topic
after the alert went out is handed that alert by the bot, and the page can start over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import ClientSession
from sqlmodel import select

from bot.sandbox.drill import CRISIS_TOPIC
from bot.sandbox.personas import AGENCY_CODE, PERSONA_BY_KEY
from bot.sandbox.runner import Sandbox, SandboxOptions
from storage.models import Agency, Alert, Topic, User

SPOKESPERSON = PERSONA_BY_KEY["spokesperson"].user_id


@pytest_asyncio.fixture
async def drill(tmp_path: Path) -> AsyncIterator[Sandbox]:
    box = Sandbox(
        SandboxOptions(data_dir=tmp_path / "sb", port=0, speed=144, drill=True, scan_seconds=1.0)
    )
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


async def _wait(predicate: Any, timeout: float = 30.0) -> Any:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def _state(http: ClientSession, base: str) -> dict[str, Any]:
    async with http.get(base + f"api/state?user={SPOKESPERSON}") as response:
        return dict(await response.json())


async def test_late_trainee_gets_the_open_alert_and_the_page_starts_over(drill: Sandbox) -> None:
    base = drill.url
    emulator = drill.emulator
    async with ClientSession() as http:
        # The news day waits at its start for the trainee.
        state = await _state(http, base)
        assert state["drill"]["waiting"] is True and state["clock"]["paused"] is True
        start = drill.clock.now()
        await asyncio.sleep(0.3)
        assert drill.clock.now() == start

        # A trainer jumps to 11:00 anyway: the alert fires while nobody follows the topic.
        drill.clock.advance(timedelta(hours=5))
        drill.scan_soon()

        def food_alert() -> Alert | None:
            with drill.db.session() as s:
                topic = s.exec(select(Topic).where(Topic.name == CRISIS_TOPIC)).one()
                return s.exec(select(Alert).where(Alert.topic_id == topic.id)).first()

        await _wait(food_alert)

        # The trainee arrives late (registered and approved), then follows the topic.
        with drill.db.session() as s:
            agency = s.exec(select(Agency).where(Agency.code == AGENCY_CODE)).one()
            s.add(
                User(
                    telegram_id=SPOKESPERSON,
                    full_name="Lê Minh Châu",
                    agency_id=agency.id,
                    role="spokesperson",
                    status="active",
                )
            )
        asked = emulator.send_text(SPOKESPERSON, "/topics")
        listing = await emulator.wait_for_message(SPOKESPERSON, after=asked.message_id)
        await emulator.press_button(
            SPOKESPERSON, SPOKESPERSON, listing.message_id, text=f"Theo dõi: {CRISIS_TOPIC}"
        )
        photo = await emulator.wait_for_message(
            SPOKESPERSON, lambda m: "photo" in m.data, after=listing.message_id, timeout=30
        )
        assert photo is not None
        state = await _state(http, base)
        steps = {s["key"]: s["status"] for s in state["drill"]["steps"]}
        assert steps["alert"] == "done" and steps["crisis"] == "current", steps
        assert state["drill"]["waiting"] is False and state["clock"]["paused"] is False

        # Start over from the page: a fresh day, nobody registered, the clock waiting again.
        async with http.post(base + "api/drill", json={"action": "reset"}) as response:
            assert response.status == 200, await response.text()
        state = await _state(http, base)
        steps = {s["key"]: s["status"] for s in state["drill"]["steps"]}
        assert steps["register"] == "current" and "done" not in steps.values(), steps
        assert state["drill"]["waiting"] is True and state["clock"]["local"] == "06:00"
        with drill.db.session() as s:
            assert s.exec(select(User).where(User.telegram_id == SPOKESPERSON)).first() is None
            assert s.exec(select(Alert)).first() is None
        chat = drill.emulator.world.chats.get(SPOKESPERSON)
        assert chat is None or not chat.live_messages(), "the chats start empty"

        # Ready: the trainee (or trainer) presses start and the day runs.
        async with http.post(base + "api/drill", json={"action": "start"}) as response:
            clock = (await response.json())["clock"]
        assert clock["paused"] is False and clock["speed"] == 144
        async with http.post(base + "api/drill", json={"action": "rewind"}) as response:
            assert response.status == 400
