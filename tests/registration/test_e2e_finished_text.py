"""Finished text through the real bot: /help describes every command (the menu uses the same
words), free text gets an answer, /me tells a pending or refused person where their request
stands, topics show by name, and /scanstatus shows local time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from emulator_fixtures import running_app
from registration.reg_helpers import add_agencies, add_user, say

from bot.app import build_application
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import audit
from storage.db import Database
from storage.models import Setting, Topic


async def test_help_describes_every_command_and_the_room_commands(
    emulator: TelegramEmulator,
    sqlite_db: Database,
    app_settings: Callable[..., Any],
    clock: SimulatedClock,
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    boss = emulator.create_user("Hùng", language_code="vi")
    add_user(sqlite_db, boss.id, full_name="Trần Hùng", role="supervisor", agency_id=ids["BYT"])
    async with running_app(build_application(app_settings(), sqlite_db, clock)):
        text = (await say(emulator, boss.id, "/help")).data["text"]
    lines = text.splitlines()
    for name in ("alerts", "crisis", "draft", "topics", "resolve", "task"):
        line = next((x for x in lines if x.startswith(f"/{name} — ")), None)
        assert line is not None, (name, text)
        assert len(line) > len(f"/{name} — {name}") + 8, line  # a description, not the name
    assert "Trong phòng xử lý vụ việc" in text


async def test_free_text_and_me_say_where_a_request_stands(
    emulator: TelegramEmulator,
    sqlite_db: Database,
    app_settings: Callable[..., Any],
    clock: SimulatedClock,
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    stranger = emulator.create_user("Khách", language_code="vi")
    waiting = emulator.create_user("Lan", language_code="vi")
    add_user(
        sqlite_db,
        waiting.id,
        full_name="Nguyễn Thị Lan",
        status="pending",
        requested_role="spokesperson",
        agency_id=ids["BYT"],
    )
    refused = emulator.create_user("Minh", language_code="en")
    refused_id = add_user(
        sqlite_db,
        refused.id,
        full_name="Lê Minh",
        status="rejected",
        agency_id=ids["BYT"],
        language="en",
    )
    with sqlite_db.session() as s:
        audit.record(
            s,
            action="user.rejected",
            actor_id=None,
            actor_ref="tg:1",
            subject=f"user:{refused_id}",
            after={"status": "rejected", "by": "Trần Hùng", "reason": "Không thuộc cơ quan"},
            at=datetime(2026, 11, 2, 1, 30, tzinfo=UTC),
        )
    async with running_app(build_application(app_settings(), sqlite_db, clock)):
        hello = (await say(emulator, stranger.id, "xin chào")).data["text"]
        assert "/start" in hello
        pending_text = (await say(emulator, waiting.id, "sao lâu vậy?")).data["text"]
        assert "chờ duyệt" in pending_text and "/me" in pending_text
        me = (await say(emulator, waiting.id, "/me")).data["text"]
        assert "đang chờ duyệt" in me and "Bộ Y tế" in me and "Người phát ngôn" in me, me
        gone = (await say(emulator, refused.id, "/me")).data["text"]
        assert "refused at 08:30 02/11/2026" in gone, gone  # Asia/Ho_Chi_Minh, not UTC
        assert "Không thuộc cơ quan" in gone and "/start" in gone


async def test_topics_by_name_query_on_request_and_scan_time_local(
    emulator: TelegramEmulator,
    sqlite_db: Database,
    app_settings: Callable[..., Any],
    clock: SimulatedClock,
) -> None:
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    lan = emulator.create_user("Lan", language_code="vi")
    add_user(
        sqlite_db, lan.id, full_name="Nguyễn Thị Lan", role="spokesperson", agency_id=ids["BYT"]
    )
    query = '("ngộ độc" OR "nhập viện") AND NOT "thú y"'
    with sqlite_db.session() as s:
        s.add(Topic(agency_id=ids["BYT"], name="An toàn thực phẩm", query=query))
        s.add(
            Setting(
                key="last_scan",
                value={
                    "started_at": "2026-11-02T01:00:00+00:00",
                    "duration_s": 2.5,
                    "sources": 3,
                    "sources_ok": 3,
                    "sources_not_modified": 0,
                    "new_articles": 4,
                    "new_stories": 2,
                    "failing_sources": [],
                },
            )
        )
    async with running_app(build_application(app_settings(), sqlite_db, clock)):
        listing = (await say(emulator, lan.id, "/topics")).data["text"]
        assert "An toàn thực phẩm" in listing and "ngộ độc" not in listing, listing
        detail = (await say(emulator, lan.id, "/topics an toàn thực phẩm")).data["text"]
        assert query in detail, detail
        scan = (await say(emulator, lan.id, "/scanstatus")).data["text"]
    assert "08:00:00 02/11/2026" in scan and "T01:00" not in scan, scan
