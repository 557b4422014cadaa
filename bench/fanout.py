"""Alert fan-out at Telegram's limit: one alert to N registered people (chart + text each).

    python -m bench.fanout [--people 1000] [--replies 20] [--database URL]

The real Application (delivery job, Delivery ledger, TelegramRateLimiter) sends to the Bot API
emulator with its flood limits ON (30/s per bot, 1/s per chat with a burst of 3). Prints the number
of sends, the total time against the bound (sends ÷ 30 per second) and the number of 429s.
Target: ≤ 1.05 × the bound, zero 429s. With ``--replies N``, N people also send /help, one a
second, while the fan-out runs; prints the median and worst time to their reply (target < 1 s:
replies go ahead of the fan-out). ``--database`` takes a PostgreSQL URL (an empty schema, as in
``bench.handler_load``: every send then books its slot in the workers' shared budget); default: a
temporary SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import DELIVER_JOB_ID, build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SystemClock
from bot.config import load_settings
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from bot.services.alerts import plan_delivery
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Agency, Alert, AlertKind, Role, Subscription, Topic, User

SENDS = ("sendPhoto", "sendMessage")


def seed(db: Database, emulator: TelegramEmulator, people: int) -> int:
    now = datetime.now(UTC)
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        topic = Topic(agency_id=agency.id, name="An toàn thực phẩm", query='"ngộ độc"')
        s.add(topic)
        s.flush()
        for i in range(people):
            tg = emulator.create_user(f"Người {i}", language_code="vi" if i % 5 else "en")
            emulator.world.private_chat(tg)
            tg.started = True
            user = User(
                full_name=tg.first_name,
                role=Role.SPOKESPERSON,
                status="active",
                agency_id=agency.id,
                language=tg.language_code or "vi",
            )
            identity.add_person(s, person_ref(tg.id), user)
            s.flush()
            s.add(Subscription(user_id=user.id, topic_id=topic.id))
        alert = Alert(
            topic_id=topic.id,
            kind=AlertKind.VOLUME_BURST,
            severity="warning",
            dedupe_key="bench",
            window_start=now - timedelta(minutes=15),
            window_end=now,
            volume=12,
            baseline=1.5,
            outlets=6,
            negative_share=0.75,
            details={"terms": ["ngộ độc", "bán trú"]},
            created_at=now,
            updated_at=now,
        )
        s.add(alert)
        s.flush()
        return plan_delivery(s, alert, now, escalate_after=timedelta(minutes=15))


async def ask_help(emulator: TelegramEmulator, askers: list[int], waits: list[float]) -> None:
    """One /help a second from each asker in turn; the time to each reply into ``waits``."""
    for asker in askers:
        started = time.perf_counter()
        asked = emulator.send_text(asker, "/help")
        await emulator.wait_for_message(asker, after=asked.message_id, timeout=60)
        waits.append(time.perf_counter() - started)
        await asyncio.sleep(max(0.0, 1.0 - waits[-1]))


async def run(people: int, replies: int = 0, url: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{Path(tmp) / 'fanout.sqlite3'}"
        upgrade(url)
        db = Database.from_url(url)
        async with TelegramEmulator(flood_limits=True) as emulator:
            planned = seed(db, emulator, people)
            askers = [emulator.create_user(f"Hỏi {i}").id for i in range(replies)]
            waits: list[float] = []
            settings = load_settings(
                {
                    "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
                    "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
                    "CRISISDESK_DATA_DIR": tmp,
                    "CRISISDESK_SCAN_INTERVAL": "3600",
                }
            )
            app = build_application(settings, db, SystemClock())
            async with app:
                await app.start()
                if replies:
                    assert app.updater is not None
                    await app.updater.start_polling(poll_interval=0, timeout=1)
                assert app.job_queue is not None
                started = time.perf_counter()
                job = app.job_queue.scheduler.get_job(DELIVER_JOB_ID)
                assert job is not None
                job.modify(next_run_time=datetime.now(UTC))
                asking = asyncio.create_task(ask_help(emulator, askers, waits))
                await emulator.wait_for(
                    lambda: (
                        sum(1 for c in emulator.calls if c.method in SENDS and c.status == 200)
                        >= planned
                    ),
                    timeout=planned / 10 + 60,
                )
                elapsed = time.perf_counter() - started
                await asking
                if app.updater is not None and app.updater.running:
                    await app.updater.stop()
                await app.stop()
            calls = [c for c in emulator.calls if c.method in SENDS]
            too_many = sum(1 for c in calls if c.status == 429)
            ok = sum(1 for c in calls if c.status == 200)
            uploads = sum(
                1
                for c in calls
                if c.method == "sendPhoto"
                and c.status == 200
                and isinstance(c.params.get("photo"), dict)
            )
        db.dispose()
    bound = ok / 30
    print(f"database: {url.split(':', 1)[0]}")
    print(f"people: {people}; sends: {ok} (planned {planned}); chart uploads: {uploads}")
    print(
        f"total time: {elapsed:.1f} s; bound (sends / 30 per s): {bound:.1f} s; "
        f"ratio: {elapsed / bound:.3f} (target ≤ 1.05)"
    )
    print(f"429 responses: {too_many} (target 0)")
    if waits:
        print(
            f"/help during the fan-out: {len(waits)} replies, median "
            f"{statistics.median(waits) * 1000:.0f} ms, worst {max(waits) * 1000:.0f} ms "
            "(target < 1 s)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=0, help="/help commands during the fan-out")
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (an empty schema)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.people, args.replies, args.database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
