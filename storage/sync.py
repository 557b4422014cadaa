"""Sync the TOML's agencies, topics and sources into TOML-owned rows.

Idempotent: running it twice changes nothing the second time. Rows created in chat
(``owner = chat``) are never touched; when a TOML entry collides with one, the chat row wins and the
collision is reported so the operator can rename one of them. A topic or source that disappears
from the TOML is deactivated, not deleted, because alerts and articles still point at it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

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


def sync_config(session: Session, settings: ConfigEntries) -> SyncReport:
    """Make the TOML-owned rows match ``settings``; returns what changed."""
    report = SyncReport()
    agencies = {a.code: a for a in session.exec(select(Agency)).all()}
    for conf in settings.agencies:
        values: dict[str, object] = conf.model_dump()
        row = agencies.get(conf.code)
        if row is None:
            row = Agency(owner=Owner.TOML, **values)  # type: ignore[arg-type]
            session.add(row)
            agencies[conf.code] = row
            report.created["agency"] += 1
        elif row.owner != Owner.TOML:
            report.conflicts.append(f"agency {conf.code}")
        elif _assign(row, values):
            report.updated["agency"] += 1
    session.flush()

    topics = {(t.agency_id, t.name): t for t in session.exec(select(Topic)).all()}
    wanted_topics: set[tuple[int, str]] = set()
    for tconf in settings.topics:
        agency = agencies[tconf.agency]
        assert agency.id is not None  # flushed above
        key = (agency.id, tconf.name)
        wanted_topics.add(key)
        tvalues: dict[str, object] = {
            "query": tconf.query,
            "sensitivity": tconf.sensitivity,
            "active": True,
        }
        topic = topics.get(key)
        if topic is None:
            session.add(Topic(agency_id=agency.id, name=tconf.name, owner=Owner.TOML, **tvalues))  # type: ignore[arg-type]
            report.created["topic"] += 1
        elif topic.owner != Owner.TOML:
            report.conflicts.append(f"topic {tconf.agency}/{tconf.name}")
        elif _assign(topic, tvalues):
            report.updated["topic"] += 1
    for key, topic in topics.items():
        if topic.owner == Owner.TOML and topic.active and key not in wanted_topics:
            topic.active = False
            report.deactivated["topic"] += 1

    sources = {s.url: s for s in session.exec(select(Source)).all()}
    wanted_urls = set()
    for sconf in settings.sources:
        wanted_urls.add(sconf.url)
        svalues: dict[str, object] = {"name": sconf.name, "outlet": sconf.outlet, "active": True}
        source = sources.get(sconf.url)
        if source is None:
            session.add(Source(url=sconf.url, owner=Owner.TOML, **svalues))  # type: ignore[arg-type]
            report.created["source"] += 1
        elif source.owner != Owner.TOML:
            report.conflicts.append(f"source {sconf.url}")
        elif _assign(source, svalues):
            report.updated["source"] += 1
    for url, source in sources.items():
        if source.owner == Owner.TOML and source.active and url not in wanted_urls:
            source.active = False
            report.deactivated["source"] += 1
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
