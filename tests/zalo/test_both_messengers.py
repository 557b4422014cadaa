"""Both messengers in one process, end to end: ``crisisdesk run`` with a Telegram and a Zalo
token, against both emulators, on one SQLite file.

Lan (a supervisor on Telegram) links her Zalo account. Bình submits his statement on Zalo: the
approval requests reach Lan and Hùng on Telegram (Lan has not chosen a channel yet), Lan
approves there by button, and her ``/duyet`` on Zalo is refused as a second vote. She then
chooses Zalo for alerts: the next alert reaches her on Zalo only, and Hùng (Telegram only) on
Telegram, both sent by the one process's fan-out. Last, Zalo answers a flow that used to be
Telegram's only (``/topics``), and Bình links a Telegram account from a code shown on Zalo:
his Telegram menu shows a spokesperson's commands at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from bot_process import free_port
from linked_people import (
    BINH_ZALO,
    BODY,
    LAN_ZALO,
    TOPIC,
    alert_reaches_lan_on_zalo_only,
    choose_zalo,
    link_on_zalo,
    seed,
)
from sqlmodel import select
from zalo_support import answer, zalo_bot

from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.zalo_emulator import ZaloEmulator
from storage.db import Database
from storage.models import Approval


async def test_one_process_serves_telegram_and_zalo(
    emulator: TelegramEmulator,
    zalo: ZaloEmulator,
    bot_db: tuple[str, Database],
    tmp_path: Path,
) -> None:
    url, db = bot_db
    lan_tg, hung_tg = emulator.create_user("Lan").id, emulator.create_user("Hùng").id
    ids = seed(db, lan_tg, hung_tg)
    both = {"telegram_token": emulator.token, "telegram_api_url": emulator.root_url}
    async with zalo_bot(zalo, url, tmp_path, **both):
        for account in (LAN_ZALO, BINH_ZALO):  # the bot writes only to who wrote first
            await answer(zalo, account, "xin chào", timeout=30)
        emulator.send_text(hung_tg, "/start")
        await link_on_zalo(emulator, zalo, lan_tg, choose=False)

        # Bình submits on Zalo; the requests go out on Telegram, through the same process.
        await answer(zalo, BINH_ZALO, f"/guiduyet {ids['draft']}")
        request = await emulator.wait_for_message(
            lan_tg, lambda m: BODY in m.data.get("text", ""), timeout=20
        )
        await emulator.press_button(lan_tg, lan_tg, request.message_id, text="✅ Phê duyệt")
        again = await answer(zalo, LAN_ZALO, f"/duyet {ids['draft']}", expect="rồi")
        assert "đã cho ý kiến" in again, again
        with db.session() as s:
            votes = s.exec(select(Approval.approver_id).where(Approval.draft_id == ids["draft"]))
            assert list(votes) == [ids["lan"]]
        await emulator.wait_for_message(hung_tg, lambda m: BODY in m.data.get("text", ""))

        # Lan chooses Zalo; an alert reaches her there only, and Hùng on Telegram.
        await choose_zalo(zalo)
        await alert_reaches_lan_on_zalo_only(emulator, zalo, db, ids, lan_tg, hung_tg)

        # A flow that is on the layer reaches Zalo too.
        topics = await answer(zalo, LAN_ZALO, "/topics", expect=TOPIC)
        assert TOPIC in topics

        # Bình (on Zalo) links a Telegram account: its menu becomes a spokesperson's at once.
        shown = await answer(zalo, BINH_ZALO, "/lienket", expect="Mã liên kết")
        code = re.search(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b", shown)
        assert code is not None, shown
        binh_tg = emulator.create_user("Bình").id
        emulator.send_text(binh_tg, f"/lienket {code.group()}")
        menu = await emulator.wait_for_call(
            "setMyCommands", lambda c: str(binh_tg) in str(c.params.get("scope")), timeout=20
        )
        assert '"draft"' in str(menu.params["commands"]), menu.params


async def test_both_webhooks_share_one_port(
    emulator: TelegramEmulator, zalo: ZaloEmulator, bot_db: tuple[str, Database], tmp_path: Path
) -> None:
    """Telegram and Zalo in webhook mode: one web server takes both (and the charts); each
    refuses a post without its own secret."""
    url, _ = bot_db
    admin = emulator.create_user("Admin")
    port = free_port()
    both = {
        "telegram_token": emulator.token,
        "telegram_api_url": emulator.root_url,
        "webhook_url": f"http://127.0.0.1:{port}/telegram",
        "webhook_secret": "telegram-secret-123",
        "zalo_webhook_secret": "zalo-secret-1234",
        "admin_ids": str(admin.id),
    }
    async with zalo_bot(zalo, url, tmp_path, port=port, **both) as bot:
        await answer(zalo, LAN_ZALO, "xin chào", timeout=30)
        asked = emulator.send_text(admin.id, "/status")
        reply = await emulator.wait_for_message(admin.id, after=asked.message_id, timeout=20)
        assert "CrisisDesk" in reply.data["text"]
        async with aiohttp.ClientSession() as http:
            for path in ("/telegram", "/zalo/webhook"):
                async with http.post(f"{bot.public}{path}", json={}) as refused:
                    assert refused.status == 403
