"""``crisisdesk run`` on Zalo alone serves ``/healthz`` and ``/metrics`` like the Telegram bot
(``bot.health`` watches Zalo's own scheduler), and the flows that came to Zalo with the shared
flow list (``bot.flows``) answer there: ``/topics``, ``/me``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from bot_process import free_port
from zalo_support import answer, zalo_bot

from bot.channels.refs import PersonRef
from bot.sandbox.zalo_emulator import ZaloEmulator
from bot.services import identity
from storage.db import Database
from storage.models import Agency, Role, Subscription, Topic, User, UserStatus

LAN = "7f3a9c0e51d2b4a8"
TOPIC = "An toàn thực phẩm"


def seed(db: Database) -> None:
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        topic = Topic(agency_id=agency.id or 0, name=TOPIC, query='"ngộ độc"')
        s.add(topic)
        lan = User(full_name="Lan", role=Role.SUPERVISOR, status=UserStatus.ACTIVE)
        lan.agency_id = agency.id
        identity.add_person(s, PersonRef("zalo", LAN), lan)
        s.flush()
        s.add(Subscription(user_id=lan.id or 0, topic_id=topic.id or 0))


async def _probe(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    """``url``'s first answer, connection refusals retried for up to 20 s."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        try:
            return await http.get(url)
        except aiohttp.ClientConnectorError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_health_and_layer_flows_on_zalo(
    zalo: ZaloEmulator, bot_db: tuple[str, Database], tmp_path: Path
) -> None:
    url, db = bot_db
    seed(db)
    port = free_port()
    async with zalo_bot(zalo, url, tmp_path, http_port=str(port), http_listen="127.0.0.1"):
        await answer(zalo, LAN, "xin chào", timeout=30)  # the bot is up and answering
        async with aiohttp.ClientSession() as http:
            # The receiver answers before the monitoring port opens (it starts once the jobs
            # and the scheduler have): ask as a load balancer's probe would, until it answers.
            async with await _probe(http, f"http://127.0.0.1:{port}/healthz") as health:
                body = await health.json()
                assert health.status == 200, body
                assert body["checks"]["scheduler"]["running"] is True
                assert body["leader"] is True
            async with http.get(f"http://127.0.0.1:{port}/metrics") as metrics:
                assert metrics.status == 200
                assert "crisisdesk_leader 1.0" in await metrics.text()
        assert TOPIC in await answer(zalo, LAN, "/topics", expect=TOPIC)
        assert "Lan" in await answer(zalo, LAN, "/me", expect="Lan")
