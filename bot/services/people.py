"""Looking people up: who is behind an account, who are an agency's supervisors, and what the
``/people`` and ``/me`` screens show about someone (their agency, one page of an agency's
people, and the channels each of them can be reached on).

Registration (its own module) creates and changes people; this module only reads, so every other
service can depend on it without depending on the registration flow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from bot.channels.refs import PersonRef
from bot.config import Settings
from bot.services import identity
from bot.services.permissions import Actor, can_act_for_agency
from storage.models import Agency, Role, User, UserStatus

if TYPE_CHECKING:
    from bot.runtime import Runtime

PEOPLE_PER_PAGE = 8


def actor_for(session: Session, settings: Settings, who: PersonRef) -> Actor:
    """The Actor behind an account: its person through their channel identity, and global
    admin status from ADMIN_IDS."""
    return Actor(
        channel_ref=str(who),
        user=identity.person_for(session, who),
        global_admin=identity.is_global_admin(settings, who),
    )


def active_with_role(session: Session, agency_id: int | None, role: Role) -> list[User]:
    """Active people of ``agency_id`` holding exactly ``role`` (agency None: every agency)."""
    query = select(User).where(User.status == UserStatus.ACTIVE, User.role == role)
    if agency_id is not None:
        query = query.where(User.agency_id == agency_id)
    return list(session.exec(query.order_by(col(User.id))))


def agency_name(session: Session, agency_id: Any) -> str:
    """The name of a person's (or a registration's) agency; ``""`` if none or it is gone."""
    agency = session.get(Agency, int(agency_id or 0))
    return agency.name if agency is not None else ""


def can_view_agency(session: Session, actor: Actor, agency_id: int) -> bool:
    """Admins see every agency's people; supervisors their own agency's."""
    return session.get(Agency, agency_id) is not None and can_act_for_agency(
        actor, agency_id, Role.SUPERVISOR
    )


def people_of_agency(
    session: Session, agency_id: int, page: int = 0, per_page: int = PEOPLE_PER_PAGE
) -> tuple[list[User], int, int]:
    """Pending, active and suspended people of an agency (in that order), one page of them."""
    order = sa.case(
        (col(User.status) == UserStatus.PENDING, 0),
        (col(User.status) == UserStatus.ACTIVE, 1),
        else_=2,
    )
    query = select(User).where(
        User.agency_id == agency_id,
        col(User.status).in_((UserStatus.PENDING, UserStatus.ACTIVE, UserStatus.SUSPENDED)),
    )
    total = len(session.exec(query).all())
    pages = max(1, -(-total // per_page))
    page = min(max(page, 0), pages - 1)
    rows = session.exec(
        query.order_by(order, col(User.full_name), col(User.id))
        .offset(page * per_page)
        .limit(per_page)
    ).all()
    return list(rows), page, pages


@dataclass(frozen=True)
class PeoplePage:
    """One page of an agency's people for ``/people``; ``channels``: by user id, the
    channels each person has an account on (``telegram``, ``zalo``…), so a supervisor sees
    where someone can be reached."""

    agency_id: int
    agency: str
    people: list[User]
    channels: dict[int, list[str]]
    page: int  # from 0
    pages: int


def agency_page(session: Session, agency_id: int, page: int) -> PeoplePage:
    rows, page, pages = people_of_agency(session, agency_id, page)
    return PeoplePage(
        agency_id=agency_id,
        agency=agency_name(session, agency_id),
        people=rows,
        channels=identity.channels_of(session, [u.id for u in rows if u.id is not None]),
        page=page,
        pages=pages,
    )


@dataclass(frozen=True)
class PersonCard:
    """One person as ``/people`` shows them to whoever manages them (and ``/me`` to
    themselves): the row, their agency's name and the channels they are on."""

    user: User
    agency: str
    channels: list[str]


def card(session: Session, user_id: int) -> PersonCard | None:
    user = session.get(User, user_id)
    if user is None or user.id is None:
        return None
    channels = identity.channels_of(session, [user.id]).get(user.id, [])
    return PersonCard(user, agency_name(session, user.agency_id), channels)


def find_by_username(session: Session, username: str) -> User | None:
    """The registered person with this @username (case-insensitive, ``@`` optional)."""
    name = username.strip().removeprefix("@").lower()
    if not name:
        return None
    return session.exec(
        select(User).where(func.lower(User.username) == name).order_by(col(User.id).desc())
    ).first()


def person_card(runtime: Runtime, user_id: int) -> PersonCard | None:
    """``card`` read in a transaction of its own: the screens show it after a change to the
    person has been committed (``/me``, ``/people``)."""
    with runtime.db.session() as session:
        return card(session, user_id)


def agency_people(runtime: Runtime, agency_id: int, page: int) -> PeoplePage:
    """One page of ``/people`` for an agency, read in a transaction of its own."""
    with runtime.db.session() as session:
        return agency_page(session, agency_id, page)


def actor_of(runtime: Runtime, who: PersonRef) -> Actor:
    """:func:`actor_for`, read in a unit of work of its own: the handlers (which open no
    session) resolve every sender here."""
    with runtime.db.session() as session:
        return actor_for(session, runtime.settings, who)


def passes(
    runtime: Runtime, rule: Callable[[Session, Actor, str], bool], actor: Actor, ident: str
) -> bool:
    """Whether ``actor`` passes a button's ``rule`` (``bot.buttons``) for ``ident``, against rows
    read now: a press proves nothing about what its presser may do."""
    with runtime.db.session() as session:
        return rule(session, actor, ident)
