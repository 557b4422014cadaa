"""Crisis rooms as Zalo OA groups, end to end on the emulator through the task-force services.

An agency with an OA opens a crisis: the OA creates a group with the convened people in it and
the brief is posted there; a member removed and added back by pressing Join; a message posted
through the OA; the group disbanded at resolve. And ``crisisdesk zalo-oa seed``: one line for
every mistake.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError
from sqlmodel import select

import handlers.taskforce  # noqa: F401  (the task-force flows register their due kinds)
from bot.channels.refs import PersonRef
from bot.channels.rooms import room_admin_for
from bot.channels.zalo import ZaloBotClient
from bot.channels.zalo.app import OA_WEBHOOK_PATH, ZaloSide
from bot.channels.zalo.chart_links import ChartLinks
from bot.channels.zalo.notifier import CAPABILITIES, ZaloNotifier
from bot.channels.zalo.oa.rooms import OaRooms, group_of_chat
from bot.channels.zalo.oa.tokens import OaTokenStore
from bot.cli import main
from bot.clock import SimulatedClock, SystemClock
from bot.config import AgencyConfig
from bot.runtime import Runtime
from bot.sandbox.zalo_emulator import StoredMessage, ZaloEmulator
from bot.services import identity, linking, stored_refs
from bot.services.permissions import Actor
from bot.services.taskforces.crises import TaskForceError
from bot.services.taskforces.joining import answer_invitation
from bot.services.taskforces.opening import open_crisis
from bot.services.taskforces.resolve import resolve_crisis
from bot.services.taskforces.room import attach_room
from bot.templating import Renderer
from bot.wiring import wire
from handlers.conversation.degrade import DegradingNotifier
from storage.db import Database
from storage.models import (
    Agency,
    AuditEvent,
    Crisis,
    CrisisMember,
    Room,
    RoomIdentity,
    RoomState,
    Task,
    User,
)

APP_SECRET = "app-secret-for-tests"
OA_KEY = "oa-secret-key-for-tests"
PEOPLE = {"lead": "spokesperson", "boss": "supervisor", "minh": "spokesperson"}


def oa_env(zalo: ZaloEmulator) -> dict[str, str]:
    return {
        "CRISISDESK_ZALO_OA_APP_ID": zalo.oa.app_id,
        "CRISISDESK_ZALO_OA_APP_SECRET": APP_SECRET,
        "CRISISDESK_ZALO_OA_SECRET_KEY": OA_KEY,
        "CRISISDESK_ZALO_OA_OAUTH_URL": zalo.root_url,
        "CRISISDESK_ZALO_OA_API_URL": zalo.root_url,
    }


def agency_with_people(
    db: Database, zalo: ZaloEmulator, app_id: str, linked: tuple[str, ...] = tuple(PEOPLE)
) -> tuple[int, dict[str, User]]:
    """Agency BYT with an OA and two assets; three people on Zalo who wrote to the bot and
    follow the OA; those ``linked`` have given the OA a code, so it knows their OA-scoped id
    (through the service; ``test_a_code_typed_in_the_oa_chat_…`` goes through the webhook)."""
    with db.session() as s:
        agency = Agency(
            code="BYT",
            name="Bộ Y tế",
            owner="chat",
            zalo_oa_app_id=app_id,
            zalo_oa_assets="gmf-1,gmf-2",
        )
        s.add(agency)
        s.flush()
        assert agency.id is not None
        people: dict[str, User] = {}
        for name, role in PEOPLE.items():
            user = User(
                username=name,
                full_name=name.title(),
                agency_id=agency.id,
                role=role,
                status="active",
                language="vi",
            )
            identity.add_person(s, PersonRef("zalo", f"zl-{name}"), user)
            s.flush()
            people[name] = user
            zalo.send_text(f"zl-{name}", "/start", display_name=name.title())
            zalo.add_oa_follower(f"zl-{name}", name.title())
        now = datetime.now(UTC)
        for name in linked:
            code = linking.issue_code(s, people[name], "zalo", now).code
            oa_id = zalo.oa_user_id(f"zl-{name}")
            assert linking.redeem_in_scope(s, "zalo", app_id, oa_id, code, now).user is not None
        s.expunge_all()
        return agency.id, people


def invitation_of(db: Database, crisis_id: int, user: User) -> int:
    with db.session() as s:
        return (
            s.exec(
                select(CrisisMember.id).where(
                    CrisisMember.crisis_id == crisis_id, CrisisMember.user_id == user.id
                )
            ).one()
            or 0
        )


@asynccontextmanager
async def oa_runtime(
    settings: Any, db: Database, zalo: ZaloEmulator, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """The services' runtime on Zalo with the OA's groups as crisis rooms; its clients are
    closed on the way out."""
    client = ZaloBotClient(zalo.token, base_url=zalo.bot_api_url, timeout=5)
    oa_rooms = OaRooms(settings, db, SystemClock())
    links = ChartLinks(b"k" * 32, "http://127.0.0.1")
    zalo_notifier = ZaloNotifier(client, links, tmp_path / "charts", oa_rooms)
    try:
        yield Runtime(
            settings=settings,
            db=db,
            clock=SystemClock(),
            renderer=Renderer(settings.timezone),
            notifier=DegradingNotifier(zalo_notifier, CAPABILITIES),
        )
    finally:
        await oa_rooms.close()
        await client.close()


async def test_a_crisis_room_is_an_oa_group_from_opening_to_resolve(
    zalo: ZaloEmulator, db: Database, make_settings: Any, tmp_path: Path
) -> None:
    wire()
    settings = make_settings(oa_env(zalo))
    zalo.add_oa_asset("gmf-1")
    zalo.add_oa_asset("gmf-2")
    zalo.oa.assets["gmf-1"] = "someone-else's-group"  # spent: the second asset is used
    OaTokenStore(db, zalo.oa.app_id, SystemClock()).seed(zalo.grant_oa_access())
    agency_id, people = agency_with_people(db, zalo, zalo.oa.app_id)
    lead = Actor("zalo:zl-lead", people["lead"])
    async with oa_runtime(settings, db, zalo, tmp_path) as runtime:
        opened = await open_crisis(
            runtime,
            lead,
            "Tin đồn dịch bệnh",
            agency_id=agency_id,
            user_ids=[people["minh"].id or 0],
        )
        assert opened.room_ready and opened.room_error is None

        [group] = zalo.oa.groups.values()
        assert group.asset_id == "gmf-2" and not group.closed
        # Invited by the ids the OA knows them by, which are not their Bot Platform ids.
        assert sorted(group.members) == sorted(zalo.oa_user_id(f"zl-{n}") for n in PEOPLE)
        assert not {"zl-boss", "zl-lead", "zl-minh"} & set(group.members)
        assert group.name.endswith("Tin đồn dịch bệnh")
        assert opened.invite_link == group.link
        with db.session() as s:
            crisis = s.get(Crisis, opened.crisis_id)
            assert crisis is not None
            room = stored_refs.crisis_room(crisis)
            [row] = s.exec(select(Room)).all()
            assert row.kind == "created_group" and row.state == RoomState.IN_USE
        assert room is not None and group_of_chat(room) == (zalo.oa.app_id, group.group_id)
        # The brief reached the group through the OA; the invitations went by direct message.
        assert any("Tin đồn dịch bệnh" in m["text"] for m in group.messages)
        assert any("/thamgia" in m.text for m in zalo.messages("zl-minh", from_bot=True) if m.text)

        # Removing a member, and Join putting them back in directly (no join link on Zalo).
        minh = PersonRef("zalo", "zl-minh")
        admin = room_admin_for(runtime.notifier)
        assert await admin.is_member(room, PersonRef("zalo", "zl-lead"))
        await admin.remove_member(room, minh)
        minh_oa = zalo.oa_user_id("zl-minh")
        assert minh_oa not in group.members and not await admin.is_member(room, minh)
        answer = await answer_invitation(
            runtime,
            Actor("zalo:zl-minh", people["minh"]),
            invitation_of(db, opened.crisis_id, people["minh"]),
            join=True,
        )
        assert answer.state == "joined" and minh_oa in group.members
        # Declining takes someone out of the group they were put in at the start.
        boss = people["boss"]
        answer = await answer_invitation(
            runtime,
            Actor("zalo:zl-boss", boss),
            invitation_of(db, opened.crisis_id, boss),
            join=False,
        )
        assert answer.state == "declined" and zalo.oa_user_id("zl-boss") not in group.members

        # Any message to the room goes through the OA, as plain text.
        await runtime.notifier.send_text(room, "<b>Cập nhật</b>: đã gọi báo Tuổi Trẻ")
        assert group.messages[-1]["text"] == "Cập nhật: đã gọi báo Tuổi Trẻ"

        await resolve_crisis(runtime, lead, opened.crisis_id)
        assert group.closed and zalo.oa.assets["gmf-2"] is None
        with db.session() as s:
            assert s.exec(select(Room)).one().state == RoomState.CLOSED
        assert zalo.oa.refresh_calls  # the tokens were rotated on the way


async def test_without_an_oa_no_group_is_made(
    zalo: ZaloEmulator, sqlite_db: Database, make_settings: Any
) -> None:
    """An agency without an OA: no group, the crisis waits for a room as before."""
    wire()
    settings = make_settings(oa_env(zalo))
    agency_id, _people = agency_with_people(sqlite_db, zalo, zalo.oa.app_id)
    with sqlite_db.session() as s:
        agency = s.get(Agency, agency_id)
        assert agency is not None
        agency.zalo_oa_app_id = None
    oa_rooms = OaRooms(settings, sqlite_db, SystemClock())
    assert await oa_rooms.make_room(agency_id, "#1", "", [PersonRef("zalo", "zl-lead")]) is None
    assert not zalo.oa.groups


def write_config(tmp_path: Path, app_id: str) -> Path:
    config = tmp_path / "crisisdesk.toml"
    config.write_text(
        f"""
[[agencies]]
code = "BYT"
name = "Bộ Y tế"
zalo_oa_app_id = "{app_id}"
zalo_oa_assets = ["gmf-1", "gmf-2"]

[[agencies]]
code = "BCA"
name = "Bộ Công an"
""",
        encoding="utf-8",
    )
    return config


async def test_seeding_the_refresh_token_says_every_mistake_in_one_line(
    zalo: ZaloEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in oa_env(zalo).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CRISISDESK_DATA_DIR", str(tmp_path / "data"))
    config = str(write_config(tmp_path, zalo.oa.app_id))

    async def seed(*args: str) -> tuple[int, str]:
        code = await asyncio.to_thread(main, ["--config", config, "zalo-oa", "seed", *args])
        out, err = capsys.readouterr()
        return code, (err or out).strip()

    grant = zalo.grant_oa_access()
    cases = [
        (["--refresh-token", grant], 2, "--agency is required"),
        (["--agency", "BYT"], 2, "--refresh-token is required"),
        (["--agency", "XYZ", "--refresh-token", grant], 2, "no agency 'XYZ'"),
        (["--agency", "BCA", "--refresh-token", grant], 2, "agency BCA has no Zalo OA"),
        (["--agency", "BYT", "--refresh-token", "a b"], 2, "empty or has spaces"),
        (["--agency", "BYT", "--refresh-token", "forged"], 1, "grant the app access again"),
    ]
    for args, code, words in cases:
        got, line = await seed(*args)
        assert (got, "\n" in line) == (code, False), line
        assert words in line
    got, line = await seed("--agency", "BYT", "--refresh-token", grant)
    assert got == 0 and "refresh token accepted" in line, line
    # The grant was exchanged once: the stored refresh token is the rotated one.
    got, line = await seed("--agency", "BYT", "--refresh-token", grant)
    assert got == 1 and "refused" in line

    monkeypatch.setenv("CRISISDESK_ZALO_OA_APP_ID", "42")
    got, line = await seed("--agency", "BYT", "--refresh-token", grant)
    assert got == 2 and "ZALO_OA_APP_ID is 42" in line and "\n" not in line


def test_an_agency_names_its_oa_and_assets_in_the_toml() -> None:
    conf = AgencyConfig(code="BYT", name="Bộ Y tế", zalo_oa_app_id="123", zalo_oa_assets=["a", "b"])
    assert conf.model_dump()["zalo_oa_assets"] == "a,b"
    with pytest.raises(ValidationError, match="needs zalo_oa_assets"):
        AgencyConfig(code="BYT", name="Bộ Y tế", zalo_oa_app_id="123")
    with pytest.raises(ValidationError, match="without commas"):
        AgencyConfig(code="BYT", name="Bộ Y tế", zalo_oa_app_id="123", zalo_oa_assets=["a,b"])


@dataclass
class OaDesk:
    """The Zalo side of ``crisisdesk run`` with an agency's OA, started, its OA webhook served
    on loopback at ``hook``."""

    runtime: Runtime
    agency_id: int
    people: dict[str, User]
    hook: str


@asynccontextmanager
async def oa_desk(
    zalo: ZaloEmulator, db: Database, make_settings: Any, linked: tuple[str, ...] = tuple(PEOPLE)
) -> AsyncIterator[OaDesk]:
    """The agency of :func:`agency_with_people` and the Zalo side serving its OA's events, as
    ``crisisdesk run`` on Zalo wires them; stopped when the block ends."""
    wire()
    settings = make_settings(
        {
            **oa_env(zalo),
            "CRISISDESK_ZALO_TOKEN": zalo.token,
            "CRISISDESK_ZALO_API_URL": zalo.bot_api_url,
            "CRISISDESK_ZALO_PUBLIC_URL": "http://127.0.0.1",
            "CRISISDESK_ZALO_CHART_KEY": "k" * 40,
        }
    )
    zalo.add_oa_asset("gmf-1")
    OaTokenStore(db, zalo.oa.app_id, SystemClock()).seed(zalo.grant_oa_access())
    agency_id, people = agency_with_people(db, zalo, zalo.oa.app_id, linked)
    side = ZaloSide(settings, db)
    runtime = Runtime(
        settings=settings,
        db=db,
        clock=SystemClock(),
        renderer=Renderer(settings.timezone),
        notifier=side.notifier,
    )
    web_app = web.Application()
    side.add_routes(web_app)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await side.start(runtime)
        hook = f"http://127.0.0.1:{runner.addresses[0][1]}{OA_WEBHOOK_PATH}"
        yield OaDesk(runtime, agency_id, people, hook)
    finally:
        await side.stop()
        await runner.cleanup()


async def test_room_commands_typed_in_the_oa_group_are_answered_there(
    zalo: ZaloEmulator, db: Database, make_settings: Any, tmp_path: Path
) -> None:
    """The OA's events reach ``/zalo/oa/webhook`` of the running Zalo side: a member's
    ``/task`` in the crisis's OA group is a room command, answered in the group through the
    OA; a post that Zalo did not sign is refused before anything is read."""
    async with oa_desk(zalo, db, make_settings) as desk:
        runtime, agency_id, people, hook = desk.runtime, desk.agency_id, desk.people, desk.hook
        opened = await open_crisis(
            runtime,
            Actor("zalo:zl-lead", people["lead"]),
            "Tin đồn dịch bệnh",
            agency_id=agency_id,
            user_ids=[people["minh"].id or 0],
        )
        assert opened.room_ready
        [group] = zalo.oa.groups.values()
        zalo.set_oa_webhook(hook)
        before = len(group.messages)

        status = await zalo.user_sends_group_text(
            group.group_id, "zl-lead", "/task 30m Gọi báo Tuổi Trẻ"
        )
        assert status == 200
        await zalo.wait_for(
            lambda: [m for m in group.messages[before + 1 :] if m["from"] == "oa"], timeout=20
        )
        with db.session() as s:
            [task] = s.exec(select(Task)).all()
            assert task.crisis_id == opened.crisis_id and "Tuổi Trẻ" in task.title
        # Chatter that is no command is left alone.
        quiet = len(group.messages)
        assert await zalo.user_sends_group_text(group.group_id, "zl-lead", "ok cả nhà") == 200
        await asyncio.sleep(0.5)
        assert len(group.messages) == quiet + 1  # only the member's own line

        async with aiohttp.ClientSession() as http:
            forged = await http.post(hook, data=b'{"event_name": "user_send_group_text"}')
            assert forged.status == 403


async def test_idle_oa_tokens_are_rotated_before_the_refresh_token_dies(
    zalo: ZaloEmulator, db: Database, make_settings: Any
) -> None:
    """A refresh token unused for about three months dies: tokens a week old are rotated,
    fresh ones are left alone, and an app never seeded is not touched."""
    settings = make_settings(oa_env(zalo))
    clock = SimulatedClock(datetime(2026, 12, 7, tzinfo=UTC))
    rooms = OaRooms(settings, db, clock)
    try:
        assert not await rooms.keep_alive(timedelta(days=7))  # nothing seeded yet
        OaTokenStore(db, zalo.oa.app_id, clock).seed(zalo.grant_oa_access())
        assert not await rooms.keep_alive(timedelta(days=7))
        assert not zalo.oa.refresh_calls
        clock.advance(timedelta(days=8))
        assert await rooms.keep_alive(timedelta(days=7))
        assert len(zalo.oa.refresh_calls) == 1
        store = OaTokenStore(db, zalo.oa.app_id, clock)
        assert store.rotated_at() == clock.now() and store.current().generation == 1
        assert not await rooms.keep_alive(timedelta(days=7))  # just rotated
    finally:
        await rooms.close()


CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}")


async def link_through_the_oa(zalo: ZaloEmulator, user_id: str) -> None:
    """What a person does: ``/lienket`` to the bot, follow the OA, send the code in its chat;
    the bot confirms in their private chat."""
    asked = zalo.send_text(user_id, "/lienket")

    def shown_code() -> tuple[StoredMessage, str] | None:
        chat = zalo.messages(user_id)
        later = chat[[m.message_id for m in chat].index(asked.message_id) + 1 :]
        for message in later:
            found = CODE.search(message.text or "") if message.from_bot else None
            if found:
                return message, found.group(0)
        return None

    shown, code = await zalo.wait_for(shown_code, timeout=20)
    assert await zalo.user_follows_oa(user_id) == 200
    assert await zalo.user_sends_oa_text(user_id, code) == 200
    told = await zalo.wait_for_message(user_id, after=shown.message_id, timeout=20)
    assert "Official Account Zalo đã nhận ra" in (told.text or ""), told.text


def room_ids(db: Database) -> dict[int, str]:
    with db.session() as s:
        return {row.user_id: row.external_id for row in s.exec(select(RoomIdentity)).all()}


def bot_texts(zalo: ZaloEmulator, user_id: str) -> list[str]:
    return [m.text for m in zalo.messages(user_id, from_bot=True) if m.text]


async def test_a_code_typed_in_the_oa_chat_links_the_person_and_the_unlinked_are_told(
    zalo: ZaloEmulator, db: Database, make_settings: Any
) -> None:
    """Through ``crisisdesk``'s Zalo side: a code from ``/lienket`` sent in the OA's chat binds
    the sender's OA-scoped id (a follow alone binds nothing, a wrong code is counted); the OA
    group takes only people it knows; the lead, the group and each one left out are told how to
    fix it; Join then says how, and after linking puts them in; their command in the group is
    theirs."""
    async with oa_desk(zalo, db, make_settings, linked=()) as desk:
        runtime, agency_id = desk.runtime, desk.agency_id
        lead, minh = desk.people["lead"], desk.people["minh"]
        zalo.set_oa_webhook(desk.hook)
        await link_through_the_oa(zalo, "zl-lead")
        assert room_ids(db) == {lead.id: zalo.oa_user_id("zl-lead")}
        # A follow event names no Bot Platform account: it binds nothing on its own.
        assert await zalo.user_follows_oa("zl-boss") == 200
        # A wrong code is refused and counted against that OA id; chatter is not a guess.
        assert await zalo.user_sends_oa_text("zl-boss", "ABCD-EFGH") == 200
        assert await zalo.user_sends_oa_text("zl-boss", "Cho tôi hỏi giờ làm việc") == 200
        label = linking.scoped_label("zalo", zalo.oa.app_id, zalo.oa_user_id("zl-boss"))

        def refusals() -> int:
            with db.session() as s:
                return len(s.exec(select(AuditEvent).where(AuditEvent.actor_ref == label)).all())

        await zalo.wait_for(lambda: refusals() == 1, timeout=10)
        assert room_ids(db) == {lead.id: zalo.oa_user_id("zl-lead")}

        opened = await open_crisis(
            runtime, Actor("zalo:zl-lead", lead), "Tin đồn dịch bệnh",
            agency_id=agency_id, user_ids=[minh.id or 0],
        )  # fmt: skip
        assert opened.room_ready
        [group] = zalo.oa.groups.values()
        assert group.members == [zalo.oa_user_id("zl-lead")]
        # Nobody left out silently: the lead and the group hear who and how to fix it…
        said = await zalo.wait_for(
            lambda: [t for t in bot_texts(zalo, "zl-lead") if "chưa mời được" in t], timeout=10
        )
        assert "Boss" in said[0] and "Minh" in said[0] and "/lienket" in said[0]
        posted = [m["text"] for m in group.messages if "chưa mời được" in m["text"]]
        assert len(posted) == 1 and "Minh" in posted[0] and "<b>" not in posted[0]
        # …and so does each of them, in their own chat.
        for name in ("zl-boss", "zl-minh"):
            assert any("Quan tâm" in t and "/lienket" in t for t in bot_texts(zalo, name))

        # Minh presses Join before linking: told how, not put in under a wrong id.
        member_id = invitation_of(db, opened.crisis_id, minh)
        answer = await answer_invitation(runtime, Actor("zalo:zl-minh", minh), member_id, True)
        assert answer.needs_link and answer.state == "accepted"
        assert zalo.oa_user_id("zl-minh") not in group.members
        text = runtime.renderer.render("crisis_invite_answer", "vi", a=answer, join=True)
        assert "/lienket" in text and "Quan tâm" in text

        await link_through_the_oa(zalo, "zl-minh")
        answer = await answer_invitation(runtime, Actor("zalo:zl-minh", minh), member_id, True)
        assert answer.state == "joined" and not answer.needs_link
        assert group.members == [zalo.oa_user_id("zl-lead"), zalo.oa_user_id("zl-minh")]

        # His command in the group is his: the OA id is mapped back to his account.
        assert (
            await zalo.user_sends_group_text(group.group_id, "zl-minh", "/task 1h Gọi VTV") == 200
        )

        def task() -> Task | None:
            with db.session() as s:
                return s.exec(select(Task)).first()

        made = await zalo.wait_for(task, timeout=20)
        assert made.created_by_id == minh.id and made.crisis_id == opened.crisis_id


async def test_no_group_when_the_oa_knows_nobody_and_the_lead_is_told_once(
    zalo: ZaloEmulator, db: Database, make_settings: Any, tmp_path: Path
) -> None:
    """Nobody convened has linked an OA id: Zalo would create no group without members, so
    none is made (the crisis waits for a room as before); the lead is told who and how to fix
    it once, not at every retry."""
    wire()
    settings = make_settings(oa_env(zalo))
    zalo.add_oa_asset("gmf-1")
    OaTokenStore(db, zalo.oa.app_id, SystemClock()).seed(zalo.grant_oa_access())
    agency_id, people = agency_with_people(db, zalo, zalo.oa.app_id, linked=())
    async with oa_runtime(settings, db, zalo, tmp_path) as runtime:
        opened = await open_crisis(
            runtime, Actor("zalo:zl-lead", people["lead"]), "Tin đồn dịch bệnh",
            agency_id=agency_id, user_ids=[people["minh"].id or 0],
        )  # fmt: skip
        assert not opened.room_ready and not zalo.oa.groups
        assert not zalo.calls_to("creategroupwithoa")
        with pytest.raises(TaskForceError):  # the retry of the crisis.room row
            await attach_room(runtime, opened.crisis_id)
        told = [t for t in bot_texts(zalo, "zl-lead") if "chưa tạo được phòng" in t]
        assert len(told) == 1 and "Lead" in told[0] and "Quan tâm" in told[0]
        with db.session() as s:
            [row] = s.exec(select(AuditEvent).where(AuditEvent.action == "crisis.room_left_out"))
            assert row.after is not None and row.after["room_made"] is False
