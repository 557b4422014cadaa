"""Rooms that say what is wrong: a right the bot lacks in the hub is reported, in plain words
with the fix, to the opener and the agency's supervisors; a change of the bot's rights in the hub
is reported at once."""

from __future__ import annotations

from typing import Any

from emulator_fixtures import running_app

from bot.app import build_application
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from storage.db import Database

from .conftest import HUB_RIGHTS, forum_world, make_world, private_texts


def _said(emulator: TelegramEmulator, tg: int, text: str) -> str | None:
    return next((t for t in private_texts(emulator, tg) if text in t), None)


async def _open_without(
    emulator: TelegramEmulator, sqlite_db: Database, app: Any, right: str, told: str
) -> tuple[int, str, str, str]:
    """Open a crisis in a hub where the bot lacks ``right``; returns the hub's id, the opener's
    reply, and what the lead and the supervisor were told (the messages containing ``told``)."""
    hub = emulator.create_supergroup("Điều phối BYT", forum=True)
    emulator.add_bot(hub.id, rights={**HUB_RIGHTS, right: False})
    world = make_world(emulator, sqlite_db, hub_chat_id=hub.id)
    lead, boss = world["lead"], world["boss"]
    async with running_app(app()):
        sent = emulator.send_text(lead.tg, "/crisis critical Fake vaccine rumour")
        opened = await emulator.wait_for_message(
            lead.tg, lambda m: "is open" in (m.text or ""), after=sent.message_id
        )
        warned = await emulator.wait_for(lambda: _said(emulator, lead.tg, told))
        told_boss = await emulator.wait_for(lambda: _said(emulator, boss.tg, told))
    return hub.id, opened.text or "", warned, told_boss


async def test_brief_that_cannot_be_pinned_is_reported_with_the_fix(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    def app() -> Any:
        return build_application(tf_settings(), sqlite_db, clock)

    hub, opened, warned, told_boss = await _open_without(
        emulator, sqlite_db, app, "can_pin_messages", "could not pin"
    )
    assert emulator.chat(hub).pinned == []
    assert "Note: the bot could not pin the brief" in opened, opened
    for text in (warned, told_boss):
        assert "Crisis #1" in text and "“Pin messages”" in text and "Administrators" in text


async def test_hub_without_topic_right_tells_the_opener_in_plain_words(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    def app() -> Any:
        return build_application(tf_settings(), sqlite_db, clock)

    _hub, opened, warned, told_boss = await _open_without(
        emulator, sqlite_db, app, "can_manage_topics", "create the topic"
    )
    assert "hub_failed" not in opened
    assert "could not create the room in the coordination group" in opened, opened
    for text in (warned, told_boss):
        assert "“Manage topics”" in text and "tries again every minute" in text


async def test_a_change_of_the_bots_rights_in_the_hub_is_reported_at_once(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    hub, world = forum_world(emulator, sqlite_db, "Điều phối BYT")
    boss, other = world["boss"], world["other"]
    async with running_app(build_application(tf_settings(), sqlite_db, clock)):
        emulator.add_bot(hub.id, rights={**HUB_RIGHTS, "can_manage_topics": False})
        lost = await emulator.wait_for(lambda: _said(emulator, boss.tg, "just lost rights"))
        assert "“Manage topics”" in lost and "Điều phối BYT" in lost
        emulator.add_bot(hub.id, rights=HUB_RIGHTS)
        back = await emulator.wait_for(lambda: _said(emulator, boss.tg, "every right it needs"))
        assert "Điều phối BYT" in back
        emulator.remove_bot(hub.id)
        gone = await emulator.wait_for(lambda: _said(emulator, boss.tg, "was just removed"))
        assert "“Pin messages”" in gone
    assert not private_texts(emulator, other.tg), "members who cannot fix it are not bothered"
