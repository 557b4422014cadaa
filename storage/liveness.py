"""This process's identity, and whether the process behind another identity is still alive.

A ledger row is claimed with the claimer's boot id (:data:`BOOT`) right before its request
leaves. Found ``sending`` under another boot id, it is either in flight at a live worker, which
will mark it, or left by a process that died during the send (it may or may not have reached the
channel). The two call for opposite things: leave the first alone, put the second in doubt and
say so. A lease only guesses; the database knows. Each process that receives updates holds, on
the dedicated connection of its receive lock (``storage.receive_lock``), an advisory lock named
by its boot id, which PostgreSQL frees when that session ends, however the process ends
(SIGKILL included). Another process asks for the same lock, shared, for the length of its own
transaction: refused means the claimer is alive.

SQLite needs no lock: one process per file is enforced (``storage.lock``), so any other boot id
is a dead process's. A process that never took the lock (a CLI command on PostgreSQL; none
claims today) would count as dead to the others.

The answer errs both ways only at the edges, and the claims' leases bound both. A process whose
host vanished keeps its lock until the server notices the dead connection (TCP keepalive), so it
looks alive a while: every caller also gives up on a claim when its lease runs out. A process
whose lock connection alone was cut (a server restart, an idle-session timeout) looks dead while
it still sends: its claims are then settled early, by conditional writes that keep whatever
outcome it records first (docs/reliability.md).
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

log = logging.getLogger(__name__)

#: This process: claims under another boot id belong to another process, alive or dead.
BOOT = uuid.uuid4().hex[:12]

# Two int4 keys (schema, boot): deployments and tests that share a PostgreSQL database in
# schemas of their own never see each other's processes.
_KEY = "hashtext(current_schema()), hashtext(:boot)"
_HOLD = sa.text(f"select pg_try_advisory_lock({_KEY})")
_PROBE = sa.text(f"select pg_try_advisory_xact_lock_shared({_KEY})")


def hold(connection: Connection, boot: str = BOOT) -> None:
    """Hold ``boot``'s liveness lock on ``connection`` (PostgreSQL) until the session ends.

    Tried, never waited for: refused only when another connection of this same process holds
    it already (tests run several receiving workers in one process), which says the same."""
    held = connection.execute(_HOLD, {"boot": boot}).scalar_one()
    connection.commit()
    if not held:
        log.info("liveness lock of %s held already by another connection of this process", boot)


def alive(session: Session, boot: str) -> bool:
    """Whether the process ``boot`` still runs: this one always; on SQLite no other one; on
    PostgreSQL, one whose liveness lock is held. The probe's shared lock lasts until the
    caller's transaction ends, so two processes probing one dead boot both see it dead."""
    if boot == BOOT:
        return True
    if session.get_bind().dialect.name != "postgresql":
        return False
    return not session.execute(_PROBE, {"boot": boot}).scalar_one()
