"""Generated commands, arguments and free text through the real bot on the emulator, on SQLite
and PostgreSQL: every update is answered or ignored, nothing raises, rows stay readable, and the
bot still serves the next person (issue 16, item 9)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from emulator_fixtures import running_app
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.app import build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from bot.services.commands import _COMMANDS
from storage.db import Database
from storage.models import Agency, User

from .error_lines import ErrorLines
from .test_fuzz_parsers import TEXT

COMMAND_NAMES = [*sorted(_COMMANDS), "set", "history", "pin", "skip", "draft", "crisis"]
MESSAGE = st.one_of(
    st.builds(lambda name, args: f"/{name} {args}", st.sampled_from(COMMAND_NAMES), TEXT),
    TEXT,
).map(lambda text: text.replace("\ud800", "\ufffd"))  # JSON cannot carry a lone surrogate
SENDERS = ("admin", "spokesperson", "stranger")


async def _exchange(
    db: Database, make_settings: Any, clock: Any, script: list[tuple[int, str]]
) -> list[str]:
    emulator = TelegramEmulator(flood_limits=False)
    await emulator.start()
    errors = ErrorLines()
    logging.getLogger().addHandler(errors)
    try:
        people = {role: emulator.create_user(role.title(), language_code="en") for role in SENDERS}
        with db.session() as s:
            if s.get(Agency, 1) is None:
                s.add(Agency(id=1, code="BYT", name="Bộ Y tế", owner="chat"))
                s.flush()
            spokes = people["spokesperson"].id
            if identity.person_for(s, person_ref(spokes)) is None:
                identity.add_person(
                    s,
                    person_ref(spokes),
                    User(
                        full_name="Spokes",
                        agency_id=1,
                        role="spokesperson",
                        status="active",
                    ),
                )
        settings_ = make_settings(
            {
                "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
                "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
                "CRISISDESK_ADMIN_IDS": str(people["admin"].id),
                "CRISISDESK_TICK_SECONDS": "30",
                "CRISISDESK_SCAN_INTERVAL": "86400",
            }
        )
        app = build_application(settings_, db, clock)
        async with running_app(app):
            for who, text in script:
                if text.strip():
                    emulator.send_text(people[SENDERS[who]].id, text)
            # Updates are handled in order: the last person's /help answered means all were.
            last = emulator.create_user("Last", language_code="en")
            sent = emulator.send_text(last.id, "/help")
            reply = await emulator.wait_for_message(last.id, after=sent.message_id, timeout=60)
            assert "/start" in (reply.text or "")
        return errors.lines
    finally:
        logging.getLogger().removeHandler(errors)
        await emulator.stop()


def _all_rows_readable(db: Database) -> None:
    with db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in inspector.get_table_names():
            conn.execute(sa.text(f'select * from "{name}"')).all()


@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.integers(0, len(SENDERS) - 1), MESSAGE), min_size=10, max_size=25))
@example(  # a NUL in a stored argument broke PostgreSQL writes (issue 16)
    script=[
        (1, "/mute Vac\x00cine"),
        (1, "/crisis Leak\x00 at the clinic"),
        (0, "/addtopic BYT Va\x00x = vaccine"),
        (2, "/start x\x00y"),
        (1, "\x00"),
    ]
)
def test_generated_messages_through_the_bot(
    db: Database, make_settings: Any, clock: SimulatedClock, script: list[tuple[int, str]]
) -> None:
    errors = asyncio.run(_exchange(db, make_settings, clock, script))
    assert errors == []
    _all_rows_readable(db)
