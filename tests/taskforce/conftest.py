"""Fixtures for the task-force tests: an agency with people, the emulator's hub or pool, the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.channels.telegram.notifier import person_ref
from bot.sandbox.telegram_emulator import Chat, TelegramEmulator
from bot.services import identity
from storage.db import Database
from storage.models import Agency, User

HUB_RIGHTS = {
    "can_manage_topics": True,
    "can_pin_messages": True,
    "can_invite_users": True,
    "can_restrict_members": True,
    "can_delete_messages": True,
    "can_change_info": True,
}
POOL_RIGHTS = {
    "can_change_info": True,
    "can_invite_users": True,
    "can_restrict_members": True,
    "can_pin_messages": True,
    "can_delete_messages": True,
}


@dataclass
class Person:
    tg: int  # Telegram id
    id: int  # User row id
    username: str


@dataclass
class World:
    agency_id: int
    people: dict[str, Person] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Person:
        return self.people[name]


def add_person(
    emulator: TelegramEmulator,
    db: Database,
    world: World,
    name: str,
    role: str,
    *,
    status: str = "active",
    language: str = "en",
    started: bool = True,
) -> Person:
    tg_user = emulator.create_user(name.title(), username=name, language_code=language)
    if started:  # has talked to the bot, so the bot may write to them
        tg_user.started = True
        emulator.world.private_chat(tg_user)
    with db.session() as s:
        row = User(
            username=name,
            full_name=name.title(),
            agency_id=world.agency_id,
            role=role,
            status=status,
            language=language,
        )
        identity.add_person(s, person_ref(tg_user.id), row)
        s.flush()
        assert row.id is not None
        person = Person(tg_user.id, row.id, name)
    world.people[name] = person
    return person


def make_world(
    emulator: TelegramEmulator,
    db: Database,
    *,
    deadline_hours: float = 24.0,
    hub_chat_id: int | None = None,
    members: int = 2,
) -> World:
    with db.session() as s:
        agency = Agency(
            code="BYT",
            name="Bộ Y tế",
            owner="chat",
            deadline_hours=deadline_hours,
            hub_channel="telegram" if hub_chat_id is not None else None,
            hub_chat_id=str(hub_chat_id) if hub_chat_id is not None else None,
        )
        s.add(agency)
        s.flush()
        assert agency.id is not None
        world = World(agency.id)
    add_person(emulator, db, world, "lead", "spokesperson")
    add_person(emulator, db, world, "boss", "supervisor")
    for i in range(members):
        add_person(emulator, db, world, f"m{i + 1}", "spokesperson")
    add_person(emulator, db, world, "other", "member")  # registered, never convened
    return world


def forum_world(
    emulator: TelegramEmulator,
    db: Database,
    title: str = "Hub",
    *,
    deadline_hours: float = 24.0,
    members: int = 2,
) -> tuple[Chat, World]:
    """A forum supergroup with the bot in it holding ``HUB_RIGHTS``, and a world whose agency
    has it as its hub."""
    hub = emulator.create_supergroup(title, forum=True)
    emulator.add_bot(hub.id, rights=HUB_RIGHTS)
    world = make_world(
        emulator, db, deadline_hours=deadline_hours, hub_chat_id=hub.id, members=members
    )
    return hub, world


@pytest.fixture
def tf_settings(emulator: TelegramEmulator, make_settings: Any) -> Any:
    def factory(**env: str) -> Any:
        return make_settings(
            {
                "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
                "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
                "CRISISDESK_TICK_SECONDS": "0.1",
                **{f"CRISISDESK_{k.upper()}": v for k, v in env.items()},
            }
        )

    return factory


def private_texts(emulator: TelegramEmulator, user_id: int) -> list[str]:
    return [m.text or "" for m in emulator.messages(user_id, from_bot=True)]


async def eventually(predicate: Any, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """Poll ``predicate`` (database state changes the emulator cannot signal) until truthy."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def immediate_brief(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short debounce of brief edits (the clock below runs at real speed)."""
    from datetime import timedelta

    from bot.services.taskforces import brief

    monkeypatch.setattr(brief, "BRIEF_DEBOUNCE", timedelta(seconds=0.3))


@pytest.fixture
def clock(clock: Any) -> Any:
    """The shared simulated clock's start, running at real speed (debounced edits need time to
    pass); it can still be moved forward by hours."""
    from bot.clock import SimulatedClock

    return SimulatedClock(clock.now(), speed=1.0)
