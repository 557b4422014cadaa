"""Each Telegram update handled once, whichever worker it reaches (``ReceivedUpdate``).

A webhook worker inserts the update's id before handling it; the primary key lets exactly one
insert succeed, so an update delivered twice (Telegram re-sends one whose answer was slow or
lost, possibly to another worker behind the proxy) is handled by the first worker to claim it and
dropped by the others. The claim is taken before the HTTP answer: if the database cannot take
it, the worker answers 500 and Telegram delivers the update again later.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from storage.models import ReceivedUpdate

KEEP = timedelta(days=2)  # Telegram stops re-delivering an update after a day

_table = ReceivedUpdate.__table__  # type: ignore[attr-defined]


def claim(engine: Engine, update_id: int, now: datetime) -> bool:
    """True if this call took ``update_id``; False if a worker took it before (blocking)."""
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_table)
        .values(update_id=update_id, received_at=now)
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(_table.c.update_id)
    )
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Not worth a disk flush: a claim lost in a database crash can only let one update
            # that Telegram re-delivers be handled twice; the flush tripled the time to answer.
            connection.exec_driver_sql("set local synchronous_commit = off")
        return connection.execute(statement).first() is not None


def purge(engine: Engine, now: datetime) -> int:
    """Forget update ids older than :data:`KEEP`; returns how many."""
    with engine.begin() as connection:
        result = connection.execute(sa.delete(_table).where(_table.c.received_at < now - KEEP))
        return result.rowcount
