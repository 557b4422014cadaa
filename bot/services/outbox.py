"""Messages to shared places (a crisis room, a public channel) sent at most once, across kills.

A publication or a resolution posts several messages in a row (statement parts, files, the
report) from code that a restart runs again. Each message is one ``Delivery`` row (kind, ref_id,
user_id, part): written ``pending`` before the send, claimed (``sending``, naming this process)
by the channel right before the request leaves the process — after the flood-limit wait, once
its connection is up and its bytes are ready, then written whole in the same step of the event
loop, through ``bot.channels.base.WireClaim`` — and marked ``sent`` with the
message id right after. Run again, a step

* skips a part that is ``sent``;
* sends a part that is ``pending`` (never left: the process died before, or during the wait),
  or whose send failed with an answer from the channel (put back to ``pending``);
* does **not** re-send a part claimed by a process that died (``sending`` with another boot's
  claim): the request may have reached the channel, which has no way to ask, and a statement posted
  twice to a room or a public channel is worse than the in-doubt part. The row becomes
  ``in_doubt`` and an audit event names it, so people can see what to check;
* leaves alone a part another worker has claimed and is sending now (PostgreSQL: its liveness
  lock is held, ``storage.liveness``, and its claim's lease has not run out): that worker marks
  it. Should it die before it does, a due row at the end of the lease puts the part in doubt.

The unique key of the ledger makes the row race-free between workers on PostgreSQL: the second
insert fails and that worker leaves the part alone.

A busy SQLite database (another writer holding its lock) is waited on: by ``WireClaim`` before
the claim, and off the event loop for the marks after the send, so a part that went out is
recorded ``sent``.

Residual risk (docs/reliability.md): a process killed between the claim and the request reaching
the channel (the socket write, then the network) leaves a part in doubt that never went out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.channels.base import ClaimLost, DeliveryError, SentMessage, WireClaim
from bot.channels.refs import MessageRef
from bot.services import audit, stored_refs
from bot.services.due import due_handler, schedule
from storage import liveness
from storage.db import begin_write, commit_unflushed
from storage.liveness import BOOT
from storage.models import Delivery, DeliveryStatus, Due

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

SENDING = "sending"
IN_DOUBT = "in_doubt"
SETTLE_KIND = "outbox.settle"
# A claim's lease is SEND_TIMEOUT (the read timeout) plus this: the pool, connect and write
# timeouts of a request (an upload's write timeout is PTB's 20 s), so a live sender always
# settles its row before anyone may take the claim for an uncertain outcome.
CLAIM_MARGIN = timedelta(seconds=30)
# A part taken over by another worker before this one's claim: looked at again after the pause,
# and sent by this one if still pending (its taker died before claiming it), at most this often.
TAKEOVER_PAUSE_S = 5.0
TAKEOVER_ROUNDS = 4


def sent(runtime: Runtime, kind: str, ref_id: int) -> list[MessageRef]:
    """Where the sent parts of one (kind, ref_id) went, in the order they were claimed."""
    with runtime.db.session() as session:
        rows = session.exec(
            select(Delivery)
            .where(
                Delivery.kind == kind,
                Delivery.ref_id == ref_id,
                Delivery.status == DeliveryStatus.SENT,
            )
            .order_by(col(Delivery.id))
        ).all()
        return [message for r in rows if (message := stored_refs.delivered(r)) is not None]


def _row(session: Session, kind: str, ref_id: int, user_id: int, part: str) -> Delivery | None:
    return session.exec(
        select(Delivery).where(
            Delivery.kind == kind,
            Delivery.ref_id == ref_id,
            Delivery.user_id == user_id,
            Delivery.part == part,
        )
    ).first()


def _reserve(runtime: Runtime, kind: str, ref_id: int, user_id: int, part: str) -> bool:
    """Make the part this process's to send (``pending``); False when it is done, in doubt or
    someone else's."""
    now = runtime.clock.now()
    try:
        with runtime.db.session() as session:
            row = _row(session, kind, ref_id, user_id, part)
            if row is None:
                session.add(
                    Delivery(
                        kind=kind,
                        ref_id=ref_id,
                        user_id=user_id,
                        part=part,
                        status=DeliveryStatus.PENDING,
                        last_error=f"queued {BOOT}",
                        created_at=now,
                    )
                )
                return True
            if row.status == DeliveryStatus.PENDING:
                if row.last_error == f"queued {BOOT}":
                    return False  # queued by this process right now (a second caller)
                row.last_error = f"queued {BOOT}"
                return True
            if row.status == SENDING and row.claimed_by != BOOT:
                why = abandoned(session, row, now)
                if why is None:
                    # Another worker sends it now and marks it; should it die first, the part
                    # is put in doubt when its lease ends.
                    _settle_later(session, row)
                else:
                    _put_in_doubt(session, row, now, why)
            return False
    except IntegrityError:  # another worker inserted it first
        return False


def abandoned(session: Session, row: Delivery, now: datetime) -> str | None:
    """Why a row left ``sending`` is no longer in its claimer's hands (the claimer is gone,
    ``storage.liveness``, or its send outlasted the lease), or None while it is: the claimer
    marks it. The one rule by which both ledgers (this one, the alert ledger) settle a claim
    whose outcome is not known."""
    if row.claimed_by is None or not liveness.alive(session, row.claimed_by):
        return "which died during the send"
    if row.claimed_until is None or row.claimed_until <= now:
        return "whose send outlasted its lease"
    return None


def settle_claim(session: Session, row: Delivery, **values: Any) -> bool:
    """Write ``values`` to a claimed row if its claim is still as it was read; False when the
    claimer settled it (or claimed it again) between that read and this write, which keeps the
    claimer's outcome. Both ledgers settle an abandoned claim through here."""
    changed = session.execute(
        sa.update(Delivery)
        .where(
            col(Delivery.id) == row.id,
            col(Delivery.status) == SENDING,
            col(Delivery.claimed_by).is_not_distinct_from(row.claimed_by),
            col(Delivery.claimed_until).is_not_distinct_from(row.claimed_until),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(changed.rowcount == 1)  # type: ignore[attr-defined]


def _settle_later(session: Session, row: Delivery) -> None:
    """Look at a part in another worker's hands when its claim's lease ends. One due row per
    claim (a part put back to ``pending`` and claimed again has a new lease and a new row)."""
    assert row.claimed_until is not None
    schedule(
        session,
        SETTLE_KIND,
        row.claimed_until,
        ref_id=row.id,
        dedupe_key=f"{SETTLE_KIND}:{row.id}:{row.attempts}",
    )


def _put_in_doubt(session: Session, row: Delivery, now: datetime, why: str) -> None:
    """A claimed part whose send may or may not have reached the channel: never sent again,
    and an audit event names it so people can check.

    Conditional on the claim as it was read (:func:`settle_claim`): a claimer that settles
    the part meanwhile keeps its outcome, and nothing is audited."""
    error = f"claimed by {row.claimed_by or 'a process'}, {why}"
    if not settle_claim(session, row, status=IN_DOUBT, last_error=error):
        return
    audit.record(
        session,
        action="outbox.in_doubt",
        subject=f"{row.kind}:{row.ref_id}",
        after={"part": row.part, "user_id": row.user_id},
        at=now,
    )
    log.warning("%s %s part %s in doubt: %s", row.kind, row.ref_id, row.part, error)


@due_handler(SETTLE_KIND)
async def settle(runtime: Runtime, session: Session, due: Due) -> None:
    """The lease of a part another worker was sending has run out: sent, failed back to
    ``pending`` or still ``sending`` (its claimer died or hung: in doubt)."""
    row = session.get(Delivery, due.ref_id)
    if row is None or row.status != SENDING:
        return
    now = runtime.clock.now()
    if row.claimed_until is not None and row.claimed_until > now:
        _settle_later(session, row)  # claimed again since, with a new lease
        return
    _put_in_doubt(session, row, now, "which never settled it within its lease")


def _claim(runtime: Runtime, key: tuple[str, int, int, str]) -> None:
    """The request is about to leave: from now on a kill leaves the part in doubt.

    One conditional UPDATE: the part must still be ``pending`` and queued by this process.
    ``_reserve`` takes over a pending part queued by another boot (a dead process's, or a
    worker's whose send failed), and that boot may be a live worker whose request is still
    waiting in its rate limiter; whichever of the two claims first sends, and the other's
    claim raises :class:`ClaimLost` before its request leaves. Unconditional, both claimed
    and both sent (crash matrix with two workers, ``reg.phone-question``: a supervisor asked
    twice to verify one person)."""
    kind, ref_id, user_id, part = key
    claim_row(
        runtime,
        sa.update(Delivery)
        .where(
            col(Delivery.kind) == kind,
            col(Delivery.ref_id) == ref_id,
            col(Delivery.user_id) == user_id,
            col(Delivery.part) == part,
            col(Delivery.status) == DeliveryStatus.PENDING,
            col(Delivery.last_error) == f"queued {BOOT}",
        )
        .values(
            status=SENDING,
            attempts=col(Delivery.attempts) + 1,
            last_error=None,
            claimed_by=BOOT,
            claimed_until=runtime.clock.now() + claim_lease(runtime),
        ),
        f"{kind} {ref_id} part {part}",
    )


def claim_lease(runtime: Runtime) -> timedelta:
    """How long a claimed send may take before its outcome counts as unknown."""
    return timedelta(seconds=runtime.settings.send_timeout) + CLAIM_MARGIN


def claim_row(runtime: Runtime, claim: sa.Update, what: str) -> None:
    """Run a ledger's conditional claim in its own short transaction, or raise
    :class:`ClaimLost` when it changed no row (another worker has the message): of two
    claimers only one sees its UPDATE change the row, and the other stops before sending. Both
    ledgers claim through here (the outbox, the alert ledger in ``bot.services.delivery``); a
    busy SQLite database is waited out by ``WireClaim``, which runs the claim."""
    with runtime.db.session() as session:
        commit_unflushed(session)
        begin_write(session, brief=True)  # the loop stands still while SQLite is asked
        claimed = session.execute(claim.execution_options(synchronize_session=False))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise ClaimLost(what)


def _finish(
    runtime: Runtime,
    key: tuple[str, int, int, str],
    status: str,
    sent: SentMessage | None = None,
    error: str | None = None,
) -> None:
    with runtime.db.session() as session:
        row = _row(session, *key)
        assert row is not None, key
        row.status = status
        row.last_error = error[:500] if error else None
        if sent is not None:
            stored_refs.keep_delivered(row, sent)
            row.sent_at = runtime.clock.now()


async def send_once(
    runtime: Runtime,
    *,
    kind: str,
    ref_id: int,
    user_id: int,
    part: str,
    send: Callable[[], Awaitable[SentMessage]],
) -> SentMessage | None:
    """Send one message through the ledger; returns what was sent now (None if skipped).

    A transient :class:`DeliveryError` puts the part back to ``pending`` and propagates, so the
    caller's retry (a due row) sends it again; a permanent one (the chat is gone, the bot was
    removed) closes the part as ``unreachable`` and propagates. A part another worker took over
    while this one's request waited is left to it, unless it is still pending after
    ``TAKEOVER_PAUSE_S``: then its taker died before sending it, and this one sends it.
    """
    key = (kind, ref_id, user_id, part)
    for _round in range(TAKEOVER_ROUNDS):
        if not _reserve(runtime, *key):
            return None
        try:
            sent = await WireClaim(partial(_claim, runtime, key)).send(send())
        except ClaimLost:
            # Another worker queued the part after this one did. It sends it, unless it dies
            # before its claim: then the part would stay pending with nobody to send it (the
            # step that owns it may be finished by this run), so look again after a pause and
            # take it back if it is still waiting (crash matrix, two workers, res.room-docx).
            await asyncio.sleep(TAKEOVER_PAUSE_S)
            if not await asyncio.to_thread(_still_pending, runtime, key):
                return None
            log.info("%s %s part %s: still waiting after a takeover; sending it", *key[:2], part)
            continue
        except DeliveryError as exc:  # ClaimBusy included: nothing was claimed or sent
            status = DeliveryStatus.UNREACHABLE if exc.permanent else DeliveryStatus.PENDING
            await asyncio.to_thread(_finish, runtime, key, status, error=str(exc))
            raise
        # Off the event loop's thread, where a write waits out a busy SQLite database
        # (storage.db.begin_write) instead of failing after one busy timeout: the message is
        # out, and a lost "sent" mark would leave it claimed by this process and unrecorded.
        await asyncio.to_thread(_finish, runtime, key, DeliveryStatus.SENT, sent)
        return sent
    log.warning("%s %s part %s: taken over %d times; left pending", *key[:2], part, TAKEOVER_ROUNDS)
    return None


def _still_pending(runtime: Runtime, key: tuple[str, int, int, str]) -> bool:
    with runtime.db.session() as session:
        row = _row(session, *key)
        return row is not None and row.status == DeliveryStatus.PENDING
