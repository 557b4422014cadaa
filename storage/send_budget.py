"""The bot's overall send budget, shared by every worker on one PostgreSQL database.

Telegram counts its ~30 messages a second per bot, not per process. With several workers, the
leader's fan-out and the other workers' replies to people must share one budget, so on
PostgreSQL every counted send books a slot in the ``sendslot`` table first: time is cut into
slots of ``1/SLOTS_PER_SECOND`` seconds numbered from the epoch *by the database's clock* (so
workers on hosts whose clocks disagree still agree on the slots), and a slot is taken by
inserting its number, which the primary key lets exactly one worker do. Any one-second window
then holds at most ``SLOTS_PER_SECOND + 1`` sends of the whole deployment.

A chat's own windows are the bot's too: a busy room's messages come from every worker (each
answers the updates it was given), and a person's reply may leave one worker while the leader
sends them an alert. So a send to a chat records the chat with its slot, and is not booked
before the chat's windows, counted on its recent slots, allow it: Telegram's bucket of three
refilled at one a second (the m-th most recent send at least ``m - 2`` seconds before, plus
``CHAT_LATE_MAX``, for m ≥ 3), and for a group also its 20 messages a minute (the 20th most recent
slot a minute old). Bookings for one chat are serialised by a transaction-level advisory lock on
its id: the one-number key space, which the application's own locks (two numbers each:
``storage.leader``) never use.

A slot is when a send may leave, not when it reached Telegram: a sender that wakes late for a
private chat's slot may still send (the limiter moves its reservation when no other worker is
sending, and a worker alone catches up on slots missed a moment ago), but it leaves at most
``CHAT_LATE_MAX`` less a tenth of a second (its way to Telegram) after the slot, else it books
again (``bot.channels.ratelimit``); so the chat's windows counted on slots, with
``CHAT_LATE_MAX`` added, hold for the sends as Telegram sees them.

The slots are ``1/29.5`` s apart, the pace a single process keeps too
(``bot.channels.ratelimit``): 31 sends in a row span 1.017 s, so a send a few milliseconds
late still keeps Telegram's 30 in any second. The booking also says how many slots of the second
before the granted one were booked, and how many by other workers (each slot carries its
booker's mark): when none, no other worker is sending and its limiter may send late without
bunching against anyone.

That margin is enough for one process, whose limiter also counts each of its sends until
Telegram answers it, however the requests bunch on their way. It cannot count the other
workers' sends, and theirs reach Telegram with their own delays: with two workers busy, 31
requests booked 1.017 s apart arrived within 0.985-0.995 s now and then (the busy bench met a
dozen 429s a minute, all on the one-second window). So a worker that saw another's slots in
its last booking (``crowded``) leaves every ``CROWDED_GAP``-th slot free: any second then holds
at most 28 booked slots, and requests may bunch by 130 ms before a 31st reaches Telegram within
one second. A worker alone keeps the full pace.

One short statement per message (about a millisecond on a local server, run off the event
loop) is cheap next to the message itself; old slots are deleted now and then by whoever books.
"""

from __future__ import annotations

import math
import secrets
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

SLOTS_PER_SECOND = 29.5
ALONE_SLOTS = 30  # the second before a slot, in slots: booked by whom (``SendBudget.book``)
SEARCH = 2000  # slots looked at per attempt (about 70 s ahead)
CROWDED_GAP = 10  # with other workers sending, slots numbered a multiple of this stay free
# Telegram's windows per chat, for the workers' budget and for one process's limiter
# (``bot.channels.ratelimit`` takes them from here).
GROUP_MAX, GROUP_SECONDS = 20, 60  # per group: at most 20 in any 60 seconds
CHAT_BURST = 3  # per chat: a bucket of three, refilled at one a second
CHAT_HISTORY = GROUP_MAX  # a chat's recent slots its windows are counted on
CHAT_LATE_MAX = 0.4  # seconds a send may arrive after its slot (module doc)
KEEP_SECONDS = 2 * GROUP_SECONDS  # slots older than this are deleted
PURGE_EVERY = 500  # bookings between deletions, per process
RACES = 100  # lost races for a slot before giving up (each loss means another worker sent)

# The first free slot at or after the wanted one, in one statement, with the slots of the second
# before it counted in one pass (all of them, and other workers'); a worker that loses the race
# for it gets no row back and tries again.
_BOOK = sa.text(
    """
    with wanted as (
        select greatest(
            cast(ceil((extract(epoch from clock_timestamp()) + :delay) * :per) as bigint),
            cast(:after as bigint)
        ) as first
    )
    , taken as (
        insert into sendslot (slot, chat_id, worker)
        select wanted.first + g, cast(:chat as bigint), cast(:worker as bigint)
        from wanted, generate_series(0, :search) as g
        where not exists (select 1 from sendslot s where s.slot = wanted.first + g)
            and (not :crowded or (wanted.first + g) % :gap <> 0)
        order by g
        limit 1
        on conflict do nothing
        returning slot, extract(epoch from clock_timestamp()) as now
    )
    select taken.slot, taken.now, count(s.slot) as booked,
        count(s.slot) filter (where s.worker is distinct from cast(:worker as bigint)) as others
    from taken left join sendslot s on s.slot >= taken.slot - :recent and s.slot < taken.slot
    group by taken.slot, taken.now
    """
)
_RELEASE = sa.text("delete from sendslot where slot = :slot")
_CHAT_LOCK = sa.text("select pg_advisory_xact_lock(:chat)")
_CHAT_RECENT = sa.text(
    "select slot from sendslot where chat_id = :chat order by slot desc limit :count"
)
_PURGE = sa.text(
    "delete from sendslot where slot < "
    "cast(floor((extract(epoch from clock_timestamp()) - :keep) * :per) as bigint)"
)


class SendBudget:
    """Books overall send slots in the database (module doc); blocking, call it in a thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._booked = 0
        #: This process's mark on its slots: the others' in the second before a booking say
        #: whether another worker is sending (a count of its own kept by the event loop was
        #: wrong while its bookings were in flight in other threads).
        self.worker = secrets.randbits(62)

    def book(
        self,
        delay: float,
        chat: int | None = None,
        missed: int | None = None,
        crowded: bool = False,
    ) -> tuple[float, int, int, int]:
        """Take the first free slot at least ``delay`` seconds from now (a negative ``delay``: a
        missed slot of the last ``-delay`` seconds will do) (and, for a send to ``chat``,
        within its windows; ``crowded``, not one of the slots left free: module doc), giving
        back the ``missed`` slot of a sender that woke too late for it; returns when the new
        slot starts on this process's
        ``time.monotonic`` clock, the slot, and how many of the ``ALONE_SLOTS`` before it were
        booked: by anyone, and by other workers.

        The conversion happens here, as soon as the answer arrives: measured later (after the
        hop back to the event loop of a busy process) the error would shift this worker's sends
        against the others' and bunch them."""
        for _attempt in range(RACES):
            with self.engine.begin() as connection:
                # A slot is worthless seconds later, so a crash may lose it: no disk flush
                # (which took two thirds of the booking's time).
                connection.exec_driver_sql("set local synchronous_commit = off")
                if missed is not None:
                    connection.execute(_RELEASE, {"slot": missed})
                    missed = None
                after = 0
                if chat is not None:
                    connection.execute(_CHAT_LOCK, {"chat": chat})
                    recent = connection.execute(
                        _CHAT_RECENT, {"chat": chat, "count": CHAT_HISTORY}
                    ).scalars()
                    after = chat_window_opens([int(slot) for slot in recent], group=chat < 0)
                row = connection.execute(
                    _BOOK,
                    {
                        "delay": delay,
                        "per": SLOTS_PER_SECOND,
                        "search": SEARCH,
                        "after": after,
                        "chat": chat,
                        "recent": ALONE_SLOTS,
                        "crowded": crowded,
                        "worker": self.worker,
                        "gap": CROWDED_GAP,
                    },
                ).first()
                self._booked += 1
                if self._booked % PURGE_EVERY == 0:
                    connection.execute(_PURGE, {"keep": KEEP_SECONDS, "per": SLOTS_PER_SECOND})
            if row is not None:
                slot, now, booked, others = int(row[0]), float(row[1]), int(row[2]), int(row[3])
                return time.monotonic() + slot / SLOTS_PER_SECOND - now, slot, booked, others
            # Another worker took the slot between our look and our insert: look again.
        raise RuntimeError(f"no free send slot after {RACES} attempts")


def chat_window_opens(recent: list[int], group: bool) -> int:
    """The first slot a chat's windows allow, given its last ``CHAT_HISTORY`` slots, newest
    first; 0 when it has none.

    Counted on slots, each send arriving up to ``L = CHAT_LATE_MAX`` after its slot: any n ≥ 4
    of a chat's sends whose slots span d seconds arrive at least ``d - L`` apart, and Telegram's
    bucket (three, refilled at one a second) takes them when ``n ≤ 3 + d - L``. For the new
    send and its m-th most recent that is ``m - 2 + L`` seconds after the m-th, for m ≥ 3 (each
    earlier send was booked under the same rule). Sends older than the history are covered by
    asking ``CHAT_HISTORY + L`` after the oldest one read: by the rule, the oldest was itself at
    least ``k - 2 + L`` after its own k-th most recent. The new slot also comes after the
    chat's last (its sends keep their order, whichever worker makes them)."""
    if not recent:
        return 0
    per = SLOTS_PER_SECOND
    opens = recent[0] + 1
    for m, slot in enumerate(recent[2:], start=CHAT_BURST):
        opens = max(opens, slot + math.ceil((m - 2 + CHAT_LATE_MAX) * per))
    if len(recent) == CHAT_HISTORY:
        opens = max(opens, recent[-1] + math.ceil((CHAT_HISTORY + CHAT_LATE_MAX) * per))
    if group and len(recent) >= GROUP_MAX:
        opens = max(opens, recent[GROUP_MAX - 1] + math.ceil(GROUP_SECONDS * per) + 1)
    return opens
