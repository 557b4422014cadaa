"""Looking people up: who is behind a Telegram id, who are an agency's supervisors.

Registration (its own module) creates and changes people; this module only reads, so every other
service can depend on it without depending on the registration flow.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.channels.refs import PersonRef
from bot.config import Settings
from bot.services.permissions import Actor
from storage.models import Role, User, UserStatus


def telegram_ref(telegram_id: int) -> str:
    return f"tg:{telegram_id}"


def user_by_telegram(session: Session, telegram_id: int) -> User | None:
    return session.exec(select(User).where(User.telegram_id == telegram_id)).first()


def actor_for_telegram(session: Session, settings: Settings, telegram_id: int) -> Actor:
    """The Actor for a Telegram user, global admin status taken from ADMIN_IDS."""
    return actor_for(session, settings, PersonRef("telegram", str(telegram_id)))


def actor_for(session: Session, settings: Settings, who: PersonRef) -> Actor:
    """Who the sender of an event is to CrisisDesk, on any channel: the one place handlers turn
    a sender into a person.

    Until people carry channel identities (issue 19, item 1), the only account id stored is
    ``User.telegram_id``, so a numeric account id on any channel is looked up there.
    """
    number = int(who.external_id) if who.external_id.lstrip("-").isdigit() else None
    return Actor(
        channel_ref=str(who),
        user=user_by_telegram(session, number) if number is not None else None,
        global_admin=number in settings.admin_ids,
    )


def active_with_role(session: Session, agency_id: int | None, role: Role) -> list[User]:
    """Active people of ``agency_id`` holding exactly ``role`` (agency None: every agency)."""
    query = select(User).where(User.status == UserStatus.ACTIVE, User.role == role)
    if agency_id is not None:
        query = query.where(User.agency_id == agency_id)
    return list(session.exec(query.order_by(col(User.id))))
