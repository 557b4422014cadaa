"""Shared by the end-to-end tests of one person on two messengers (``tests/zalo``): two
supervisors on Telegram following a topic, a drafter on Zalo with a statement, and Lan linking
her Zalo account with a code shown on Telegram."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from alert_desk import burst_alert
from sqlmodel import select
from statements import add_statements
from zalo_support import answer, bot_texts

from bot.channels.refs import PersonRef
from bot.channels.telegram.notifier import person_ref
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.zalo_emulator import ZaloEmulator
from bot.services import identity
from bot.services.alerts import plan_delivery
from storage.db import Database
from storage.models import Agency, Delivery, Role, Subscription, Topic, User, UserStatus

LAN_ZALO = "7f3a9c0e51d2b4a8"
BINH_ZALO = "b1b1b1b1c2c2c2c2"
TOPIC = "An toàn thực phẩm"
BODY = "Sở Y tế đang xác minh thông tin và sẽ cập nhật lúc 17 giờ."


def seed(db: Database, lan_tg: int, hung_tg: int) -> dict[str, int]:
    """Two supervisors on Telegram (Lan, Hùng) following the topic, a drafter on Zalo (Bình)
    and a statement of his awaiting two approvals."""
    now = datetime.now(UTC)
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế", approvals_required=2)
        s.add(agency)
        s.flush()
        topic = Topic(agency_id=agency.id or 0, name=TOPIC, query='"ngộ độc"')
        s.add(topic)
        s.flush()
        ids = {"topic": topic.id or 0}
        people = (
            ("lan", person_ref(lan_tg), Role.SUPERVISOR),
            ("hung", person_ref(hung_tg), Role.SUPERVISOR),
            ("binh", PersonRef("zalo", BINH_ZALO), Role.SPOKESPERSON),
        )
        for key, account, role in people:
            user = User(full_name=key.title(), role=role, status=UserStatus.ACTIVE)
            user.agency_id = agency.id
            identity.add_person(s, account, user)
            ids[key] = user.id or 0
            if role == Role.SUPERVISOR:
                s.add(Subscription(user_id=ids[key], topic_id=ids["topic"]))
        [ids["draft"]] = add_statements(s, agency.id or 0, ids["binh"], now, body=BODY)
    return ids


async def link_on_zalo(
    telegram: TelegramEmulator, zalo: ZaloEmulator, lan_tg: int, *, choose: bool = True
) -> None:
    """Lan asks for a code on Telegram and types it on Zalo (and, with ``choose``, chooses
    Zalo for her alerts)."""
    asked = telegram.send_text(lan_tg, "/lienket")
    shown = await telegram.wait_for_message(lan_tg, after=asked.message_id, timeout=10)
    found = re.search(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b", shown.data["text"])
    assert found is not None, shown.data["text"]
    linked = await answer(zalo, LAN_ZALO, f"/lienket {found.group()}")
    assert linked.startswith("✅ Đã liên kết tài khoản này với Lan"), linked
    if choose:
        await choose_zalo(zalo)


async def choose_zalo(zalo: ZaloEmulator) -> None:
    chosen = await answer(zalo, LAN_ZALO, "/nhantin zalo")
    assert chosen.startswith("✅ Đã lưu. Cảnh báo đến anh/chị qua: Zalo."), chosen


def alert_texts(telegram: TelegramEmulator, chat: int) -> list[str]:
    return [
        m.data.get("text", "")
        for m in telegram.messages(chat, from_bot=True)
        if TOPIC in m.data.get("text", "")
    ]


async def alert_reaches_lan_on_zalo_only(
    telegram: TelegramEmulator,
    zalo: ZaloEmulator,
    db: Database,
    ids: dict[str, int],
    lan_tg: int,
    hung_tg: int,
) -> None:
    """The scan found a burst: the ledger owes Lan (who chose Zalo) her copy on Zalo and Hùng
    his on Telegram; both arrive, and nothing reaches Lan on Telegram."""
    with db.session() as s:
        alert = burst_alert(ids["topic"], datetime.now(UTC), "burst")
        s.add(alert)
        s.flush()
        assert plan_delivery(s, alert, alert.created_at, escalate_after=timedelta(hours=1))
    await telegram.wait_for(lambda: alert_texts(telegram, hung_tg) or None, timeout=30)
    await zalo.wait_for(
        lambda: any(TOPIC in t and "/ack" in t for t in bot_texts(zalo, LAN_ZALO)) or None,
        timeout=30,
    )
    await asyncio.sleep(6)  # a further run of each fan-out: still nothing for her there
    assert alert_texts(telegram, lan_tg) == []
    with db.session() as s:
        rows = s.exec(
            select(Delivery).where(Delivery.user_id == ids["lan"], Delivery.kind == "alert")
        ).all()
    assert {(r.channel, r.status) for r in rows} == {("zalo", "sent")} and len(rows) == 2
