"""What a worker does the moment it becomes the leader: end the claims of the leaders before it.

An alert row is claimed (``sending``, with the claimer's boot id and a lease) right before its
request leaves; a claim whose lease ran out becomes ``uncertain`` and is never sent again, and
until then the person's later parts wait (``bot.services.delivery``). The lease is as long as a
send can take (``SEND_TIMEOUT`` + 30 s), so after a failover every person whose message was in
flight at the old leader would wait that long for the rest of the alert.

Taking the leader lock proves the old leader is done: PostgreSQL frees the lock only when the old
leader's session has ended — it died, or it lost its database connection, in which case it stopped
its fan-out when its own leadership lease ran out (``bot.jobs.while_leading``), well before the
server noticed the dead session. So the new leader ends those leases now instead of waiting them
out; the rows then become ``uncertain`` by the usual rule at the next delivery run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from bot.services.alerts import ALERT_KIND
from storage.liveness import BOOT
from storage.models import Delivery, DeliveryStatus

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def end_earlier_claims(runtime: Runtime) -> int:
    """Cut the lease of every alert row another process left ``sending``; returns how many.
    Blocking: it runs in the leader check's thread."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        result = session.execute(
            sa.update(Delivery)
            .where(
                col(Delivery.kind) == ALERT_KIND,
                col(Delivery.status) == DeliveryStatus.SENDING,
                col(Delivery.claimed_by) != BOOT,
                col(Delivery.claimed_until) > now,
            )
            .values(claimed_until=now)
        )
        ended = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if ended:
        log.warning("took over %s alert message(s) in flight at the previous leader", ended)
    return ended
