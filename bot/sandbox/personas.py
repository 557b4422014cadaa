"""The sandbox's people and chats: who the visitor can be, and what each already has.

Persona ids are fixed, so a sandbox kept with ``--data DIR`` finds the same people in its
database after a restart (the emulator itself starts empty every time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from bot.channels.refs import PersonRef
from bot.channels.telegram.notifier import person_ref
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from storage.models import Agency, Role, Subscription, Topic, User, UserStatus

AGENCY_CODE = "BYT"
AGENCY_NAME = "Bộ Y tế"

# Rights a bot needs in a crisis hub or a pooled group.
BOT_RIGHTS = {
    "can_manage_topics": True,
    "can_pin_messages": True,
    "can_invite_users": True,
    "can_restrict_members": True,
    "can_delete_messages": True,
    "can_change_info": True,
    "can_manage_chat": True,
}


@dataclass(frozen=True)
class Persona:
    key: str
    user_id: int
    first_name: str
    last_name: str
    username: str
    phone: str
    role: str | None  # the role they hold once registered (None: an outsider)
    registered: bool  # already active in the database at start
    registered_in_drill: bool  # ... in the guided drill

    @property
    def full_name(self) -> str:
        return f"{self.last_name} {self.first_name}".strip()


PERSONAS: tuple[Persona, ...] = (
    Persona("admin", 7001, "An", "Nguyễn Văn", "an_admin", "+84901000001", Role.ADMIN, True, True),
    Persona(
        "supervisor",
        7002,
        "Bình",
        "Trần Thị",
        "binh_gs",
        "+84901000002",
        Role.SUPERVISOR,
        True,
        True,
    ),
    Persona(
        "spokesperson",
        7003,
        "Châu",
        "Lê Minh",
        "chau_pn",
        "+84901000003",
        Role.SPOKESPERSON,
        True,
        False,
    ),
    Persona(
        "member", 7004, "Dũng", "Phạm Quốc", "dung_tct", "+84901000004", Role.MEMBER, True, True
    ),
    Persona("outsider", 7005, "Hà", "Hoàng Thu", "ha_khach", "+84901000005", None, False, False),
)
PERSONA_BY_KEY = {p.key: p for p in PERSONAS}
PERSONA_BY_ID = {p.user_id: p for p in PERSONAS}


@dataclass(frozen=True)
class ZaloPersona:
    """Someone the visitor can be on Zalo: plain text only, commands typed."""

    key: str
    zalo_id: str
    full_name: str
    role: str | None
    registered: bool  # already active at start (or, with ``same_as``, linked)
    registered_in_drill: bool
    same_as: str | None = None  # a Telegram persona's key: the same person, with both messengers

    @property
    def page_id(self) -> str:
        """The persona's id on the page and in its backend (Telegram personas have numbers)."""
        return f"zalo:{self.zalo_id}"


ZALO_PERSONAS: tuple[ZaloPersona, ...] = (
    # The admin reads Zalo too: a Zalo newcomer's request reaches him there, and he can decide
    # by command (/accept, /duyet) as Zalo's officials do.
    ZaloPersona("zalo_admin", "9100000000000001", "Nguyễn Văn An", Role.ADMIN, True, True, "admin"),
    ZaloPersona(
        "zalo_spokesperson", "9100000000000002", "Vũ Thị Lan", Role.SPOKESPERSON, True, False
    ),
)
ZALO_PERSONA_BY_KEY = {p.key: p for p in ZALO_PERSONAS}
ZALO_PERSONA_BY_PAGE_ID = {p.page_id: p for p in ZALO_PERSONAS}


PUBLIC_CHANNEL = "byt_tin_chinh_thuc"  # the agency's public channel (approved statements)


@dataclass
class SandboxChats:
    hub_id: int
    pool_ids: list[int]
    channel_id: int


def seed_emulator(emulator: TelegramEmulator) -> SandboxChats:
    """The people, the agency's forum hub and two pooled groups (the bot is added later, once
    the bot polls, so it sees ``my_chat_member`` like a real bot being promoted)."""
    for persona in PERSONAS:
        emulator.create_user(
            persona.first_name,
            last_name=persona.last_name,
            username=persona.username,
            language_code="vi",
            user_id=persona.user_id,
        )
    admin = PERSONA_BY_KEY["admin"].user_id
    supervisor = PERSONA_BY_KEY["supervisor"].user_id
    hub = emulator.create_supergroup(
        "BYT · Trung tâm xử lý khủng hoảng", forum=True, owner_id=admin, member_ids=[supervisor]
    )
    pools = [emulator.create_supergroup(f"BYT · Tổ công tác {n}", owner_id=admin) for n in (1, 2)]
    channel = emulator.create_channel(
        "Bộ Y tế · Tin chính thức", owner_id=admin, username=PUBLIC_CHANNEL
    )
    for persona in PERSONAS:
        if persona.user_id != admin:
            emulator.join(persona.user_id, channel.id)  # public: anyone may subscribe
    return SandboxChats(hub.id, [pool.id for pool in pools], channel.id)


def add_bot_everywhere(emulator: TelegramEmulator, chats: SandboxChats) -> None:
    admin = PERSONA_BY_KEY["admin"].user_id
    for chat_id in (chats.hub_id, *chats.pool_ids):
        emulator.add_bot(chat_id, rights=BOT_RIGHTS, by_user_id=admin)
    emulator.add_bot(
        chats.channel_id,
        rights={"can_post_messages": True, "can_edit_messages": True},
        by_user_id=admin,
    )


def mark_started(emulator: TelegramEmulator, persona: Persona) -> None:
    """A registered person has talked to the bot before (the bot may message them)."""
    user = emulator.user(persona.user_id)
    emulator.world.private_chat(user)
    user.started = True


def seed_database(session: Session, *, drill: bool, now: datetime) -> list[Persona]:
    """User rows (and topic subscriptions) of the personas registered at start; returns them."""
    agency = session.exec(select(Agency).where(Agency.code == AGENCY_CODE)).one()
    topics = session.exec(select(Topic).where(Topic.agency_id == agency.id)).all()
    seeded = []
    for persona in PERSONAS:
        wanted = persona.registered_in_drill if drill else persona.registered
        if not wanted or persona.role is None:
            continue
        seeded.append(persona)
        if identity.person_for(session, person_ref(persona.user_id)) is not None:
            continue
        user = _person(agency, persona.role, persona.full_name, now, persona.phone)
        user.username = persona.username
        _add(session, user, person_ref(persona.user_id), topics, now)
    return seeded


def seed_zalo_database(session: Session, *, drill: bool, now: datetime) -> list[ZaloPersona]:
    """The Zalo accounts of the personas registered at start (a second messenger of a Telegram
    persona is linked to that person); returns them."""
    agency = session.exec(select(Agency).where(Agency.code == AGENCY_CODE)).one()
    topics = session.exec(select(Topic).where(Topic.agency_id == agency.id)).all()
    seeded = []
    for persona in ZALO_PERSONAS:
        if not (persona.registered_in_drill if drill else persona.registered):
            continue
        account = PersonRef("zalo", persona.zalo_id)
        if identity.person_for(session, account) is not None:
            seeded.append(persona)
            continue
        if persona.same_as is not None:
            telegram = PERSONA_BY_KEY[persona.same_as].user_id
            user = identity.person_for(session, person_ref(telegram))
            if user is None:
                continue  # not registered on Telegram either
            identity.link(session, user, account, now)
        else:
            assert persona.role is not None
            _add(
                session, _person(agency, persona.role, persona.full_name, now), account, topics, now
            )
        seeded.append(persona)
    return seeded


def _person(agency: Agency, role: str, name: str, now: datetime, phone: str | None = None) -> User:
    return User(
        full_name=name,
        phone=phone,
        agency_id=agency.id,
        role=role,
        status=UserStatus.ACTIVE,
        language="vi",
        created_at=now,
        updated_at=now,
    )


def _add(
    session: Session, user: User, account: PersonRef, topics: Sequence[Topic], now: datetime
) -> None:
    """A registered person's row and account; spokespeople and supervisors follow every topic."""
    identity.add_person(session, account, user)
    if user.role in (Role.SPOKESPERSON, Role.SUPERVISOR):
        assert user.id is not None
        for topic in topics:
            assert topic.id is not None
            session.add(Subscription(user_id=user.id, topic_id=topic.id, created_at=now))
