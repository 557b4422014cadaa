"""Restarts: reminders fire from Due rows after a new Application starts on the same database, and
a hard kill in the middle of convening resumes without doubling invitations."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot_process import killed_at_exit, telegram_env
from emulator_fixtures import running_app
from sqlmodel import select

from bot.app import build_application
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services.due import schedule
from bot.services.taskforces.convening import CONVENE_KIND, add_invitation
from storage.db import Database
from storage.models import Crisis, Delivery, Draft, User

from .conftest import (
    POOL_RIGHTS,
    add_person,
    eventually,
    forum_world,
    make_world,
    private_texts,
)


def _count(emulator: TelegramEmulator, user_id: int, needle: str) -> int:
    return sum(1 for t in private_texts(emulator, user_id) if needle in t)


async def test_deadline_and_task_reminders_fire_after_a_restart(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    hub, world = forum_world(emulator, sqlite_db, deadline_hours=10)
    lead, boss = world["lead"], world["boss"]
    settings = tf_settings()

    first = build_application(settings, sqlite_db, clock)
    async with running_app(first):
        for title in ("Published in time", "Never published"):
            sent = emulator.send_text(lead.tg, f"/crisis {title}")
            await emulator.wait_for_message(
                lead.tg, lambda m: "is open" in m.text, after=sent.message_id
            )
        emulator.request_join(lead.tg, emulator.invite_links(hub.id)[-1].invite_link)
        await emulator.wait_for(lambda: emulator.chat(hub.id).member(lead.tg).is_member)
        with sqlite_db.session() as s:
            second_thread = int(s.get(Crisis, 2).room_thread_id)  # type: ignore[union-attr,arg-type]
        asked = emulator.send_text(
            lead.tg, "/task 3h Call the hospital", chat_id=hub.id, thread_id=second_thread
        )
        await emulator.wait_for_message(hub.id, after=asked.message_id, timeout=10)
    # The first process is gone; nothing has been reminded yet.
    assert _count(emulator, lead.tg, "% of the time") == 0

    second = build_application(settings, sqlite_db, clock)
    async with running_app(second):
        clock.advance(timedelta(hours=2, minutes=31))  # task due in 30 min
        await emulator.wait_for(lambda: _count(emulator, lead.tg, "is due soon: Call the hospital"))
        clock.advance(timedelta(hours=2, minutes=30))  # 5 h 01: 50 % of 10 h
        await emulator.wait_for(lambda: _count(emulator, lead.tg, "50% of the time") == 2)
        with sqlite_db.session() as s:  # the first crisis publishes its statement
            s.add(
                Draft(
                    crisis_id=1,
                    template="holding",
                    body="…",
                    status="published",
                    published_at=clock.now(),
                )
            )
        clock.advance(timedelta(hours=3))  # 8 h 01: 80 %
        await emulator.wait_for(lambda: _count(emulator, lead.tg, "80% of the time") == 1)
        clock.advance(timedelta(hours=2))  # 10 h 01: overdue
        await emulator.wait_for(lambda: _count(emulator, boss.tg, "OVERDUE") == 1)
        await asyncio.sleep(0.5)
    assert "Never published" in next(t for t in private_texts(emulator, boss.tg) if "OVERDUE" in t)
    assert _count(emulator, lead.tg, "80% of the time") == 1  # not for the published one
    assert _count(emulator, boss.tg, "OVERDUE") == 1
    assert _count(emulator, lead.tg, "Call the hospital") == 2  # soon, then due


async def test_hard_kill_in_the_middle_of_convening_resumes_without_doubles(
    emulator: TelegramEmulator, bot_db: tuple[str, Database], tmp_path: Path
) -> None:
    url, db = bot_db
    _, world = forum_world(emulator, db, members=0)
    names = [f"p{i}" for i in range(6)]
    people = [add_person(emulator, db, world, n, "spokesperson") for n in names]
    db.dispose()
    env = telegram_env(emulator, url, tmp_path)
    everyone = [world["boss"], *people]  # the supervisor is convened by default
    async with killed_at_exit(env):
        await emulator.wait_for_call("getUpdates", timeout=30)
        # Three invitations go through; the fourth hangs and never reaches Telegram (held,
        # then failed without being processed): the process dies while it is in flight. The
        # faults aim at invitations: the reply to the lead may go out between them.
        invitation = "You are convened"
        emulator.inject_delay("sendMessage", 0, times=3, text_contains=invitation)
        emulator.inject_error("sendMessage", 502, delay=6, text_contains=invitation)
        emulator.send_text(
            world["lead"].tg, "/crisis Convening under fire " + " ".join(f"@{n}" for n in names)
        )
        await eventually(
            lambda: sum(_count(emulator, p.tg, invitation) for p in everyone) == 3,
            timeout=30,
        )
        await asyncio.sleep(0.3)
    assert sum(_count(emulator, p.tg, invitation) for p in everyone) == 3

    async with killed_at_exit(env):
        await eventually(
            lambda: all(_count(emulator, p.tg, "You are convened") >= 1 for p in everyone),
            timeout=30,
        )
        await asyncio.sleep(1.0)  # time for any double to show up
    assert [_count(emulator, p.tg, "You are convened") for p in everyone] == [1] * len(everyone)
    db = Database.from_url(url)
    with db.session() as s:
        statuses = [
            d.status for d in s.exec(select(Delivery).where(Delivery.kind == "crisis_invite"))
        ]
    db.dispose()
    assert statuses == ["sent"] * len(everyone)


async def test_a_room_left_without_its_brief_gets_it_when_convening_resumes(
    emulator: TelegramEmulator, sqlite_db: Database, tf_settings: Any, clock: SimulatedClock
) -> None:
    """The state a kill leaves when it falls after the room was ready and before the live path
    posted the brief (crash matrix ``conv.invitation.1``, PostgreSQL): a room, no brief, an
    invitation owed and the ``crisis.convene`` row due. Resuming sent the invitation and never
    the brief (the room's retry row is cancelled once the room is ready)."""
    group = emulator.create_supergroup("Phòng 1")
    emulator.add_bot(group.id, rights=POOL_RIGHTS)
    world = make_world(emulator, sqlite_db, members=0)
    now = clock.now()
    with sqlite_db.session() as s:
        crisis = Crisis(
            agency_id=world.agency_id,
            title="Brief lost to a kill",
            lead_id=world["lead"].id,
            room_channel="telegram",
            room_chat_id=str(group.id),
            detected_at=now,
            deadline_at=now + timedelta(hours=24),
        )
        s.add(crisis)
        s.flush()
        boss = s.get(User, world["boss"].id)
        assert crisis.id is not None and boss is not None
        add_invitation(s, crisis, boss, "member", now, None)
        schedule(s, CONVENE_KIND, now, ref_id=crisis.id)
        crisis_id = crisis.id

    def briefs() -> list[str]:
        return [t for t in private_texts(emulator, group.id) if "📌" in t]

    async with running_app(build_application(tf_settings(), sqlite_db, clock)):
        await eventually(lambda: _count(emulator, world["boss"].tg, "You are convened"), 10)
        await eventually(briefs, 10)
        await asyncio.sleep(0.5)  # time for any double to show up
    assert len(briefs()) == 1
    with sqlite_db.session() as s:
        stored = s.get(Crisis, crisis_id)
        assert stored is not None and stored.brief_message_id is not None
