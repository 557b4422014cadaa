"""Unit tests of the task-force rules: parsers, the pool, join decisions, timeline, report."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from docx import Document

from bot.channels.refs import ChatRef, PersonRef
from bot.channels.telegram.notifier import chat_ref, person_ref, room_link
from bot.clock import SimulatedClock
from bot.runtime import Runtime
from bot.services import identity, reports, rooms, stored_refs, timeline
from bot.services.permissions import Actor
from bot.services.taskforces import room
from bot.services.taskforces.crises import TaskForceError, participant_crisis
from bot.services.taskforces.roles import parse_role
from bot.services.taskforces.tasks import parse_task
from bot.templating import Renderer
from handlers.taskforce import parse_crisis_args
from storage.db import Database
from storage.models import (
    Agency,
    Approval,
    Crisis,
    CrisisMember,
    Draft,
    Room,
    User,
)

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "username", "due", "clock", "title"),
    [
        ("@lan 2h Gọi cho báo Tuổi Trẻ", "lan", timedelta(hours=2), None, "Gọi cho báo Tuổi Trẻ"),
        ("2h @lan Gọi", "lan", timedelta(hours=2), None, "Gọi"),
        ("30m Soạn thông cáo", None, timedelta(minutes=30), None, "Soạn thông cáo"),
        ("45p Soạn", None, timedelta(minutes=45), None, "Soạn"),
        ("@lan 1h30 Họp", "lan", timedelta(hours=1, minutes=30), None, "Họp"),
        ("2 giờ Họp báo", None, timedelta(hours=2), None, "Họp báo"),
        ("30 phút Họp", None, timedelta(minutes=30), None, "Họp"),
        ("1d Báo cáo tuần", None, timedelta(days=1), None, "Báo cáo tuần"),
        ("lúc 15:30 Họp báo", None, None, (15, 30), "Họp báo"),
        ("@lan 15h30 Họp báo", "lan", None, (15, 30), "Họp báo"),
        ("9:05 Gửi thư", None, None, (9, 5), "Gửi thư"),
        ("Kiểm tra số liệu", None, None, None, "Kiểm tra số liệu"),
        ("2024 kế hoạch", None, None, None, "2024 kế hoạch"),
    ],
)
def test_task_parser(
    text: str,
    username: str | None,
    due: timedelta | None,
    clock: tuple[int, int] | None,
    title: str,
) -> None:
    spec = parse_task(text)
    assert (spec.username, spec.due, spec.clock, spec.title) == (username, due, clock, title)


@pytest.mark.parametrize("text", ["", "@lan", "@lan 2h", "   "])
def test_task_parser_needs_a_title(text: str) -> None:
    with pytest.raises(TaskForceError) as info:
        parse_task(text)
    assert info.value.code == "task_usage"


def test_crisis_arguments() -> None:
    codes = {"BYT", "BGDDT"}
    assert parse_crisis_args(["critical", "Tin", "đồn", "@lan", "@minh"], codes) == (
        None,
        "critical",
        ["@lan", "@minh"],
        "Tin đồn",
    )
    assert parse_crisis_args(["BYT", "khẩn", "Ngộ", "độc"], codes) == (
        "BYT",
        "critical",
        [],
        "Ngộ độc",
    )
    # A lone word is a title, not a severity; lowercase words are not agency codes.
    assert parse_crisis_args(["critical"], codes) == (None, "warning", [], "critical")
    assert parse_crisis_args(["byt", "Tin"], codes) == (None, "warning", [], "byt Tin")


def test_role_names() -> None:
    assert parse_role("drafter") == "drafter"
    assert parse_role("soạn thảo") == "drafter"
    assert parse_role("Trưởng nhóm") == "lead"
    assert parse_role("duyệt") == "approver"
    with pytest.raises(TaskForceError):
        parse_role("boss")


def test_timeline_add_needs_an_aware_time(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        agency = Agency(code="A", name="A")
        s.add(agency)
        s.flush()
        crisis = Crisis(agency_id=agency.id or 0, title="t", detected_at=T0, deadline_at=T0)
        s.add(crisis)
        s.flush()
        with pytest.raises(ValueError, match="clock"):
            timeline.add(s, crisis.id or 0, "note", None, "x")
        with pytest.raises(ValueError, match="aware"):
            timeline.add(s, crisis.id or 0, "note", None, "x", at=datetime(2026, 1, 1))
        timeline.add(s, crisis.id or 0, "note", None, "later", at=T0 + timedelta(minutes=5))
        timeline.add(s, crisis.id or 0, "note", None, "first", at=T0)
        assert [e.text for e in timeline.events(s, crisis.id or 0)] == ["first", "later"]
        assert [e.text for e in timeline.events(s, crisis.id or 0, limit=1)] == ["later"]


def _crisis(s: Any, agency_id: int, title: str = "c") -> Crisis:
    crisis = Crisis(agency_id=agency_id, title=title, detected_at=T0, deadline_at=T0)
    s.add(crisis)
    s.flush()
    return crisis


def test_only_participants_reach_a_crisis_and_only_open_ones_with_open_only(
    sqlite_db: Database,
) -> None:
    """/update, /note, /task and the views share one check: a convened person who has not
    declined gets the crisis, anyone else ``not_member_self``; after the close a note or a view
    still works (``open_only=False``) but new work is refused as ``resolved``."""
    with sqlite_db.session() as s:
        agency = Agency(code="A", name="A")
        s.add(agency)
        s.flush()
        people = {name: User(username=name, status="active") for name in ("in", "no", "out")}
        s.add_all(people.values())
        s.flush()
        crisis = _crisis(s, agency.id or 0)
        for name, state in (("in", "joined"), ("no", "declined")):
            s.add(CrisisMember(crisis_id=crisis.id or 0, user_id=people[name].id or 0, state=state))
        s.flush()
        actor = {name: Actor(f"tg:{name}", user) for name, user in people.items()}

        def code(name: str, open_only: bool) -> str:
            try:
                participant_crisis(s, actor[name], crisis.id or 0, open_only=open_only)
            except TaskForceError as refused:
                return refused.code
            return "ok"

        assert [code(n, True) for n in ("in", "no", "out")] == [
            "ok",
            "not_member_self",
            "not_member_self",
        ]
        crisis.status = "resolved"
        s.flush()
        assert [code("in", False), code("in", True), code("out", False)] == [
            "ok",
            "resolved",
            "not_member_self",
        ]


def test_a_free_group_is_taken_once(sqlite_db: Database, make_settings: Any) -> None:
    settings = make_settings()
    with sqlite_db.session() as s:
        agency = Agency(code="A", name="A")
        s.add(agency)
        s.flush()
        change = rooms.register_group(
            s,
            settings,
            chat=chat_ref(-1001),
            title="Spare",
            chat_type="supergroup",
            status="administrator",
            rights=dict.fromkeys(rooms.POOL_RIGHTS, True),
            by=person_ref(5),
            now=T0,
        )
        assert change.state == "free"
        weak = rooms.register_group(
            s,
            settings,
            chat=chat_ref(-1002),
            title="Weak",
            chat_type="supergroup",
            status="administrator",
            rights={"can_pin_messages": True},
            by=person_ref(5),
            now=T0,
        )
        assert weak.room_id is None and "can_invite_users" in weak.missing
        first, second = _crisis(s, agency.id or 0), _crisis(s, agency.id or 0)
        taken = rooms.claim_free_room(s, first.id or 0)
        assert taken is not None and taken.chat_id == "-1001" and taken.state == "in_use"
        assert rooms.claim_free_room(s, second.id or 0) is None
        # Demoting the bot takes the group out and names the crisis that lost it.
        gone = rooms.register_group(
            s,
            settings,
            chat=chat_ref(-1001),
            title="Spare",
            chat_type="supergroup",
            status="member",
            rights={},
            by=person_ref(5),
            now=T0,
        )
        assert gone.state == "gone" and gone.crisis_id == first.id
        assert s.get(Room, taken.id).state == "gone"  # type: ignore[union-attr]


def test_hubs_and_admins_are_found_on_the_bot_s_channel(
    sqlite_db: Database, make_settings: Any
) -> None:
    """A hub or an admin named on another channel is not the bot's own: an agency whose hub is
    on Zalo gets the global Telegram hub on Telegram, and only Telegram admins count there."""
    settings = make_settings(
        {"CRISISDESK_HUB_CHAT_ID": "-1009", "CRISISDESK_ADMIN_IDS": "7, zalo:z-1"}
    )
    with sqlite_db.session() as s:
        on_zalo = Agency(code="Z", name="Z", hub_channel="zalo", hub_chat_id="g-5")
        own = Agency(code="T", name="T", hub_channel="telegram", hub_chat_id="-1005")
        s.add_all([on_zalo, own])
        s.flush()
        assert rooms.hub_for(on_zalo, settings, "telegram") == ChatRef("telegram", "-1009")
        assert rooms.hub_for(on_zalo, settings, "zalo") == ChatRef("zalo", "g-5")
        assert rooms.hub_for(own, settings, "telegram") == ChatRef("telegram", "-1005")
        assert rooms.is_hub(s, settings, chat_ref(-1005))
        assert rooms.is_hub(s, settings, chat_ref(-1009))
        assert not rooms.is_hub(s, settings, ChatRef("zalo", "-1005"))
    assert identity.global_admins(settings, "telegram") == (PersonRef("telegram", "7"),)
    assert identity.global_admins(settings, "zalo") == (PersonRef("zalo", "z-1"),)


def test_join_decisions(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        agency = Agency(code="A", name="A")
        s.add(agency)
        s.flush()
        people = {}
        for name, status in (
            ("in", "active"),
            ("no", "active"),
            ("out", "active"),
            ("sus", "suspended"),
        ):
            user = User(username=name, status=status)
            identity.add_person(s, person_ref(len(people) + 10), user)
            s.flush()
            people[name] = user
        crisis = _crisis(s, agency.id or 0)
        stored_refs.set_crisis_room(crisis, chat_ref(-100))
        crisis.invite_link = "https://t.me/+x"
        for name, state in (("in", "invited"), ("no", "declined"), ("sus", "invited")):
            s.add(CrisisMember(crisis_id=crisis.id or 0, user_id=people[name].id or 0, state=state))
        s.flush()

        def decide(telegram_id: int) -> tuple[bool, str]:
            d = rooms.decide_join(
                s, chat=chat_ref(-100), who=person_ref(telegram_id), invite_link="https://t.me/+x"
            )
            return d.approve, d.reason

        assert decide(10) == (True, "approved")
        assert decide(11) == (False, "declined")
        assert decide(12) == (False, "not_convened")
        assert decide(13) == (False, "inactive")
        assert decide(99) == (False, "unregistered")
        crisis.status = "resolved"
        s.flush()
        assert decide(10) == (False, "not_convened")


def test_report_key_times_and_files(sqlite_db: Database, make_settings: Any) -> None:
    settings = make_settings()
    clock = SimulatedClock(T0 + timedelta(hours=5))
    runtime = Runtime(settings, sqlite_db, clock, Renderer(settings.timezone), notifier=None)  # type: ignore[arg-type]
    with sqlite_db.session() as s:
        agency = Agency(code="A", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        lead = User(username="lead", full_name="Nguyễn Văn A", status="active")
        identity.add_person(s, person_ref(1), lead)
        s.flush()
        crisis = Crisis(
            agency_id=agency.id or 0,
            title="Tin đồn",
            detected_at=T0,
            deadline_at=T0 + timedelta(hours=6),
            created_at=T0 + timedelta(minutes=10),
            lead_id=lead.id,
            status="resolved",
            resolved_at=T0 + timedelta(hours=5),
        )
        s.add(crisis)
        s.flush()
        cid = crisis.id or 0
        s.add(CrisisMember(crisis_id=cid, user_id=lead.id or 0, role="lead", state="joined"))
        timeline.add(s, cid, timeline.ROOM_READY, None, "", {}, T0 + timedelta(minutes=12))
        draft = Draft(
            crisis_id=cid,
            template="holding",
            body="Bộ Y tế đang xác minh thông tin.",
            status="published",
            created_at=T0 + timedelta(minutes=40),
            published_at=T0 + timedelta(hours=2, minutes=5),
        )
        s.add(draft)
        s.flush()
        s.add(
            Approval(
                draft_id=draft.id or 0,
                approver_id=lead.id or 0,
                body_sha256="x",
                decision="approve",
                at=T0 + timedelta(hours=1, minutes=30),
            )
        )
        s.flush()
        data = reports.build(s, cid, clock.now())
    times = {k.key: k for k in data.key_times}
    assert times["opened"].since_previous == timedelta(minutes=10)
    assert times["convened"].since_previous == timedelta(minutes=2)
    assert times["first_draft"].since_detected == timedelta(minutes=40)
    assert times["approved"].since_previous == timedelta(minutes=50)
    assert times["published"].since_detected == timedelta(hours=2, minutes=5)
    assert data.deadline_met is True
    markdown = reports.render_markdown(runtime, data, "vi")
    assert "| Công bố | 10:05 02/11/2026 | 0 giờ 35 phút | 2 giờ 5 phút |" in markdown
    assert "Bộ Y tế đang xác minh thông tin." in markdown
    english = reports.render_markdown(runtime, data, "en")
    assert "| Published | 10:05 02/11/2026 | 0 h 35 min | 2 h 5 min |" in english
    document = Document(io.BytesIO(reports.render_docx(runtime, data, "en")))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "After-action report — crisis #1: Tin đồn" in text
    cells = [c.text for row in document.tables[0].rows for c in row.cells]
    assert "Published" in cells and "2 h 5 min" in cells


def test_room_link_and_topic_name() -> None:
    assert room_link(chat_ref(-1001234, 7)) == "https://t.me/c/1234/7"
    assert room_link(chat_ref(-1001234)) == "https://t.me/c/1234"
    assert room_link(chat_ref(-1234)) is None
    crisis = Crisis(
        id=3, agency_id=1, title="x" * 300, severity="critical", detected_at=T0, deadline_at=T0
    )
    assert room.topic_name(crisis).startswith("🔴 #3 xxx")
    assert len(room.topic_name(crisis)) == 128


def test_a_step_of_a_statement_asks_for_a_brief_edit(sqlite_db: Database) -> None:
    from sqlmodel import select

    from bot.services import drafts
    from storage.models import Draft, Due

    with sqlite_db.session() as s:
        agency = Agency(code="A", name="A")
        s.add(agency)
        s.flush()
        crisis = _crisis(s, agency.id or 0)
        timeline.add(s, crisis.id or 0, "note", None, "x", at=T0)
        assert s.exec(select(Due).where(Due.kind == "crisis.brief")).all() == []
        draft = Draft(crisis_id=crisis.id or 0, template="t", body="b")
        s.add(draft)
        s.flush()
        drafts.record_step(s, draft, "draft.published", None, T0, text="#1")
        [due] = s.exec(select(Due).where(Due.kind == "crisis.brief")).all()
        assert due.ref_id == crisis.id
        assert timeline.first(s, crisis.id or 0, "draft.published") is not None
