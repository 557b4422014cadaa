"""Mixed commands and button presses at a steady rate, one crisis room kept at its message cap.

    python -m bench.handler_load [--rate 20] [--people 100] [--seconds 20] [--database URL]
                                 [--workers N]

A reduced version of issue 17, item 2. The real Application (concurrent updates, the
TelegramRateLimiter) polls the Bot API emulator with its flood limits ON. Half the people are
admins who first send /status, then press its Refresh button (answered, then the message is
edited); the others send /help. Updates go out at ``--rate`` per second, alternating a press and a
command; meanwhile one person sends /start into a group every second, so the bot's replies there
hit the 20-a-minute cap and its handler waits in the rate limiter the whole time. Prints
p50/p95/p99 from the update to the button answer and to the first reply message, errors (a press
not answered, a command not replied to within 30 s), and how many tick runs APScheduler skipped.
``--database`` takes a migrated-to-be PostgreSQL URL (an empty schema); default: a temporary SQLite.

``--workers N`` runs N real ``crisisdesk run`` processes in webhook mode behind a round-robin
front on loopback (``bench.workers``) instead of one Application in this process (N ≥ 2 needs
PostgreSQL: they share the database, one flood budget and one leader). Skipped ticks are then
counted in the workers' logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.workers import Front, Worker, serve_front
from bot.app import build_application
from bot.clock import SystemClock
from bot.config import load_settings
from bot.sandbox.telegram_emulator import TelegramEmulator
from storage.db import Database
from storage.migrate import upgrade


class _SkippedTicks(logging.Handler):
    """Counts APScheduler's "skipped" and "missed" lines for the tick job."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if '"tick' in message and ("skipped" in message or "missed" in message):
            self.count += 1


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1000:.0f} ms, p95 {cuts[94] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms"
    )


async def _press(emulator: TelegramEmulator, user: int, message: int, out: list[float]) -> bool:
    started = time.perf_counter()
    try:
        await emulator.press_button(user, user, message, text="Refresh", timeout=10)
    except TimeoutError:
        return False
    out.append(time.perf_counter() - started)
    return True


async def _ask(emulator: TelegramEmulator, user: int, out: list[float]) -> bool:
    started = time.perf_counter()
    asked = emulator.send_text(user, "/help")
    try:
        await emulator.wait_for_message(user, after=asked.message_id, timeout=30)
    except TimeoutError:
        return False
    out.append(time.perf_counter() - started)
    return True


async def _busy_room(emulator: TelegramEmulator, stop: asyncio.Event) -> None:
    member = emulator.create_user("Phòng", language_code="en")
    group = emulator.create_group("Phòng khủng hoảng", member_ids=[member.id])
    emulator.add_bot(group.id)
    while not stop.is_set():
        emulator.send_text(member.id, "/start", chat_id=group.id)
        await asyncio.sleep(1.0)


@contextlib.asynccontextmanager
async def _in_process(
    emulator: TelegramEmulator, db: Database, data: Path, admins: list[int]
) -> AsyncIterator[None]:
    """One Application in this process, long polling the emulator."""
    settings = load_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_DATA_DIR": str(data),
            "CRISISDESK_ADMIN_IDS": ",".join(map(str, admins)),
            "CRISISDESK_SCAN_INTERVAL": "3600",
            "CRISISDESK_TICK_SECONDS": "1",
        }
    )
    app = build_application(settings, db, SystemClock())
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield
        finally:
            await app.updater.stop()
            await app.stop()


@contextlib.asynccontextmanager
async def _workers(
    emulator: TelegramEmulator, url: str, data: Path, admins: list[int], count: int
) -> AsyncIterator[list[Worker]]:
    """``count`` webhook workers behind a round-robin front."""
    workers = [
        Worker(
            f"w{i}",
            url,
            emulator,
            data,
            admin_ids=",".join(map(str, admins)),
            tick_seconds="1",
        )
        for i in range(count)
    ]
    front = Front([w.hook_port for w in workers], parallel=True)  # as Telegram's connections
    async with serve_front(front) as front_url:
        for worker in workers:
            worker.start(front_url)
        try:
            await asyncio.gather(*(w.ready() for w in workers))
            yield workers
        finally:
            await asyncio.gather(*(w.stop() for w in workers))


def _skipped_in_logs(workers: list[Worker], offsets: dict[str, int]) -> int:
    counter = _SkippedTicks()
    for worker in workers:
        with worker.log.open("rb") as log:
            log.seek(offsets.get(worker.name, 0))
            for line in log.read().decode("utf-8", "replace").splitlines():
                counter.emit(logging.makeLogRecord({"msg": line}))
    return counter.count


async def run(
    rate: float, people: int, seconds: float, url: str | None, data: Path, workers: int = 0
) -> None:
    if url is None:
        url = f"sqlite:///{data / 'load.sqlite3'}"
    upgrade(url)
    db = Database.from_url(url)
    skipped = _SkippedTicks()
    logging.getLogger("apscheduler").addHandler(skipped)
    async with TelegramEmulator(flood_limits=True) as emulator:
        users = [emulator.create_user(f"Người {i}", language_code="en").id for i in range(people)]
        admins, askers = users[: people // 2], users[people // 2 :]
        async with contextlib.AsyncExitStack() as stack:
            processes: list[Worker] = []
            if workers > 0:
                processes = await stack.enter_async_context(
                    _workers(emulator, url, data, admins, workers)
                )
            else:
                await stack.enter_async_context(_in_process(emulator, db, data, admins))
            status: dict[int, int] = {}
            for admin in admins:  # each admin's /status message, whose Refresh they press
                asked = emulator.send_text(admin, "/status")
                reply = await emulator.wait_for_message(admin, after=asked.message_id, timeout=60)
                status[admin] = reply.message_id
            stop = asyncio.Event()
            room = asyncio.create_task(_busy_room(emulator, stop))
            await asyncio.sleep(5)  # the room reaches its cap
            skipped.count = 0
            offsets = {w.name: w.log.stat().st_size for w in processes}
            answers: list[float] = []
            replies: list[float] = []
            tasks: list[asyncio.Task[bool]] = []
            started = time.perf_counter()
            for i in range(int(rate * seconds)):
                if i % 2 == 0:
                    admin = admins[(i // 2) % len(admins)]
                    tasks.append(
                        asyncio.create_task(_press(emulator, admin, status[admin], answers))
                    )
                else:
                    asker = askers[(i // 2) % len(askers)]
                    tasks.append(asyncio.create_task(_ask(emulator, asker, replies)))
                await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
            outcomes = await asyncio.gather(*tasks)
            stop.set()
            await room
            if processes:
                skipped.count = _skipped_in_logs(processes, offsets)
        too_many = sum(1 for c in emulator.calls if c.status == 429)
    db.dispose()
    backend = url.split(":", 1)[0]
    print(
        f"database: {backend}; workers: {workers}; rate: {rate}/s for {seconds:.0f} s; "
        f"people: {people}"
    )
    print(f"button answer: {len(answers)} presses, {_percentiles(answers)}")
    print(f"first reply:   {len(replies)} commands, {_percentiles(replies)}")
    print(f"errors (unanswered): {outcomes.count(False)}; 429s: {too_many}")
    print(f"tick runs skipped during the load: {skipped.count}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="updates per second")
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (an empty schema)")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="N >= 1: crisisdesk run processes in webhook mode (N >= 2: PostgreSQL)",
    )
    args = parser.parse_args(argv)
    if args.workers > 1 and not (args.database or "").startswith("postgresql"):
        parser.error("--workers needs --database with a PostgreSQL URL")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(
            run(args.rate, args.people, args.seconds, args.database, Path(tmp), args.workers)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
