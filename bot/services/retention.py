"""Article retention: blank the text of articles older than ``ARTICLE_RETENTION_DAYS``.

"Text" is what an outlet wrote and what points at it: an article's ``title``, ``summary`` and
display ``url``. Everything the figures need stays: the row itself, its ``canonical_url`` and
``fingerprint`` (the scanner's duplicate keys: without them an old item still in a feed would be
stored again as new and counted twice), outlet, source, publication and fetch times, sentiment,
story and topic links. Stories (with their titles), series buckets, alerts and the audit log are
not touched, and since the buckets are counted from those kept columns, rebuilding any bucket
after a purge gives the same figures as before it.

The purge runs as a daily ``retention`` due row (so exactly one worker does it, and a restart
neither skips nor repeats a day), in batches of :data:`BATCH` rows, each in its own short
transaction so the scan and the handlers never wait long for SQLite's write lock. Each run that
blanks anything leaves one audit row with the count and the cutoff.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.services import audit
from bot.services.due import due_handler, schedule
from storage.models import Article, Due

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

RETENTION_KIND = "retention"
BATCH = 2000
EVERY = timedelta(days=1)


def purge_batch(session: Session, cutoff: datetime, limit: int = BATCH) -> int:
    """Blank the text of up to ``limit`` articles fetched and published before ``cutoff``."""
    ids = session.exec(
        select(Article.id)
        .where(
            col(Article.published_at) < cutoff,
            col(Article.fetched_at) < cutoff,
            sa.or_(col(Article.title) != "", col(Article.summary) != "", col(Article.url) != ""),
        )
        .limit(limit)
    ).all()
    if ids:
        session.execute(
            sa.update(Article).where(col(Article.id).in_(ids)).values(title="", summary="", url="")
        )
    return len(ids)


def purge_article_text(runtime: Runtime, now: datetime, days: int) -> int:
    """Blank every article older than ``days``; returns how many were blanked."""
    cutoff = now - timedelta(days=days)
    total = 0
    while True:
        with runtime.db.session() as session:
            done = purge_batch(session, cutoff)
        total += done
        if done < BATCH:
            break
    if total:
        with runtime.db.session() as session:
            audit.record(
                session,
                action="retention.purge",
                subject="articles",
                after={"articles": total, "cutoff": cutoff.isoformat(), "days": days},
                at=now,
            )
        log.info("retention: blanked the text of %s article(s) older than %s days", total, days)
    return total


def ensure_scheduled(session: Session, now: datetime, days: int | None) -> Due | None:
    """Schedule today's purge (idempotent: one row per UTC date); nothing when retention is off."""
    if days is None:
        return None
    return schedule(
        session, RETENTION_KIND, now, dedupe_key=f"{RETENTION_KIND}:{now.date().isoformat()}"
    )


@due_handler(RETENTION_KIND)
async def fire_retention(runtime: Runtime, session: Session, due: Due) -> None:
    """Purge, then schedule tomorrow's run (the setting may have been switched off since)."""
    days = runtime.settings.article_retention_days
    if days is None:
        return
    now = runtime.clock.now()
    await asyncio.to_thread(purge_article_text, runtime, now, days)  # off the event loop
    ensure_scheduled(session, now + EVERY, days)
