"""The outbox sends a part once when two workers take it at the same time, and tells a part
in flight at a live worker from one a dead process left.

``_reserve`` hands a pending part to whichever process asks (a dead process's part must be
sent by the next one), so a live worker whose request waits in its rate limiter can have its
part taken over by another worker. The claim right before the request leaves decides: only the
process that queued the part last may claim it. Found by the crash matrix with two workers
(``reg.phone-question``: a supervisor asked twice to verify one person). A part found
``sending`` under another process's claim is that process's while its liveness lock is held and
its lease runs (``storage.liveness``); otherwise it is in doubt. Real PTB bot over HTTP against
the emulator, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alert_desk import make_desk
from sqlmodel import col, select
from telegram.ext import Application

from bot.app import build_application
from bot.channels.base import SentMessage
from bot.channels.telegram.notifier import chat_ref
from bot.clock import SimulatedClock
from bot.runtime import Runtime
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import outbox
from bot.services.due import fire_due
from storage import liveness
from storage.db import Database
from storage.models import AuditEvent, Delivery, DeliveryStatus, Due

KEY = {"kind": "reg_review", "ref_id": 7, "part": "rv1"}
OTHER_BOOT = "0123456789ab"  # another process's boot id
OTHER_WORKER = f"queued {OTHER_BOOT}"  # that process, alive and about to send


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


def _take_over(db: Database, key: dict[str, Any]) -> None:
    """Another worker's run of the same step reserves the part for itself."""
    with db.session() as s:
        s.execute(
            sa.update(Delivery)
            .where(Delivery.kind == key["kind"], Delivery.part == key["part"])
            .values(last_error=OTHER_WORKER)
        )


def _sent_by_the_other_worker(db: Database, key: dict[str, Any]) -> None:
    with db.session() as s:
        s.execute(
            sa.update(Delivery)
            .where(Delivery.kind == key["kind"], Delivery.part == key["part"])
            .values(status=DeliveryStatus.SENT, last_error=None, message_id="99")
        )


async def test_a_part_taken_over_by_another_worker_before_its_claim_is_not_sent_twice(
    emulator: TelegramEmulator, db: Database, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "TAKEOVER_PAUSE_S", 0.2)
    app, runtime, key = sender.app, sender.runtime, sender.key

    async def post() -> SentMessage:
        # Reserved by this process; while its request waits for a slot, the other worker
        # takes the part over, and sends it while this one pauses.
        _take_over(db, key)
        asyncio.get_running_loop().call_later(0.05, _sent_by_the_other_worker, db, key)
        return await runtime.notifier.send_text(chat_ref(sender.chat), "Yêu cầu xác minh")

    async with app:
        sent = await outbox.send_once(runtime, **key, send=post)
    assert sent is None
    assert emulator.messages(sender.chat, from_bot=True) == []
    with db.session() as s:
        row = s.exec(select(Delivery).where(Delivery.kind == key["kind"])).one()
        assert (row.status, row.message_id, row.attempts) == (DeliveryStatus.SENT, "99", 0)


async def test_a_part_whose_taker_died_before_its_claim_is_sent_by_this_worker(
    emulator: TelegramEmulator, db: Database, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Left to a taker that was killed in its rate limiter, the part was lost: the step that
    owned it had been finished by this run (crash matrix, two workers, ``res.room-docx``)."""
    monkeypatch.setattr(outbox, "TAKEOVER_PAUSE_S", 0.05)
    app, runtime, key = sender.app, sender.runtime, sender.key
    calls = 0

    async def post() -> SentMessage:
        nonlocal calls
        calls += 1
        if calls == 1:
            _take_over(db, key)  # and the taker dies before its claim
        return await runtime.notifier.send_text(chat_ref(sender.chat), "Yêu cầu xác minh")

    async with app:
        sent = await outbox.send_once(runtime, **key, send=post)
    assert sent is not None
    assert [m.text for m in emulator.messages(sender.chat, from_bot=True)] == ["Yêu cầu xác minh"]
    with db.session() as s:
        row = s.exec(select(Delivery).where(Delivery.kind == key["kind"])).one()
        assert (row.status, row.attempts) == (DeliveryStatus.SENT, 1)


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


@contextmanager
def _other_process(db: Database) -> Iterator[None]:
    """Another worker is alive: it holds its liveness lock until it ends (PostgreSQL)."""
    with db.engine.connect() as connection:
        liveness.hold(connection, OTHER_BOOT)
        yield
        connection.invalidate()  # the session ends with the process, and its locks with it


def _claimed_by_the_other_process(db: Database, key: dict[str, Any], clock: SimulatedClock) -> None:
    """The other process claimed the part and its request is on its way."""
    with db.session() as s:
        s.add(
            Delivery(
                **key,
                status=outbox.SENDING,
                claimed_by=OTHER_BOOT,
                claimed_until=clock.now() + timedelta(seconds=60),
                attempts=1,
                created_at=clock.now(),
            )
        )


def _state(db: Database, key: dict[str, Any]) -> tuple[str, int, int]:
    """The part's status, its in-doubt audit events and its pending settle rows."""
    with db.session() as s:
        row = s.exec(select(Delivery).where(Delivery.kind == key["kind"])).one()
        audits = s.exec(select(AuditEvent).where(AuditEvent.action == "outbox.in_doubt")).all()
        settles = s.exec(
            select(Due).where(Due.kind == outbox.SETTLE_KIND, col(Due.done_at).is_(None))
        ).all()
        return row.status, len(audits), len(settles)


async def _post(sender: Sender) -> SentMessage:
    return await sender.runtime.notifier.send_text(chat_ref(sender.chat), "Yêu cầu xác minh")


@pytest.fixture
def claimed_elsewhere(db: Database, sender: Sender, clock: SimulatedClock) -> dict[str, Any]:
    """The part, claimed by another worker whose request is on its way (PostgreSQL: several
    workers share a database only there); its key."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("several workers share one database only on PostgreSQL")
    _claimed_by_the_other_process(db, sender.key, clock)
    return sender.key


async def _this_worker_runs_the_step(sender: Sender) -> None:
    """This worker's run of the same step, beside the claimer: it sends nothing."""
    async with sender.app:
        send = outbox.send_once(sender.runtime, **sender.key, send=lambda: _post(sender))
        assert await send is None


@pytest.mark.parametrize("claimer", ["sends it", "dies during the send"])
async def test_a_part_a_live_worker_is_sending_is_left_to_it(
    emulator: TelegramEmulator,
    db: Database,
    sender: Sender,
    clock: SimulatedClock,
    claimed_elsewhere: dict[str, Any],
    claimer: str,
) -> None:
    """Two workers on one step: the one that did not claim the part neither sends it nor calls
    it in doubt (before the liveness lock, it audited a spurious ``outbox.in_doubt``). The
    settle row at the lease's end finds the part sent, or, its claimer dead, puts it in doubt;
    nothing happens before the lease ends."""
    runtime, key = sender.runtime, claimed_elsewhere
    with _other_process(db):
        await _this_worker_runs_the_step(sender)
        assert _state(db, key) == (outbox.SENDING, 0, 1)
        if claimer == "sends it":
            _sent_by_the_other_worker(db, key)
    clock.advance(timedelta(seconds=30))
    assert await fire_due(runtime) == 0
    clock.advance(timedelta(seconds=31))
    assert await fire_due(runtime) == 1
    settled = (DeliveryStatus.SENT, 0, 0) if claimer == "sends it" else (outbox.IN_DOUBT, 1, 0)
    assert _state(db, key) == settled
    assert emulator.messages(sender.chat, from_bot=True) == []


async def test_a_part_claimed_again_is_looked_at_again_at_its_new_lease_end(
    db: Database, sender: Sender, clock: SimulatedClock, claimed_elsewhere: dict[str, Any]
) -> None:
    """The claimer's send failed and was claimed again (a new lease) before the first settle
    row fired; then it died. The first row finds the new lease and leaves one for its end."""
    runtime, key = sender.runtime, claimed_elsewhere
    with _other_process(db):
        await _this_worker_runs_the_step(sender)
        clock.advance(timedelta(seconds=40))
        with db.session() as s:  # back to pending after a 5xx, and claimed again
            s.execute(
                sa.update(Delivery)
                .where(Delivery.kind == key["kind"])
                .values(attempts=2, claimed_until=clock.now() + timedelta(seconds=60))
            )
        clock.advance(timedelta(seconds=21))
        assert await fire_due(runtime) == 1
        assert _state(db, key) == (outbox.SENDING, 0, 1)
    clock.advance(timedelta(seconds=40))
    assert await fire_due(runtime) == 1
    assert _state(db, key) == (outbox.IN_DOUBT, 1, 0)


async def test_a_live_claim_past_its_lease_is_in_doubt_at_once(
    db: Database, sender: Sender, clock: SimulatedClock, claimed_elsewhere: dict[str, Any]
) -> None:
    """Its claimer is alive but its send outlasted the lease: the outcome is unknown, as the
    alert ledger's ``uncertain``; should that claimer still mark it sent, its mark stands."""
    key = claimed_elsewhere
    clock.advance(timedelta(seconds=61))
    with _other_process(db):
        await _this_worker_runs_the_step(sender)
    assert _state(db, key) == (outbox.IN_DOUBT, 1, 0)
    with db.session() as s:
        row = s.exec(select(Delivery).where(Delivery.kind == key["kind"])).one()
        assert row.last_error == f"claimed by {OTHER_BOOT}, whose send outlasted its lease"


def test_a_part_settled_meanwhile_is_not_put_in_doubt(
    db: Database, sender: Sender, clock: SimulatedClock
) -> None:
    """The in-doubt write is conditional on the claim as it was read: a ``sent`` committed by
    the claimer between that read and this write stands, and nothing is audited."""
    key = sender.key
    _claimed_by_the_other_process(db, key, clock)
    with db.session() as s:
        stale = s.exec(select(Delivery).where(Delivery.kind == key["kind"])).one()
        _sent_by_the_other_worker(db, key)  # another session, committed
        outbox._put_in_doubt(s, stale, clock.now(), "which died during the send")
    assert _state(db, key) == (DeliveryStatus.SENT, 0, 0)


async def test_a_part_a_dead_process_claimed_is_in_doubt_at_once_and_never_sent(
    emulator: TelegramEmulator, db: Database, sender: Sender, clock: SimulatedClock
) -> None:
    """A restart after a kill during the send: the claim's lease still runs, but its process
    is gone (its liveness lock is free on PostgreSQL; on SQLite one process per file)."""
    runtime, key = sender.runtime, sender.key
    _claimed_by_the_other_process(db, key, clock)
    async with sender.app:
        assert await outbox.send_once(runtime, **key, send=lambda: _post(sender)) is None
        assert await outbox.send_once(runtime, **key, send=lambda: _post(sender)) is None
    assert _state(db, key) == (outbox.IN_DOUBT, 1, 0)
    assert emulator.messages(sender.chat, from_bot=True) == []
