"""What a running CrisisDesk counts for ``GET /metrics`` (Prometheus text, prometheus-client).

Two kinds of figures:

- events this process saw (scans, new articles, alert changes, deliveries by outcome, update
  handling time): counters and a histogram in a :class:`Monitor`, fed by the jobs and by
  :class:`InstrumentedApplication`;
- state read at scrape time (the delivery ledger by status, open alerts, the age of the last
  scan, leadership, senders waiting for a flood-limit slot, 429s received): a collector, so the
  figures are true for the whole deployment (the ledger is shared by every worker) and never go
  stale between scrapes.

Each Monitor has its own ``CollectorRegistry`` instead of prometheus-client's global one: tests
and the sandbox run several applications in one process, and their counters must not mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlmodel import col
from telegram.ext import Application

from storage.counts import count_rows
from storage.models import Alert, AlertStatus, Delivery, Setting

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.services.delivery import DeliveryReport
    from bot.services.scanning import ScanOutcome

# Update handling: most commands answer in tens of milliseconds; a slow one is seconds.
UPDATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DELIVERY_OUTCOMES = ("sent", "unreachable", "failed", "uncertain", "deferred")


class Monitor:
    """Counters fed by this process, and the heartbeat of its scheduler."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.started = monotonic()
        self.last_tick: float | None = None  # monotonic time of the last tick job run
        self.registry = CollectorRegistry()
        counter = partial(Counter, registry=self.registry)
        self.scans = counter(
            "crisisdesk_scans",
            "Scans run by this process, by outcome (ok, idle: no active source, error)",
            ["outcome"],
        )
        self.items = counter(
            "crisisdesk_scan_new_articles", "New articles stored by this process's scans"
        )
        self.alerts = counter(
            "crisisdesk_alert_changes",
            "Alerts raised, escalated or updated by this process's scans, by severity",
            ["severity"],
        )
        self.deliveries = counter(
            "crisisdesk_deliveries", "Alert messages this process settled, by outcome", ["outcome"]
        )
        self.updates = Histogram(
            "crisisdesk_update_seconds",
            "Time to handle one Telegram update, from dequeue to the last handler's end",
            buckets=UPDATE_BUCKETS,
            registry=self.registry,
        )
        for outcome in ("ok", "idle", "error"):
            self.scans.labels(outcome)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)

    # ------------------------------------------------------------------ fed by the jobs

    def ticked(self) -> None:
        self.last_tick = self.monotonic()

    def uptime(self) -> float:
        return self.monotonic() - self.started

    def tick_age(self) -> float:
        """Seconds since the tick job last ran (since start, before the first run)."""
        return self.monotonic() - (self.last_tick if self.last_tick is not None else self.started)

    def scanned(self, outcome: ScanOutcome | None) -> None:
        if outcome is None:
            self.scans.labels("idle").inc()
            return
        self.scans.labels("ok").inc()
        self.items.inc(len(outcome.report.new_articles))
        for change in outcome.changes:
            self.alerts.labels(change.alert.severity).inc()

    def scan_failed(self) -> None:
        self.scans.labels("error").inc()

    def delivered(self, report: DeliveryReport) -> None:
        for outcome in DELIVERY_OUTCOMES:
            count = getattr(report, outcome)
            if count:
                self.deliveries.labels(outcome).inc(count)

    def watch(self, runtime: Runtime, limiter: object | None = None) -> None:
        """Add the scrape-time state of ``runtime`` and of the flood ``limiter`` (Telegram's
        rate limiter; None where there is none) to the registry."""
        self.registry.register(_StateCollector(runtime, limiter))

    def exposition(self) -> bytes:
        """The Prometheus text page. Reads the database: call it off the event loop."""
        return generate_latest(self.registry)


class InstrumentedApplication(Application):
    """PTB's Application, timing each update into the runtime's ``crisisdesk_update_seconds``."""

    async def process_update(self, update: object) -> None:
        runtime = self.bot_data.get("runtime")
        started = time.perf_counter()
        try:
            await super().process_update(update)
        finally:
            if runtime is not None:
                runtime.monitor.updates.observe(time.perf_counter() - started)


class _StateCollector(Collector):
    """Figures read when Prometheus scrapes, from the database and the send path."""

    def __init__(self, runtime: Runtime, limiter: object | None) -> None:
        self.runtime = runtime
        self.limiter = limiter

    def collect(self) -> Iterator[Any]:
        runtime = self.runtime
        leader = GaugeMetricFamily(
            "crisisdesk_leader", "1 if this process runs the tick, the scan and the fan-out"
        )
        leadership = runtime.leadership
        leader.add_metric([], 1.0 if leadership is None or leadership.holds else 0.0)
        yield leader

        limiter = self.limiter
        waiting = GaugeMetricFamily(
            "crisisdesk_send_queue_depth",
            "Messages waiting in this process for a Telegram flood-limit slot",
        )
        waiting.add_metric([], float(getattr(limiter, "waiting", 0)))
        yield waiting
        floods = CounterMetricFamily(
            "crisisdesk_flood_waits", "429 Too Many Requests answers received from Telegram"
        )
        floods.add_metric([], float(getattr(limiter, "flood_waits", 0)))
        yield floods

        yield from _database_state(runtime)


def _database_state(runtime: Runtime) -> Iterator[Any]:
    ledger = GaugeMetricFamily(
        "crisisdesk_delivery_rows",
        "Rows of the alert delivery ledger by status (all workers)",
        labels=["status"],
    )
    alerts = GaugeMetricFamily(
        "crisisdesk_open_alerts", "Alerts open or escalated (not acknowledged, dismissed or closed)"
    )
    scan_age = GaugeMetricFamily(
        "crisisdesk_last_scan_age_seconds", "Seconds since the last scan finished (any worker)"
    )
    with runtime.db.session() as session:
        for status, count in session.execute(
            sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)  # type: ignore[call-overload]
        ):
            ledger.add_metric([status], float(count))
        open_alerts = count_rows(
            session, Alert, col(Alert.status).in_([AlertStatus.OPEN, AlertStatus.ESCALATED])
        )
        alerts.add_metric([], float(open_alerts))
        finished = last_scan_finished(session.get(Setting, "last_scan"))
    yield ledger
    yield alerts
    if finished is not None:
        scan_age.add_metric([], (runtime.clock.now() - finished).total_seconds())
        yield scan_age


def last_scan_finished(row: Setting | None) -> datetime | None:
    """When the last scan (of any worker) finished, from the ``last_scan`` setting."""
    value = row.value.get("finished_at") if row is not None else None
    return datetime.fromisoformat(value) if isinstance(value, str) else None
