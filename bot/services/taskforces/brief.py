"""The pinned brief of a crisis room: what it shows, posting and pinning it once, and editing it
in place when something changes (debounced through ``crisis.brief`` due rows).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.channels.base import (
    DeliveryError,
    Rejected,
    SentMessage,
)
from bot.services import outbox, room_rights, stored_refs, timeline
from bot.services.due import due_handler, schedule
from bot.services.taskforces.crises import crisis_row, display_name, members_of, room_language
from storage.counts import count_rows
from storage.models import (
    Agency,
    Alert,
    Article,
    ArticleTopic,
    Crisis,
    CrisisRole,
    Draft,
    DraftStatus,
    Due,
    Story,
    Task,
    Topic,
    User,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

BRIEF_KIND = "crisis.brief"
BRIEF_DELIVERY = "crisis_brief"
BRIEF_DEBOUNCE = timedelta(seconds=2)  # changes within this window share one edit of the brief


@dataclass
class BriefView:
    crisis: Crisis
    agency: Agency | None
    alert: Alert | None
    topic: Topic | None
    lead: User | None
    roles: list[tuple[str, str]]  # (role, name) for everyone with a role other than member
    counts: dict[str, int]
    tasks: list[tuple[Task, str]]  # open tasks with the owner's name
    done_tasks: int
    stories: list[Story]
    statements: int
    last_update: str | None
    now: datetime


def brief_view(session: Session, crisis_id: int, now: datetime) -> BriefView:
    crisis = crisis_row(session, crisis_id)
    members = members_of(session, crisis_id)
    counts = {"joined": 0, "accepted": 0, "invited": 0, "declined": 0}
    roles: list[tuple[str, str]] = []
    for member, user in members:
        if member.state in counts:
            counts[member.state] += 1
        if member.role != CrisisRole.MEMBER and member.state != "declined":
            roles.append((member.role, display_name(user)))
    tasks = session.exec(
        select(Task).where(Task.crisis_id == crisis_id).order_by(col(Task.id))
    ).all()
    open_tasks = []
    for task in tasks:
        if task.done_at is None:
            owner = session.get(User, task.owner_id) if task.owner_id else None
            open_tasks.append((task, display_name(owner)))
    stories: list[Story] = []
    if crisis.topic_id is not None:
        stories = list(
            session.exec(
                select(Story)
                .join(Article, col(Article.story_id) == col(Story.id))
                .join(ArticleTopic, col(ArticleTopic.article_id) == col(Article.id))
                .where(
                    ArticleTopic.topic_id == crisis.topic_id,
                    Story.last_seen_at >= crisis.detected_at - timedelta(days=2),
                )
                .group_by(col(Story.id))
                .order_by(col(Story.outlet_count).desc(), col(Story.article_count).desc())
                .limit(3)
            )
        )
    statements = count_rows(
        session, Draft, Draft.crisis_id == crisis_id, Draft.status == DraftStatus.PUBLISHED
    )
    update = session.exec(
        select(timeline.TimelineEvent)
        .where(
            timeline.TimelineEvent.crisis_id == crisis_id,
            timeline.TimelineEvent.kind == timeline.UPDATE,
        )
        .order_by(col(timeline.TimelineEvent.at).desc(), col(timeline.TimelineEvent.id).desc())
    ).first()
    return BriefView(
        crisis=crisis,
        agency=session.get(Agency, crisis.agency_id),
        alert=session.get(Alert, crisis.alert_id) if crisis.alert_id else None,
        topic=session.get(Topic, crisis.topic_id) if crisis.topic_id else None,
        lead=session.get(User, crisis.lead_id) if crisis.lead_id else None,
        roles=roles,
        counts=counts,
        tasks=open_tasks,
        done_tasks=len(tasks) - len(open_tasks),
        stories=stories,
        statements=int(statements),
        last_update=update.text if update else None,
        now=now,
    )


def render_brief(runtime: Runtime, session: Session, crisis_id: int) -> str:
    view = brief_view(session, crisis_id, runtime.clock.now())
    lang = room_language(session, view.crisis)
    return runtime.renderer.render("crisis_brief", lang, v=view)


async def post_brief(runtime: Runtime, crisis_id: int) -> None:
    """Post and pin the brief once; later changes edit it in place (``refresh_brief``)."""
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        to = stored_refs.crisis_room(crisis)
        if crisis.brief_message_id is not None or to is None:
            return
        text = render_brief(runtime, session, crisis_id)
        lead = crisis.lead_id
    if lead is None:
        sent: SentMessage | None = await runtime.notifier.send_text(to, text)
    else:  # once across kills: a brief in doubt is not posted again
        sent = await outbox.send_once(
            runtime,
            kind=BRIEF_DELIVERY,
            ref_id=crisis_id,
            user_id=lead,
            part="brief",
            send=lambda: runtime.notifier.send_text(to, text),
        )
    if sent is None:
        return
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        crisis.brief_message_id = sent.message_id  # in the room: ``stored_refs.crisis_brief``
    try:
        await runtime.notifier.pin(sent)
    except Rejected as exc:  # the bot may not pin here: the lead and the admins hear it
        log.warning("crisis %s: brief not pinned: %s", crisis_id, exc)
        where = "hub" if to.thread_id is not None else "group"
        await room_rights.right_missing(runtime, crisis_id, "pin", where, str(exc))
    except DeliveryError as exc:
        log.warning("crisis %s: brief not pinned: %s", crisis_id, exc)


async def refresh_brief(runtime: Runtime, crisis_id: int) -> None:
    """Edit the pinned brief to the current state now (identical text is not an error)."""
    with runtime.db.session() as session:
        crisis = crisis_row(session, crisis_id)
        message = stored_refs.crisis_brief(crisis)
        if message is None:
            return
        text = render_brief(runtime, session, crisis_id)
    await runtime.notifier.edit_text(message, text)


def touch_brief(session: Session, crisis_id: int, now: datetime) -> None:
    """Ask for the brief to be edited soon: a burst of changes within ``BRIEF_DEBOUNCE`` becomes
    one edit (a messenger allows a group about 20 messages a minute). A row that is already due may
    be firing right now with the state before this change, so then a new row is added."""
    waiting = session.exec(
        select(Due.id).where(
            Due.kind == BRIEF_KIND,
            Due.ref_id == crisis_id,
            col(Due.done_at).is_(None),
            Due.due_at > now,
        )
    ).first()
    if waiting is None:
        schedule(session, BRIEF_KIND, now + BRIEF_DEBOUNCE, ref_id=crisis_id)


@due_handler(BRIEF_KIND)
async def _brief_due(runtime: Runtime, session: Session, due: Due) -> None:
    if due.ref_id is not None:
        await refresh_brief(runtime, due.ref_id)
