"""Looking people up: who is behind an account, who are an agency's supervisors.

Registration (its own module) creates and changes people; this module only reads, so every other
service can depend on it without depending on the registration flow.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from bot.channels.refs import PersonRef
from bot.config import Settings
from bot.services import identity
from bot.services.permissions import Actor
from storage.models import Role, User, UserStatus


def actor_for(session: Session, settings: Settings, who: PersonRef) -> Actor:
    """The Actor behind an account: its person through their channel identity, and global
    admin status from ADMIN_IDS."""
    return Actor(
        channel_ref=str(who),
        user=identity.person_for(session, who),
        global_admin=who in identity.global_admins(settings, who.channel),
    )


def active_with_role(session: Session, agency_id: int | None, role: Role) -> list[User]:
    """Active people of ``agency_id`` holding exactly ``role`` (agency None: every agency)."""
    query = select(User).where(User.status == UserStatus.ACTIVE, User.role == role)
    if agency_id is not None:
        query = query.where(User.agency_id == agency_id)
    return list(session.exec(query.order_by(col(User.id))))


def find_by_username(session: Session, username: str) -> User | None:
    """The registered person with this @username (case-insensitive, ``@`` optional)."""
    name = username.strip().removeprefix("@").lower()
    if not name:
        return None
    return session.exec(
        select(User).where(func.lower(User.username) == name).order_by(col(User.id).desc())
    ).first()
