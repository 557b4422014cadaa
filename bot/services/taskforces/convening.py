"""Convening: who a crisis invites, and sending the invitations (Join / Decline) by direct message.

Restart safety: every invitation is a ``CrisisMember`` row plus a ``Delivery`` row (kind
``crisis_invite``) written *before* anything is sent. Each send claims its row first
(``pending`` → ``sending``, committed), then records ``sent`` with the message id. A
``crisis.convene`` due row, scheduled with the room, resumes convening after a restart: it sends
what is still pending and re-sends rows whose claim belongs to a process that died (at-least-once,
like every delivery here; the emulator's restart test shows no doubling when the crash happens
before a send reaches the channel).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.channels.base import (
    Button,
    DeliveryError,
    RecipientUnreachable,
    SentMessage,
)
from bot.services import audit, identity, stored_refs, timeline
from bot.services.due import cancel, due_handler, schedule
from bot.services.people import active_with_role, find_by_username
from bot.services.permissions import (
    Actor,
)
from bot.services.taskforces.brief import brief_view, post_brief, touch_brief
from bot.services.taskforces.crises import (
    TaskForceError,
    crisis_row,
    display_name,
    is_participant,
    member_row,
    open_crisis_row,
)
from storage import liveness
from storage.liveness import BOOT
from storage.models import (
    Crisis,
    CrisisMember,
    CrisisRole,
    CrisisStatus,
    Delivery,
    DeliveryStatus,
    Due,
    Role,
    Subscription,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


INVITE_KIND = "crisis_invite"
CONVENE_KIND = "crisis.convene"

# Button actions (registered with their rules in handlers/taskforce.py).
JOIN = "tf.join"
DECLINE = "tf.decline"
PICK = "tf.pick"

SENDING = "sending"  # a Delivery claimed by a process that is sending it now
CLAIM_LEASE = timedelta(seconds=60)  # a claim older than this is stale, its claimer alive or not
_CONVENING: set[int] = set()  # crises being convened by this process right now


def suggested_members(
    session: Session, agency_id: int, topic_id: int | None, exclude: Iterable[int] = ()
) -> list[User]:
    """Who a crisis convenes by default: the agency's supervisors, and its spokespeople who
    follow the crisis topic (``Subscription`` rows)."""
    skip = set(exclude)
    people: dict[int, User] = {}
    for user in active_with_role(session, agency_id, Role.SUPERVISOR):
        if user.id is not None and user.id not in skip:
            people[user.id] = user
    if topic_id is not None:
        followers = session.exec(
            select(User)
            .join(Subscription, col(Subscription.user_id) == col(User.id))
            .where(
                Subscription.topic_id == topic_id,
                User.agency_id == agency_id,
                User.status == UserStatus.ACTIVE,
                User.role == Role.SPOKESPERSON,
            )
            .order_by(col(User.id))
        ).all()
        for user in followers:
            if user.id is not None and user.id not in skip:
                people.setdefault(user.id, user)
    return list(people.values())


def resolve_usernames(session: Session, usernames: Iterable[str]) -> tuple[list[User], list[str]]:
    """Registered, active people named by @username (bots cannot look people up by name on the
    channels, so only stored usernames count); returns them and the names nobody matched."""
    found: dict[int, User] = {}
    unknown: list[str] = []
    for raw in usernames:
        name = raw.strip().removeprefix("@")
        if not name:
            continue
        user = find_by_username(session, name)
        if user is None or user.status != UserStatus.ACTIVE or user.id is None:
            unknown.append(name)
        else:
            found[user.id] = user
    return list(found.values()), unknown


def add_invitation(
    session: Session, crisis: Crisis, user: User, role: str, now: datetime, actor_id: int | None
) -> bool:
    """A CrisisMember (invited) and its Delivery (pending); False if already convened."""
    assert crisis.id is not None and user.id is not None
    member = member_row(session, crisis.id, user.id)
    delivery = session.exec(
        select(Delivery).where(
            Delivery.kind == INVITE_KIND,
            Delivery.ref_id == crisis.id,
            Delivery.user_id == user.id,
        )
    ).first()
    if member is not None:
        if member.state != "declined":
            if (
                member.state == "invited"
                and delivery is not None
                and delivery.status
                in (
                    DeliveryStatus.UNREACHABLE,
                    DeliveryStatus.FAILED,
                )
            ):
                delivery.status = DeliveryStatus.PENDING  # they may have started the bot since
                delivery.last_error = None
                return True
            return False
        member.state = "invited"  # asked again
        member.answered_at = None
    else:
        member = CrisisMember(
            crisis_id=crisis.id, user_id=user.id, role=role, state="invited", invited_at=now
        )
        session.add(member)
    if delivery is None:
        session.add(Delivery(kind=INVITE_KIND, ref_id=crisis.id, user_id=user.id, created_at=now))
    else:
        delivery.status = DeliveryStatus.PENDING
        delivery.last_error = None
    timeline.add(
        session,
        crisis.id,
        timeline.CONVENED,
        actor_id,
        display_name(user),
        {"user_id": user.id, "role": role},
        now,
    )
    return True


def _claimable(session: Session, delivery: Delivery, *, resume: bool, now: datetime) -> bool:
    """Pending, or (resuming) claimed by a process that is gone (``storage.liveness``) or whose
    claim is stale: such an invitation is sent again rather than lost."""
    if delivery.status == DeliveryStatus.PENDING:
        return True
    if delivery.status != SENDING or not resume:
        return False
    claim = (delivery.last_error or "").split()
    if len(claim) != 3 or claim[0] != "claim":
        return True
    boot, at_text = claim[1], claim[2]
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        return True
    if boot == BOOT:
        return now - at > CLAIM_LEASE * 10  # our own send; only a hung one is retried
    return now - at > CLAIM_LEASE or not liveness.alive(session, boot)


def _invite_buttons(runtime: Runtime, lang: str, member_id: int) -> list[list[Button]]:
    return [
        [
            Button(runtime.renderer.render("tf_button_join", lang), JOIN, member_id),
            Button(runtime.renderer.render("tf_button_decline", lang), DECLINE, member_id),
        ]
    ]


async def convene(runtime: Runtime, crisis_id: int, *, resume: bool = False) -> int:
    """Send every pending invitation of a crisis (Join / Decline buttons); returns how many
    went out. Each row is claimed before its send and marked after it, so a restart resumes
    where this stopped (``resume=True``, from the ``crisis.convene`` due row)."""
    if crisis_id in _CONVENING:
        return 0
    _CONVENING.add(crisis_id)
    sent_count = 0
    try:
        while True:
            now = runtime.clock.now()
            with runtime.db.session() as session:
                crisis = crisis_row(session, crisis_id)
                if crisis.status == CrisisStatus.RESOLVED or crisis.room_chat_id is None:
                    break
                rows = session.exec(
                    select(Delivery)
                    .where(
                        Delivery.kind == INVITE_KIND,
                        Delivery.ref_id == crisis_id,
                        col(Delivery.status).in_([DeliveryStatus.PENDING, SENDING]),
                    )
                    .order_by(col(Delivery.id))
                ).all()
                row = next(
                    (d for d in rows if _claimable(session, d, resume=resume, now=now)),
                    None,
                )
                if row is None:
                    cancel(session, kind=CONVENE_KIND, ref_id=crisis_id, at=now)
                    if any(d.status == SENDING for d in rows):
                        # A claim of another process (PostgreSQL): look again once its lease
                        # is over, or an invitation a dead worker held is never sent.
                        schedule(session, CONVENE_KIND, now + CLAIM_LEASE, ref_id=crisis_id)
                    break
                claimed = session.execute(
                    sa.update(Delivery)
                    .where(col(Delivery.id) == row.id, col(Delivery.status) == row.status)
                    .values(
                        status=SENDING,
                        attempts=row.attempts + 1,
                        last_error=f"claim {BOOT} {now.isoformat()}",
                    )
                )
                if getattr(claimed, "rowcount", 0) != 1:
                    continue  # someone else took it
                user = session.get(User, row.user_id)
                member = member_row(session, crisis_id, row.user_id)
                delivery_id = row.id
                chat = identity.direct_chat(session, row.user_id, runtime.notifier.channel)
                if user is None or member is None or chat is None:
                    session.execute(
                        sa.update(Delivery)
                        .where(col(Delivery.id) == delivery_id)
                        .values(status=DeliveryStatus.UNREACHABLE, last_error="no account")
                    )
                    continue
                view = brief_view(session, crisis_id, now)
                text = runtime.renderer.render(
                    "crisis_invite", user.language, v=view, role=member.role
                )
                buttons = _invite_buttons(runtime, user.language, member.id or 0)
            try:
                message = await runtime.notifier.send_text(chat, text, buttons)
            except RecipientUnreachable as exc:
                _finish_delivery(runtime, delivery_id, DeliveryStatus.UNREACHABLE, str(exc))
                continue
            except DeliveryError as exc:
                # Transient (429, 5xx): put it back and let the due row retry later.
                _finish_delivery(runtime, delivery_id, DeliveryStatus.PENDING, str(exc))
                raise
            _finish_delivery(runtime, delivery_id, DeliveryStatus.SENT, None, message)
            sent_count += 1
    finally:
        _CONVENING.discard(crisis_id)
    if sent_count:
        with runtime.db.session() as session:
            touch_brief(session, crisis_id, runtime.clock.now())
    return sent_count


def _finish_delivery(
    runtime: Runtime,
    delivery_id: int | None,
    status: str,
    error: str | None,
    message: SentMessage | None = None,
) -> None:
    now = runtime.clock.now()
    with runtime.db.session() as session:
        row = session.get(Delivery, delivery_id)
        if row is None:
            return
        row.status = status
        row.last_error = error[:500] if error else None
        if message is not None:
            stored_refs.keep_delivered(row, message)
            row.sent_at = now
        if status == DeliveryStatus.UNREACHABLE:
            audit.record(
                session,
                action="crisis.invite_unreachable",
                subject=f"user:{row.user_id}",
                after={"crisis_id": row.ref_id, "reason": (error or "")[:200]},
                at=now,
            )


@due_handler(CONVENE_KIND)
async def _convene_due(runtime: Runtime, session: Session, due: Due) -> None:
    # Own sessions only: see room._retry_room.
    if due.ref_id is None:
        return
    if due.ref_id in _CONVENING:
        # Being convened by this process right now: look again shortly (this row is done).
        schedule(
            session, CONVENE_KIND, runtime.clock.now() + timedelta(seconds=5), ref_id=due.ref_id
        )
        return
    # The live path posts the brief right after the room is ready, and this row is due at that
    # moment: a kill before the brief left (behind the room's flood limit, while invitations
    # went out from this row) left a room with no brief for good (crash matrix,
    # ``conv.invitation.1`` on PostgreSQL). Posted once across kills (outbox), so the live
    # path and this row cannot both post it.
    await post_brief(runtime, due.ref_id)
    await convene(runtime, due.ref_id, resume=True)


async def convene_more(
    runtime: Runtime,
    actor: Actor,
    crisis_id: int,
    *,
    usernames: Sequence[str] = (),
    user_ids: Sequence[int] = (),
) -> tuple[list[str], list[str]]:
    """Convene more registered people (lead, supervisors, or members of the crisis); returns
    the names invited and the @usernames nobody matched."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = open_crisis_row(session, crisis_id)
        if not is_participant(session, actor, crisis):
            raise TaskForceError("not_allowed")
        named, unknown = resolve_usernames(session, usernames)
        extra = convenable(session, crisis, user_ids)
        if len(extra) < len(set(user_ids)):
            # A picked id outside the crisis's agency: the list never offered it, so it is forged.
            raise TaskForceError("not_allowed")
        invited: list[str] = []
        for person in [*named, *extra]:
            if person.status != UserStatus.ACTIVE:
                continue
            if add_invitation(session, crisis, person, CrisisRole.MEMBER, now, actor.user_id):
                invited.append(display_name(person))
        ready = crisis.room_chat_id is not None
    if invited and ready:
        await convene(runtime, crisis_id)
    return invited, unknown


def may_convene(crisis: Crisis, user: User | None) -> bool:
    """Whom a crisis may convene by id (the pick list): active people of the crisis's agency.

    Checked here, not only in the keyboard: a forged button can carry any user id, and
    convening someone also shows the presser that person's name.
    """
    return (
        user is not None
        and user.status == UserStatus.ACTIVE
        and user.agency_id is not None
        and user.agency_id == crisis.agency_id
    )


def may_pick(session: Session, actor: Actor, crisis_id: int, user_id: int) -> bool:
    """Whether ``actor`` may convene ``user_id`` from the pick list of ``crisis_id`` (the rule
    of its buttons, or numbered choices): a participant, picking someone the crisis may
    convene."""
    crisis = session.get(Crisis, crisis_id)
    return (
        crisis is not None
        and is_participant(session, actor, crisis)
        and may_convene(crisis, session.get(User, user_id))
    )


def convenable(session: Session, crisis: Crisis, user_ids: Iterable[int]) -> list[User]:
    """The people among ``user_ids`` that ``crisis`` may convene (others are left out)."""
    people = (session.get(User, i) for i in dict.fromkeys(user_ids))
    return [u for u in people if u is not None and may_convene(crisis, u)]


def pick_candidates(session: Session, crisis_id: int, limit: int = 20) -> list[User]:
    """Registered people of the crisis's agency not yet convened (for the pick list)."""
    crisis = crisis_row(session, crisis_id)
    convened = select(CrisisMember.user_id).where(
        CrisisMember.crisis_id == crisis_id, CrisisMember.state != "declined"
    )
    return list(
        session.exec(
            select(User)
            .where(
                User.agency_id == crisis.agency_id,
                User.status == UserStatus.ACTIVE,
                col(User.id).not_in(convened),
            )
            .order_by(col(User.full_name), col(User.id))
            .limit(limit)
        )
    )
