"""``crisisdesk run`` on Zalo: the runtime, the jobs and the bot's public web server.

``ZaloSide`` is Zalo's part of any running CrisisDesk (client, notifier, routes, receiver);
``bot.app.run_bot`` runs it beside PTB's Application when both tokens are set. ``serve`` runs
it alone (``Settings.zalo``: ``ZALO_TOKEN`` set and no ``TELEGRAM_TOKEN``): then the tick,
scan and fan-out (``bot.jobs``) run under an APScheduler of their own, since PTB's job queue
belongs to PTB's Application, and ``/healthz`` and ``/metrics`` (``bot.health``) watch it.
The web server (``WEBHOOK_LISTEN``:``WEBHOOK_PORT``, reached as ``ZALO_PUBLIC_URL``) serves
the signed chart links Zalo fetches and, with ``ZALO_WEBHOOK_SECRET``, the webhook; without a
secret updates are long-polled.
Updates are answered one at a time in arrival order by one worker: Zalo has one update per
``getUpdates`` and no offsets, so nothing is gained by answering two at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import jobs
from bot.channels.base import DeliveryError
from bot.clock import SystemClock
from bot.config import ENV_PREFIX, Settings
from bot.flows import FLOW_MODULES  # every flow registers with the layer on import
from bot.health import Watched, start_monitoring
from bot.runtime import Runtime
from bot.services import takeover
from bot.services.delivery import Charts
from bot.startup_errors import EXIT_USAGE, StartupError, serve_or_explain
from bot.templating import Renderer
from bot.wiring import wire
from handlers.conversation.degrade import DegradingNotifier
from storage.db import Database
from storage.leader import Leadership
from storage.sync import receiving

from .bot_api import ZaloBotClient, poll_updates
from .chart_links import ChartLinks, chart_route
from .conversation import ZaloConversation
from .errors import ZaloError, ZaloUnauthorized
from .notifier import CAPABILITIES, ZaloNotifier
from .oa.events import oa_event_handler
from .oa.rooms import OaRooms
from .updates import ZaloUpdate
from .webhook import add_webhook_route

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/zalo/webhook"
# Where Zalo posts the OA's events (set in the app's settings on developers.zalo.me): members
# writing in the OA groups that are crisis rooms.
OA_WEBHOOK_PATH = "/zalo/oa/webhook"
# The OA's refresh token dies after about three months unused: rotate it when a week old,
# looking a few times a day (a restart looks again at once, so no restart rhythm can skip it).
OA_ROTATE_AFTER = timedelta(days=7)
OA_ROTATE_CHECK_S = 6 * 3600.0
T = TypeVar("T")
DELIVER_SECONDS = 5.0
DELIVER_JOB_ID = "deliver"


def run_zalo(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    _check(settings)
    with receiving(settings, polling=settings.zalo_webhook_secret is None) as db:
        asyncio.run(serve(settings, db))


def _check(settings: Settings) -> None:
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        for name in ("zalo_public_url", "zalo_chart_key")
        if getattr(settings, name) is None
    ]
    if missing:
        raise StartupError(
            f"running on Zalo needs {' and '.join(missing)}: Zalo fetches charts by URL "
            "from the bot's own web server (README, 'Running on Zalo')",
            EXIT_USAGE,
        )


class ZaloSide:
    """Zalo's part of a running CrisisDesk: the client, the notifier services send through, the
    web routes (signed charts, the webhook) and the receiver feeding the conversation.

    Used alone (``serve``: Zalo only) and beside PTB's Application (``bot.app.run_bot`` with
    both tokens), so the two ways of running Zalo cannot drift apart."""

    def __init__(self, settings: Settings, db: Database) -> None:
        _check(settings)
        assert settings.zalo_token is not None and settings.zalo_chart_key is not None
        assert settings.zalo_public_url is not None
        self.settings = settings
        self.client = ZaloBotClient(
            settings.zalo_token.get_secret_value(),
            base_url=settings.zalo_api_url,
            timeout=settings.send_timeout,
        )
        self.links = ChartLinks(
            settings.zalo_chart_key.get_secret_value().encode(), settings.zalo_public_url
        )
        self.chart_dir = settings.data_dir / "charts"
        # Crisis rooms as OA groups where an agency has a verified OA (docs/zalo.md).
        self.oa_rooms = OaRooms(settings, db, SystemClock())
        self.zalo = ZaloNotifier(self.client, self.links, self.chart_dir, self.oa_rooms)
        self.notifier = DegradingNotifier(self.zalo, CAPABILITIES)  # what services hold
        self.secret = settings.zalo_webhook_secret
        self.updates: asyncio.Queue[ZaloUpdate] = asyncio.Queue()
        self.oa_events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self) -> None:
        """Check the token (getMe); a refusal or an unreachable API is a start-up error."""
        try:
            me = await self.client.get_me()
        except ZaloUnauthorized:
            await self.client.close()
            raise StartupError(f"Zalo refused {ENV_PREFIX}ZALO_TOKEN (getMe)", EXIT_USAGE) from None
        except ZaloError as error:
            await self.client.close()
            raise StartupError(f"cannot reach Zalo ({ENV_PREFIX}ZALO_API_URL): {error}") from None
        log.info("running on Zalo as %s (%s), %s flows", me.account_name, me.id, len(FLOW_MODULES))

    def add_routes(self, web_app: web.Application) -> None:
        """Mount ``/charts/…``, with a webhook secret ``/zalo/webhook``, and with an OA app
        ``/zalo/oa/webhook`` (signed events, checked before anything is read) on ``web_app``."""
        web_app.router.add_routes([chart_route(self.chart_dir, self.links)])
        oa = self._oa_app()
        if oa is not None:
            app_id, key = oa
            web_app.router.add_post(
                OA_WEBHOOK_PATH, oa_event_handler(app_id, key, _put(self.oa_events))
            )
        if self.secret is not None:
            add_webhook_route(
                web_app, WEBHOOK_PATH, self.secret.get_secret_value(), _put(self.updates)
            )

    def _oa_app(self) -> tuple[str, str] | None:
        """The OA app whose group events this process receives: its id and OA secret key."""
        app_id, key = self.settings.zalo_oa_app_id, self.settings.zalo_oa_secret_key
        return (app_id, key.get_secret_value()) if app_id and key is not None else None

    async def start(self, runtime: Runtime) -> None:
        """Answer updates with ``runtime``; register the webhook, or start long polling."""
        conversation = ZaloConversation(runtime, self.zalo)
        self.tasks.append(asyncio.create_task(_answer(self.updates, conversation.on_update)))
        oa = self._oa_app()
        if oa is not None:
            on_event = partial(conversation.on_oa_event, oa[0])
            self.tasks.append(asyncio.create_task(_answer(self.oa_events, on_event)))
            self.tasks.append(asyncio.create_task(_keep_oa_alive(self.oa_rooms)))
        if self.secret is not None:
            assert self.settings.zalo_public_url is not None
            await self.client.set_webhook(
                self.settings.zalo_public_url + WEBHOOK_PATH, self.secret.get_secret_value()
            )
        else:
            await self.client.delete_webhook()
            self.tasks.append(asyncio.create_task(_poll(self.client, self.updates)))
        log.info(
            "charts at %s/charts/, %s",
            self.settings.zalo_public_url,
            "webhook" if self.secret is not None else "polling",
        )

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.oa_rooms.close()
        await self.client.close()


async def start_web(settings: Settings, web_app: web.Application) -> web.AppRunner:
    """Serve ``web_app`` on ``WEBHOOK_LISTEN:WEBHOOK_PORT`` (Zalo's charts and webhook)."""
    return await serve_or_explain(
        web_app,
        settings.webhook_listen,
        settings.webhook_port,
        what="charts",
        check=f"{ENV_PREFIX}WEBHOOK_LISTEN and WEBHOOK_PORT",
    )


async def serve(settings: Settings, db: Database) -> None:
    """CrisisDesk on Zalo until SIGINT or SIGTERM (or its receiver dies)."""
    side = ZaloSide(settings, db)
    await side.connect()
    wire()
    runtime = Runtime(
        settings=settings,
        db=db,
        clock=SystemClock(),
        renderer=Renderer(settings.timezone),
        notifier=side.notifier,
        leadership=Leadership(db.engine, interval=settings.leader_check_seconds),
    )
    assert runtime.leadership is not None
    runtime.leadership.on_acquired = partial(takeover.end_earlier_claims, runtime)

    web_app = web.Application()
    side.add_routes(web_app)
    try:
        runner = await start_web(settings, web_app)
    except StartupError:
        await side.client.close()
        raise
    scheduler = _scheduler(runtime)
    monitoring: web.AppRunner | None = None
    try:
        await side.start(runtime)
        await asyncio.to_thread(jobs.startup, runtime)
        scheduler.start()
        monitoring = await start_monitoring(Watched(runtime, lambda: scheduler.running))
        await _until_stopped(side.tasks)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        if monitoring is not None:
            await monitoring.cleanup()
        await side.stop()
        await runner.cleanup()
        await asyncio.to_thread(runtime.leadership.release)


def _put(queue: asyncio.Queue[T]) -> Callable[[T], Awaitable[None]]:
    async def put(update: T) -> None:
        queue.put_nowait(update)  # answer Zalo at once; the worker answers the person

    return put


async def _answer(queue: asyncio.Queue[T], on_update: Callable[[T], Awaitable[None]]) -> None:
    while True:
        await on_update(await queue.get())


async def _keep_oa_alive(rooms: OaRooms) -> None:
    while True:
        try:
            if await rooms.keep_alive(OA_ROTATE_AFTER):
                log.info("zalo oa: tokens rotated to keep the refresh token alive")
        except DeliveryError as error:  # Zalo down or the grant revoked: said, tried again later
            log.warning("zalo oa: could not rotate the tokens: %s", error)
        await asyncio.sleep(OA_ROTATE_CHECK_S)


async def _poll(client: ZaloBotClient, queue: asyncio.Queue[ZaloUpdate]) -> None:
    async for update in poll_updates(client):
        queue.put_nowait(update)


def _scheduler(runtime: Runtime) -> AsyncIOScheduler:
    """The leader check, tick, scan and fan-out at the intervals the Telegram app uses."""
    settings = runtime.settings
    scheduler = AsyncIOScheduler(timezone=UTC)
    charts = Charts()  # kept between fan-out runs, as on Telegram
    assert runtime.leadership is not None
    leadership = runtime.leadership

    async def scan() -> None:
        if await jobs.scan(runtime):  # deliveries planned: send them now, not in 5 s
            scheduler.modify_job(DELIVER_JOB_ID, next_run_time=datetime.now(UTC))

    every = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler.add_job(
        leadership.refresh,
        "interval",
        seconds=settings.leader_check_seconds,
        next_run_time=datetime.now(UTC),
        **every,
    )
    scheduler.add_job(jobs.tick, "interval", args=[runtime], seconds=settings.tick_seconds, **every)
    scheduler.add_job(
        jobs.deliver,
        "interval",
        args=[runtime, charts],
        id=DELIVER_JOB_ID,
        seconds=DELIVER_SECONDS,
        **every,
    )
    scheduler.add_job(
        scan, "interval", seconds=settings.scan_interval, next_run_time=datetime.now(UTC), **every
    )
    return scheduler


async def _until_stopped(tasks: list[asyncio.Task[None]]) -> None:
    """Until SIGINT or SIGTERM; a receiving task that dies (a revoked token) ends the run with
    its error rather than leaving a bot that no longer hears anyone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopped = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({stopped, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    for task in done:
        if task is not stopped:
            task.result()  # raises what ended it
            raise RuntimeError("the Zalo receiver stopped")
