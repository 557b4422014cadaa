"""SQLModel tables: the single source of truth for CrisisDesk.

Every entity of the design lives here so that migrations have one home and every issue builds on
the same names. Conventions:

* timestamps are timezone-aware UTC (``UtcDateTime``), never naive, on SQLite and PostgreSQL alike;
* enumerations are stored as short strings (``StrEnum`` values) so that rows stay readable in
  ``psql``/``sqlite3`` and new members need no migration;
* free-form structured data (conversation state, audit snapshots, alert details) is JSON;
* ``owner`` says who may change a row: ``toml`` rows are synced from the config file and are
  read-only in chat, ``chat`` rows belong to the database.
* the integer key (and, where a row records its making, ``created_at``) comes from one base,
  ``_Row`` or ``_DatedRow``, so every table means the same by them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

#: How SQLAlchemy's SQLite DATETIME stores a time unless told otherwise, and the same text by
#: position (:meth:`UtcDateTime.bind_processor`).
_SQLITE_FORMAT = sqlite.DATETIME()._storage_format
_SQLITE_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


class UtcDateTime(TypeDecorator[datetime]):
    """A DateTime that always returns aware UTC datetimes.

    SQLite has no time zone type and hands back naive values; normalising here means no service
    ever compares naive with aware datetimes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use bot.clock")
        if value.tzinfo is UTC:
            return value  # nearly every time written: astimezone would only copy it
        return value.astimezone(UTC)

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the UTC time written at once as the text SQLite's DATETIME stores
        (``YYYY-MM-DD HH:MM:SS.ffffff``, no zone), by a positional ``%`` format: the same text
        as the dialect's own format over a dict of seven named fields, at about half the cost
        (a scan stores two to four times per row). Other dialects, or another storage format,
        take SQLAlchemy's own path.

        The processor remembers the last value it formatted and its text: a scan batch writes
        one fetch time (the same object) into every article and story row, so most values are
        the last one again. The memo is one ``(value, text)`` tuple, replaced whole, so a
        thread sharing the processor reads a matching pair; a datetime is immutable, so the
        same object always has the same text."""
        impl = dialect.type_descriptor(self.impl_instance)
        if dialect.name != "sqlite" or getattr(impl, "_storage_format", None) != _SQLITE_FORMAT:
            return super().bind_processor(dialect)
        convert = self.process_bind_param
        last: tuple[datetime | None, str | None] = (None, None)

        def process(value: datetime | None) -> str | None:
            nonlocal last
            seen, text = last
            if value is seen:
                return text
            t = convert(value, dialect)
            if t is None:
                return None
            text = _SQLITE_TEXT % (
                t.year,
                t.month,
                t.day,
                t.hour,
                t.minute,
                t.second,
                t.microsecond,
            )
            last = (value, text)
            return text

        return process

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    """A ``UtcDateTime`` column for ``Field(sa_column=...)``."""
    return sa.Column(UtcDateTime(), nullable=nullable, index=index)


def json_column(*, nullable: bool = False, default: Any = None) -> Any:
    """A portable JSON column (JSONB is not needed: we never query inside it)."""
    return sa.Column(sa.JSON(), nullable=nullable, default=default)


def _now() -> datetime:
    # Only a fallback for rows created outside services; services pass clock.now().
    return datetime.now(UTC)


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    SPOKESPERSON = "spokesperson"
    MEMBER = "member"


class UserStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REJECTED = "rejected"


class Owner(StrEnum):
    TOML = "toml"
    CHAT = "chat"


class Sensitivity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertKind(StrEnum):
    VOLUME_BURST = "volume_burst"
    SLOW_BUILDUP = "slow_buildup"
    NEGATIVE_TURN = "negative_turn"
    POSITIVE_TURN = "positive_turn"
    EMERGING = "emerging"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"
    CLOSED = "closed"


class CrisisStatus(StrEnum):
    OPEN = "open"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class CrisisRole(StrEnum):
    LEAD = "lead"
    DRAFTER = "drafter"
    APPROVER = "approver"
    LIAISON = "liaison"
    MEMBER = "member"


class DraftStatus(StrEnum):
    DRAFTING = "drafting"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"
    DISCARDED = "discarded"
    SUPERSEDED = "superseded"  # a newer version replaced it before a decision


class Decision(StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    REJECT = "reject"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    UNCERTAIN = "uncertain"  # sent, but the answer was lost: maybe delivered, never re-sent
    SENDING = "sending"  # claimed: its request may be on its way to the channel


class RoomKind(StrEnum):
    FORUM_TOPIC = "forum_topic"
    POOLED_GROUP = "pooled_group"
    CREATED_GROUP = "created_group"  # made by the channel for one crisis (a Zalo OA group)


class RoomState(StrEnum):
    FREE = "free"
    IN_USE = "in_use"
    CLOSED = "closed"
    GONE = "gone"


class _Row(SQLModel):
    """A table addressed by an integer surrogate key, as most are."""

    id: int | None = Field(default=None, primary_key=True)


class _DatedRow(_Row):
    """A keyed table that also records when each row was made.

    ``sa_type`` rather than ``utc_column()``: a base's ``sa_column`` would be one Column object
    shared by every table, which SQLAlchemy refuses; ``sa_type`` gives each table its own.
    """

    created_at: datetime = Field(default_factory=_now, sa_type=UtcDateTime, nullable=False)


# --------------------------------------------------------------------------- organisation


class Agency(_DatedRow, table=True):
    """A ministry, department or province; carries its own response policy."""

    code: str = Field(index=True, unique=True, max_length=32)
    name: str = Field(max_length=255)
    # The agency's own forum hub for crisis rooms, on ``hub_channel`` (both set or both None).
    hub_channel: str | None = Field(default=None, max_length=16)
    hub_chat_id: str | None = Field(default=None, max_length=64)
    deadline_hours: float = 24.0
    approvals_required: int = 1
    approval_pin: bool = False
    public_channel: str | None = Field(default=None, max_length=255)
    # The agency's verified Zalo Official Account, whose app (secrets in the environment, tokens
    # in ``zalo_oa_token``) creates its crisis rooms as Zalo groups; ``zalo_oa_assets`` are the
    # GMF quota asset ids it may use, comma-separated (each open group holds one).
    zalo_oa_app_id: str | None = Field(default=None, max_length=32)
    zalo_oa_assets: str | None = Field(default=None, max_length=1000)
    owner: str = Field(default=Owner.TOML, max_length=8)


class User(_DatedRow, table=True):
    """A person known to the bot; their accounts on each channel are ``ChannelIdentity`` rows."""

    username: str | None = Field(default=None, max_length=64, index=True)
    full_name: str = Field(default="", max_length=255)
    phone: str | None = Field(default=None, max_length=32)
    # True when the number was typed on a channel that cannot vouch for it (no contact
    # sharing): the verifier is told to check it (docs/architecture.md, "Typed phones").
    phone_typed: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    role: str = Field(default=Role.MEMBER, max_length=16)
    requested_role: str | None = Field(default=None, max_length=16)
    status: str = Field(default=UserStatus.PENDING, max_length=16, index=True)
    language: str = Field(default="vi", max_length=8)
    reachable: bool = True
    pin_hash: str | None = Field(default=None, max_length=255)
    # The one channel alerts reach them on (``bot.services.linking``); None: every channel they
    # have an account on.
    alert_channel: str | None = Field(default=None, max_length=16)
    updated_at: datetime = Field(default_factory=_now, sa_column=utc_column(nullable=False))


class ChannelIdentity(_DatedRow, table=True):
    """Who a person is on one messenger: the channel's own id for them, kept as a string.

    People are addressed through these rows, never through a per-channel column on ``User``,
    so adding a messenger adds rows, not columns. One identity per person and channel: a
    direct message on a channel goes to exactly one account.
    """

    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id"),
        sa.UniqueConstraint("user_id", "channel"),
    )

    # A person's accounts go with them.
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64)


class RoomIdentity(_Row, table=True):
    """Who a person is inside one room provider's own id space, where that differs from their
    direct-message id on the same channel.

    A Zalo Official Account knows a person by an id scoped to that OA (``scope`` = the OA's
    app id), not by the id the Zalo bot knows them by, so the rooms it creates must be given
    this id. It is learnt when the person types a linking code into the provider's chat
    (``bot.services.linking.redeem_in_scope``). One id per person and scope; an id belongs to
    one person.
    """

    __tablename__ = "room_identity"
    __table_args__ = (
        sa.UniqueConstraint("channel", "scope", "external_id"),
        sa.UniqueConstraint("user_id", "channel", "scope"),
    )

    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=16)
    scope: str = Field(max_length=64)
    external_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class LinkCode(_Row, table=True):
    """A one-time code linking a second messenger account to a person (``bot.services.linking``).

    Only the code's SHA-256 is kept: the code itself is shown once, on the channel it was asked
    on, and must be typed on another one before ``expires_at``; ``used_at`` makes it single-use.
    """

    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=16)  # where it was asked for (it is typed elsewhere)
    code_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=utc_column())


class Invite(_DatedRow, table=True):
    """A single-use registration code that skips approval."""

    code: str = Field(unique=True, index=True, max_length=64)
    role: str = Field(max_length=16)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))
    used_by_id: int | None = Field(default=None, foreign_key="user.id")
    used_at: datetime | None = Field(default=None, sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column())


# --------------------------------------------------------------------------- media watch


class Topic(_DatedRow, table=True):
    """A watched subject: a boolean query over article text, owned by an agency."""

    __table_args__ = (sa.UniqueConstraint("agency_id", "name"),)

    agency_id: int = Field(foreign_key="agency.id", index=True)
    name: str = Field(max_length=255)
    query: str
    sensitivity: str = Field(default=Sensitivity.MEDIUM, max_length=8)
    owner: str = Field(default=Owner.CHAT, max_length=8)
    active: bool = True


class Subscription(_DatedRow, table=True):
    """A person following a topic; ``muted_until`` silences it for a while."""

    __table_args__ = (sa.UniqueConstraint("user_id", "topic_id"),)

    user_id: int = Field(foreign_key="user.id", index=True)
    topic_id: int = Field(foreign_key="topic.id", index=True)
    muted_until: datetime | None = Field(default=None, sa_column=utc_column())


class Source(_DatedRow, table=True):
    """A news feed, with its HTTP cache validators and health."""

    name: str = Field(max_length=255)
    outlet: str = Field(max_length=255, index=True)
    url: str = Field(unique=True, max_length=2048)
    owner: str = Field(default=Owner.CHAT, max_length=8)
    active: bool = True
    etag: str | None = Field(default=None, max_length=512)
    last_modified: str | None = Field(default=None, max_length=128)
    last_fetched_at: datetime | None = Field(default=None, sa_column=utc_column())
    last_success_at: datetime | None = Field(default=None, sa_column=utc_column())
    consecutive_failures: int = 0
    last_error: str | None = None
    next_fetch_after: datetime | None = Field(default=None, sa_column=utc_column())


class Story(_Row, table=True):
    """A cluster of syndicated copies of one story across outlets."""

    title: str
    first_seen_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    last_seen_at: datetime = Field(sa_column=utc_column(nullable=False))
    article_count: int = 1
    outlet_count: int = 1
    sentiment: float = 0.0
    sentiment_label: str = Field(default="neutral", max_length=8)


class Article(_Row, table=True):
    """One fetched item, deduplicated by canonical URL and clustered into a Story."""

    canonical_url: str = Field(unique=True, max_length=2048)
    url: str = Field(max_length=2048)
    # Not indexed: no query looks articles up by source (migration 0013).
    source_id: int | None = Field(default=None, foreign_key="source.id")
    outlet: str = Field(default="", max_length=255)
    title: str
    summary: str = ""
    published_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    fetched_at: datetime = Field(sa_column=utc_column(nullable=False))
    fingerprint: str = Field(default="", max_length=128, index=True)
    sentiment: float = 0.0
    sentiment_label: str = Field(default="neutral", max_length=8)
    story_id: int | None = Field(default=None, foreign_key="story.id", index=True)


class ArticleTopic(SQLModel, table=True):
    """Which topics an article matched, with the match weight (title hits count more) and the
    article's sentiment for that topic: scored without the topic's own terms, since a crisis
    topic's name ("sạt lở") is its subject, not a judgement. ``None`` on rows stored before
    it was kept; readers fall back to the story's or the article's label."""

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    topic_id: int = Field(foreign_key="topic.id", primary_key=True, index=True)
    weight: float = 1.0
    sentiment: float | None = None
    sentiment_label: str | None = Field(default=None, max_length=8)


class SeriesBucket(_Row, table=True):
    """Per-topic time bucket of distinct stories and outlets, the input of the detectors."""

    __table_args__ = (sa.UniqueConstraint("topic_id", "bucket_start"),)

    topic_id: int = Field(foreign_key="topic.id", index=True)
    bucket_start: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    stories: float = 0.0
    outlets: int = 0
    negative: int = 0
    positive: int = 0
    articles: int = 0


class Alert(_DatedRow, table=True):
    """A detected trend. One developing story keeps one alert, updated as it escalates."""

    topic_id: int = Field(foreign_key="topic.id", index=True)
    kind: str = Field(max_length=24)
    severity: str = Field(default=Severity.INFO, max_length=12)
    status: str = Field(default=AlertStatus.OPEN, max_length=16, index=True)
    dedupe_key: str = Field(max_length=128, index=True)
    window_start: datetime = Field(sa_column=utc_column(nullable=False))
    window_end: datetime = Field(sa_column=utc_column(nullable=False))
    volume: float = 0.0
    baseline: float = 0.0
    score: float = 0.0
    outlets: int = 0
    negative_share: float = 0.0
    forecast: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(default=dict))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(default=dict))
    acknowledged_by_id: int | None = Field(default=None, foreign_key="user.id")
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=_now, sa_column=utc_column(nullable=False))


# --------------------------------------------------------------------------- crisis work


class Room(_DatedRow, table=True):
    """Where a task force meets: a forum topic in a hub, a pooled group, or a group the channel
    created for the crisis."""

    kind: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    chat_id: str = Field(max_length=64, index=True)
    thread_id: str | None = Field(default=None, max_length=64)
    title: str = Field(default="", max_length=255)
    state: str = Field(default=RoomState.FREE, max_length=8, index=True)
    invite_link: str | None = Field(default=None, max_length=255)
    crisis_id: int | None = Field(default=None, foreign_key="crisis.id")


class Crisis(_DatedRow, table=True):
    """A task force and the facts it keeps straight until it is resolved."""

    agency_id: int = Field(foreign_key="agency.id", index=True)
    title: str = Field(max_length=255)
    severity: str = Field(default=Severity.WARNING, max_length=12)
    status: str = Field(default=CrisisStatus.OPEN, max_length=12, index=True)
    alert_id: int | None = Field(default=None, foreign_key="alert.id")
    topic_id: int | None = Field(default=None, foreign_key="topic.id")
    lead_id: int | None = Field(default=None, foreign_key="user.id")
    # The room (``bot.channels.refs.ChatRef``) and the pinned brief in it, in the channel's ids.
    room_channel: str | None = Field(default=None, max_length=16)
    room_chat_id: str | None = Field(default=None, max_length=64)
    room_thread_id: str | None = Field(default=None, max_length=64)
    invite_link: str | None = Field(default=None, max_length=255)
    brief_message_id: str | None = Field(default=None, max_length=64)
    detected_at: datetime = Field(sa_column=utc_column(nullable=False))
    deadline_at: datetime = Field(sa_column=utc_column(nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=utc_column())


class CrisisMember(_Row, table=True):
    """A person convened to a crisis, with their role and answer."""

    __table_args__ = (sa.UniqueConstraint("crisis_id", "user_id"),)

    crisis_id: int = Field(foreign_key="crisis.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    role: str = Field(default=CrisisRole.MEMBER, max_length=12)
    state: str = Field(default="invited", max_length=12)  # invited | joined | declined | removed
    invited_at: datetime | None = Field(default=None, sa_column=utc_column())
    answered_at: datetime | None = Field(default=None, sa_column=utc_column())


class Task(_DatedRow, table=True):
    crisis_id: int = Field(foreign_key="crisis.id", index=True)
    title: str
    owner_id: int | None = Field(default=None, foreign_key="user.id")
    due_at: datetime | None = Field(default=None, sa_column=utc_column())
    done_at: datetime | None = Field(default=None, sa_column=utc_column())
    created_by_id: int | None = Field(default=None, foreign_key="user.id")


class TimelineEvent(_Row, table=True):
    """What happened in a crisis, by whom and when (shown by /timeline, used in reports)."""

    crisis_id: int = Field(foreign_key="crisis.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    kind: str = Field(max_length=32)
    text: str = ""
    data: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(default=dict))
    at: datetime = Field(sa_column=utc_column(nullable=False, index=True))


class Draft(_DatedRow, table=True):
    """One version of a press-response statement; each edit is a new row (version + 1)."""

    __table_args__ = (sa.UniqueConstraint("crisis_id", "number", "version"),)

    crisis_id: int = Field(foreign_key="crisis.id", index=True)
    number: int = 1  # the statement's number within the crisis; versions share it
    template: str = Field(max_length=64)
    language: str = Field(default="vi", max_length=8)
    version: int = 1
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(default=dict))
    body: str = ""
    body_sha256: str = Field(default="", max_length=64)
    status: str = Field(default=DraftStatus.DRAFTING, max_length=20, index=True)
    author_id: int | None = Field(default=None, foreign_key="user.id")
    submitted_at: datetime | None = Field(default=None, sa_column=utc_column())
    published_at: datetime | None = Field(default=None, sa_column=utc_column())


class Approval(_Row, table=True):
    """An approver's decision on one exact draft version (bound to its SHA-256)."""

    __table_args__ = (sa.UniqueConstraint("draft_id", "approver_id"),)

    draft_id: int = Field(foreign_key="draft.id", index=True)
    approver_id: int = Field(foreign_key="user.id")
    body_sha256: str = Field(max_length=64)
    decision: str = Field(max_length=20)
    comment: str = ""
    at: datetime = Field(sa_column=utc_column(nullable=False))


# --------------------------------------------------------------------------- plumbing


class AuditEvent(_Row, table=True):
    """Append-only record of every state change and every refused action."""

    actor_id: int | None = Field(default=None, foreign_key="user.id")
    actor_ref: str = Field(default="", max_length=64)  # e.g. "tg:123" for unknown people
    action: str = Field(max_length=64, index=True)
    subject: str = Field(default="", max_length=128, index=True)  # e.g. "user:5"
    before: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    at: datetime = Field(sa_column=utc_column(nullable=False, index=True))


class Delivery(_DatedRow, table=True):
    """Ledger of messages owed to people: written before sending, marked after."""

    __table_args__ = (sa.UniqueConstraint("kind", "ref_id", "user_id", "part"),)

    kind: str = Field(max_length=24)  # e.g. alert, escalation, digest
    ref_id: int = Field(index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    # An alert's parts owed on a person's second channel carry it: ``text:warning@zalo``.
    part: str = Field(default="text", max_length=40)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=12, index=True)
    # The channel an alert row is owed on (set when planned), and the sent message
    # (``bot.channels.refs.MessageRef``), to edit it later.
    channel: str | None = Field(default=None, max_length=16)
    chat_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = Field(default=None, sa_column=utc_column())
    # Through an outage: not before ``retry_at``; given up once failing longer than the budget.
    retry_at: datetime | None = Field(default=None, sa_column=utc_column())
    failing_since: datetime | None = Field(default=None, sa_column=utc_column())
    # While ``sending``: which process claimed the row and until when its send can still finish
    # (an alert row found ``sending`` after that is an uncertain outcome, never sent again).
    claimed_by: str | None = Field(default=None, max_length=32)
    claimed_until: datetime | None = Field(default=None, sa_column=utc_column())


class Due(_Row, table=True):
    """Something to do at a time: the schedule itself, fired by the tick job."""

    kind: str = Field(max_length=48, index=True)
    ref_id: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(default=dict))
    due_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    done_at: datetime | None = Field(default=None, sa_column=utc_column())
    attempts: int = 0
    last_error: str | None = None
    dedupe_key: str | None = Field(default=None, max_length=128, unique=True)


class ReceivedUpdate(SQLModel, table=True):
    """A Telegram update taken by one worker. Behind a round-robin proxy the same update can
    reach two workers (Telegram re-delivers one whose answer was slow); the first to insert its
    id handles it, the other drops it. Kept for two days: Telegram gives up after one."""

    update_id: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    received_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))


class SendSlot(SQLModel, table=True):
    """One slot of the bot's overall send budget taken by a worker (``storage.send_budget``;
    PostgreSQL only): a number of 1/29.5 s since the epoch by the database's clock, the chat it
    went to (a chat's windows are counted from these) and the worker that booked it."""

    slot: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    chat_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    worker: int | None = Field(default=None, sa_type=sa.BigInteger)  # the booking process's mark


class ConversationState(_Row, table=True):
    """A half-finished multi-step conversation (registration, filling a draft)."""

    __table_args__ = (sa.UniqueConstraint("channel", "chat_ref", "user_ref", "flow"),)

    channel: str = Field(default="telegram", max_length=16)
    chat_ref: str = Field(max_length=64)
    user_ref: str = Field(max_length=64)
    flow: str = Field(max_length=32)
    step: str = Field(max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(default=dict))
    updated_at: datetime = Field(default_factory=_now, sa_column=utc_column(nullable=False))


class Setting(SQLModel, table=True):
    """Small operational key/values the app itself maintains (e.g. last scan summary)."""

    key: str = Field(primary_key=True, max_length=64)
    value: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(default=dict))
    updated_at: datetime = Field(default_factory=_now, sa_column=utc_column(nullable=False))


class ZaloOaToken(SQLModel, table=True):
    """The OAuth tokens of one Zalo Official Account app, rotated in place.

    Zalo's refresh tokens are single-use: every refresh returns a new pair and the old refresh
    token stops working. Several workers share this row and refresh under its lock, so the
    token used is always the latest; ``generation`` counts the rotations.
    """

    __tablename__ = "zalo_oa_token"

    app_id: str = Field(primary_key=True, max_length=64)
    access_token: str = Field(default="", sa_type=sa.Text)
    refresh_token: str = Field(sa_type=sa.Text)
    access_expires_at: datetime | None = Field(default=None, sa_column=utc_column())
    generation: int = 0
    updated_at: datetime = Field(default_factory=_now, sa_column=utc_column(nullable=False))


@sa.event.listens_for(AuditEvent, "before_update")
@sa.event.listens_for(AuditEvent, "before_delete")
def _audit_is_append_only(_mapper: Any, _connection: Any, target: AuditEvent) -> None:
    """The audit log is evidence; the ORM refuses to change or delete a written event."""
    raise PermissionError(f"audit event {target.id} is append-only")
