"""Looking people up: who is behind a Telegram id, who are an agency's supervisors.

Registration (its own module) creates and changes people; this module only reads, so every other
service can depend on it without depending on the registration flow.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.config import Settings
from bot.services.permissions import Actor
from storage.models import Role, User, UserStatus


def telegram_ref(telegram_id: int) -> str:
    return f"tg:{telegram_id}"


def user_by_telegram(session: Session, telegram_id: int) -> User | None:
    return session.exec(select(User).where(User.telegram_id == telegram_id)).first()


def actor_for_telegram(session: Session, settings: Settings, telegram_id: int) -> Actor:
    """The Actor for a Telegram user, global admin status taken from ADMIN_IDS."""
    return Actor(
        channel_ref=telegram_ref(telegram_id),
        user=user_by_telegram(session, telegram_id),
        global_admin=telegram_id in settings.admin_ids,
    )


def active_with_role(session: Session, agency_id: int | None, role: Role) -> list[User]:
    """Active people of ``agency_id`` holding exactly ``role`` (agency None: every agency)."""
    query = select(User).where(User.status == UserStatus.ACTIVE, User.role == role)
    if agency_id is not None:
        query = query.where(User.agency_id == agency_id)
    return list(session.exec(query.order_by(col(User.id))))
