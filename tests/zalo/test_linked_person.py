"""One person, two messengers, end to end: CrisisDesk on Telegram (the real Application against
the Telegram emulator) and on Zalo (``crisisdesk run`` against the Zalo emulator) share one
database. Lan, registered on Telegram, asks for a code there with ``/lienket`` and types it on
Zalo; she chooses Zalo for alerts with ``/nhantin zalo``. An alert then reaches her on Zalo
only, while her Telegram-only colleague gets it on Telegram. Her approval given on Zalo and
again by button on Telegram counts once: the statement still needs her colleague's.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from emulator_fixtures import running_app
from linked_people import (
    BINH_ZALO,
    BODY,
    LAN_ZALO,
    alert_reaches_lan_on_zalo_only,
    link_on_zalo,
    seed,
)
from sqlmodel import select
from zalo_support import answer, zalo_bot

from bot.app import build_application
from bot.channels.refs import PersonRef
from bot.clock import SystemClock
from bot.runtime import Runtime
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.zalo_emulator import ZaloEmulator
from bot.services import approvals as ap
from bot.services import identity
from bot.services.people import actor_for
from storage.db import Database
from storage.models import (
    Approval,
    Draft,
    DraftStatus,
)


async def request_on_telegram(runtime: Runtime, draft_id: int, binh: PersonRef) -> None:
    """Bình submits his statement (the press of his Submit button): the requests with their
    buttons reach the approvers on Telegram, through the Telegram app's runtime."""

    def submitted() -> ap.Submitted:
        with runtime.db.session() as s:
            draft = s.get(Draft, draft_id)
            assert draft is not None
            actor = actor_for(s, runtime.settings, binh)
            return ap.submit(s, draft, actor, runtime.clock.now(), timedelta(minutes=30))

    assert await ap.send_requests(runtime, await asyncio.to_thread(submitted)) == []


async def test_a_linked_person_gets_alerts_where_chosen_and_votes_once(
    emulator: TelegramEmulator,
    zalo: ZaloEmulator,
    bot_db: tuple[str, Database],
    make_settings: Any,
    tmp_path: Path,
) -> None:
    url, db = bot_db
    lan_tg, hung_tg = emulator.create_user("Lan").id, emulator.create_user("Hùng").id
    ids = seed(db, lan_tg, hung_tg)
    settings = make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_DATABASE_URL": url,
            "CRISISDESK_SCAN_INTERVAL": "3600",
            "CRISISDESK_HTTP_PORT": "0",
        }
    )
    app = build_application(settings, db, SystemClock())
    (tmp_path / "zalo").mkdir()
    async with running_app(app), zalo_bot(zalo, url, tmp_path / "zalo"):
        for account in (LAN_ZALO, BINH_ZALO):  # the bot writes only to who wrote first
            await answer(zalo, account, "xin chào", timeout=30)
        emulator.send_text(hung_tg, "/start")
        await link_on_zalo(emulator, zalo, lan_tg)
        with db.session() as s:
            assert identity.person_for(s, PersonRef("zalo", LAN_ZALO)) is not None

        await alert_reaches_lan_on_zalo_only(emulator, zalo, db, ids, lan_tg, hung_tg)

        # Her approval on Zalo, and again by button on Telegram: one vote.
        await request_on_telegram(
            app.bot_data["runtime"], ids["draft"], PersonRef("zalo", BINH_ZALO)
        )
        recorded = await answer(zalo, LAN_ZALO, f"/duyet {ids['draft']}")
        assert recorded == "Đã ghi nhận ý kiến của anh/chị."
        request = await emulator.wait_for_message(lan_tg, lambda m: BODY in m.data.get("text", ""))
        toast = await emulator.press_button(lan_tg, lan_tg, request.message_id, text="✅ Phê duyệt")
        assert toast["text"] == "Bạn đã cho ý kiến về bản 1 rồi."
        with db.session() as s:
            votes = s.exec(select(Approval.approver_id).where(Approval.draft_id == ids["draft"]))
            assert list(votes) == [ids["lan"]]
            draft = s.get(Draft, ids["draft"])
            assert draft is not None and draft.status == DraftStatus.SUBMITTED  # needs two people
        theirs = await emulator.wait_for_message(hung_tg, lambda m: BODY in m.data.get("text", ""))
        await emulator.press_button(hung_tg, hung_tg, theirs.message_id, text="✅ Phê duyệt")
        with db.session() as s:
            draft = s.get(Draft, ids["draft"])
            assert draft is not None and draft.status in (
                DraftStatus.APPROVED,
                DraftStatus.PUBLISHED,
            )
