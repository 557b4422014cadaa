"""``GET /healthz`` and ``GET /metrics``: the service's own small HTTP server (aiohttp).

It listens on ``HTTP_LISTEN:HTTP_PORT`` (loopback by default: metrics name topics' activity and
are for the operator's Prometheus, not the world), in polling and in webhook mode alike, and is
separate from the webhook receiver so that the receiver can face the internet while this does
not. docs/operations.md says what to watch.

``/healthz`` answers 200 when every check passes and 503 otherwise, always with a JSON body:

- ``database``: a ``select 1`` answered within :data:`DATABASE_TIMEOUT` seconds;
- ``scheduler``: the job scheduler runs and the tick job ran within
  ``max(3 × TICK_SECONDS, 30 s)``;
- ``scan``: with active sources, the last scan (of any worker) finished within
  ``3 × SCAN_INTERVAL + 60 s`` (before the first scan, counted from this process's start).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlmodel import col, select
from telegram.ext import Application

from bot.config import ENV_PREFIX
from bot.lifecycle import alongside
from bot.metrics import last_scan_finished
from bot.startup_errors import serve_or_explain
from storage.models import Setting, Source

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

DATABASE_TIMEOUT = 5.0
MIN_TICK_LIMIT = 30.0
SCAN_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Watched:
    """What the checks read, whatever runs the jobs: PTB's job queue (Telegram) or the
    APScheduler of ``crisisdesk run`` on Zalo alone."""

    runtime: Runtime
    scheduler_running: Callable[[], bool]
    limiter: object | None = None  # the flood limiter whose queue /metrics shows, if any


def watched(target: Application | Watched) -> Watched:
    """``target`` as the checks see it (an Application: its runtime, job queue and limiter)."""
    if isinstance(target, Watched):
        return target
    runtime: Runtime = target.bot_data["runtime"]
    job_queue = target.job_queue
    return Watched(
        runtime,
        lambda: job_queue is not None and job_queue.scheduler.running,
        getattr(target.bot, "rate_limiter", None),
    )


def _database_checks(runtime: Runtime) -> dict[str, Any]:
    """The database and scan checks (blocking I/O: run in a thread)."""
    with runtime.db.session() as session:
        session.execute(sa.text("select 1"))
        has_sources = (
            session.exec(select(Source.id).where(col(Source.active).is_(True))).first() is not None
        )
        finished = last_scan_finished(session.get(Setting, "last_scan"))
    now = runtime.clock.now()
    limit = 3 * timedelta(seconds=runtime.settings.scan_interval) + SCAN_GRACE
    scan: dict[str, Any] = {"ok": True, "limit_s": limit.total_seconds(), "sources": has_sources}
    if finished is not None:
        age = (now - finished).total_seconds()
        scan["last_scan_age_s"] = round(age, 3)
        scan["ok"] = not has_sources or age <= limit.total_seconds()
    else:
        scan["last_scan_age_s"] = None
        scan["ok"] = not has_sources or runtime.monitor.uptime() <= limit.total_seconds()
    return {"database": {"ok": True}, "scan": scan}


async def health(target: Application | Watched) -> tuple[bool, dict[str, Any]]:
    """Run every check; (all passed, the JSON body)."""
    seen = watched(target)
    runtime = seen.runtime
    monitor = runtime.monitor
    checks: dict[str, Any]
    try:
        checks = await asyncio.wait_for(
            asyncio.to_thread(_database_checks, runtime), DATABASE_TIMEOUT
        )
    except Exception as exc:  # any failure to reach the database is the answer, not a crash
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        error = reason[0] if reason else type(exc).__name__
        checks = {
            "database": {"ok": False, "error": error[:200]},
            "scan": {"ok": False, "error": "database unreachable"},
        }
    running = seen.scheduler_running()
    tick_limit = max(3 * runtime.settings.tick_seconds, MIN_TICK_LIMIT)
    tick_age = monitor.tick_age()
    checks["scheduler"] = {
        "ok": running and tick_age <= tick_limit,
        "running": running,
        "last_tick_age_s": round(tick_age, 3),
        "limit_s": tick_limit,
    }
    leadership = runtime.leadership
    ok = all(check["ok"] for check in checks.values())
    body = {
        "status": "ok" if ok else "fail",
        "checks": checks,
        "leader": leadership is None or leadership.holds,
        "uptime_s": round(monitor.uptime(), 3),
    }
    return ok, body


def monitoring_app(target: Application | Watched) -> web.Application:
    """The aiohttp app serving ``/healthz`` and ``/metrics`` for ``target``."""
    seen = watched(target)
    runtime = seen.runtime
    runtime.monitor.watch(runtime, seen.limiter)

    async def healthz(_request: web.Request) -> web.Response:
        ok, body = await health(seen)
        if not ok:
            log.warning("health check failed: %s", json.dumps(body["checks"]))
        return web.json_response(body, status=200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        page = await asyncio.to_thread(runtime.monitor.exposition)
        return web.Response(body=page, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def start_monitoring(
    target: Application | Watched,
    *,
    host: str | None = None,
    port: int | None = None,
) -> web.AppRunner | None:
    """Serve ``/healthz`` and ``/metrics``; None when ``HTTP_PORT`` is 0 (switched off).

    ``host``/``port`` override the settings (tests pass port 0 for a free one).
    """
    settings = watched(target).runtime.settings
    port = settings.http_port if port is None else port
    if port == 0 and settings.http_port == 0:
        return None
    host = settings.http_listen if host is None else host
    runner = await serve_or_explain(
        monitoring_app(target),
        host,
        port,
        what="/healthz and /metrics",
        check=f"{ENV_PREFIX}HTTP_LISTEN and {ENV_PREFIX}HTTP_PORT; port 0 switches it off",
    )
    log.info("health and metrics on http://%s:%s (/healthz, /metrics)", host, port)
    return runner


def serve_monitoring(application: Application) -> None:
    """Start the server with ``run_polling`` (its post_init) and stop it after (post_stop)."""
    runners: list[web.AppRunner] = []

    async def started(app: Application) -> None:
        runner = await start_monitoring(app)
        if runner is not None:
            runners.append(runner)

    async def stopped(_app: Application) -> None:
        while runners:
            await runners.pop().cleanup()

    alongside(application, started, stopped)


def bound_port(runner: web.AppRunner) -> int:
    """The port a runner's first site listens on (for port 0)."""
    server = runner.addresses[0]
    return int(server[1])
