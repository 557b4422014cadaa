"""Tasks of a task force: ``[@owner] [when] title`` parsed into a task with an optional due time,
reminders to the owner (``task.reminder`` due rows) and closing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from bot.channels.base import (
    Button,
)
from bot.services import audit, identity, timeline
from bot.services.due import cancel, due_handler, schedule
from bot.services.notify import send_direct
from bot.services.people import find_by_username
from bot.services.permissions import (
    Actor,
)
from bot.services.taskforces.brief import touch_brief
from bot.services.taskforces.crises import (
    TaskForceError,
    crisis_row,
    display_name,
    is_lead_or_supervisor,
    member_row,
    participant_crisis,
)
from storage.models import (
    Crisis,
    CrisisStatus,
    Due,
    Task,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


TASK_KIND = "task.reminder"
TASK_DONE = "tf.done"  # button action (registered in handlers/taskforce.py)
TASK_REMINDER_LEAD = timedelta(minutes=30)


_DURATION = re.compile(
    r"^\+?(?:(?P<d>\d+)\s*(?:d|ngày|ngay))?"
    r"(?:(?P<h>\d+(?:[.,]\d+)?)\s*(?:hours?|hrs|hr|giờ|gio|h|g))?"
    r"(?:(?P<m>\d+)\s*(?:m|p|ph|phút|phut|min|mins|minutes?)?)?$",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"^(?:lúc|luc|at|@)?(?P<h>[01]?\d|2[0-3])[:h](?P<m>[0-5]\d)$", re.IGNORECASE)


@dataclass(frozen=True)
class TaskSpec:
    username: str | None
    due: timedelta | None
    clock: tuple[int, int] | None
    title: str


def parse_task(text: str) -> TaskSpec:
    """``[@owner] [when] title`` in any order of the first two, e.g.

    ``@lan 2h Gọi cho báo Tuổi Trẻ`` · ``30m @lan Soạn thông cáo`` · ``@lan 1h30 …`` ·
    ``lúc 15:30 Họp báo`` · ``@lan 15h30 …`` · ``Kiểm tra số liệu`` (the issuer, no due time).
    Durations: ``45m``/``45p``/``45 phút``, ``2h``/``2g``/``2 giờ``, ``1h30``, ``1d``; a clock time
    ``HH:MM`` (or ``15h30``, hours ≥ 10 with minutes) means today, or tomorrow if it has passed.
    """
    words = text.split()
    username: str | None = None
    due: timedelta | None = None
    clock: tuple[int, int] | None = None
    i = 0
    while i < len(words) and i < 4:
        word = words[i]
        if word.startswith("@") and username is None and len(word) > 1:
            username = word[1:]
            i += 1
            continue
        if due is None and clock is None:
            joined = word
            # "2 giờ", "30 phút", "lúc 15:30": the unit or the time in the next word.
            if i + 1 < len(words) and (word.isdigit() or word.lower() in ("lúc", "luc", "at")):
                joined = word + words[i + 1]
            for candidate, width in ((joined, 2 if joined != word else 1), (word, 1)):
                parsed = _parse_when(candidate)
                if parsed is not None:
                    due, clock = parsed
                    i += width
                    break
            else:
                break
            continue
        break
    title = " ".join(words[i:]).strip()
    if not title:
        raise TaskForceError("task_usage")
    if len(title) > 300:
        raise TaskForceError("title_long", limit=300)
    return TaskSpec(username, due, clock, title)


def _parse_when(word: str) -> tuple[timedelta | None, tuple[int, int] | None] | None:
    clock = _CLOCK.match(word)
    if clock and (":" in word or int(clock.group("h")) >= 10 or word[0].isalpha()):
        return None, (int(clock.group("h")), int(clock.group("m")))
    if not word or not word[-1].isalnum() or word.isdigit():
        return None
    match = _DURATION.match(word)
    if not match or not any(match.group(k) for k in ("d", "h", "m")):
        return None
    if match.group("m") and not match.group("h") and word.isdigit():
        return None
    days = int(match.group("d") or 0)
    hours = float((match.group("h") or "0").replace(",", "."))
    minutes = int(match.group("m") or 0)
    delta = timedelta(days=days, hours=hours, minutes=minutes)
    if delta <= timedelta(0):
        return None
    return delta, None


def _due_at(spec: TaskSpec, now: datetime, tz: Any) -> datetime | None:
    if spec.due is not None:
        if spec.due > timedelta(days=30):
            raise TaskForceError("due_far")
        return now + spec.due
    if spec.clock is not None:
        local = now.astimezone(tz)
        at = local.replace(hour=spec.clock[0], minute=spec.clock[1], second=0, microsecond=0)
        if at <= local:
            at += timedelta(days=1)
        return at.astimezone(now.tzinfo)
    return None


@dataclass
class TaskView:
    task: Task
    owner: str
    owner_user: User | None


def add_task(runtime: Runtime, actor: Actor, crisis_id: int, text: str) -> TaskView:
    """Create a task for a participant (default: the issuer) with an optional due time; a
    reminder goes to the owner before it is due."""
    now = runtime.clock.now()
    spec = parse_task(text)
    with runtime.db.session() as session:
        crisis = participant_crisis(session, actor, crisis_id, open_only=True)
        if spec.username is not None:
            owner = find_by_username(session, spec.username)
            if owner is None or owner.status != UserStatus.ACTIVE:
                raise TaskForceError("unknown_user", username=spec.username)
        else:
            owner = session.get(User, actor.user_id) if actor.user_id else None
            if owner is None:
                raise TaskForceError("not_registered")
        member = member_row(session, crisis_id, owner.id)
        if (member is None or member.state == "declined") and owner.id != crisis.lead_id:
            raise TaskForceError("not_member", username=owner.username or display_name(owner))
        due_at = _due_at(spec, now, runtime.settings.tz)
        task = Task(
            crisis_id=crisis_id,
            title=spec.title,
            owner_id=owner.id,
            due_at=due_at,
            created_by_id=actor.user_id,
            created_at=now,
        )
        session.add(task)
        session.flush()
        assert task.id is not None
        if due_at is not None:
            lead = min(TASK_REMINDER_LEAD, (due_at - now) / 2)
            schedule(
                session,
                TASK_KIND,
                due_at - lead,
                ref_id=task.id,
                payload={"stage": "soon"},
                dedupe_key=f"task:{task.id}:soon",
            )
            schedule(
                session,
                TASK_KIND,
                due_at,
                ref_id=task.id,
                payload={"stage": "due"},
                dedupe_key=f"task:{task.id}:due",
            )
        timeline.add(
            session,
            crisis_id,
            timeline.TASK_ADDED,
            actor.user_id,
            spec.title,
            {
                "task_id": task.id,
                "owner_id": owner.id,
                "due_at": due_at.isoformat() if due_at else None,
            },
            now,
        )
        audit.by_actor(
            session,
            actor,
            action="task.added",
            subject=f"task:{task.id}",
            after={"crisis_id": crisis_id, "owner_id": owner.id, "title": spec.title},
            at=now,
        )
        touch_brief(session, crisis_id, now)
        return TaskView(task, display_name(owner), owner)


def can_close_task(session: Session, actor: Actor, task_id: int) -> bool:
    task = session.get(Task, task_id)
    if task is None or not actor.active:
        return False
    crisis = session.get(Crisis, task.crisis_id)
    if crisis is None:
        return False
    return task.owner_id == actor.user_id or is_lead_or_supervisor(session, actor, crisis)


def complete_task(runtime: Runtime, actor: Actor, task_id: int) -> tuple[TaskView, bool]:
    """Close a task (its owner, the lead or a supervisor); returns it and whether it changed."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise TaskForceError("no_task", id=task_id)
        crisis = crisis_row(session, task.crisis_id)
        if not can_close_task(session, actor, task_id):
            raise TaskForceError("not_allowed")
        owner = session.get(User, task.owner_id) if task.owner_id else None
        if task.done_at is not None:
            return TaskView(task, display_name(owner), owner), False
        if crisis.status == CrisisStatus.RESOLVED:
            raise TaskForceError("resolved", id=crisis.id)
        task.done_at = now
        cancel(session, kind=TASK_KIND, ref_id=task_id, at=now)
        timeline.add(
            session,
            task.crisis_id,
            timeline.TASK_DONE,
            actor.user_id,
            task.title,
            {"task_id": task_id},
            now,
        )
        audit.by_actor(
            session,
            actor,
            action="task.done",
            subject=f"task:{task_id}",
            at=now,
        )
        touch_brief(session, task.crisis_id, now)
        return TaskView(task, display_name(owner), owner), True


@due_handler(TASK_KIND)
async def _task_reminder(runtime: Runtime, session: Session, due: Due) -> None:
    task = session.get(Task, due.ref_id) if due.ref_id is not None else None
    if task is None or task.done_at is not None:
        return
    crisis = session.get(Crisis, task.crisis_id)
    if crisis is None or crisis.status == CrisisStatus.RESOLVED:
        return
    owner = session.get(User, task.owner_id) if task.owner_id else None
    to = identity.direct_chat(session, task.owner_id, runtime.notifier.channel)
    if owner is None or to is None or not owner.reachable:
        return
    text = runtime.renderer.render(
        "task_reminder", owner.language, t=task, c=crisis, stage=due.payload.get("stage", "soon")
    )
    buttons = [
        [Button(runtime.renderer.render("tf_button_done", owner.language), TASK_DONE, task.id or 0)]
    ]
    await send_direct(runtime, session, owner, text, buttons)


def open_tasks(session: Session, crisis_id: int) -> list[TaskView]:
    rows = session.exec(
        select(Task)
        .where(Task.crisis_id == crisis_id, col(Task.done_at).is_(None))
        .order_by(col(Task.due_at).is_(None), col(Task.due_at), col(Task.id))
    ).all()
    views = []
    for task in rows:
        owner = session.get(User, task.owner_id) if task.owner_id else None
        views.append(TaskView(task, display_name(owner), owner))
    return views
