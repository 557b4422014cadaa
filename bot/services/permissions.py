"""Who may do what. Checked on the server for every command and every button press.

The rules never trust what a person was shown: a button's presence proves nothing, so each
action names its rule here and the rule is evaluated against rows reloaded from the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import Role, User, UserStatus

ROLE_RANK = {Role.MEMBER: 0, Role.SPOKESPERSON: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class Actor:
    """The person behind an update, as far as the server knows.

    ``user`` is None for people who never registered. ``global_admin`` comes from ADMIN_IDS,
    which wins over any row so that an operator can never lock themselves out.
    """

    channel_ref: str  # e.g. "tg:12345"
    user: User | None
    global_admin: bool = False

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user else None

    @property
    def active(self) -> bool:
        return self.global_admin or (
            self.user is not None and self.user.status == UserStatus.ACTIVE
        )

    @property
    def suspended(self) -> bool:
        return (
            not self.global_admin
            and self.user is not None
            and self.user.status == UserStatus.SUSPENDED
        )

    @property
    def role(self) -> Role | None:
        if self.global_admin:
            return Role.ADMIN
        if self.user is None or self.user.status != UserStatus.ACTIVE:
            return None
        return Role(self.user.role)

    @property
    def agency_id(self) -> int | None:
        return self.user.agency_id if self.user else None


def has_role(actor: Actor, minimum: Role) -> bool:
    """True if the actor is active with ``minimum`` or a higher role."""
    role = actor.role
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def is_admin(actor: Actor) -> bool:
    return actor.role == Role.ADMIN


def can_act_for_agency(actor: Actor, agency_id: int | None, minimum: Role) -> bool:
    """Admins act for every agency; others only for their own, with at least ``minimum``."""
    if is_admin(actor):
        return True
    return has_role(actor, minimum) and agency_id is not None and actor.agency_id == agency_id
