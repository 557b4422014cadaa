"""Fixtures for the drafts tests: an agency, people, a crisis room in a forum topic, the app."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.state import StoredMessage
from bot.services import identity
from storage.db import Database
from storage.models import Agency, Crisis, CrisisMember, User

sys.path.insert(0, str(Path(__file__).parent))  # drafts_flows, the people-acting helpers


@dataclass
class Person:
    tg: int
    id: int
    name: str


@dataclass
class Desk:
    emulator: TelegramEmulator
    db: Database
    clock: SimulatedClock
    settings: Any
    agency_id: int
    crisis_id: int
    room: int
    thread: int | None
    channel: int
    people: dict[str, Person] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Person:
        return self.people[name]

    def app(self) -> Any:
        app = build_application(self.settings, self.db, self.clock)
        # The app's own flood limiter (tested in tests/channels) would only pace these
        # conversations at Telegram's 20 messages a minute per group; the emulator's are off too.
        app.bot._rate_limiter = None
        return app

    def room_messages(self) -> list[StoredMessage]:
        return self.emulator.messages(self.room, thread_id=self.thread, from_bot=True)

    def private(self, name: str) -> list[StoredMessage]:
        return self.emulator.messages(self[name].tg, from_bot=True)

    async def open_topic(self, app: Any) -> None:
        """Make the room a forum topic (created by the bot, as the task-force service does)."""
        topic = await app.bot.create_forum_topic(self.room, "Vụ ngộ độc Tân Phong")
        self.thread = topic.message_thread_id
        with self.db.session() as s:
            crisis = s.get(Crisis, self.crisis_id)
            assert crisis is not None
            crisis.room_thread_id = str(self.thread)

    def set_policy(self, **values: Any) -> None:
        with self.db.session() as s:
            agency = s.get(Agency, self.agency_id)
            assert agency is not None
            for key, value in values.items():
                setattr(agency, key, value)


def add_person(
    emulator: TelegramEmulator,
    db: Database,
    agency_id: int | None,
    name: str,
    role: str,
    language: str,
) -> Person:
    tg_user = emulator.create_user(name, language_code=language)
    tg_user.started = True  # has talked to the bot before, so the bot may write to them
    emulator.world.private_chat(tg_user)
    with db.session() as s:
        row = User(
            full_name=name,
            agency_id=agency_id,
            role=role,
            status="active",
            language=language,
            phone="0243 846 2195",
        )
        identity.add_person(s, person_ref(tg_user.id), row)
        s.flush()
        assert row.id is not None
        return Person(tg_user.id, row.id, name)


@pytest.fixture
def make_desk(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> Any:
    def factory(language: str = "vi", *, forum: bool = True, approvals: int = 1) -> Desk:
        settings = make_settings(
            {
                "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
                "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
                "CRISISDESK_TICK_SECONDS": "0.05",
                "CRISISDESK_APPROVAL_REMINDER_MINUTES": "30",
            }
        )
        with sqlite_db.session() as s:
            agency = Agency(
                code="BYT",
                name="Bộ Y tế",
                approvals_required=approvals,
                public_channel="@byt_news",
                owner="chat",
            )
            other = Agency(code="BGD", name="Bộ Giáo dục và Đào tạo", owner="chat")
            s.add(agency)
            s.add(other)
            s.flush()
            agency_id, other_id = agency.id, other.id
        assert agency_id is not None
        people = {
            "drafter": add_person(emulator, sqlite_db, agency_id, "Lê Thu Hà", "member", language),
            "speaker": add_person(
                emulator, sqlite_db, agency_id, "Nguyễn Văn An", "spokesperson", language
            ),
            "boss": add_person(
                emulator, sqlite_db, agency_id, "Trần Thị Bình", "supervisor", language
            ),
            "boss2": add_person(
                emulator, sqlite_db, agency_id, "Phạm Quốc Cường", "supervisor", language
            ),
            "stranger": add_person(
                emulator, sqlite_db, other_id, "Đỗ Minh Khoa", "supervisor", language
            ),
        }
        members = [p.tg for p in people.values()]
        group = emulator.create_supergroup(
            "Phòng xử lý khủng hoảng", forum=forum, member_ids=members
        )
        emulator.add_bot(
            group.id,
            rights={
                "can_manage_topics": True,
                "can_pin_messages": True,
                "can_delete_messages": True,
            },
        )
        channel = emulator.create_channel("Bộ Y tế — Tin chính thức", username="byt_news")
        emulator.add_bot(channel.id, rights={"can_post_messages": True, "can_edit_messages": True})
        thread = None
        with sqlite_db.session() as s:
            crisis = Crisis(
                agency_id=agency_id,
                title="Ngộ độc thực phẩm tại Trường Tiểu học Tân Phong, TP Biên Hòa",
                lead_id=people["boss"].id,
                room_channel="telegram",
                room_chat_id=str(group.id),
                room_thread_id=thread,
                detected_at=clock.now() - timedelta(hours=3),
                deadline_at=clock.now() + timedelta(hours=21),
            )
            s.add(crisis)
            s.flush()
            assert crisis.id is not None
            crisis_id = crisis.id
            for key in ("drafter", "speaker", "boss"):
                s.add(
                    CrisisMember(
                        crisis_id=crisis_id,
                        user_id=people[key].id,
                        role="drafter" if key == "drafter" else "member",
                        state="joined",
                    )
                )
        return Desk(
            emulator,
            sqlite_db,
            clock,
            settings,
            agency_id,
            crisis_id,
            group.id,
            thread,
            channel.id,
            people,
        )

    return factory
