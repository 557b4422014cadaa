"""Mixed commands and button presses at a steady rate, one crisis room kept at its message cap.

    python -m bench.handler_load [--rate 20] [--people 100] [--seconds 20] [--database URL]
                                 [--workers N] [--mode mixed|busy] [--fanout 1000] [--items 10000]

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

``--mode busy`` is the issue's second mode: the people only send commands that need a reply
(/help, at ``--rate`` per second; keep it within Telegram's ~30 messages a second per bot) while
one alert fans out to ``--fanout`` people (chart and text each) and a scan takes ``--items`` new
items from a local feed server (20 feeds on loopback, as outlets publish). Both start when the
load starts: the alert's deliveries are planned then (the delivery job takes them within 5 s)
and the items appear on the feeds then (the scan job runs every 10 s). Prints the reply
percentiles, how far the fan-out got and when it finished, and when the scan had stored the
items. Goal: p95 < 1 s to the first reply.
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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from sqlalchemy import func
from sqlmodel import select

from bench.fanout import SENDS
from bench.fanout import seed as seed_fanout
from bench.workers import Front, Worker, serve_front, serve_on_loopback
from bot.app import build_application, favour_the_event_loop
from bot.clock import SystemClock
from bot.config import load_settings
from bot.sandbox.telegram_emulator import TelegramEmulator
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Article, Source

FEEDS = 20
BUSY_SCAN_SECONDS = "10"  # the smallest scan interval the settings accept
FRAMES = (
    "Cháy xưởng {kind} ở khu công nghiệp {place}, {n} công nhân thoát nạn",
    "Xe khách lật trên đèo {place}, {n} người bị thương",
    "Trường {place} cho {n} học sinh nghỉ học vì ngập",
    "{place}: phát hiện {n} tấn thực phẩm bẩn trong kho lạnh",
    "Giá {kind} tại {place} tăng {n}% sau bão",
)
KINDS = ("gỗ", "may mặc", "nhựa", "giấy", "rau", "thịt lợn", "xăng", "điện")
PLACES = (
    "Yên Bình",
    "Lục Yên",
    "Hoàng Mai",
    "Thủ Đức",
    "Ninh Kiều",
    "Sơn Trà",
    "Lê Chân",
    "Bắc Ninh",
)


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


class _Replies:
    """Notices each asked command's first reply with one watcher reading the new Bot API calls.

    A ``wait_for_message`` per command re-read its chat on every change of the emulator: with
    thousands of replies queued at 200 updates a second that was O(waiting × changes) on the
    event loop the bot shares, and the bench's own cost showed in the bot's figures."""

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emulator = emulator
        self._seen = 0
        self._waiting: dict[int, list[tuple[int, asyncio.Future[None]]]] = {}

    def expect(self, chat: int, after: int) -> asyncio.Future[None]:
        """Done when the bot's first message in ``chat`` with an id above ``after`` is sent."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(chat, []).append((after, future))
        return future

    async def watch(self) -> None:
        calls = self.emulator.calls
        while True:
            await self.emulator.wait_for(lambda: len(calls) > self._seen, timeout=3600)
            new, self._seen = calls[self._seen :], len(calls)
            for call in new:
                if call.method not in SENDS or call.status != 200:
                    continue
                chat, message = int(call.result["chat"]["id"]), int(call.result["message_id"])
                still = []
                for after, future in self._waiting.pop(chat, []):
                    if message > after and not future.done():
                        future.set_result(None)
                    elif not future.done():
                        still.append((after, future))
                if still:
                    self._waiting[chat] = still


async def _ask(
    emulator: TelegramEmulator,
    replies: _Replies,
    user: int,
    out: list[float],
    asked_at: list[float] | None = None,
) -> bool:
    """/help, and the time to the first reply into ``out`` (and when it was asked, as
    ``time.perf_counter``, into ``asked_at``)."""
    started = time.perf_counter()
    asked = emulator.send_text(user, "/help")
    try:
        await asyncio.wait_for(replies.expect(user, asked.message_id), 30)
    except TimeoutError:
        return False
    out.append(time.perf_counter() - started)
    if asked_at is not None:
        asked_at.append(started)
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
    emulator: TelegramEmulator, db: Database, data: Path, admins: list[int], **extra: str
) -> AsyncIterator[None]:
    """One Application in this process, long polling the emulator; ``extra`` settings by
    their lower-case names (as ``Worker`` takes them)."""
    settings = load_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_DATA_DIR": str(data),
            "CRISISDESK_ADMIN_IDS": ",".join(map(str, admins)),
            "CRISISDESK_SCAN_INTERVAL": "3600",
            "CRISISDESK_TICK_SECONDS": "1",
            **{f"CRISISDESK_{k.upper()}": v for k, v in extra.items()},
        }
    )
    favour_the_event_loop()  # as ``crisisdesk run`` does
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
    emulator: TelegramEmulator,
    url: str,
    data: Path,
    admins: list[int],
    count: int,
    polling: bool = False,
    **extra: str,
) -> AsyncIterator[list[Worker]]:
    """``count`` webhook workers behind a round-robin front; ``polling``: one worker that
    long-polls the emulator, with no front."""
    workers = [
        Worker(
            f"w{i}",
            url,
            emulator,
            data,
            admin_ids=",".join(map(str, admins)),
            tick_seconds="1",
            **extra,
        )
        for i in range(count)
    ]
    async with contextlib.AsyncExitStack() as stack:
        front_url: str | None = None
        if not polling:
            front = Front([w.hook_port for w in workers], parallel=True)  # as Telegram's
            front_url = await stack.enter_async_context(serve_front(front))
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


class _Feeds:
    """``FEEDS`` RSS feeds on loopback; empty until ``publish`` fills them."""

    def __init__(self) -> None:
        self.bodies = [self._rss([]) for _ in range(FEEDS)]

    @staticmethod
    def _rss(entries: list[str]) -> bytes:
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
            f"<link>https://x.vn</link><description>x</description>{''.join(entries)}"
            "</channel></rss>"
        ).encode()

    def publish(self, items: int) -> None:
        """``items`` distinct stories spread over the feeds, published in the last hour."""
        now = time.time()
        per_feed: list[list[str]] = [[] for _ in range(FEEDS)]
        for i in range(items):
            title = FRAMES[i % len(FRAMES)].format(
                kind=KINDS[i % len(KINDS)], place=PLACES[(i // 7) % len(PLACES)], n=i
            )
            stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(now - i % 3600))
            per_feed[i % FEEDS].append(
                f"<item><title>{title}</title><link>https://tin.vn/{i}</link>"
                f"<description>{title}. Chính quyền đang xác minh.</description>"
                f"<pubDate>{stamp}</pubDate></item>"
            )
        self.bodies = [self._rss(entries) for entries in per_feed]

    async def handle(self, request: web.Request) -> web.Response:
        body = self.bodies[int(request.match_info["index"])]
        return web.Response(body=body, content_type="application/rss+xml")


@contextlib.asynccontextmanager
async def _feed_server(feeds: _Feeds) -> AsyncIterator[str]:
    server = web.Application()
    server.router.add_get("/rss/{index}.rss", feeds.handle)
    async with serve_on_loopback(server) as base:
        yield base


def _add_sources(db: Database, base: str) -> None:
    with db.session() as s:
        for i in range(FEEDS):
            s.add(Source(name=f"Tin {i}", outlet=f"Báo {i}", url=f"{base}/rss/{i}.rss"))


def _articles(db: Database) -> int:
    with db.session() as s:
        return int(s.exec(select(func.count()).select_from(Article)).one())


async def _watch_scan(db: Database, items: int, started: float, out: dict[str, float]) -> None:
    """When the scan has stored the published items (polled every 0.2 s, off the loop)."""
    while True:
        stored = await asyncio.to_thread(_articles, db)
        out["stored"] = stored
        if stored >= items:
            out["scan_done"] = time.perf_counter() - started
            return
        await asyncio.sleep(0.2)


async def _watch_fanout(
    emulator: TelegramEmulator,
    askers: set[int],
    planned: int,
    started: float,
    out: dict[str, float],
) -> None:
    """How many of the alert's messages went out (replies to the askers not counted)."""
    wanted = {str(a) for a in askers}
    while True:
        sent = sum(
            1
            for c in emulator.calls
            if c.method in SENDS and c.status == 200 and str(c.params.get("chat_id")) not in wanted
        )
        out["fanout_sent"] = sent
        if sent >= planned:
            out["fanout_done"] = time.perf_counter() - started
            return
        await asyncio.sleep(0.2)


@dataclass
class Figures:
    """What one run measured (times in seconds from the start of the load)."""

    answers: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    asked_at: list[float] = field(default_factory=list)  # busy: when each replied command went
    started: float = 0.0
    unanswered: int = 0
    too_many: int = 0
    # CPU seconds the bot used from the start of the load until every update was answered
    # (the workers' processes; in one process, the whole process, emulator and bench included).
    cpu: float = 0.0
    bench_cpu: float = 0.0  # with workers: this process's (the emulator's and the load's)
    skipped: int = 0
    busy: dict[str, float] = field(default_factory=dict)


async def _mixed_load(
    emulator: TelegramEmulator,
    admins: list[int],
    askers: list[int],
    rate: float,
    seconds: float,
    cpu: Callable[[], float],
) -> Figures:
    """Presses and commands alternating, one room at its cap (the first mode)."""
    status: dict[int, int] = {}
    for admin in admins:  # each admin's /status message, whose Refresh they press
        asked = emulator.send_text(admin, "/status")
        reply = await emulator.wait_for_message(admin, after=asked.message_id, timeout=60)
        status[admin] = reply.message_id
    stop = asyncio.Event()
    room = asyncio.create_task(_busy_room(emulator, stop))
    await asyncio.sleep(5)  # the room reaches its cap
    figures = Figures()
    tasks: list[asyncio.Task[bool]] = []
    replies = _Replies(emulator)
    watcher = asyncio.create_task(replies.watch())
    started, cpu_at_start, own_at_start = time.perf_counter(), cpu(), time.process_time()
    for i in range(int(rate * seconds)):
        if i % 2 == 0:
            admin = admins[(i // 2) % len(admins)]
            tasks.append(
                asyncio.create_task(_press(emulator, admin, status[admin], figures.answers))
            )
        else:
            asker = askers[(i // 2) % len(askers)]
            tasks.append(asyncio.create_task(_ask(emulator, replies, asker, figures.replies)))
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    figures.unanswered = (await asyncio.gather(*tasks)).count(False)
    figures.cpu = cpu() - cpu_at_start
    figures.bench_cpu = time.process_time() - own_at_start
    watcher.cancel()
    stop.set()
    await room
    return figures


async def _busy_load(
    emulator: TelegramEmulator,
    db: Database,
    feeds: _Feeds,
    askers: list[int],
    rate: float,
    seconds: float,
    planned: int,
    items: int,
) -> Figures:
    """Commands needing a reply while the alert fans out and the scan takes ``items``."""
    figures = Figures()
    started = time.perf_counter()
    feeds.publish(items)
    watchers = [
        asyncio.create_task(_watch_fanout(emulator, set(askers), planned, started, figures.busy)),
        asyncio.create_task(_watch_scan(db, items, started, figures.busy)),
    ]
    tasks: list[asyncio.Task[bool]] = []
    replies = _Replies(emulator)
    watchers.append(asyncio.create_task(replies.watch()))
    for i in range(int(rate * seconds)):
        asker = askers[i % len(askers)]
        asking = _ask(emulator, replies, asker, figures.replies, figures.asked_at)
        tasks.append(asyncio.create_task(asking))
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    figures.unanswered = (await asyncio.gather(*tasks)).count(False)
    figures.busy["load_end"] = time.perf_counter() - started
    figures.started = started
    for watcher in watchers:  # what has not finished by the end of the load is reported as such
        watcher.cancel()
    return figures


async def run(
    rate: float,
    people: int,
    seconds: float,
    url: str | None,
    data: Path,
    workers: int = 0,
    *,
    polling: bool = False,
    mode: str = "mixed",
    fanout: int = 1000,
    items: int = 10_000,
) -> Figures:
    if url is None:
        url = f"sqlite:///{data / 'load.sqlite3'}"
    upgrade(url)
    db = Database.from_url(url)
    skipped = _SkippedTicks()
    logging.getLogger("apscheduler").addHandler(skipped)
    feeds = _Feeds()
    async with contextlib.AsyncExitStack() as stack:
        emulator = await stack.enter_async_context(TelegramEmulator(flood_limits=True))
        users = [emulator.create_user(f"Người {i}", language_code="en").id for i in range(people)]
        admins, askers = users[: people // 2], users[people // 2 :]
        extra: dict[str, str] = {}
        planned = 0
        if mode == "busy":
            askers = users  # everyone asks; nobody presses
            _add_sources(db, await stack.enter_async_context(_feed_server(feeds)))
            planned = await asyncio.to_thread(seed_fanout, db, emulator, fanout)
            extra = {"scan_interval": BUSY_SCAN_SECONDS, "allow_private_feeds": "true"}
        processes: list[Worker] = []
        if workers > 0:
            processes = await stack.enter_async_context(
                _workers(emulator, url, data, admins, workers, polling, **extra)
            )
        else:
            await stack.enter_async_context(_in_process(emulator, db, data, admins, **extra))
        skipped.count = 0
        offsets = {w.name: w.log.stat().st_size for w in processes}

        def cpu() -> float:
            if processes:
                return sum(w.cpu_seconds() for w in processes)
            return time.process_time()

        if mode == "busy":
            figures = await _busy_load(emulator, db, feeds, askers, rate, seconds, planned, items)
        else:
            figures = await _mixed_load(emulator, admins, askers, rate, seconds, cpu)
        figures.skipped = _skipped_in_logs(processes, offsets) if processes else skipped.count
        figures.too_many = sum(1 for c in emulator.calls if c.status == 429)
    db.dispose()
    backend = url.split(":", 1)[0]
    print(
        f"mode: {mode}; database: {backend}; workers: {workers}"
        + (" (polling)" if polling else "")
        + f"; rate: {rate}/s for "
        f"{seconds:.0f} s; people: {people}"
    )
    if mode == "mixed":
        print(f"button answer: {len(figures.answers)} presses, {_percentiles(figures.answers)}")
        where = "the workers" if workers else "this process (emulator and bench included)"
        updates = int(rate * seconds)
        print(
            f"CPU of {where} until all were answered: {figures.cpu:.1f} s, "
            f"{figures.cpu / updates * 1000:.2f} ms per update"
            + (f" (emulator and bench: {figures.bench_cpu:.1f} s)" if workers else "")
        )
    print(f"first reply:   {len(figures.replies)} commands, {_percentiles(figures.replies)}")
    print(f"errors (unanswered): {figures.unanswered}; 429s: {figures.too_many}")
    print(f"tick runs skipped during the load: {figures.skipped}")
    if mode == "busy":
        busy = figures.busy
        print(
            f"fan-out: {busy.get('fanout_sent', 0):.0f} of {planned} sends by the end of the "
            f"load ({busy['load_end']:.0f} s); "
            + (f"all sent at {busy['fanout_done']:.1f} s" if "fanout_done" in busy else "not done")
        )
        print(
            f"scan: {busy.get('stored', 0):.0f} of {items} items stored; "
            + (f"all at {busy['scan_done']:.1f} s" if "scan_done" in busy else "not done")
        )
        if "scan_done" in busy:  # the replies to commands sent while the scan ran, and after
            done = figures.started + busy["scan_done"]
            paired = list(zip(figures.replies, figures.asked_at, strict=True))
            during = [reply for reply, at in paired if at < done]
            after = [reply for reply, at in paired if at >= done]
            print(f"first reply, asked while the scan ran: {len(during)}, {_percentiles(during)}")
            print(f"first reply, asked after the scan:     {len(after)}, {_percentiles(after)}")
    return figures


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
    parser.add_argument(
        "--polling",
        action="store_true",
        help="with --workers 1: the worker long-polls the emulator (no webhook front), so the "
        "bot has a process of its own as in a usual deployment",
    )
    parser.add_argument(
        "--mode",
        choices=("mixed", "busy"),
        default="mixed",
        help="mixed: presses and commands, one room at its cap; busy: commands during a fan-out "
        "and a scan",
    )
    parser.add_argument("--fanout", type=int, default=1000, help="busy: people the alert goes to")
    parser.add_argument("--items", type=int, default=10_000, help="busy: items the scan takes")
    args = parser.parse_args(argv)
    if args.workers > 1 and not (args.database or "").startswith("postgresql"):
        parser.error("--workers needs --database with a PostgreSQL URL")
    if args.polling and args.workers != 1:
        parser.error("--polling goes with --workers 1")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(
            run(
                args.rate,
                args.people,
                args.seconds,
                args.database,
                Path(tmp),
                args.workers,
                polling=args.polling,
                mode=args.mode,
                fanout=args.fanout,
                items=args.items,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
