"""Hostile command arguments through the real bot on the emulator, on SQLite and PostgreSQL.

A NUL byte in a command argument gave "Something went wrong" on PostgreSQL (the database refused
the text); a private or link-local feed address was accepted by /addsource and refused by the
fetcher on every scan after.
"""

from __future__ import annotations

from typing import Any

import pytest
from emulator_fixtures import running_app
from sqlmodel import select

from bot.app import build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from bot.templating import Renderer
from storage.db import Database
from storage.models import Agency, Role, Source, Topic, User, UserStatus

GENERIC = Renderer().render("error_generic", "vi")


def _desk(
    emulator: TelegramEmulator, db: Database, make_settings: Any, clock: SimulatedClock, **env: str
) -> tuple[Any, int]:
    tg = emulator.create_user("Hùng", language_code="vi", username="hung")
    emulator.world.private_chat(tg)
    tg.started = True
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        identity.add_person(
            s,
            person_ref(tg.id),
            User(
                username="hung",
                full_name="Hùng",
                role=Role.SUPERVISOR,
                status=UserStatus.ACTIVE,
                agency_id=agency.id,
            ),
        )
    settings = make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_SCAN_INTERVAL": "3600",
            **env,
        }
    )
    return build_application(settings, db, clock), tg.id


async def _ask(emulator: TelegramEmulator, user_id: int, text: str) -> str:
    sent = emulator.send_text(user_id, text)
    reply = await emulator.wait_for_message(user_id, after=sent.message_id)
    return str(reply.data["text"])


async def test_a_nul_byte_in_command_arguments_is_not_an_error(
    emulator: TelegramEmulator, db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    app, user = _desk(emulator, db, make_settings, clock)
    async with running_app(app):
        text = await _ask(
            emulator, user, "/addsource Sức\x00 khỏe | VnE\x00xpress | https://vnexpress.net/rss"
        )
        assert text != GENERIC and "Đã thêm nguồn" in text
        text = await _ask(emulator, user, "/addtopic Ngộ\x00 độc | ngộ độc\x00 OR nhiễm độc")
        assert text != GENERIC and "Đã thêm chủ đề" in text
    with db.session() as s:
        source = s.exec(select(Source)).one()
        assert (source.name, source.outlet) == ("Sức khỏe", "VnExpress")
        topic = s.exec(select(Topic)).one()
        assert (topic.name, topic.query) == ("Ngộ độc", "ngộ độc OR nhiễm độc")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://10.0.0.5/rss",
        "http://127.0.0.1:8080/feed",
        "http://[::1]/feed",
        "http://localhost/feed",
    ],
)
async def test_addsource_refuses_internal_addresses_when_added(
    emulator: TelegramEmulator,
    sqlite_db: Database,
    make_settings: Any,
    clock: SimulatedClock,
    url: str,
) -> None:
    app, user = _desk(emulator, sqlite_db, make_settings, clock)
    async with running_app(app):
        text = await _ask(emulator, user, f"/addsource Nội bộ | X | {url}")
    assert "mạng nội bộ" in text
    with sqlite_db.session() as s:
        assert s.exec(select(Source)).all() == []


async def test_addsource_accepts_internal_addresses_when_allowed(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> None:
    app, user = _desk(
        emulator, sqlite_db, make_settings, clock, CRISISDESK_ALLOW_PRIVATE_FEEDS="true"
    )
    async with running_app(app):
        text = await _ask(emulator, user, "/addsource Nội bộ | X | http://10.0.0.5/rss")
    assert "Đã thêm nguồn" in text
