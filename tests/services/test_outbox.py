"""The outbox sends a part once when two workers take it at the same time.

``_reserve`` hands a pending part to whichever process asks (a dead process's part must be
sent by the next one), so a live worker whose request waits in its rate limiter can have its
part taken over by another worker. The claim right before the request leaves decides: only the
process that queued the part last may claim it. Found by the crash matrix with two workers
(``reg.phone-question``: a supervisor asked twice to verify one person). Real PTB bot over HTTP
against the emulator, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from alert_desk import make_desk
from sqlmodel import select
from telegram.ext import Application

from bot.app import build_application
from bot.channels.base import SentMessage
from bot.channels.telegram.notifier import chat_ref
from bot.clock import SimulatedClock
from bot.runtime import Runtime
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import outbox
from storage.db import Database
from storage.models import Delivery, DeliveryStatus

KEY = {"kind": "reg_review", "ref_id": 7, "part": "rv1"}
OTHER_WORKER = "queued 0123456789ab"  # another process's boot id, alive and about to send


@dataclass
class Sender:
    """The real Application on a desk, and one person to send a ledger part to."""

    app: Application[Any, Any, Any, Any, Any, Any]
    runtime: Runtime
    chat: int
    key: dict[str, Any]


@pytest.fixture
def sender(
    emulator: TelegramEmulator, db: Database, make_settings: Any, clock: SimulatedClock
) -> Sender:
    desk = make_desk(emulator, db, make_settings, clock)
    app = build_application(desk.settings, db, clock)
    lan, lan_id = desk.spokespeople[0]
    return Sender(app, app.bot_data["runtime"], lan.id, {**KEY, "user_id": lan_id})


async def test_a_part_taken_over_by_another_worker_before_its_claim_is_not_sent_twice(
    emulator: TelegramEmulator, db: Database, sender: Sender
) -> None:
    app, runtime, key = sender.app, sender.runtime, sender.key

    def taken_over() -> None:
        with db.session() as s:
            s.execute(
                sa.update(Delivery)
                .where(Delivery.kind == key["kind"], Delivery.part == key["part"])
                .values(last_error=OTHER_WORKER)
            )

    async def post() -> SentMessage:
        # Reserved by this process; while its request waits for a slot, the other worker's
        # run of the same step reserves the part for itself.
        taken_over()
        return await runtime.notifier.send_text(chat_ref(sender.chat), "Yêu cầu xác minh")

    async with app:
        sent = await outbox.send_once(runtime, **key, send=post)
    assert sent is None
    assert emulator.messages(sender.chat, from_bot=True) == []
    with db.session() as s:
        row = s.exec(select(Delivery).where(Delivery.kind == key["kind"])).one()
        # Left for the other worker to claim and send.
        assert (row.status, row.last_error, row.attempts) == (
            DeliveryStatus.PENDING,
            OTHER_WORKER,
            0,
        )


async def test_a_part_queued_by_this_worker_is_claimed_and_sent_once(
    emulator: TelegramEmulator, db: Database, sender: Sender
) -> None:
    app, runtime, key = sender.app, sender.runtime, sender.key

    async def post() -> SentMessage:
        return await runtime.notifier.send_text(chat_ref(sender.chat), "Yêu cầu xác minh")

    async with app:
        sent = await outbox.send_once(runtime, **key, send=post)
        again = await outbox.send_once(runtime, **key, send=post)
    assert sent is not None and again is None
    assert [m.text for m in emulator.messages(sender.chat, from_bot=True)] == ["Yêu cầu xác minh"]
    with db.session() as s:
        row = s.exec(select(Delivery).where(Delivery.kind == key["kind"])).one()
        assert (row.status, row.attempts) == (DeliveryStatus.SENT, 1)
