"""Roles in a task force (lead, drafter, approver, liaison, member), named in Vietnamese or
English; handing over the lead makes the old lead a member.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.services import audit, timeline
from bot.services.people import find_by_username
from bot.services.permissions import (
    Actor,
)
from bot.services.taskforces.brief import touch_brief
from bot.services.taskforces.crises import (
    TaskForceError,
    display_name,
    is_lead_or_supervisor,
    member_row,
    open_crisis_row,
)
from storage.models import (
    CrisisRole,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


ROLE_ALIASES = {
    "lead": CrisisRole.LEAD,
    "truongnhom": CrisisRole.LEAD,
    "trưởngnhóm": CrisisRole.LEAD,
    "chihuy": CrisisRole.LEAD,
    "drafter": CrisisRole.DRAFTER,
    "soanthao": CrisisRole.DRAFTER,
    "soạnthảo": CrisisRole.DRAFTER,
    "approver": CrisisRole.APPROVER,
    "duyet": CrisisRole.APPROVER,
    "duyệt": CrisisRole.APPROVER,
    "pheduyet": CrisisRole.APPROVER,
    "phêduyệt": CrisisRole.APPROVER,
    "liaison": CrisisRole.LIAISON,
    "lienlac": CrisisRole.LIAISON,
    "liênlạc": CrisisRole.LIAISON,
    "dauMoi": CrisisRole.LIAISON,
    "đầumối": CrisisRole.LIAISON,
    "member": CrisisRole.MEMBER,
    "thanhvien": CrisisRole.MEMBER,
    "thànhviên": CrisisRole.MEMBER,
}


def parse_role(raw: str) -> CrisisRole:
    key = "".join(raw.lower().split())
    role = ROLE_ALIASES.get(key)
    if role is None:
        raise TaskForceError("bad_role", role=raw)
    return role


def set_role(
    runtime: Runtime, actor: Actor, crisis_id: int, username: str, role: CrisisRole
) -> tuple[str, str]:
    """Give a convened person a role (lead and supervisors only). Naming a new lead hands the
    lead over: the old lead becomes a member. Returns (name, role)."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        crisis = open_crisis_row(session, crisis_id)
        if not is_lead_or_supervisor(session, actor, crisis):
            audit.by_actor(
                session,
                actor,
                action="crisis.role_refused",
                subject=f"crisis:{crisis_id}",
                after={"username": username, "role": role},
                at=now,
            )
            raise TaskForceError("not_lead")
        user = find_by_username(session, username)
        if user is None or user.id is None or user.status != UserStatus.ACTIVE:
            raise TaskForceError("unknown_user", username=username.removeprefix("@"))
        member = member_row(session, crisis_id, user.id)
        if member is None or member.state == "declined":
            raise TaskForceError("not_member", username=username.removeprefix("@"))
        before = member.role
        if role == CrisisRole.LEAD and crisis.lead_id != user.id:
            old = member_row(session, crisis_id, crisis.lead_id)
            if old is not None:
                old.role = CrisisRole.MEMBER
            crisis.lead_id = user.id
        elif before == CrisisRole.LEAD and role != CrisisRole.LEAD:
            raise TaskForceError("lead_needed")
        member.role = role
        timeline.add(
            session,
            crisis_id,
            timeline.ROLE,
            actor.user_id,
            f"{display_name(user)}: {role}",
            {"user_id": user.id, "before": before, "after": role},
            now,
        )
        audit.by_actor(
            session,
            actor,
            action="crisis.role",
            subject=f"crisis:{crisis_id}",
            before={"user_id": user.id, "role": before},
            after={"user_id": user.id, "role": role},
            at=now,
        )
        touch_brief(session, crisis_id, now)
        return display_name(user), role
