"""A publication interrupted by a hard kill: after the restart every message of the statement is
in the room exactly once (the statement used to be posted again with both files)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bot_process import killed_at_exit, telegram_env
from sqlmodel import select
from statements import add_statements

from bot.channels.refs import ChatRef
from bot.channels.telegram.notifier import person_ref
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import approvals, due, identity
from storage.db import Database
from storage.models import (
    Agency,
    Approval,
    AuditEvent,
    Delivery,
    Draft,
    DraftStatus,
    User,
)

pytestmark = pytest.mark.slow

BODY = "Bộ Y tế đã cử đoàn công tác đến Trường Tiểu học Tân Phong.\nCác em đã ổn định."


def _approved_draft(emulator: TelegramEmulator, db: Database, room: int) -> tuple[int, int]:
    """An agency, an author and a supervisor, a crisis whose room is ``room``, and version 1 of
    a holding statement approved a moment ago, its publication due now. Returns (draft, author
    Telegram id)."""
    author = emulator.create_user("Ha", language_code="en")
    boss = emulator.create_user("Binh", language_code="en")
    now = datetime.now(UTC)
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế", owner="chat", public_channel="@byt_news")
        s.add(agency)
        s.flush()
        people = []
        for tg, role in ((author, "spokesperson"), (boss, "supervisor")):
            tg.started = True
            emulator.world.private_chat(tg)
            row = User(
                full_name=tg.first_name,
                agency_id=agency.id,
                role=role,
                status="active",
                language="en",
            )
            identity.add_person(s, person_ref(tg.id), row)
            s.flush()
            people.append(row)
        room_ref = ChatRef("telegram", str(room))
        [draft_id] = add_statements(
            s,
            agency.id or 0,
            people[0].id,
            now,
            room=room_ref,
            body=BODY,
            status=DraftStatus.APPROVED,
            submitted_at=now,
        )
        draft = s.get(Draft, draft_id)
        assert draft is not None
        s.add(
            Approval(
                draft_id=draft.id or 0,
                approver_id=people[1].id or 0,
                body_sha256=draft.body_sha256,
                decision="approve",
                at=now,
            )
        )
        due.schedule(s, approvals.PUBLISH, now, ref_id=draft.id)
        return draft.id or 0, author.id


async def test_a_kill_during_publication_posts_nothing_twice(
    emulator: TelegramEmulator, bot_db: tuple[str, Database], tmp_path: Path
) -> None:
    url, db = bot_db
    room = emulator.create_supergroup("Phòng xử lý").id
    emulator.add_bot(room, rights={"can_pin_messages": True})
    channel = emulator.create_channel("Bộ Y tế", username="byt_news").id
    emulator.add_bot(channel, rights={"can_post_messages": True})
    draft_id, author_tg = _approved_draft(emulator, db, room)
    env = telegram_env(emulator, url, tmp_path)
    # The statement goes out, then its .docx is held at "Telegram": the process dies while it
    # is in flight, and the emulator carries the upload out after the hold, as Telegram would.
    emulator.inject_delay("sendDocument", 3.0)
    async with killed_at_exit(env):
        await emulator.wait_for(lambda: emulator.held, timeout=30)
    await emulator.wait_for(lambda: not emulator.held, timeout=10)

    def posted() -> list[str]:
        texts = [
            m.text or m.data.get("document", {}).get("file_name", "")
            for m in emulator.messages(room, from_bot=True)
        ]  # (the bot also tells the group it is not a pooled room: not counted)
        return [t for t in texts if t.startswith(("📢", "statement-"))]

    assert len(posted()) == 2  # the statement and its .docx; the .txt never started

    async with killed_at_exit(env):

        def published() -> bool:
            with db.session() as s:
                draft = s.get(Draft, draft_id)
                return draft is not None and draft.status == DraftStatus.PUBLISHED

        await emulator.wait_for(
            lambda: published() and len(emulator.messages(channel, from_bot=True)) == 1,
            timeout=30,
        )
        await asyncio.sleep(1.0)  # time for any double to show up
    room_posts = posted()
    assert sum(1 for text in room_posts if BODY.splitlines()[0] in text) == 1, room_posts
    assert sorted(p.rsplit(".", 1)[-1] for p in room_posts if p.startswith("statement-")) == [
        "docx",
        "txt",
    ]
    assert len(emulator.messages(author_tg, from_bot=True)) == 1
    with db.session() as s:
        doubt = s.exec(select(Delivery).where(Delivery.status == "in_doubt")).all()
        assert [d.part for d in doubt] == ["room.doc1"]
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "outbox.in_doubt")).all()
        assert len(events) == 1
    db.dispose()
