"""``crisisdesk run`` on Zalo, end to end: a burst on a real local feed server reaches a person
on the Zalo emulator as plain text and a chart fetched by its signed link, ``/ack`` typed on
Zalo acknowledges the alert, and a webhook POST without the right secret is refused.

The bot is a subprocess of ``python -m bot.cli run`` with only Zalo settings (no Telegram
token), in webhook mode (the emulator POSTs updates to the bot's own web server, which also
serves the charts the emulator fetches, as Zalo's servers would) and in polling mode.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from alert_desk import OUTLETS, FeedServer, add_sources, feeds
from sqlmodel import select
from zalo_support import zalo_bot

from bench.stories import BACKGROUND, BURST
from bot.channels.refs import PersonRef
from bot.channels.zalo import SECRET_HEADER
from bot.channels.zalo.app import start_web
from bot.sandbox.zalo_emulator import ZaloEmulator
from bot.services import identity
from bot.startup_errors import StartupError
from scanner.parse import FeedItem
from scanner.pipeline import Incoming, Processor
from storage.db import Database
from storage.models import (
    Agency,
    Alert,
    AlertStatus,
    AuditEvent,
    Role,
    Subscription,
    Topic,
    User,
    UserStatus,
)

__all__ = ["feeds"]  # the local feed server fixture

LAN = "7f3a9c0e51d2b4a8"  # a Zalo user id: hex, not a number
SECRET = "zalo-webhook-secret-1234"
TOPIC = "An toàn thực phẩm"


def seed(db: Database, feeds: FeedServer) -> int:
    """A topic with a quiet history, Lan subscribed to it with only a Zalo account, the feeds
    as sources and a burst waiting on them; returns Lan's user id."""
    now = datetime.now(UTC)
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        topic = Topic(agency_id=agency.id, name=TOPIC, query='"ngộ độc" OR "an toàn thực phẩm"')
        s.add(topic)
        s.flush()
        lan = User(
            full_name="Lan",
            role=Role.SPOKESPERSON,
            status=UserStatus.ACTIVE,
            agency_id=agency.id,
            language="vi",
        )
        identity.add_person(s, PersonRef("zalo", LAN), lan)
        s.flush()
        assert lan.id is not None
        s.add(Subscription(user_id=lan.id, topic_id=topic.id))
        lan_id = lan.id
    with db.session() as s:
        items = [
            Incoming(
                FeedItem(
                    f"{BACKGROUND[i % len(BACKGROUND)]}, đợt {i + 1} năm nay",
                    f"https://bg.example.vn/{i}",
                    "Kiểm tra định kỳ.",
                    now - timedelta(hours=6 * (i + 1)),
                ),
                OUTLETS[i % len(OUTLETS)],
            )
            for i in range(14 * 4)
        ]
        Processor.from_db(s, now).process(s, items, now)
    add_sources(db, feeds)
    for i, title in enumerate(BURST):
        outlet = OUTLETS[i % len(OUTLETS)]
        feeds.items.setdefault(outlet, []).append(
            (
                title,
                f"https://news.example.vn/{outlet[:2]}/{i}",
                "Các em có biểu hiện đau bụng, nôn ói; phụ huynh lo lắng, bức xúc.",
                now - timedelta(minutes=12 - i % 10),
            )
        )
    return lan_id


async def forged_updates_are_refused(
    zalo: ZaloEmulator, db: Database, public: str, alert_id: int
) -> None:
    """Someone who found the webhook URL cannot speak as Lan without the secret."""
    count = len(zalo.messages(LAN))
    forged = {
        "event_name": "message.text.received",
        "message": {
            "message_id": "forged-1",
            "date": 0,
            "text": f"/dismiss {alert_id}",
            "from": {"id": LAN, "display_name": "Lan", "is_bot": False},
            "chat": {"id": LAN, "chat_type": "PRIVATE"},
        },
    }
    async with aiohttp.ClientSession() as http:
        for headers in ({SECRET_HEADER: "wrong-secret-123"}, {}):
            async with http.post(f"{public}/zalo/webhook", json=forged, headers=headers) as refused:
                assert refused.status == 403
    await asyncio.sleep(1.5)
    assert len(zalo.messages(LAN)) == count  # nothing was answered
    with db.session() as s:
        still = s.get(Alert, alert_id)
        assert still is not None and still.status == AlertStatus.ACKNOWLEDGED
        assert not s.exec(select(AuditEvent).where(AuditEvent.action == "alert.dismissed")).all()


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_crisisdesk_runs_on_zalo(
    mode: str,
    zalo: ZaloEmulator,
    feeds: FeedServer,
    bot_db: tuple[str, Database],
    tmp_path: Path,
) -> None:
    url, db = bot_db
    lan_id = seed(db, feeds)
    greeting = zalo.send_text(LAN, "xin chào", display_name="Lan")  # Zalo: she wrote first
    extra = {"zalo_webhook_secret": SECRET} if mode == "webhook" else {}
    async with zalo_bot(zalo, url, tmp_path, **extra) as bot:
        public = bot.public
        # Her greeting came by webhook and was answered (an active person, free text).
        await zalo.wait_for_message(LAN, after=greeting.message_id, timeout=30)

        def alert_arrived() -> bool:
            mine = zalo.messages(LAN, from_bot=True)
            return any(m.photo_url for m in mine) and any(
                TOPIC in (m.text or "") and "/ack" in (m.text or "") for m in mine
            )

        await zalo.wait_for(lambda: alert_arrived() or None, timeout=60)
        with db.session() as s:
            [alert] = s.exec(select(Alert)).all()
            assert alert.id is not None
            alert_id = alert.id
        mine = zalo.messages(LAN, from_bot=True)
        [chart] = [m for m in mine if m.photo_url]
        assert chart.photo_url is not None and chart.photo_url.startswith(f"{public}/charts/")
        assert chart.photo_bytes and chart.photo_bytes > 1000  # Zalo fetched the PNG
        assert TOPIC in (chart.caption or "")
        [text] = [m.text for m in mine if m.text and TOPIC in m.text]
        assert f"/ack {alert_id}" in text
        for m in mine:  # plain text within Zalo's limit, no Telegram markup left
            body = m.text or m.caption or ""
            assert len(body) <= 2000
            assert "<b>" not in body and "</" not in body and "&amp;" not in body

        # A tampered chart link is refused by the bot's server.
        async with aiohttp.ClientSession() as http:
            tampered = chart.photo_url.replace("sig=", "sig=x")
            async with http.get(tampered) as answer:
                assert answer.status == 403

        last = zalo.messages(LAN)[-1].message_id
        ack = zalo.send_text(LAN, f"/ack {alert_id}")
        answer = await zalo.wait_for_message(LAN, after=ack.message_id, timeout=15)
        assert answer.text == "Đã ghi nhận bạn xác nhận cảnh báo."
        assert last != ack.message_id
        with db.session() as s:
            acked = s.get(Alert, alert_id)
            assert acked is not None and acked.status == AlertStatus.ACKNOWLEDGED
            assert acked.acknowledged_by_id == lan_id
            audit = s.exec(
                select(AuditEvent).where(AuditEvent.action == "alert.acknowledged")
            ).all()
            assert [event.actor_id for event in audit] == [lan_id]

        # A Zalo account with no person behind it gets the layer's refusal, audited.
        stranger = "c0ffee00c0ffee00"
        tried = zalo.send_text(stranger, f"/ack {alert_id}")
        refusal = await zalo.wait_for_message(stranger, after=tried.message_id, timeout=15)
        assert refusal.text and "/ack" not in refusal.text
        hello = zalo.send_text(stranger, "xin chào")
        pointer = await zalo.wait_for_message(stranger, after=hello.message_id, timeout=15)
        assert pointer.text
        with db.session() as s:
            refused = s.exec(
                select(AuditEvent).where(AuditEvent.actor_ref == f"zalo:{stranger}")
            ).all()
            assert [event.action for event in refused] == ["button.refused"]

        # Her copy is refreshed (an edit on Telegram) by a new message; once it came, the
        # chat is quiet.
        await zalo.wait_for(
            lambda: (
                any("Đã được Lan xác nhận" in (m.text or "") for m in zalo.messages(LAN)) or None
            ),
            timeout=30,
        )
        await asyncio.sleep(1.0)

        if mode == "webhook":
            await forged_updates_are_refused(zalo, db, public, alert_id)
        else:
            assert zalo.calls_to("getUpdates")


async def test_a_taken_web_port_is_one_line(make_settings: Any) -> None:
    """The web server Zalo's charts (and webhook) need, on a port another program holds: one
    line naming the settings to check, not a traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = make_settings(
            {"CRISISDESK_WEBHOOK_LISTEN": "127.0.0.1", "CRISISDESK_WEBHOOK_PORT": str(port)}
        )
        with pytest.raises(
            StartupError,
            match=rf"^cannot serve charts on 127\.0\.0\.1:{port}: .+ \(check CRISISDESK_WEBHOOK_",
        ):
            await start_web(settings, web.Application())
