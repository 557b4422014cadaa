"""Alert fan-out through the Delivery ledger.

Every (alert, person, part) row is written before anything is sent and marked with the message
id right after, so a restart resumes exactly the unsent rows. Each person's parts go out one after
the other (chart, then text), so a crash can re-send at most the one message in flight per person
and never lose one (at-least-once). People are served concurrently; Telegram's flood windows are
kept by the bot's rate limiter, so the fan-out runs at the overall limit without 429s. A chart is
rendered once per alert and language and uploaded once: later sends reuse its ``file_id``.

A person who blocked the bot is marked unreachable, their remaining rows are closed, and their
supervisors are told once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.buttons import Button
from bot.channels.base import (
    Attachment,
    ChatRef,
    DeliveryError,
    RateLimited,
    RecipientUnreachable,
    SentMessage,
)
from bot.services import audit
from bot.services.alerts import (
    ALERT_KIND,
    REFRESH_KIND,
    AlertFacts,
    facts,
    pending_count,
    schedule_refresh,
    sent_text_messages,
    supervisors_of,
)
from bot.services.due import due_handler, schedule
from bot.services.notify import notify_payload
from bot.templating import Renderer
from scanner.charts import ChartLabels, render_chart
from scanner.trends import chart_data
from storage.models import Alert, AlertStatus, Delivery, DeliveryStatus, Due, Topic, User

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
CONCURRENT_PEOPLE = 100
BATCH = 5000


@dataclass
class DeliveryReport:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    deferred: int = 0
    rounds: int = 0


def alert_buttons(renderer: Renderer, lang: str, alert: Alert) -> list[list[Button]]:
    """The action buttons of an alert message (fewer once it is acknowledged or dismissed)."""
    assert alert.id is not None

    def label(name: str) -> str:
        return renderer.render(f"alert_button_{name}", lang)

    rows: list[list[Button]] = []
    if alert.status == AlertStatus.DISMISSED:
        return rows
    first = [Button(label("tf"), "alert.tf", alert.id)]
    if alert.acknowledged_at is None:
        first.insert(0, Button(label("ack"), "alert.ack", alert.id))
    rows.append(first)
    rows.append(
        [
            Button(label("draft"), "alert.draft", alert.id),
            Button(label("dismiss"), "alert.dismiss", alert.id),
        ]
    )
    rows.append([Button(label("mute"), "alert.mute", alert.id)])
    return rows


def alert_text(renderer: Renderer, lang: str, f: AlertFacts, *, escalation: bool = False) -> str:
    return renderer.render("alert_message", lang, f=f, a=f.alert, escalation=escalation)


def chart_labels(renderer: Renderer, lang: str, f: AlertFacts) -> ChartLabels:
    return ChartLabels.build(
        lambda name: renderer.render(f"chart_{name}", lang, topic=f.topic.name, a=f.alert)
    )


@dataclass
class _Charts:
    """Chart bytes and uploaded file ids per (alert, language), shared by one fan-out.

    The first sender of a chart uploads it; everyone else waits for that upload and sends its
    ``file_id`` (no bytes). If the upload fails, the next waiter becomes the uploader.
    """

    runtime: Runtime
    data: dict[tuple[int, str], bytes] = field(default_factory=dict)
    file_ids: dict[tuple[int, str], str] = field(default_factory=dict)
    uploading: dict[tuple[int, str], asyncio.Event] = field(default_factory=dict)

    async def attachment(self, f: AlertFacts, lang: str) -> tuple[Attachment, bool]:
        """The chart to send and whether this caller is the uploader (must call ``finished``)."""
        assert f.alert.id is not None
        key = (f.alert.id, lang)
        while True:
            if key in self.file_ids:
                return Attachment("chart.png", file_id=self.file_ids[key]), False
            pending = self.uploading.get(key)
            if pending is None:
                self.uploading[key] = asyncio.Event()
                try:
                    if key not in self.data:
                        self.data[key] = await asyncio.to_thread(self._render, f, lang)
                except BaseException:
                    self.finished(f, lang, None)
                    raise
                return Attachment(f"alert-{f.alert.id}.png", self.data[key]), True
            await pending.wait()

    def _render(self, f: AlertFacts, lang: str) -> bytes:
        rt = self.runtime
        with rt.db.session() as session:
            topic = session.get(Topic, f.topic.id)
            assert topic is not None
            alert = session.get(Alert, f.alert.id)
            data = chart_data(session, topic, rt.clock.now(), tz=rt.settings.tz, alert=alert)
        return render_chart(data, chart_labels(rt.renderer, lang, f), rt.settings.tz)

    def finished(self, f: AlertFacts, lang: str, sent: SentMessage | None) -> None:
        assert f.alert.id is not None
        key = (f.alert.id, lang)
        if sent is not None and sent.file_id:
            self.file_ids.setdefault(key, sent.file_id)
        event = self.uploading.pop(key, None)
        if event is not None:
            event.set()


async def deliver_pending(runtime: Runtime) -> DeliveryReport:
    """Send every pending alert delivery; returns what happened. Safe to run again at any time."""
    report = DeliveryReport()
    charts = _Charts(runtime)
    facts_cache: dict[int, AlertFacts] = {}
    semaphore = asyncio.Semaphore(CONCURRENT_PEOPLE)
    while True:
        with runtime.db.session() as session:
            rows = list(
                session.exec(
                    select(Delivery)
                    .where(Delivery.kind == ALERT_KIND, Delivery.status == DeliveryStatus.PENDING)
                    .order_by(col(Delivery.id))
                    .limit(BATCH)
                )
            )
            for alert_id in {r.ref_id for r in rows} - facts_cache.keys():
                facts_cache[alert_id] = facts(session, alert_id)
            people = {
                u.id: u
                for u in session.exec(
                    select(User).where(col(User.id).in_({r.user_id for r in rows}))
                )
            }
        if not rows:
            return report
        report.rounds += 1
        by_person: dict[int, list[Delivery]] = defaultdict(list)
        for row in rows:
            by_person[row.user_id].append(row)

        async def serve(person: User, queue: list[Delivery]) -> None:
            async with semaphore:
                await _deliver_person(runtime, person, queue, facts_cache, charts, report)

        before = report.sent + report.unreachable + report.failed
        await asyncio.gather(*(serve(people[uid], q) for uid, q in by_person.items()))
        if report.sent + report.unreachable + report.failed == before:
            return report  # only deferrals this round: the next run retries them


async def _deliver_person(
    runtime: Runtime,
    person: User,
    queue: list[Delivery],
    facts_cache: dict[int, AlertFacts],
    charts: _Charts,
    report: DeliveryReport,
) -> None:
    lang = person.language
    for row in queue:
        f = facts_cache[row.ref_id]
        to = ChatRef(row.chat_id or person.telegram_id or 0)
        try:
            if row.part.startswith("photo:"):
                attachment, uploader = await charts.attachment(f, lang)
                caption = runtime.renderer.render("alert_caption", lang, f=f, a=f.alert)
                sent_photo: SentMessage | None = None
                try:
                    sent = sent_photo = await runtime.notifier.send_photo(to, attachment, caption)
                finally:
                    if uploader:
                        charts.finished(f, lang, sent_photo)
            else:
                escalation = row.part == "text:escalation"
                text = alert_text(runtime.renderer, lang, f, escalation=escalation)
                sent = await runtime.notifier.send_text(
                    to, text, alert_buttons(runtime.renderer, lang, f.alert)
                )
        except RecipientUnreachable as exc:
            _mark_unreachable(runtime, person, str(exc))
            report.unreachable += 1
            return
        except RateLimited as exc:
            _failed_attempt(runtime, row, f"rate limited ({exc.retry_after} s)", give_up=False)
            report.deferred += 1
            return
        except DeliveryError as exc:
            if _failed_attempt(runtime, row, str(exc), give_up=True):
                report.failed += 1
                continue
            report.deferred += 1
            return
        # Off the event loop: a commit per message would otherwise stall the loop and, with it,
        # the rate limiter's timing of every other send.
        await asyncio.to_thread(_mark_sent, runtime, row, sent)
        report.sent += 1


def _mark_sent(runtime: Runtime, row: Delivery, sent: SentMessage) -> None:
    with runtime.db.session() as session:
        stored = session.get(Delivery, row.id)
        assert stored is not None
        stored.status = DeliveryStatus.SENT
        stored.message_id = sent.message_id
        stored.chat_id = sent.chat_id
        stored.attempts += 1
        stored.sent_at = runtime.clock.now()


def _failed_attempt(runtime: Runtime, row: Delivery, error: str, *, give_up: bool) -> bool:
    """Count a failed attempt; returns True when the row is given up (marked failed)."""
    with runtime.db.session() as session:
        stored = session.get(Delivery, row.id)
        assert stored is not None
        stored.attempts += 1
        stored.last_error = error[:500]
        if give_up and stored.attempts >= MAX_ATTEMPTS:
            stored.status = DeliveryStatus.FAILED
            log.error("delivery %s failed for good: %s", row.id, error)
            return True
    return False


def _mark_unreachable(runtime: Runtime, person: User, reason: str) -> None:
    """Close the person's pending rows and tell their supervisors, once per transition."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        user = session.get(User, person.id)
        assert user is not None and user.id is not None
        for row in session.exec(
            select(Delivery).where(
                Delivery.user_id == user.id, Delivery.status == DeliveryStatus.PENDING
            )
        ):
            row.status = DeliveryStatus.UNREACHABLE
            row.last_error = reason[:500]
        if not user.reachable:
            return
        user.reachable = False
        audit.record(
            session,
            action="user.unreachable",
            subject=f"user:{user.id}",
            after={"reason": reason},
            at=now,
        )
        if user.agency_id is not None:
            for supervisor in supervisors_of(session, user.agency_id):
                if supervisor.id == user.id or supervisor.id is None:
                    continue
                schedule(
                    session,
                    "notify",
                    now,
                    payload=notify_payload(
                        supervisor.id, "delivery_unreachable", name=user.full_name
                    ),
                    dedupe_key=f"unreachable:{user.id}:{supervisor.id}:{now.date()}",
                )


@due_handler(REFRESH_KIND)
async def _refresh(runtime: Runtime, session: Session, due: Due) -> None:
    """Edit every delivered copy of an alert to show who acknowledged or dismissed it.

    Runs after the fan-out of that alert has finished (else it reschedules itself), so edits never
    compete with first deliveries for Telegram's send budget.
    """
    alert_id = int(due.ref_id or 0)
    now = runtime.clock.now()
    if pending_count(session, alert_id):
        schedule_refresh(session, alert_id, now)
        return
    f = facts(session, alert_id)
    people = {u.id: u for u in session.exec(select(User))}
    for row in sent_text_messages(session, alert_id):
        person = people.get(row.user_id)
        if person is None or row.chat_id is None or row.message_id is None:
            continue
        lang = person.language
        text = alert_text(runtime.renderer, lang, f, escalation=row.part == "text:escalation")
        try:
            await runtime.notifier.edit_text(
                SentMessage(row.chat_id, row.message_id),
                text,
                alert_buttons(runtime.renderer, lang, f.alert),
            )
        except RecipientUnreachable:
            continue
