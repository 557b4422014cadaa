"""Due rows: everything that must happen later, and the tick that fires them.

Reminders, escalations, deadlines and digests are rows with a due time rather than in-memory
jobs, so a restart (or a SIGKILL) loses nothing: the rows *are* the schedule. One ``tick`` job
asks the clock for now and fires what is due. A handler's own database changes and the row's
``done_at`` commit in one transaction, so a row is done exactly when its effects are recorded.
Delivery is at-least-once: a crash after a message went out but before the commit re-sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import Due

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

DueHandler = Callable[["Runtime", Session, Due], Awaitable[None]]
MAX_ATTEMPTS = 8

_HANDLERS: dict[str, DueHandler] = {}
_KIND_MARK = "due_kind"


def due_handler(kind: str) -> Callable[[DueHandler], DueHandler]:
    """Declare the coroutine that fires rows of ``kind``; :func:`install` registers it.

    Only a mark on the function: nothing is registered by importing a module, so what fires is
    what ``bot.wiring`` installs, in one place.
    """

    def decorate(func: DueHandler) -> DueHandler:
        setattr(func, _KIND_MARK, kind)
        return func

    return decorate


def register(kind: str, func: DueHandler) -> None:
    """Register the coroutine that fires rows of ``kind`` (one per kind)."""
    if kind in _HANDLERS and _HANDLERS[kind] is not func:
        raise ValueError(f"a due handler for {kind!r} is already registered")
    _HANDLERS[kind] = func


def install(*modules: ModuleType) -> list[str]:
    """Register every ``@due_handler`` declared in ``modules``; returns the kinds."""
    kinds = []
    for module in modules:
        for value in vars(module).values():
            kind = getattr(value, _KIND_MARK, None)
            if isinstance(kind, str) and getattr(value, "__module__", None) == module.__name__:
                register(kind, value)
                kinds.append(kind)
    return kinds


def schedule(
    session: Session,
    kind: str,
    due_at: datetime,
    *,
    ref_id: int | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> Due | None:
    """Add a due row in the caller's transaction.

    With ``dedupe_key`` the row is scheduled at most once (e.g. "deadline80:crisis:7"), so code that
    runs again after a restart cannot double a reminder; returns None when it already exists.
    """
    if kind not in _HANDLERS:
        raise ValueError(f"no due handler registered for {kind!r} (see bot.wiring)")
    if dedupe_key is not None:
        existing = session.exec(select(Due).where(Due.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return None
    row = Due(kind=kind, due_at=due_at, ref_id=ref_id, payload=payload or {}, dedupe_key=dedupe_key)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None  # a concurrent writer scheduled the same key first
    return row


def cancel(session: Session, *, kind: str, ref_id: int, at: datetime) -> int:
    """Mark pending rows of ``kind`` for ``ref_id`` done without firing (e.g. a task closed)."""
    # SKIP LOCKED: a row being fired right now is locked by the tick's own session (PostgreSQL,
    # FOR UPDATE), which marks it done itself; waiting for it from a handler's own session would
    # wait for ever.
    rows = session.exec(
        select(Due)
        .where(Due.kind == kind, Due.ref_id == ref_id, col(Due.done_at).is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.done_at = at
        row.last_error = "cancelled"
    return len(rows)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** (attempts - 1), 3600))


async def fire_due(runtime: Runtime, limit: int = 200) -> int:
    """Fire every row due by now; returns how many fired successfully."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        ids = list(
            session.exec(
                select(Due.id)
                .where(col(Due.done_at).is_(None), Due.due_at <= now)
                .order_by(col(Due.due_at), col(Due.id))
                .limit(limit)
            )
        )
    fired = 0
    for due_id in ids:
        if await _fire_one(runtime, due_id, now):
            fired += 1
    return fired


async def _fire_one(runtime: Runtime, due_id: int | None, now: datetime) -> bool:
    error: str | None = None
    with runtime.db.session() as session:
        row = _claim(session, due_id)
        if row is None:
            return False  # fired by another worker, or cancelled
        handler = _HANDLERS.get(row.kind)
        if handler is None:
            row.done_at = now
            row.last_error = f"no handler for kind {row.kind!r}"
            log.error("due %s: %s", row.id, row.last_error)
            return False
        # No savepoint around the handler: on SQLite a SAVEPOINT opens the transaction at once,
        # pinning a read snapshot across the handler's network awaits, and the write at the end
        # then fails with "database is locked" if anyone else committed meanwhile. Without it,
        # reads run outside a transaction and the handler's writes and done_at commit together.
        try:
            await handler(runtime, session, row)
        except Exception as exc:
            log.exception("due %s (%s) failed", row.id, row.kind)
            error = f"{type(exc).__name__}: {exc}"[:500]
            session.rollback()  # the handler's partial changes go; the row is counted below
        else:
            row.done_at = now
            return True
        row = _claim(session, due_id)
        if row is None:
            return False
        row.attempts += 1
        row.last_error = error
        if row.attempts >= MAX_ATTEMPTS:
            row.done_at = now
            log.error("due %s (%s) given up after %s attempts", row.id, row.kind, row.attempts)
        else:
            row.due_at = now + _backoff(row.attempts)
    return False


def _claim(session: Session, due_id: int | None) -> Due | None:
    """The pending row, locked against other workers on PostgreSQL (SKIP LOCKED)."""
    query = select(Due).where(Due.id == due_id, col(Due.done_at).is_(None))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.exec(query).first()
