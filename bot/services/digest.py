"""The daily digest: each subscribed topic's last 24 hours, at ``DIGEST_TIME`` local time.

The schedule is a Due row (one per local date, by dedupe key), so a restart neither skips nor
doubles a digest; each person's digest is a Delivery row written before sending, so a retry after
a crash sends only what is missing.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.channels.base import Attachment, DeliveryError, RecipientUnreachable
from bot.channels.refs import MessageRef
from bot.services import identity, stored_refs
from bot.services.due import due_handler, schedule
from scanner.series import load_series
from storage.models import (
    Alert,
    Delivery,
    DeliveryStatus,
    Due,
    Subscription,
    Topic,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

DIGEST_KIND = "digest"
WINDOW = timedelta(hours=24)
RETRY_AFTER = timedelta(minutes=10)
MAX_RETRIES = 6


@dataclass(frozen=True)
class TopicDay:
    topic: Topic
    stories: int
    negative: int
    alerts: int
    counts: list[float]
    starts: list[datetime]

    @property
    def negative_share(self) -> float:
        return self.negative / self.stories if self.stories else 0.0


def next_digest_at(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The next local ``at`` strictly after ``now``, as aware UTC."""
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=tz)
    return candidate.astimezone(ZoneInfo("UTC"))


def ensure_scheduled(session: Session, now: datetime, at: time, tz: ZoneInfo) -> Due | None:
    """Make sure the next digest is scheduled (idempotent: one row per local date)."""
    when = next_digest_at(now, at, tz)
    day = when.astimezone(tz).date()
    return schedule(
        session,
        DIGEST_KIND,
        when,
        payload={"day": day.isoformat()},
        dedupe_key=f"{DIGEST_KIND}:{day.isoformat()}",
    )


def topic_days(session: Session, topics: list[Topic], now: datetime) -> dict[int, TopicDay]:
    """Each topic's last 24 hours, read from the series the scans keep (and the start-up repair
    mends). The digest does not rewrite them: a digest whose transaction had not yet seen a
    scan's articles deleted that day's buckets while the scan's detection read them, and the
    burst it had just stored was never alerted (the sandbox's Zalo drill, one run in four)."""
    ids = [t.id for t in topics if t.id is not None]
    if not ids:
        return {}
    start = now - WINDOW
    series = load_series(session, ids, start, now)
    alert_counts = dict(
        session.exec(
            select(Alert.topic_id, sa.func.count())
            .where(col(Alert.topic_id).in_(ids), col(Alert.created_at) >= start)
            .group_by(col(Alert.topic_id))
        ).all()
    )
    days = {}
    for topic in topics:
        assert topic.id is not None
        s = series.get(topic.id)
        counts = s.stories.tolist() if s is not None else []
        starts = [s.bucket_start(i) for i in range(len(s))] if s is not None else []
        days[topic.id] = TopicDay(
            topic=topic,
            stories=int(sum(counts)),
            negative=int(s.negative.sum()) if s is not None else 0,
            alerts=int(alert_counts.get(topic.id, 0)),
            counts=counts,
            starts=starts,
        )
    return days


def render_digest_chart(days: list[TopicDay], tz: ZoneInfo, title: str) -> bytes:
    """Small multiples would be unreadable on a phone: one line per topic, hourly sums."""
    figure, axis = plt.subplots(figsize=(7.0, 3.2), layout="constrained")
    for day in days:
        hourly: dict[datetime, float] = {}
        for start, count in zip(day.starts, day.counts, strict=True):
            hour = start.replace(minute=0, second=0, microsecond=0)
            hourly[hour] = hourly.get(hour, 0.0) + count
        hours = sorted(hourly)
        axis.plot(
            mdates.date2num(hours), [hourly[h] for h in hours], linewidth=1.6, label=day.topic.name
        )
    axis.set_ylim(bottom=0)
    axis.set_title(title, fontsize=11, loc="left")
    axis.grid(axis="y", alpha=0.3)
    axis.xaxis_date(tz)
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
    if days:
        axis.legend(fontsize=8, loc="upper left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def subscribers(session: Session, channel: str) -> dict[int, list[int]]:
    """Active people reachable on ``channel`` and the topics they follow."""
    rows = session.exec(
        select(User.id, Subscription.topic_id)
        .join(Subscription, col(Subscription.user_id) == col(User.id))
        .join(Topic, col(Topic.id) == col(Subscription.topic_id))
        .where(
            User.status == UserStatus.ACTIVE,
            col(User.reachable).is_(True),
            identity.has_account(channel),
            col(Topic.active).is_(True),
        )
        .order_by(col(User.id), col(Topic.name))
    ).all()
    out: dict[int, list[int]] = {}
    for user_id, topic_id in rows:
        if user_id is not None:
            out.setdefault(user_id, []).append(topic_id)
    return out


@due_handler(DIGEST_KIND)
async def fire_digest(runtime: Runtime, session: Session, due: Due) -> None:
    tz = runtime.settings.tz
    now = runtime.clock.now()
    day = date.fromisoformat(due.payload["day"])
    ordinal = day.toordinal()
    people = subscribers(session, runtime.notifier.channel)
    topics = {t.id: t for t in session.exec(select(Topic).where(col(Topic.active).is_(True)))}
    # Buckets are rebuilt in a short transaction of its own, before any message is sent: a
    # write lock must never be held across network calls (SQLite has one writer at a time).
    with runtime.db.session() as work:
        followed = {tid for tids in people.values() for tid in tids}
        facts = topic_days(work, [t for t in topics.values() if t.id in followed], now)
    charts: dict[tuple[tuple[int, ...], str], bytes] = {}
    failed = 0
    sent_before = set(
        session.exec(
            select(Delivery.user_id).where(
                Delivery.kind == DIGEST_KIND,
                Delivery.ref_id == ordinal,
                Delivery.status != DeliveryStatus.PENDING,
            )
        )
    )
    for user_id, topic_ids in people.items():
        if user_id in sent_before:
            continue
        user = session.get(User, user_id)
        to = identity.direct_chat(session, user_id, runtime.notifier.channel)
        assert user is not None and to is not None
        mine = [facts[t] for t in topic_ids if t in facts]
        lang = user.language
        key = (tuple(topic_ids), lang)
        if key not in charts:
            title = runtime.renderer.render("digest_chart_title", lang)
            charts[key] = await asyncio.to_thread(render_digest_chart, mine, tz, title)
        text = runtime.renderer.render("digest", lang, days=mine, day=day)
        try:
            sent = await runtime.notifier.send_photo(
                to, Attachment(f"digest-{day}.png", charts[key])
            )
            await runtime.notifier.send_text(to, text)
        except RecipientUnreachable as exc:
            _record(runtime, ordinal, user, DeliveryStatus.UNREACHABLE, error=str(exc))
            continue
        except DeliveryError as exc:
            if exc.permanent:
                _record(runtime, ordinal, user, DeliveryStatus.FAILED, error=str(exc))
            else:
                failed += 1
            continue
        _record(runtime, ordinal, user, DeliveryStatus.SENT, sent=sent)
    retry = int(due.payload.get("retry", 0))
    if failed and retry < MAX_RETRIES:
        # Retry only the people still pending (their Delivery rows say so), a little later.
        schedule(
            session,
            DIGEST_KIND,
            now + RETRY_AFTER,
            payload={**due.payload, "retry": retry + 1},
            dedupe_key=f"{DIGEST_KIND}:{day.isoformat()}:retry:{retry + 1}",
        )
    ensure_scheduled(session, now + timedelta(minutes=1), runtime.settings.digest_time, tz)


def _record(
    runtime: Runtime,
    ordinal: int,
    user: User,
    status: str,
    *,
    sent: MessageRef | None = None,
    error: str | None = None,
) -> None:
    """One person's digest outcome, committed at once (a retry skips them)."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        assert user.id is not None
        row = Delivery(
            kind=DIGEST_KIND,
            ref_id=ordinal,
            user_id=user.id,
            part="digest",
            status=status,
            attempts=1,
            last_error=error[:500] if error else None,
            created_at=now,
            sent_at=now if status == DeliveryStatus.SENT else None,
        )
        if sent is not None:
            stored_refs.keep_delivered(row, sent)
        session.add(row)
        if status == DeliveryStatus.UNREACHABLE:
            stored = session.get(User, user.id)
            if stored is not None:
                stored.reachable = False
