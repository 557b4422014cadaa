"""Sync the TOML's agencies, topics and sources into TOML-owned rows.

Idempotent: running it twice changes nothing the second time. Rows created in chat
(``owner = chat``) are never touched; when a TOML entry collides with one, the chat row wins and the
collision is reported so the operator can rename one of them. A topic or source that disappears
from the TOML is deactivated, not deleted, because alerts and articles still point at it.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlmodel import Session, select

from storage.db import Database
from storage.lock import DatabaseLock
from storage.migrate import upgrade
from storage.models import Agency, Owner, Source, Topic
from storage.receive_lock import ReceiveLock

log = logging.getLogger(__name__)


# What sync reads of the settings, as protocols: storage sits below bot/ and never imports its
# config; ``bot.config.Settings`` (and its ``AgencyConfig``…) fit these as they are.


class AgencyEntry(Protocol):
    @property
    def code(self) -> str: ...

    def model_dump(self) -> dict[str, Any]:
        """The agency's columns by name."""
        ...


class TopicEntry(Protocol):
    @property
    def agency(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def sensitivity(self) -> str: ...


class SourceEntry(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def outlet(self) -> str: ...
    @property
    def url(self) -> str: ...


class ConfigEntries(Protocol):
    """The TOML's agencies, topics and sources."""

    @property
    def agencies(self) -> Sequence[AgencyEntry]: ...
    @property
    def topics(self) -> Sequence[TopicEntry]: ...
    @property
    def sources(self) -> Sequence[SourceEntry]: ...


class DatabaseConfig(ConfigEntries, Protocol):
    """The entries and where the database is."""

    @property
    def effective_database_url(self) -> str: ...


@dataclass
class SyncReport:
    created: dict[str, int] = field(default_factory=lambda: {"agency": 0, "topic": 0, "source": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"agency": 0, "topic": 0, "source": 0})
    deactivated: dict[str, int] = field(default_factory=lambda: {"topic": 0, "source": 0})
    conflicts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return (
            any(self.created.values())
            or any(self.updated.values())
            or any(self.deactivated.values())
        )

    def describe(self) -> str:
        parts = [
            f"{kind}s: +{self.created[kind]} ~{self.updated[kind]}"
            + (f" -{self.deactivated[kind]}" if kind in self.deactivated else "")
            for kind in ("agency", "topic", "source")
        ]
        text = "config synced (" + ", ".join(parts) + ")"
        if self.conflicts:
            text += "; kept chat-owned rows: " + "; ".join(self.conflicts)
        return text


def _assign(row: object, values: dict[str, object]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


_K = TypeVar("_K", bound=Hashable)
_Owned = TypeVar("_Owned", Agency, Topic, Source)
_Retired = TypeVar("_Retired", Topic, Source)


def _upsert(
    session: Session,
    report: SyncReport,
    kind: str,
    label: str,
    row: _Owned | None,
    model: type[_Owned],
    values: dict[str, object],
    **identity: object,
) -> _Owned:
    """One TOML entry of ``kind``: a new TOML-owned ``model`` row of ``identity`` and
    ``values``, the chat-owned ``row`` kept as a conflict (reported by ``label``), or the
    TOML-owned ``row`` brought up to ``values``."""
    if row is None:
        row = model(owner=Owner.TOML, **identity, **values)  # type: ignore[arg-type]
        session.add(row)
        report.created[kind] += 1
    elif row.owner != Owner.TOML:
        report.conflicts.append(f"{kind} {label}")
    elif _assign(row, values):
        report.updated[kind] += 1
    return row


def _deactivate(report: SyncReport, kind: str, rows: dict[_K, _Retired], wanted: set[_K]) -> None:
    """TOML-owned rows of ``kind`` the TOML no longer names: inactive, since alerts and
    articles still point at them."""
    for key, row in rows.items():
        if row.owner == Owner.TOML and row.active and key not in wanted:
            row.active = False
            report.deactivated[kind] += 1


def sync_config(session: Session, settings: ConfigEntries) -> SyncReport:
    """Make the TOML-owned rows match ``settings``; returns what changed."""
    report = SyncReport()
    agencies = {a.code: a for a in session.exec(select(Agency)).all()}
    for conf in settings.agencies:
        agencies[conf.code] = _upsert(
            session,
            report,
            "agency",
            conf.code,
            agencies.get(conf.code),
            Agency,
            conf.model_dump(),
        )
    session.flush()

    topics = {(t.agency_id, t.name): t for t in session.exec(select(Topic)).all()}
    wanted_topics: set[tuple[int, str]] = set()
    for tconf in settings.topics:
        agency_id = agencies[tconf.agency].id
        assert agency_id is not None  # flushed above
        key = (agency_id, tconf.name)
        wanted_topics.add(key)
        _upsert(
            session,
            report,
            "topic",
            f"{tconf.agency}/{tconf.name}",
            topics.get(key),
            Topic,
            {"query": tconf.query, "sensitivity": tconf.sensitivity, "active": True},
            agency_id=agency_id,
            name=tconf.name,
        )
    _deactivate(report, "topic", topics, wanted_topics)

    sources = {s.url: s for s in session.exec(select(Source)).all()}
    wanted_urls = set()
    for sconf in settings.sources:
        wanted_urls.add(sconf.url)
        _upsert(
            session,
            report,
            "source",
            sconf.url,
            sources.get(sconf.url),
            Source,
            {"name": sconf.name, "outlet": sconf.outlet, "active": True},
            url=sconf.url,
        )
    _deactivate(report, "source", sources, wanted_urls)
    session.flush()
    return report


def prepare_database(settings: DatabaseConfig) -> Database:
    """Migrate to head and sync the TOML: what ``crisisdesk run`` and ``db upgrade`` do first.

    A SQLite file is locked for this process first (``storage.lock``; released by
    ``Database.dispose``): a second process on the same file is refused before it migrates
    or writes anything (raises :class:`storage.lock.DatabaseInUse`).
    """
    url = settings.effective_database_url
    lock = DatabaseLock.acquire(url)
    try:
        upgrade(url)
        db = Database.from_url(url)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    db.lock = lock
    with db.session() as session:
        report = sync_config(session, settings)
    log.info("%s", report.describe())
    return db


@contextmanager
def receiving(settings: DatabaseConfig, *, polling: bool) -> Iterator[Database]:
    """The prepared database of a process that receives updates, for as long as it runs.

    The receive lock (``storage.receive_lock``) is held throughout, so a second poller is
    refused at start; on the way out it is released and the database disposed.
    """
    db = prepare_database(settings)
    try:
        lock = ReceiveLock.acquire(db.engine, polling=polling)
        try:
            yield db
        finally:
            if lock is not None:
                lock.release()
    finally:
        db.dispose()
