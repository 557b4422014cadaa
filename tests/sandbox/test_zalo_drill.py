"""The drill from Zalo, through the page's backend (no browser): the Zalo spokesperson registers
by typing, the admin accepts her on Zalo, she follows the topic by typing its number, receives
the alert with its chart, acknowledges it with ``/ack`` and submits a statement with
``/guiduyet``; the admin, having chosen Zalo (``/nhantin zalo``), approves it with ``/duyet``.
The drill panel's Zalo track follows along.

Everything goes through ``/api/send`` and ``/api/chat`` as the page does: plain text, no
buttons, numbered choices and typed commands, as on Zalo.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientSession
from channels.test_registration_flow import choice
from sandbox.test_runner_and_backend import _state, _wait
from sqlmodel import select
from statements import add_statements

from bot.channels.refs import PersonRef
from bot.sandbox.drill import CRISIS_TOPIC
from bot.sandbox.personas import AGENCY_CODE, ZALO_PERSONA_BY_KEY
from bot.sandbox.runner import Sandbox
from bot.services import identity
from bot.services.alerts import ALERT_KIND
from storage.models import Agency, Alert, Approval, Delivery, UserStatus

LAN = ZALO_PERSONA_BY_KEY["zalo_spokesperson"]
AN = ZALO_PERSONA_BY_KEY["zalo_admin"]


class ZaloChat:
    """One Zalo persona on the page: types, and reads the bot's answers."""

    def __init__(self, http: ClientSession, base: str, page_id: str) -> None:
        self.http = http
        self.base = base
        self.page_id = page_id

    async def messages(self) -> list[dict[str, Any]]:
        async with self.http.get(
            self.base + "api/chat", params={"user": self.page_id, "chat": self.page_id}
        ) as response:
            assert response.status == 200, await response.text()
            chat = await response.json()
        assert chat["messenger"] == "zalo" and chat["reply_keyboard"] is None
        messages: list[dict[str, Any]] = chat["messages"]
        assert all(not m["buttons"] for m in messages)  # Zalo has none
        return messages

    async def bot_text(self, expect: str, after: int = 0, timeout: float = 20) -> str:  # noqa: ASYNC109
        """The first bot message after the ``after``-th one containing ``expect`` (plain)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for message in (await self.messages())[after:]:
                text = re.sub(r"<br>", "\n", message["html"])
                if message["from_bot"] and expect in text:
                    return text
            await asyncio.sleep(0.2)
        raise AssertionError(f"no answer with {expect!r}: {await self.messages()}")

    async def say(self, text: str, expect: str = "") -> str:
        """Type ``text``; the bot's first answer after it containing ``expect``."""
        before = len(await self.messages())
        async with self.http.post(
            self.base + "api/send", json={"user": self.page_id, "text": text}
        ) as response:
            assert response.status == 200, await response.text()
        return await self.bot_text(expect, after=before + 1)


def _alert_rows(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The Zalo spokesperson's alert ledger rows (what was sent, deferred or failed, and why)."""
    with sandbox.db.session() as s:
        lan = identity.person_for(s, PersonRef("zalo", LAN.zalo_id))
        mine = Delivery.user_id == (lan.id if lan else None)
        rows = s.exec(select(Delivery).where(mine, Delivery.kind == ALERT_KIND))
        return [r.model_dump(exclude={"kind", "user_id", "chat_id"}) for r in rows]


def _zalo_steps(state: dict[str, Any]) -> dict[str, str]:
    return {s["key"]: s["status"] for s in state["drill"]["zalo_steps"]}


@pytest.mark.parametrize("sandbox", [True], indirect=True)
async def test_the_drill_from_zalo(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    # A failing run shows the fan-out's and the scan's own account of it.
    for name in ("bot.services.delivery", "bot.jobs", "bot.services.scanning"):
        caplog.set_level(logging.INFO, logger=name)
    base = sandbox.url
    async with ClientSession() as http:
        state = await _state(http, base)
        zalo_personas = {p["id"]: p for p in state["personas"] if p.get("messenger") == "zalo"}
        assert set(zalo_personas) == {LAN.page_id, AN.page_id}
        assert _zalo_steps(state)["zalo_register"] == "current"
        async with http.get(base + "api/state", params={"user": LAN.page_id}) as response:
            chats = (await response.json())["chats"]
        assert [c["title"] for c in chats] == ["CrisisDesk · Zalo"] and chats[0]["count"] == 0

        lan, an = ZaloChat(http, base, LAN.page_id), ZaloChat(http, base, AN.page_id)

        # 1. Lan registers by typing: numbered choices, her name, a typed phone number.
        ask_language = await lan.say("/start", "1.")
        ask_name = await lan.say(choice(ask_language, "Tiếng Việt"))
        assert "tên" in ask_name.lower()
        ask_agency = await lan.say(LAN.full_name, f"({AGENCY_CODE})")
        ask_role = await lan.say(choice(ask_agency, f"({AGENCY_CODE})"))
        await lan.say(choice(ask_role, "Người phát ngôn"), "0912 345 678")
        await lan.say("0912 345 678")
        with sandbox.db.session() as s:
            applicant = identity.person_for(s, PersonRef("zalo", LAN.zalo_id))
            assert applicant is not None and applicant.status == UserStatus.PENDING
            applicant_id = applicant.id
        assert _zalo_steps(await _state(http, base))["zalo_register"] == "done"

        # 2. The admin reads the request on Zalo and accepts her by command.
        request = await an.bot_text(f"/accept {applicant_id}")
        assert LAN.full_name in request
        await an.say(f"/accept {applicant_id}", "Đã lưu quyết định.")
        await lan.bot_text("", after=len(await lan.messages()) - 1)  # she is told
        assert _zalo_steps(await _state(http, base))["zalo_accept"] == "done"

        # 3. She follows the crisis topic by typing its number.
        listing = await lan.say("/topics", CRISIS_TOPIC)
        await lan.say(choice(listing, f"Theo dõi: {CRISIS_TOPIC}"))
        assert _zalo_steps(await _state(http, base))["zalo_subscribe"] == "done"

        # 4. The news day reaches the food poisoning: the alert, with its chart, on Zalo.
        seen = len(await lan.messages())
        sandbox.clock.advance(timedelta(hours=5))
        sandbox.scan_soon()

        async def chart() -> dict[str, Any] | None:
            return next((m for m in (await lan.messages())[seen:] if m.get("photo")), None)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        photo = await chart()
        while photo is None and loop.time() < deadline:
            await asyncio.sleep(0.3)
            photo = await chart()
        assert photo is not None, await lan.messages()
        async with http.get(photo["photo"]) as response:  # the page shows it from its link
            assert response.status == 200 and response.content_type == "image/png"
        try:
            alert_text = await lan.bot_text("/ack ", after=seen)
        except AssertionError as missing:  # a failing run says what the ledger holds for her
            raise AssertionError(f"{missing}\nher alert rows: {_alert_rows(sandbox)}") from None
        assert _zalo_steps(await _state(http, base))["zalo_alert"] == "done"

        # 5. She acknowledges it by command.
        ack = re.search(r"/ack \d+", alert_text)
        assert ack is not None, alert_text
        await lan.say(ack.group(0))
        with sandbox.db.session() as s:
            lan_id = identity.person_for(s, PersonRef("zalo", LAN.zalo_id))
            assert lan_id is not None
            acked = s.exec(select(Alert).where(Alert.acknowledged_by_id == lan_id.id)).first()
            assert acked is not None
        assert _zalo_steps(await _state(http, base))["zalo_ack"] == "done"

        # 6. The admin (one person on Telegram and Zalo) chooses Zalo; she submits a statement
        # by typing /guiduyet: the approval request reaches him on Zalo and he types /duyet.
        await an.say("/nhantin zalo", "Đã lưu.")
        with sandbox.db.session() as s:
            agency = s.exec(select(Agency).where(Agency.code == AGENCY_CODE)).one()
            [draft_id] = add_statements(s, agency.id or 0, lan_id.id, sandbox.clock.now())
        await lan.say(f"/guiduyet {draft_id}", "Nguyễn Văn An")
        await an.bot_text(f"/duyet {draft_id}", timeout=30)
        await an.say(f"/duyet {draft_id}", "Đã ghi nhận")
        with sandbox.db.session() as s:
            votes = s.exec(select(Approval.draft_id, Approval.decision)).all()
        assert votes == [(draft_id, "approve")]
        state = await _state(http, base)
        assert set(_zalo_steps(state).values()) == {"done"} and state["drill"]["zalo_finished"]
        await _wait(lambda: sandbox.drill_done >= {"approve_draft"})
