"""``crisisdesk sandbox``: the whole CrisisDesk on loopback, with no token and no set-up.

One :class:`Sandbox` starts, in one event loop:

* the Telegram Bot API emulator (its clock is the news day's simulated clock);
* the feed server replaying the bundled news day (:mod:`bot.sandbox.feeds`);
* the real bot — ``bot.app.build_application`` with ``TELEGRAM_API_URL`` pointing at the emulator
  and a :class:`~bot.clock.SimulatedClock` at the news-day speed — polling, with its tick job and
  a scan job (run_scan + trend detection) on the JobQueue;
* the Zalo emulator, and Zalo served by the same bot (:mod:`bot.sandbox.zalo_side`: as
  ``crisisdesk run`` with both tokens, one runtime for both messengers);
* the web page (:mod:`bot.sandbox.web`).

It always uses its own SQLite database in a temporary directory, or in ``--data DIR`` (kept);
``CRISISDESK_DATABASE_URL`` and ``CRISISDESK_CONFIG`` are ignored on purpose: a sandbox must never
write into a real deployment's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlmodel import select
from telegram import Update
from telegram.ext import Application, ContextTypes

from bot.channels.zalo.app import ZaloSide
from bot.clock import SimulatedClock
from bot.config import Settings, load_settings
from bot.sandbox import personas
from bot.sandbox.feeds import feed_app
from bot.sandbox.newsday import OUTLETS, NewsDay, NewsItem
from bot.sandbox.serving import serve
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.zalo_emulator import ZaloEmulator
from bot.sandbox.zalo_side import ZALO_TOKEN, chart_key, charts_route
from storage.db import Database, sqlite_url
from storage.models import Article, Source, Topic

log = logging.getLogger(__name__)

TOKEN = "777000:SANDBOX"
BOT_USERNAME = "crisisdesk_sandbox_bot"
DEFAULT_SPEED = 144.0  # a 24-hour news day in 10 minutes
SCAN_JOB_ID = "scan"
META_FILE = "sandbox.json"

TOPICS: tuple[dict[str, str], ...] = (
    {
        "agency": personas.AGENCY_CODE,
        "name": "An toàn thực phẩm",
        "query": '"ngộ độc" OR "an toàn thực phẩm" OR "vệ sinh thực phẩm" OR "bếp ăn"',
        "sensitivity": "high",
    },
    {
        "agency": personas.AGENCY_CODE,
        "name": "Vắc-xin",
        "query": '("vắc-xin" OR vaccine OR "tiêm chủng") AND NOT "thú y"',
        "sensitivity": "medium",
    },
    {
        "agency": personas.AGENCY_CODE,
        "name": "Dịch bệnh",
        "query": 'covid OR "dịch bệnh" OR "sốt xuất huyết" OR "ca mắc"',
        "sensitivity": "low",
    },
)


@dataclass
class SandboxOptions:
    data_dir: Path | None = None  # None: a temporary directory, deleted on stop
    port: int = 8080  # the web page; 0 picks a free port
    port_fallback: bool = False  # when ``port`` is taken, use a free one instead of failing
    host: str = "127.0.0.1"
    speed: float = DEFAULT_SPEED
    drill: bool = False
    day: date | None = None  # the news day's calendar date (default: today in Hà Nội)
    scan_seconds: float = 3.0  # real seconds between scans
    tick_seconds: float = 1.0
    log_level: str = "WARNING"


@dataclass
class Sandbox:
    """Everything the sandbox runs; ``await start()`` then ``await stop()``."""

    options: SandboxOptions
    newsday: NewsDay = field(init=False)
    clock: SimulatedClock = field(init=False)
    emulator: TelegramEmulator = field(init=False)
    settings: Settings = field(init=False)
    db: Database = field(init=False)
    application: Application = field(init=False)  # type: ignore[type-arg,unused-ignore]
    chats: personas.SandboxChats = field(init=False)
    zalo_emulator: ZaloEmulator = field(init=False)
    zalo: ZaloSide | None = None  # Zalo's part of the bot, while the world runs
    data_dir: Path = field(init=False)
    url: str = ""
    feeds_url: str = ""
    scans: int = 0
    last_scan_error: str | None = None
    custom_personas: list[int] = field(default_factory=list)  # people created on the page
    resume_speed: float = 0.0  # the speed to resume at after a pause
    drill_done: set[str] = field(default_factory=set)  # drill steps met so far
    drill_waiting: bool = False  # a drill's news day holds at its start until the trainee is ready
    pokes: int = 0  # bumped by page actions that change no emulator state (the clock)
    _temporary: bool = False
    _runners: list[web.AppRunner] = field(default_factory=list)
    _feeds_runner: web.AppRunner | None = None
    _started: bool = False
    _zalo_seeded: list[personas.ZaloPersona] = field(default_factory=list)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Start every part and return the page's address."""
        opts = self.options
        if opts.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="crisisdesk-sandbox-"))
            self._temporary = True
        else:
            self.data_dir = opts.data_dir.resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._start_world()

        from bot.sandbox.web import page_app

        try:
            self.url = await self._serve(page_app(self), opts.port) + "/"
        except OSError:
            if not opts.port_fallback:
                raise
            self.url = await self._serve(page_app(self), 0) + "/"
        return self.url

    async def _start_world(self) -> None:
        """Everything but the page: the clock, the emulator, the feeds, the database, the bot."""
        opts = self.options
        meta = self._read_meta()
        day = opts.day or (date.fromisoformat(meta["day"]) if "day" in meta else None)
        self.newsday = NewsDay.load(day)
        start_at = datetime.fromisoformat(meta["now"]) if "now" in meta else self.newsday.start
        # A new drill holds the news day still until the trainee is ready (see ``drill_go``):
        # otherwise the alert can go out before they follow the topic.
        self.drill_waiting = opts.drill and "now" not in meta and opts.speed > 0
        self.resume_speed = opts.speed if self.drill_waiting else self.resume_speed
        self.clock = SimulatedClock(start_at, speed=0 if self.drill_waiting else opts.speed)

        self.emulator = TelegramEmulator(
            TOKEN,
            bot_username=BOT_USERNAME,
            bot_first_name="CrisisDesk",
            flood_limits=False,  # a paused clock would freeze the windows; the page is for people
            now=lambda: self.clock.now().timestamp(),
            host=opts.host,
        )
        await self.emulator.start()
        self.zalo_emulator = ZaloEmulator(
            ZALO_TOKEN, now=lambda: self.clock.now().timestamp(), host=opts.host
        )
        await self.zalo_emulator.start()
        key = chart_key()
        feeds = feed_app(self.newsday, self.clock)
        feeds.router.add_routes([charts_route(self.data_dir, key)])  # Zalo fetches charts here
        self.feeds_url = await self._serve(feeds, 0)
        self._feeds_runner = self._runners.pop()  # restarted with the world, not with the page
        self.chats = personas.seed_emulator(self.emulator)
        self.settings = self._make_settings(key)

        from storage.sync import prepare_database

        self.db = await asyncio.to_thread(prepare_database, self.settings)
        await asyncio.to_thread(self._seed_database)
        self._write_meta()

        self.zalo = ZaloSide(self.settings, self.db)
        self.application = self._build_application(self.zalo)
        await self.application.initialize()
        await self.application.start()
        assert self.application.updater is not None
        await self.application.updater.start_polling(
            poll_interval=0, timeout=10, allowed_updates=Update.ALL_TYPES
        )
        self._started = True
        # Promote the bot where it works, now that it polls (it sees my_chat_member).
        personas.add_bot_everywhere(self.emulator, self.chats)
        await self.zalo.start(self.application.bot_data["runtime"])  # its receiver
        for zalo_persona in self._zalo_seeded:  # they wrote to the bot before
            self.zalo_emulator.add_person(zalo_persona.zalo_id, zalo_persona.full_name)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._write_meta()
        await self._stop_world()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    async def _stop_world(self) -> None:
        if self.zalo is not None:
            await self.zalo.stop()
            self.zalo = None
        if self._started:
            updater = self.application.updater
            if updater is not None and updater.running:
                await updater.stop()
            if self.application.running:
                await self.application.stop()
            await self.application.shutdown()
            self._started = False
        if self._feeds_runner is not None:
            await self._feeds_runner.cleanup()
            self._feeds_runner = None
        if hasattr(self, "emulator"):
            await self.emulator.stop()
        if hasattr(self, "zalo_emulator"):  # kept (stopped) until the next start: the page reads it
            await self.zalo_emulator.stop()
        if hasattr(self, "db"):
            self.db.dispose()

    async def reset(self) -> None:
        """Start over from the page: a fresh database, chats and news day, the page kept open.

        A drill that went wrong (or a trainer's next trainee) needs no restart of the process.
        """
        await self._stop_world()
        for path in self.data_dir.glob(self.database_path.name + "*"):
            path.unlink()
        (self.data_dir / META_FILE).unlink(missing_ok=True)
        self.drill_done.clear()
        self.custom_personas.clear()
        self.scans = 0
        self.last_scan_error = None
        await self._start_world()
        self.pokes += 1

    def drill_go(self) -> None:
        """The trainee is ready: let the drill's news day run (at the speed it was started with)."""
        if self.drill_waiting:
            self.drill_waiting = False
            self.clock.set_speed(self.resume_speed or self.options.speed)
            self.pokes += 1

    async def _serve(self, app: web.Application, port: int) -> str:
        runner, bound = await serve(app, self.options.host, port)
        self._runners.append(runner)
        return f"http://{self.options.host}:{bound}"

    # ------------------------------------------------------------------ configuration

    @property
    def database_path(self) -> Path:
        return self.data_dir / "crisisdesk.sqlite3"

    def feed_url(self, outlet: str) -> str:
        return f"{self.feeds_url}/feeds/{outlet}.rss"

    def _make_settings(self, chart_key: str) -> Settings:
        """Settings from nothing but the sandbox's own values (the environment is ignored): both
        messengers' tokens and emulators, charts for Zalo signed with ``chart_key`` and served
        by the feed server."""
        level = os.environ.get("CRISISDESK_LOG_LEVEL", self.options.log_level).upper()
        return load_settings(
            {},
            telegram_token=TOKEN,
            telegram_api_url=self.emulator.root_url,
            zalo_token=ZALO_TOKEN,
            zalo_api_url=self.zalo_emulator.bot_api_url,
            zalo_public_url=self.feeds_url,
            zalo_chart_key=chart_key,
            data_dir=self.data_dir,
            database_url=sqlite_url(self.data_dir),
            admin_ids=[
                str(personas.PERSONA_BY_KEY["admin"].user_id),
                personas.ZALO_PERSONA_BY_KEY["zalo_admin"].page_id,
            ],
            hub_chat_id=self.chats.hub_id,
            allow_private_feeds=True,
            tick_seconds=self.options.tick_seconds,
            scan_interval=max(10, int(self.options.scan_seconds * max(self.options.speed, 1))),
            log_level=level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "WARNING",
            agencies=[
                {
                    "code": personas.AGENCY_CODE,
                    "name": personas.AGENCY_NAME,
                    "hub_chat_id": self.chats.hub_id,
                    "deadline_hours": 24,
                    "approvals_required": 1,
                    "public_channel": f"@{personas.PUBLIC_CHANNEL}",
                }
            ],
            topics=list(TOPICS),
            sources=[
                {"name": outlet.name, "outlet": outlet.name, "url": self.feed_url(outlet.slug)}
                for outlet in OUTLETS
            ],
        )

    def _read_meta(self) -> dict[str, Any]:
        path = self.data_dir / META_FILE
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_meta(self) -> None:
        meta = {"day": self.newsday.day.isoformat(), "now": self.clock.now().isoformat()}
        (self.data_dir / META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    # ------------------------------------------------------------------ seeding

    def _seed_database(self) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            seeded = personas.seed_database(session, drill=self.options.drill, now=now)
        for persona in seeded:
            personas.mark_started(self.emulator, persona)
        with self.db.session() as session:
            self._zalo_seeded = personas.seed_zalo_database(
                session, drill=self.options.drill, now=now
            )
        with self.db.session() as session:
            has_articles = session.exec(select(Article.id).limit(1)).first() is not None
        if not has_articles:
            seed_history(self.db, self.newsday)
            # The watch begins with the news day: this first detection judges only its start
            # and records it, so a trainer's jump of hours is judged bucket by bucket, as the
            # bot judges the hours of an outage (scanner.trends.catch_up).
            from scanner.trends import run_detection

            run_detection(self.db, self.newsday.start, tz=self.settings.tz)

    # ------------------------------------------------------------------ the bot

    def _build_application(self, zalo: ZaloSide) -> Application:  # type: ignore[type-arg,unused-ignore]
        """The bot, serving Telegram and (through ``zalo``'s notifier) Zalo."""
        from bot.app import build_application

        application = build_application(
            self.settings, self.db, self.clock, also={zalo.notifier.channel: zalo.notifier}
        )
        job_queue = application.job_queue
        assert job_queue is not None
        # The bot's own scan job runs every SCAN_INTERVAL real seconds; on a compressed day it
        # must run every few real seconds, so the sandbox schedules it under the same id.
        for job in job_queue.get_jobs_by_name(SCAN_JOB_ID):
            job.schedule_removal()
        job_queue.run_repeating(
            self._scan_job,
            interval=self.options.scan_seconds,
            first=0.5,
            name=SCAN_JOB_ID,
            job_kwargs={
                "id": f"sandbox-{SCAN_JOB_ID}",
                "coalesce": True,
                "max_instances": 1,
                "replace_existing": True,
                "misfire_grace_time": None,
            },
        )
        return application

    async def _scan_job(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The bot's scan job (scan, detect, plan alert deliveries), counted for the page."""
        import bot.app

        scan_job = getattr(bot.app, "scan_job", None)
        try:
            if scan_job is not None:
                await scan_job(context)
            else:  # a bot without alert delivery: scan and detect, as the live scan does
                from scanner.pipeline import run_scan
                from scanner.trends import run_detection

                await run_scan(self.db, self.settings, self.clock)
                await asyncio.to_thread(
                    run_detection, self.db, self.clock.now(), tz=self.settings.tz
                )
        except Exception as exc:  # the sandbox keeps going; the page shows the problem
            log.exception("sandbox scan failed")
            self.last_scan_error = f"{type(exc).__name__}: {exc}"
            return
        self.scans += 1
        self.last_scan_error = None

    def scan_soon(self) -> None:
        """Run the scan job now (after the clock jumps) instead of at its next interval."""
        from datetime import UTC

        job_queue = self.application.job_queue
        assert job_queue is not None
        for job in job_queue.get_jobs_by_name(SCAN_JOB_ID):
            job.job.modify(next_run_time=datetime.now(UTC))


def seed_history(db: Database, newsday: NewsDay) -> int:
    """Store the fourteen days before the news day through the scanner's own Processor (dedupe,
    topic matching, sentiment), day by day, then count the topic series: the seasonal baselines
    the trend detectors compare the news day against. Returns the number of articles stored."""
    from scanner.parse import FeedItem
    from scanner.pipeline import Incoming, Processor, load_topics
    from scanner.series import rebuild_buckets

    items = newsday.history()
    if not items:
        return 0
    by_day: dict[int, list[NewsItem]] = defaultdict(list)
    for item in items:
        by_day[item.minute // 1440].append(item)
    stored = 0
    with db.session() as session:
        sources = {s.outlet: s.id for s in session.exec(select(Source)).all()}
        names = {outlet.slug: outlet.name for outlet in OUTLETS}
        processor = Processor(load_topics(session))
        for day_index in sorted(by_day):
            batch = by_day[day_index]
            now = max(newsday.published_at(item) for item in batch) + timedelta(minutes=5)
            incoming = [
                Incoming(
                    FeedItem(
                        title=item.title,
                        url=item.link("http://sandbox.invalid"),
                        summary=item.lead,
                        published_at=newsday.published_at(item),
                        guid=item.id,
                    ),
                    names[item.outlet],
                    sources.get(names[item.outlet]),
                )
                for item in batch
            ]
            stored += len(processor.process(session, incoming, now).articles)
        topics = list(session.exec(select(Topic)).all())
        rebuild_buckets(
            session, newsday.history_start, newsday.start, [t.id for t in topics if t.id]
        )
        # The fourteen days stand for scans that happened: the topics and sources were watched
        # since then, so a topic the history never mentions has fourteen days of real zeros
        # (scanner.series.history_starts), not a history that starts this morning.
        watched: list[Topic | Source] = [*topics, *session.exec(select(Source)).all()]
        for row in watched:
            row.created_at = min(row.created_at, newsday.history_start)
            session.add(row)
    return stored


async def run_sandbox(options: SandboxOptions, *, open_browser: bool = False) -> None:
    """Start, print the address, serve until Ctrl-C or SIGTERM, stop (and remove a temporary
    data folder either way)."""
    # A compressed day makes APScheduler narrate every coalesced run, and the scan (every few
    # real seconds, paused or not) its counts; only problems matter here, unless asked (DEBUG).
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for chatty in ("scanner.pipeline", "bot.services.scanning"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)  # `kill`, a service manager
    sandbox = Sandbox(options)
    try:
        url = await sandbox.start()
        print(f"CrisisDesk sandbox: {url}", flush=True)
        print(
            f"  news day {sandbox.newsday.day:%d/%m/%Y}, clock ×{options.speed:g}, "
            f"data in {sandbox.data_dir}{' (temporary)' if sandbox._temporary else ''}"
            f"{', guided drill' if options.drill else ''}. Ctrl-C stops.",
            flush=True,
        )
        if open_browser:
            import webbrowser

            with contextlib.suppress(Exception):
                webbrowser.open(url)
        await stop.wait()
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)
        await sandbox.stop()


def can_open_browser() -> bool:
    """Only where someone is looking: a desktop session (not CI, not a headless server)."""
    import sys

    if os.environ.get("CI"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
