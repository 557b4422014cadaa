"""The periodic work of a running CrisisDesk, whatever messenger it speaks on.

Telegram runs these from PTB's job queue (``bot.app``; also when Zalo is served beside it),
Zalo alone from its own APScheduler (``bot.channels.zalo.app``); both call the functions here
so that the tick, the scan and the fan-out are the same code on every channel. Each one first
asks whether this process leads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from bot.channels.ratelimit import bulk_sends
from bot.runtime import Runtime
from bot.services import retention
from bot.services.delivery import Charts, deliver_pending
from bot.services.digest import ensure_scheduled
from bot.services.due import fire_due
from bot.services.scanning import scan_and_alert

log = logging.getLogger(__name__)

T = TypeVar("T")


async def while_leading(runtime: Runtime, work: Coroutine[Any, Any, T]) -> T | None:
    """Run ``work`` until it ends or this process stops leading (then cancel it: None).

    A fan-out takes minutes; a leader that lost its lock must not keep sending while the new
    leader starts. The rows it had claimed are the new leader's to settle (``bot.services
    .delivery``)."""
    leadership = runtime.leadership
    if leadership is None or not leadership.shared:
        return await work
    task = asyncio.ensure_future(work)  # copies the context: bulk_sends() still applies
    lost = asyncio.ensure_future(leadership.lost.wait())
    try:
        await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost.cancel()
        if not task.done():
            log.warning("stopped the fan-out: this process no longer leads")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return None if task.cancelled() else task.result()


async def tick(runtime: Runtime) -> None:
    """Fire every Due row whose time has come (the single scheduler of later work)."""
    leads = await runtime.leading()
    runtime.monitor.ticked()  # the scheduler's heartbeat for /healthz, leader or not
    if not leads:
        return
    fired = await fire_due(runtime)
    if fired:
        log.info("tick fired %s due item(s)", fired)


async def scan(runtime: Runtime) -> bool:
    """Scan, detect and plan deliveries; True when deliveries were planned (send them now)."""
    if not await runtime.leading():
        return False
    try:
        outcome = await scan_and_alert(runtime)
    except Exception:
        runtime.monitor.scan_failed()
        raise
    runtime.monitor.scanned(outcome)
    return outcome is not None and bool(outcome.planned)


async def deliver(runtime: Runtime, charts: Charts) -> None:
    """Send what the Delivery ledger owes; also resumes after a restart. One run at a time.

    A process serving several messengers sends each channel's rows through that channel's
    notifier, the channels side by side (one slow messenger does not hold up the other);
    ``charts`` keeps each channel's uploads apart (``Charts.on``)."""
    if not await runtime.leading():
        return
    views = runtime.per_channel()
    if len(views) == 1:
        await _deliver_on(runtime, charts)
        return
    await asyncio.gather(*(_deliver_on(v, charts.on(v.notifier.channel)) for v in views))


async def _deliver_on(runtime: Runtime, charts: Charts) -> None:
    with bulk_sends():  # replies to people go ahead of the fan-out
        report = await while_leading(runtime, deliver_pending(runtime, charts))
    if report is None:
        return
    runtime.monitor.delivered(report)
    if report.settled:
        log.info(
            "delivered %s, unreachable %s, failed %s, uncertain %s, deferred %s",
            report.sent,
            report.unreachable,
            report.failed,
            report.uncertain,
            report.deferred,
        )


def startup(runtime: Runtime) -> None:
    """Once at start: make sure the next daily digest (and article purge) is scheduled."""
    with runtime.db.session() as session:
        ensure_scheduled(
            session, runtime.clock.now(), runtime.settings.digest_time, runtime.settings.tz
        )
        retention.ensure_scheduled(
            session, runtime.clock.now(), runtime.settings.article_retention_days
        )
