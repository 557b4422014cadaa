"""Alert fan-out through the Delivery ledger.

Every (alert, person, part) row is written before anything is sent and marked with the message
id right after, so a restart resumes exactly the unsent rows. Each person's parts go out one after
the other (chart, then text with its buttons). People are served concurrently; the channel's flood
windows are kept by its adapter's rate limiter, so the fan-out runs at the overall limit without
429s. A chart is rendered once per alert and language and uploaded once: later sends reuse its
``file_id``.

Each row is claimed right before its request leaves the process (after the flood-limit wait,
once its connection is up and the request is ready to be written whole, through
``bot.channels.base.WireClaim``): a short transaction with a conditional
``UPDATE … WHERE status = 'pending'`` sets it ``sending`` with the claimer
(``storage.liveness.BOOT``) and a lease (``claimed_until``: the longest a send can take). Two
workers can never both claim a row, and a kill during the send leaves the row ``sending``. One
rule covers every claimed row whose outcome is not known: once its claimer is gone
(``storage.liveness``) or its lease has run out, it is ``uncertain`` — maybe delivered, never
sent again — exactly as a send whose answer was lost (``OutcomeUnknown``). A person with a row
``sending`` is not served until it is settled, so their parts stay in order across a crash or a
change of leader.

Through an outage (docs/reliability.md, "Delivery through outages"): a send that failed without
reaching the channel puts off the person's whole queue (exponential backoff with jitter, never
sooner than a 429's ``retry_after``), so their parts stay in order and a sent chart is never sent
again. The budget is time, not tries: a person failing for ``DELIVERY_RETRY_MINUTES`` has the
alert's remaining parts marked failed together, and the agency's admins are told once per alert.
A send whose answer was lost after it went out may have been delivered: it is marked uncertain
and never repeated, because the Bot API cannot say which it was.

A person who blocked the bot is marked unreachable, their remaining rows are closed, and their
supervisors are told once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.channels.base import (
    Attachment,
    Button,
    ChatRef,
    ClaimBusy,
    ClaimLost,
    DeliveryError,
    OutcomeUnknown,
    RateLimited,
    RecipientUnreachable,
    SentMessage,
    WireClaim,
)
from bot.services import audit, identity, stored_refs
from bot.services.alerts import (
    ALERT_KIND,
    REFRESH_KIND,
    AlertActionError,
    AlertFacts,
    admins_of,
    base_part,
    facts,
    owed_on,
    pending_count,
    schedule_refresh,
    sent_text_messages,
    supervisors_of,
)
from bot.services.due import due_handler, schedule
from bot.services.notify import notify_payload
from bot.services.outbox import abandoned, claim_lease, claim_row, settle_claim
from bot.templating import Renderer
from scanner.charts import ChartLabels, render_chart
from scanner.trends import chart_data
from storage.liveness import BOOT
from storage.models import Alert, AlertStatus, Delivery, DeliveryStatus, Due, Topic, User

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

CONCURRENT_PEOPLE = 100
BATCH = 5000
KEPT_CHARTS = 64  # charts (a PNG of ~100 KB each) kept between runs of the deliver job
FIRST_BACKOFF = 2.0  # seconds before the first retry (the deliver job runs every 5 s anyway)
MAX_BACKOFF = 300.0  # retries keep coming at least every 5 minutes until the budget is spent
UNDELIVERED_KIND = "alert_undelivered"
NOTICE_DELAY = timedelta(minutes=1)  # gathers everyone of a fan-out who failed in one notice
NOTICE_NAMES = 20  # names listed in the notice; the count says how many more

_jitter = random.Random()
T = TypeVar("T")


@dataclass
class DeliveryReport:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    uncertain: int = 0
    deferred: int = 0
    rounds: int = 0

    @property
    def settled(self) -> int:
        """Rows this run settled for good (anything but a deferral)."""
        return self.sent + self.unreachable + self.failed + self.uncertain


def retry_delay(
    failures: int, retry_after: float | None = None, rng: random.Random = _jitter
) -> float:
    """Seconds to wait after the ``failures``-th failed send in a row.

    Exponential backoff with equal jitter (between half and all of ``FIRST_BACKOFF · 2ⁿ⁻¹``,
    capped at ``MAX_BACKOFF``), so people who failed together do not all retry at the same
    instant when the Bot API comes back; never shorter than a 429's ``retry_after`` (plus up to a
    second of jitter, so a bot-wide flood wait does not end in one burst).
    """
    ceiling = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(failures - 1, 0))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after + rng.uniform(0, 1))
    return delay


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


ChartKey = tuple[int, str, str]  # alert id, ledger part (a chart per severity), language


@dataclass
class Charts:
    """Chart bytes and uploaded file ids per (alert, part, language).

    One instance lives as long as the deliver job (it is the job's ``data``), so retries through an
    outage neither render a chart again nor upload it again; the latest ``KEPT_CHARTS`` are kept.
    Within a fan-out, the first sender of a chart uploads it; everyone else waits for that upload
    and sends its ``file_id`` (no bytes). If the upload fails, the next waiter becomes the uploader.
    """

    data: OrderedDict[ChartKey, bytes] = field(default_factory=OrderedDict)
    file_ids: OrderedDict[ChartKey, str] = field(default_factory=OrderedDict)
    uploading: dict[ChartKey, asyncio.Event] = field(default_factory=dict)
    by_channel: dict[str, Charts] = field(default_factory=dict)

    def on(self, channel: str) -> Charts:
        """The cache of one channel's uploads, for a process serving several (a Telegram
        file id means nothing to Zalo); kept as long as this one."""
        return self.by_channel.setdefault(channel, Charts())

    async def attachment(
        self, runtime: Runtime, f: AlertFacts, part: str, lang: str
    ) -> tuple[Attachment, bool]:
        """The chart to send and whether this caller is the uploader (must call ``finished``)."""
        assert f.alert.id is not None
        key = (f.alert.id, part, lang)
        while True:
            if key in self.file_ids:
                return Attachment("chart.png", file_id=self.file_ids[key]), False
            pending = self.uploading.get(key)
            if pending is None:
                self.uploading[key] = asyncio.Event()
                try:
                    if key not in self.data:
                        chart = await asyncio.to_thread(_render_chart, runtime, f, lang)
                        _keep(self.data, key, chart)
                except BaseException:
                    self.finished(key, None)
                    raise
                return Attachment(f"alert-{f.alert.id}.png", self.data[key]), True
            await pending.wait()

    def finished(self, key: ChartKey, sent: SentMessage | None) -> None:
        if sent is not None and sent.file_id and key not in self.file_ids:
            _keep(self.file_ids, key, sent.file_id)
        event = self.uploading.pop(key, None)
        if event is not None:
            event.set()


def _keep(cache: OrderedDict[ChartKey, T], key: ChartKey, value: T) -> None:
    cache[key] = value
    while len(cache) > KEPT_CHARTS:
        cache.popitem(last=False)


def _render_chart(runtime: Runtime, f: AlertFacts, lang: str) -> bytes:
    with runtime.db.session() as session:
        topic = session.get(Topic, f.topic.id)
        assert topic is not None
        alert = session.get(Alert, f.alert.id)
        data = chart_data(session, topic, runtime.clock.now(), tz=runtime.settings.tz, alert=alert)
    return render_chart(data, chart_labels(runtime.renderer, lang, f), runtime.settings.tz)


async def deliver_pending(runtime: Runtime, charts: Charts | None = None) -> DeliveryReport:
    """Send every pending alert delivery that is due; returns what happened. Safe to run again
    at any time; pass the same ``charts`` to every run (the deliver job does)."""
    report = DeliveryReport()
    charts = charts if charts is not None else Charts()
    facts_cache: dict[int, AlertFacts] = {}
    semaphore = asyncio.Semaphore(CONCURRENT_PEOPLE)
    while True:
        now = runtime.clock.now()
        report.uncertain += await asyncio.to_thread(_expire_claims, runtime)
        with runtime.db.session() as session:
            # A person with any row put off or being sent is skipped whole: their parts stay in
            # order (a row ``sending`` is another worker's, or a dead process's until its lease
            # runs out).
            waiting = select(Delivery.user_id).where(
                Delivery.kind == ALERT_KIND,
                owed_here(runtime),
                sa.or_(
                    sa.and_(
                        col(Delivery.status) == DeliveryStatus.PENDING,
                        col(Delivery.retry_at) > now,
                    ),
                    col(Delivery.status) == DeliveryStatus.SENDING,
                ),
            )
            rows = list(
                session.exec(
                    select(Delivery)
                    .where(
                        Delivery.kind == ALERT_KIND,
                        Delivery.status == DeliveryStatus.PENDING,
                        owed_here(runtime),
                        col(Delivery.user_id).not_in(waiting),
                    )
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
            accounts = identity.accounts_on(
                session, (uid for uid in people if uid is not None), runtime.notifier.channel
            )
            chats = {uid: account.direct_chat() for uid, account in accounts.items()}
        if not rows:
            return report
        report.rounds += 1
        by_person: dict[int, list[Delivery]] = defaultdict(list)
        for row in rows:
            by_person[row.user_id].append(row)

        async def serve(person: User, to: ChatRef | None, queue: list[Delivery]) -> None:
            async with semaphore:
                await _deliver_person(runtime, person, to, queue, facts_cache, charts, report)

        before = report.settled
        await asyncio.gather(
            *(serve(people[uid], chats.get(uid), q) for uid, q in by_person.items())
        )
        if report.settled == before:
            return report  # only deferrals this round: the next run retries them when due


async def _deliver_person(
    runtime: Runtime,
    person: User,
    to: ChatRef | None,
    queue: list[Delivery],
    facts_cache: dict[int, AlertFacts],
    charts: Charts,
    report: DeliveryReport,
) -> None:
    """Send the person's parts in order (to ``to``, their private chat on the notifier's
    channel); stop at the first failure that may pass."""
    if to is None:  # no account on this channel: as unreachable as a blocked bot
        _mark_unreachable(runtime, person, f"no account on {runtime.notifier.channel}")
        report.unreachable += 1
        return
    lang = person.language
    recovering = any(row.failing_since is not None for row in queue)
    given_up: set[int] = set()  # alerts whose remaining parts were just marked failed
    for row in queue:
        if row.ref_id in given_up:
            continue
        f = facts_cache[row.ref_id]
        try:
            sent = await WireClaim(partial(_claim, runtime, row)).send(
                _send_part(runtime, charts, row, f, lang, to)
            )
        except ClaimLost:
            log.info("delivery %s: claimed by another worker; leaving %s", row.id, person.id)
            return
        except ClaimBusy:  # busy past the claim's patience: nothing was sent
            log.warning("delivery %s: database busy, nothing sent; next run retries", row.id)
            report.deferred += 1
            return
        except RecipientUnreachable as exc:
            _mark_unreachable(runtime, person, str(exc), row)
            report.unreachable += 1
            return
        except OutcomeUnknown as exc:
            await asyncio.to_thread(_mark_uncertain, runtime, row, str(exc))
            report.uncertain += 1
            continue
        except DeliveryError as exc:
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            failed = await asyncio.to_thread(
                _record_failure, runtime, row, str(exc), exc.permanent, retry_after
            )
            if not failed:
                report.deferred += 1
                return
            report.failed += failed
            if not exc.permanent:
                given_up.add(row.ref_id)
            continue
        # Off the event loop: a commit per message would otherwise stall the loop and, with it,
        # the rate limiter's timing of every other send.
        await asyncio.to_thread(_mark_sent, runtime, row, sent, recovering)
        recovering = False
        report.sent += 1


async def _send_part(
    runtime: Runtime, charts: Charts, row: Delivery, f: AlertFacts, lang: str, to: ChatRef
) -> SentMessage:
    """Send one ledger row: the chart (uploaded once per alert and language) or the text."""
    if row.part.startswith("photo:"):
        attachment, uploader = await charts.attachment(runtime, f, row.part, lang)
        caption = runtime.renderer.render("alert_caption", lang, f=f, a=f.alert)
        key = (row.ref_id, row.part, lang)
        try:
            sent = await runtime.notifier.send_photo(to, attachment, caption)
        except BaseException:
            if uploader:
                charts.finished(key, None)
            raise
        if uploader:
            charts.finished(key, sent)
        return sent
    escalation = base_part(row.part) == "text:escalation"
    text = alert_text(runtime.renderer, lang, f, escalation=escalation)
    return await runtime.notifier.send_text(
        to, text, alert_buttons(runtime.renderer, lang, f.alert)
    )


def _claim(runtime: Runtime, row: Delivery) -> None:
    """Claim the row for the request about to leave, if it is still ``pending``, with a lease
    (``outbox.claim_row``: of two workers, or two runs in one process, only one sends)."""
    now = runtime.clock.now()
    claim_row(
        runtime,
        sa.update(Delivery)
        .where(col(Delivery.id) == row.id, col(Delivery.status) == DeliveryStatus.PENDING)
        .values(
            status=DeliveryStatus.SENDING,
            claimed_by=BOOT,
            claimed_until=now + claim_lease(runtime),
        ),
        f"delivery {row.id}",
    )


def _expire_claims(runtime: Runtime) -> int:
    """Rows left ``sending`` by a process that died during the send (``storage.liveness``: at
    once after a restart, rather than a lease later) or past their lease (the claimer hung):
    the message may have gone out. They become ``uncertain`` and are never sent again; returns
    how many."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        claimed = session.exec(
            select(Delivery).where(
                Delivery.kind == ALERT_KIND,
                Delivery.status == DeliveryStatus.SENDING,
                sa.or_(
                    col(Delivery.claimed_until) <= now,
                    col(Delivery.claimed_by).is_(None),
                    col(Delivery.claimed_by) != BOOT,
                ),
            )
        ).all()
        settled = 0
        for row in claimed:
            if abandoned(session, row, now) is None:
                continue  # in a live worker's hands, within its lease
            if settle_claim(
                session,
                row,
                status=DeliveryStatus.UNCERTAIN,
                attempts=col(Delivery.attempts) + 1,
                last_error=f"claimed by {row.claimed_by}, which never settled it",
                retry_at=None,
            ):
                settled += 1
                log.warning(
                    "delivery %s: claimed by %s and never settled; outcome unknown, not repeated",
                    row.id,
                    row.claimed_by,
                )
        return settled


def _mark_sent(runtime: Runtime, row: Delivery, sent: SentMessage, recovering: bool) -> None:
    """Record the message; a person who was failing is healthy again, so their other rows lose
    their wait and start a fresh budget."""
    with runtime.db.session() as session:
        stored = session.get(Delivery, row.id)
        assert stored is not None
        stored.status = DeliveryStatus.SENT
        stored_refs.keep_delivered(stored, sent)
        stored.attempts += 1
        stored.sent_at = runtime.clock.now()
        stored.retry_at = None
        if recovering:
            _update_owed(runtime, session, row.user_id, retry_at=None, failing_since=None)


def owed_here(runtime: Runtime) -> Any:
    """A ``where`` clause: ledger rows this process sends, those owed on its notifier's channel
    (a linked person's rows on another channel are that channel's bot's), and rows planned
    before channels were chosen, which any channel sends."""
    return owed_on(runtime.notifier.channel)


def _update_owed(runtime: Runtime, session: Session, user_id: int, **values: Any) -> None:
    """Set ``values`` on every alert row still owed to the person on this channel (their queue
    here is one unit)."""
    session.execute(
        sa.update(Delivery)
        .where(
            col(Delivery.user_id) == user_id,
            col(Delivery.kind) == ALERT_KIND,
            col(Delivery.status) == DeliveryStatus.PENDING,
            owed_here(runtime),
        )
        .values(**values)
    )


def _mark_uncertain(runtime: Runtime, row: Delivery, error: str) -> None:
    """The send went out and its answer was lost: maybe delivered. Never sent again (a second
    copy is the failure this prevents); counted in /status."""
    log.warning("delivery %s: outcome unknown, not repeated: %s", row.id, error)
    with runtime.db.session() as session:
        stored = session.get(Delivery, row.id)
        assert stored is not None
        stored.status = DeliveryStatus.UNCERTAIN
        stored.attempts += 1
        stored.last_error = error[:500]
        stored.retry_at = None


def _record_failure(
    runtime: Runtime, row: Delivery, error: str, permanent: bool, retry_after: float | None
) -> int:
    """Count a failed send; returns how many rows were given up (0: put off, to be retried).

    A refusal (``permanent``) fails that part at once. Anything else puts off every row owed to
    the person until ``retry_delay`` has passed, and starts their budget if it is not running;
    once they have been failing for ``DELIVERY_RETRY_MINUTES``, the alert's remaining parts for
    them fail together and its undelivered notice is scheduled (one per alert).
    """
    now = runtime.clock.now()
    budget = timedelta(minutes=runtime.settings.delivery_retry_minutes)
    with runtime.db.session() as session:
        stored = session.get(Delivery, row.id)
        assert stored is not None
        stored.status = DeliveryStatus.PENDING  # the channel answered: it did not act
        stored.claimed_until = None
        stored.attempts += 1
        stored.last_error = error[:500]
        if permanent:
            doomed = [stored]
        elif now - (stored.failing_since or now) < budget:
            delay = timedelta(seconds=retry_delay(stored.attempts, retry_after))
            _update_owed(
                runtime,
                session,
                row.user_id,
                retry_at=now + delay,
                failing_since=sa.func.coalesce(col(Delivery.failing_since), now),
            )
            return 0
        else:
            doomed = list(
                session.exec(
                    select(Delivery).where(
                        Delivery.kind == ALERT_KIND,
                        Delivery.ref_id == row.ref_id,
                        Delivery.user_id == row.user_id,
                        Delivery.status == DeliveryStatus.PENDING,
                        owed_here(runtime),
                    )
                )
            )
        for failed in doomed:
            failed.status = DeliveryStatus.FAILED
            failed.retry_at = None
            failed.failing_since = failed.failing_since or now
        log.error(
            "alert %s: %s part(s) for user %s failed: %s",
            row.ref_id,
            len(doomed),
            row.user_id,
            error,
        )
        if any(failed.part.startswith("text:") for failed in doomed):
            schedule(
                session,
                UNDELIVERED_KIND,
                now + NOTICE_DELAY,
                ref_id=row.ref_id,
                dedupe_key=f"{UNDELIVERED_KIND}:{row.ref_id}",
            )
        return len(doomed)


def _mark_unreachable(
    runtime: Runtime, person: User, reason: str, refused: Delivery | None = None
) -> None:
    """Close the person's pending rows (and the one refused, if a send was refused) and tell
    their supervisors, once per transition."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        user = session.get(User, person.id)
        assert user is not None and user.id is not None
        for row in session.exec(
            select(Delivery).where(
                Delivery.user_id == user.id,
                owed_here(runtime),
                sa.or_(
                    col(Delivery.status) == DeliveryStatus.PENDING,
                    col(Delivery.id) == (refused.id if refused is not None else None),
                ),
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
    compete with first deliveries for the channel's send budget.
    """
    alert_id = int(due.ref_id or 0)
    now = runtime.clock.now()
    if pending_count(session, alert_id, runtime.notifier.channel):
        schedule_refresh(session, alert_id, now)
        return
    f = facts(session, alert_id)
    people = {u.id: u for u in session.exec(select(User))}
    for row in sent_text_messages(session, alert_id):
        person = people.get(row.user_id)
        message = stored_refs.delivered(row)
        if person is None or message is None or message.chat.channel != runtime.notifier.channel:
            continue  # a copy on another channel is that channel's bot's to refresh
        lang = person.language
        escalation = base_part(row.part) == "text:escalation"
        text = alert_text(runtime.renderer, lang, f, escalation=escalation)
        try:
            await runtime.notifier.edit_text(
                message,
                text,
                alert_buttons(runtime.renderer, lang, f.alert),
            )
        except RecipientUnreachable:
            continue


@due_handler(UNDELIVERED_KIND)
async def _report_undelivered(runtime: Runtime, session: Session, due: Due) -> None:
    """Tell the agency's admins, once per alert, who never got it: one ``notify`` row each.

    Fired a minute after the first person's parts failed, so everyone of that fan-out who failed
    together is in the one notice; anyone failing later is still in /status.
    """
    alert_id = int(due.ref_id or 0)
    try:
        f = facts(session, alert_id)
    except AlertActionError:
        return  # the alert is gone
    names = list(
        session.exec(
            select(User.full_name)
            .join(Delivery, col(Delivery.user_id) == col(User.id))
            .where(
                Delivery.kind == ALERT_KIND,
                Delivery.ref_id == alert_id,
                Delivery.status == DeliveryStatus.FAILED,
                col(Delivery.part).startswith("text:"),
            )
            .order_by(col(User.full_name))
            .distinct()
        )
    )
    if not names:
        return
    now = runtime.clock.now()
    global_admins = identity.global_admins(runtime.settings, runtime.notifier.channel)
    admins = admins_of(session, f.agency.id or 0, global_admins)
    for admin in admins:
        assert admin.id is not None
        schedule(
            session,
            "notify",
            now,
            payload=notify_payload(
                admin.id,
                "alert_undelivered",
                alert_id=alert_id,
                topic=f.topic.name,
                names=names[:NOTICE_NAMES],
                count=len(names),
                seconds=runtime.settings.delivery_retry_minutes * 60,
            ),
            dedupe_key=f"{UNDELIVERED_KIND}:{alert_id}:{admin.id}",
        )
    audit.record(
        session,
        action="alert.undelivered",
        subject=f"alert:{alert_id}",
        after={"people": len(names), "admins_told": len(admins)},
        at=now,
    )
    if not admins:
        log.error(
            "alert %s reached nobody of %s people and no admin can be told", alert_id, len(names)
        )
