"""Wiring: build the python-telegram-bot Application with CrisisDesk's runtime, handlers and jobs.

``build_application`` is used by ``crisisdesk run`` and, unchanged, by the end-to-end tests and
the sandbox (they point ``TELEGRAM_API_URL`` at the local Bot API emulator), so what is tested is
what runs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application, ContextTypes, Defaults

from bot import jobs
from bot.channels.base import Notifier
from bot.channels.ratelimit import SharedBooking, TelegramRateLimiter
from bot.channels.routing import RoutingNotifier
from bot.channels.telegram import conversation, errors, guards, membership
from bot.channels.telegram.conversation import SENDS_KEY
from bot.channels.telegram.notifier import TelegramNotifier
from bot.channels.telegram.sends import ChatSends
from bot.channels.telegram.wire import bot_request
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.flows import FLOW_MODULES as FLOW_MODULES  # every flow, on every messenger
from bot.health import serve_monitoring
from bot.lifecycle import alongside
from bot.metrics import InstrumentedApplication
from bot.polling import ConflictGuard, PollingConflict
from bot.runtime import Runtime
from bot.services import takeover
from bot.services.delivery import Charts
from bot.templating import Renderer
from bot.updates import ChatOrderedUpdateProcessor
from bot.wiring import wire
from storage import received_updates
from storage.db import Database
from storage.leader import Leadership
from storage.send_budget import SendBudget
from storage.sync import receiving

if TYPE_CHECKING:
    from bot.channels.zalo.app import ZaloSide

log = logging.getLogger(__name__)

TICK_JOB_ID = "tick"
SCAN_JOB_ID = "scan"
DELIVER_JOB_ID = "deliver"
LEADER_JOB_ID = "leader"
FORGET_JOB_ID = "forget_updates"
DELIVER_SECONDS = 5.0
FORGET_SECONDS = 3600.0
BOOKING_THREADS = 4  # send-slot bookings at once: the bulk gate's places (replies wait rarely)

# The flows are written against the conversation layer (handlers.conversation; the list is
# ``bot.flows.FLOW_MODULES``) and reach PTB through the Telegram adapter's modules with a
# ``handlers()`` function: the commands, presses and the private chat's pointer onwards
# (``conversation``), and the membership updates.
HANDLER_MODULES = (conversation, membership)


class WorkerApplication(InstrumentedApplication):
    """Gives up the leader lock when stopped: another worker takes over at its next check
    instead of when this process exits; then sends what the handlers queued (for a while)."""

    async def stop(self) -> None:
        await super().stop()
        runtime: Runtime | None = self.bot_data.get("runtime")
        if runtime is not None and runtime.leadership is not None:
            await asyncio.to_thread(runtime.leadership.release)
        sends: ChatSends | None = self.bot_data.get(SENDS_KEY)
        if sends is not None:
            await sends.drain()


async def leader_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Check (or try to take) the leader lock, in a thread: the other jobs read the result."""
    runtime: Runtime = context.bot_data["runtime"]
    if runtime.leadership is not None:
        await runtime.leadership.refresh()


async def tick_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await jobs.tick(context.bot_data["runtime"])


async def scan_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Scan, then wake the delivery job if deliveries were planned (it may be mid-run)."""
    if await jobs.scan(context.bot_data["runtime"]) and context.job_queue is not None:
        for job in context.job_queue.get_jobs_by_name(DELIVER_JOB_ID):
            job.job.modify(next_run_time=datetime.now(UTC))


async def deliver_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    assert context.job is not None and isinstance(context.job.data, Charts)
    await jobs.deliver(context.bot_data["runtime"], context.job.data)  # charts kept between runs


async def forget_updates_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The leader forgets update ids Telegram can no longer re-deliver."""
    runtime: Runtime = context.bot_data["runtime"]
    if await runtime.leading():
        forget = partial(received_updates.purge, runtime.db.engine, runtime.clock.now())
        await asyncio.to_thread(forget)


async def startup_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    jobs.startup(context.bot_data["runtime"])


def _every(seconds: float, job_id: str, first: float) -> dict[str, Any]:
    return {
        "interval": seconds,
        "first": first,
        "name": job_id,
        "job_kwargs": {
            "id": job_id,
            "coalesce": True,
            "max_instances": 1,
            "replace_existing": True,
            "misfire_grace_time": None,
        },
    }


def build_application(
    settings: Settings,
    db: Database,
    clock: Clock | None = None,
    *,
    renderer: Renderer | None = None,
    conflicts: ConflictGuard | None = None,
    also: Mapping[str, Notifier] | None = None,
) -> Application:
    """The configured Application; nothing runs until it is initialised and started.

    ``conflicts`` decides what a 409 from ``getUpdates`` (another poller on the token) does;
    ``run_bot`` passes its own to learn that polling stopped for that reason. ``also`` are the
    notifiers of further messengers this process serves (Zalo's, by channel): services then
    hold a ``RoutingNotifier`` that sends each message on its chat's channel, and the jobs
    here (tick, scan, fan-out) serve every channel.
    """
    if settings.token is None:
        raise ValueError("build_application needs CRISISDESK_TELEGRAM_TOKEN")
    wire()
    application = (
        Application.builder()
        .application_class(WorkerApplication)
        .token(settings.token)
        .base_url(settings.bot_base_url)
        .base_file_url(settings.bot_file_url)
        .request(bot_request())  # claims a message, then writes its request whole
        .rate_limiter(TelegramRateLimiter(max_retries=3, shared=_shared_budget(db)))
        .concurrent_updates(ChatOrderedUpdateProcessor())  # chats in parallel, each in order
        .defaults(Defaults(tzinfo=settings.tz))
        .build()
    )
    sends = application.bot_data[SENDS_KEY] = ChatSends(application.process_error)
    telegram = TelegramNotifier(application.bot, send_timeout=settings.send_timeout, sends=sends)
    application.bot_data["runtime"] = Runtime(
        settings=settings,
        db=db,
        clock=clock or SystemClock(),
        renderer=renderer or Renderer(settings.timezone),
        notifier=RoutingNotifier({telegram.channel: telegram, **also}) if also else telegram,
        leadership=Leadership(db.engine, interval=settings.leader_check_seconds),
    )
    runtime: Runtime = application.bot_data["runtime"]
    assert runtime.leadership is not None
    runtime.leadership.on_acquired = partial(takeover.end_earlier_claims, runtime)
    # Order matters: the flows' commands before the pointer onwards for unknown ones.
    for module in HANDLER_MODULES:
        for handler in module.handlers():
            application.add_handler(handler)
    guards.install(application)  # guards (groups -2, -1) and the command menus
    application.add_error_handler((conflicts or ConflictGuard()).on_error)  # before on_error
    application.add_error_handler(errors.on_error)

    job_queue = application.job_queue
    assert job_queue is not None, "python-telegram-bot[job-queue] is a dependency"
    job_queue.run_repeating(leader_job, **_every(settings.leader_check_seconds, LEADER_JOB_ID, 0.0))
    job_queue.run_repeating(tick_job, **_every(settings.tick_seconds, TICK_JOB_ID, 0.2))
    job_queue.run_repeating(
        deliver_job, data=Charts(), **_every(DELIVER_SECONDS, DELIVER_JOB_ID, 0.5)
    )
    job_queue.run_repeating(scan_job, **_every(settings.scan_interval, SCAN_JOB_ID, 1.0))
    job_queue.run_repeating(forget_updates_job, **_every(FORGET_SECONDS, FORGET_JOB_ID, 60.0))
    job_queue.run_once(startup_job, 0)
    return application


def _shared_budget(
    db: Database,
) -> SharedBooking | None:
    """On PostgreSQL (several workers possible) the overall send slot is booked in the
    database, off the event loop; elsewhere None (this process's limiter is the budget)."""
    if db.engine.dialect.name != "postgresql":
        return None
    budget = SendBudget(db.engine)
    # Threads of its own: behind the fan-out's ledger writes in the default pool, a booking
    # (and with it every reply) would wait for them.
    threads = ThreadPoolExecutor(BOOKING_THREADS, thread_name_prefix="send-budget")

    async def book(
        delay: float, chat: int | None, missed: int | None, crowded: bool
    ) -> tuple[float, int, int, int]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(threads, budget.book, delay, chat, missed, crowded)

    return book


#: The interpreter's thread switch interval in the bot's process (Python's default is 5 ms).
SWITCH_INTERVAL_S = 0.001


def favour_the_event_loop() -> None:
    """Let the event loop's thread have the GIL back within 1 ms of asking for it.

    The scan stores and clusters in a thread (``asyncio.to_thread``) that is busy in Python for
    seconds. Every time the loop's thread waits on a socket (the Bot API, PostgreSQL) it lets
    the GIL go, and getting it back meant waiting out the scan thread's 5 ms turn: a send's
    claim and its slot booking are several such waits, so while a scan ran on PostgreSQL the
    bot sent 3-23 messages a second instead of 30, and replies to people waited 2-5 s
    (``bench/handler_load.py --mode busy``, p95 3.4 s; with 1 ms, p95 0.6 s and 30 a second
    throughout, the scan as fast). The thread's extra switches cost it next to nothing."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def run_bot(settings: Settings) -> None:
    """Run until interrupted: long polling, or webhook mode when ``WEBHOOK_URL`` is set.

    With a Zalo token too, Zalo is served by the same process (``bot.channels.zalo.app
    .ZaloSide``): its receiver on this event loop, its notifier behind the router."""
    favour_the_event_loop()
    conflicts = ConflictGuard()
    zalo_polls = settings.zalo_token is not None and settings.zalo_webhook_secret is None
    polling = settings.webhook_url is None or zalo_polls
    with receiving(settings, polling=polling) as db:
        zalo = _zalo_side(settings, db)
        also = {zalo.notifier.channel: zalo.notifier} if zalo is not None else None
        application = build_application(settings, db, conflicts=conflicts, also=also)
        conflicts.on_trip = application.stop_running
        if settings.webhook_url:
            from bot.webhook import run_webhook

            asyncio.run(run_webhook(application, zalo))
        else:
            serve_monitoring(application)  # /healthz and /metrics (webhook mode starts its own)
            if zalo is not None:
                serve_zalo(application, zalo)
            application.run_polling(allowed_updates=Update.ALL_TYPES)
    if conflicts.tripped is not None:
        raise PollingConflict(conflicts.tripped)


def _zalo_side(settings: Settings, db: Database) -> ZaloSide | None:
    """Zalo's part of this process when a Zalo token is set beside the Telegram one."""
    if settings.zalo_token is None:
        return None
    from bot.channels.zalo.app import ZaloSide

    return ZaloSide(settings, db)


def serve_zalo(application: Application, zalo: ZaloSide) -> None:
    """Start Zalo's side with ``run_polling`` (post_init: its web server on ``WEBHOOK_PORT``,
    which Telegram's polling leaves free, and its receiver) and stop it after (post_stop)."""
    runners: list[web.AppRunner] = []

    async def started(app: Application) -> None:
        from bot.channels.zalo.app import start_web

        await zalo.connect()
        web_app = web.Application()
        zalo.add_routes(web_app)
        runners.append(await start_web(app.bot_data["runtime"].settings, web_app))
        await start_zalo(app, zalo)

    async def stopped(_app: Application) -> None:
        await zalo.stop()
        while runners:
            await runners.pop().cleanup()

    alongside(application, started, stopped)


async def start_zalo(application: Application, zalo: ZaloSide) -> None:
    """Start Zalo's receiver with the Application's runtime; if it dies (a revoked token),
    the whole process stops rather than leaving a bot that no longer hears Zalo."""
    await zalo.start(application.bot_data["runtime"])

    def ended(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        log.error("the Zalo receiver stopped: %r; stopping", task.exception())
        application.stop_running()

    for task in zalo.tasks:
        task.add_done_callback(ended)
