"""A busy SQLite database is waited on, never half-applied after messages went out.

Another connection holds SQLite's write lock longer than the busy timeout. The first write of
a unit of work used to fail with "database is locked" after the busy timeout: for the alert
fan-out that write is the "sent" mark after the message went out, so the next run sent it
again (36 of 40 people got a duplicate while a writer held the lock for 15 s). The busy timeout
is shortened here (0.2 s) so the test holds the lock for a second, not for 15.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

from alert_desk import Desk
from sqlmodel import select

from bot.app import build_application
from bot.channels.base import SentMessage
from bot.channels.telegram.notifier import chat_ref
from bot.services import outbox
from bot.services.alerts import plan_delivery
from bot.services.delivery import deliver_pending
from storage.db import Database, make_engine
from storage.models import Alert, Delivery, DeliveryStatus, Setting

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
HOLD_S = 1.2
BUSY_MS = 200


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> threading.Thread:
    """Another process's writer: takes SQLite's write lock and keeps it ``seconds``."""

    def hold() -> None:
        conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS holder (x INTEGER)")
            held.set()
            time.sleep(seconds)
            conn.execute("COMMIT")
        finally:
            conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(5)
    return thread


def _path(db: Database) -> str:
    database = db.engine.url.database
    assert database
    return database


def test_a_write_waits_for_a_lock_held_longer_than_the_busy_timeout(sqlite_db: Database) -> None:
    db = Database(make_engine(str(sqlite_db.engine.url), busy_timeout_ms=BUSY_MS))
    holder = _hold_write_lock(_path(db), HOLD_S, threading.Event())
    started = time.monotonic()
    with db.session() as s:
        s.add(Setting(key="k", value={"v": 1}, updated_at=NOW))
    waited = time.monotonic() - started
    holder.join()
    assert waited >= HOLD_S * 0.8  # it waited the holder out (several busy timeouts)
    with db.session() as s:
        assert s.get(Setting, "k") is not None
    db.dispose()


async def test_alert_fan_out_under_a_held_lock_sends_each_message_once(desk: Desk) -> None:
    db = Database(make_engine(str(desk.db.engine.url), busy_timeout_ms=BUSY_MS))
    alert_id = desk.add_alert()
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        planned = plan_delivery(s, alert, desk.clock.now(), escalate_after=timedelta(minutes=15))
    assert planned == 6
    app = build_application(desk.settings, db, desk.clock)
    runtime = app.bot_data["runtime"]
    async with app:  # initialised, not polling: the delivery job is called by hand
        holder = _hold_write_lock(_path(db), HOLD_S, threading.Event())
        try:
            await deliver_pending(runtime)
        finally:
            holder.join()
        await deliver_pending(runtime)  # what the next run (or a restart) would do
    for tg, _uid in desk.spokespeople:
        got = desk.emulator.messages(tg.id, from_bot=True)
        photos = [m for m in got if "photo" in m.data]
        texts = [m for m in got if "photo" not in m.data]
        assert (len(photos), len(texts)) == (1, 1), (tg.id, [m.data for m in got])
    with db.session() as s:
        rows = s.exec(select(Delivery)).all()
        assert {r.status for r in rows} == {DeliveryStatus.SENT}
    db.dispose()


async def test_an_outbox_send_under_a_held_lock_is_sent_and_recorded_once(desk: Desk) -> None:
    """A room post (or any outbox message) whose claim meets another writer's lock: it waits,
    goes out once and is recorded ``sent``. Before, the claim failed after one busy timeout
    with "database is locked", the publication's due row failed after its earlier parts had
    gone out, and the part stayed queued by this process, never sent by its retry."""
    db = Database(make_engine(str(desk.db.engine.url), busy_timeout_ms=BUSY_MS))
    app = build_application(desk.settings, db, desk.clock)
    runtime = app.bot_data["runtime"]
    lan, lan_id = desk.spokespeople[0]
    key = {"kind": "draft.publish", "ref_id": 1, "user_id": lan_id, "part": "text:1"}
    holders: list[threading.Thread] = []

    async def post() -> SentMessage:
        # The part is reserved; another writer takes the lock while its request is on its way.
        holders.append(_hold_write_lock(_path(db), HOLD_S, threading.Event()))
        return await runtime.notifier.send_text(chat_ref(lan.id), "Thông cáo, phần 1")

    async with app:
        try:
            sent = await outbox.send_once(runtime, **key, send=post)
        finally:
            for holder in holders:
                holder.join()
        again = await outbox.send_once(runtime, **key, send=post)  # a due row run again
    assert sent is not None and again is None
    got = [m.text for m in desk.emulator.messages(lan.id, from_bot=True)]
    assert got == ["Thông cáo, phần 1"]
    with db.session() as s:
        row = s.exec(select(Delivery).where(Delivery.kind == "draft.publish")).one()
        assert (row.status, row.message_id) == (DeliveryStatus.SENT, str(sent.message_id))
    db.dispose()
