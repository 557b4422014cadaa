"""The attack table: every command and the people-facing buttons, pressed by every role, of the
crisis's own agency and of another, through the real bot on the emulator (issue 16, item 9).

One emulator, one database and one running Application serve the whole module. The commands
are sent in one burst (updates are handled one at a time, in order, so a sentinel's reply marks
the end of the burst); each parametrized case then reads what happened to its command: refused
people have exactly one ``command.refused`` audit row naming the command and a reason, allowed
people have none, and nobody met an unhandled error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from emulator_fixtures import running_app
from sqlmodel import col, select
from telegram.ext import Application

from bot.app import build_application
from bot.buttons import _REGISTRY
from bot.channels import ratelimit
from bot.channels.base import encode
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.config import load_settings
from bot.sandbox.personas import BOT_RIGHTS
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import drafts as dr
from bot.services import identity
from bot.services.permissions import Actor
from bot.services.taskforces import convening, crises, resolve
from bot.updates import ChatOrderedUpdateProcessor
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Agency,
    AuditEvent,
    Crisis,
    CrisisMember,
    CrisisStatus,
    Draft,
    Task,
    User,
)

from .error_lines import ErrorLines

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROLES = ("admin", "supervisor", "spokesperson", "member", "pending", "suspended", "unregistered")
SIDES = ("own", "other")
RANK = {"member": 0, "spokesperson": 1, "supervisor": 2, "admin": 3}

Rule = Callable[[str, bool], bool]


def anyone(role: str, own: bool) -> bool:
    return role != "suspended"


def active(role: str, own: bool) -> bool:
    return role in RANK


def at_least(minimum: str) -> Rule:
    return lambda role, own: role in RANK and RANK[role] >= RANK[minimum]


def for_agency(minimum: str) -> Rule:
    """Admins for every agency; others for their own, with at least ``minimum``."""
    return lambda role, own: role == "admin" or (own and at_least(minimum)(role, own))


# (command as typed, where, who may) — every CommandHandler of the bot. The room commands run
# in the own agency's crisis room, where none of the people below has been convened.
COMMANDS: list[tuple[str, str, Rule]] = [
    ("/start", "private", anyone),
    ("/help", "private", anyone),
    ("/me", "private", anyone),
    ("/cancel", "private", anyone),
    ("/skip", "private", anyone),
    ("/pin", "private", active),
    ("/alerts", "private", at_least("member")),
    ("/topics", "private", at_least("member")),
    ("/mute Vaccine", "private", at_least("member")),
    ("/scanstatus", "private", at_least("spokesperson")),
    ("/invite", "private", at_least("supervisor")),
    ("/invites", "private", at_least("supervisor")),
    ("/people", "private", at_least("supervisor")),
    ("/addtopic", "private", at_least("supervisor")),
    ("/settopic", "private", at_least("supervisor")),
    ("/rmtopic", "private", at_least("supervisor")),
    ("/sources", "private", at_least("supervisor")),
    ("/addsource", "private", at_least("supervisor")),
    ("/rmsource", "private", at_least("supervisor")),
    ("/status", "private", at_least("admin")),
    ("/crisis BYT Leak at the clinic", "private", for_agency("spokesperson")),
    ("/tasks", "room", for_agency("supervisor")),
    ("/timeline", "room", for_agency("supervisor")),
    ("/roster", "room", for_agency("supervisor")),
    ("/task Call the newsroom", "room", for_agency("supervisor")),
    ("/update Hotline opened", "room", for_agency("supervisor")),
    ("/note Reporter called", "room", for_agency("supervisor")),
    ("/role @nobody_here member", "room", for_agency("supervisor")),
    ("/convene", "room", for_agency("supervisor")),
    ("/draft holding", "room", for_agency("member")),
    ("/set place Hà Nội", "room", for_agency("member")),  # edits the room's draft (made below)
    ("/history 1", "room", for_agency("member")),
    ("/resolve", "room", for_agency("supervisor")),  # last: it closes the room
]


CLOSER = ("supervisor", "own")  # the one allowed person who sends /resolve


def _name(command: str) -> str:
    return command.split()[0]


@dataclass
class Person:
    role: str
    side: str
    tg: int
    row_id: int | None

    @property
    def ref(self) -> str:
        return f"tg:{self.tg}"


@dataclass
class Forged:
    """One forged press of a registered action: its data, the answer, its audit rows, and the
    tables whose content changed while it was handled (none may)."""

    data: str
    answer: dict[str, Any]
    rows: list[AuditEvent]
    changed: list[str]


@dataclass
class Outcome:
    """What the burst left behind: refusal rows by (actor ref, command), and unhandled errors."""

    people: list[Person]
    refused: dict[tuple[str, str], list[AuditEvent]] = field(default_factory=dict)
    button_answers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    button_rows: dict[tuple[str, str], list[AuditEvent]] = field(default_factory=dict)
    button_data: dict[str, str] = field(default_factory=dict)
    other_agency_invited: list[int] = field(default_factory=list)
    service_refusal: str = ""
    forged: dict[tuple[str, str], Forged] = field(default_factory=dict)
    draft_editors: list[int] = field(default_factory=list)  # who made a new version
    refusal_texts: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def _add_people(emulator: TelegramEmulator, db: Database, agencies: dict[str, int]) -> list[Person]:
    people: list[Person] = []
    with db.session() as s:
        for side, code in (("own", "BYT"), ("other", "BTC")):
            for role in ROLES:
                tg = emulator.create_user(f"{role}-{side}", username=f"{role}_{side}")
                tg.started = True
                row_id = None
                if role != "unregistered":
                    status = {"pending": "pending", "suspended": "suspended"}.get(role, "active")
                    base = role if role in RANK else "spokesperson"
                    row = User(
                        username=f"{role}_{side}",
                        full_name=f"{role.title()} {side}",
                        agency_id=agencies[code],
                        role=base if status == "active" else "member",
                        requested_role=base if status == "pending" else None,
                        status=status,
                        language="en",
                    )
                    identity.add_person(s, person_ref(tg.id), row)
                    s.flush()
                    row_id = row.id
                people.append(Person(role, side, tg.id, row_id))
    return people


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def outcome(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Outcome]:
    tmp: Path = tmp_path_factory.mktemp("attack")
    url = f"sqlite:///{tmp / 'attack.sqlite3'}"
    upgrade(url)
    db = Database.from_url(url)
    emulator = TelegramEmulator(flood_limits=False)
    await emulator.start()
    errors = ErrorLines()
    logging.getLogger().addHandler(errors)
    patch = pytest.MonkeyPatch()
    # Hundreds of replies in a minute: Telegram's pacing (tested in tests/channels) would
    # stretch the burst to minutes, and the emulator's flood limits are off anyway.
    patch.setattr(ratelimit, "OVERALL_SPACING", 0.0)
    patch.setattr(ratelimit, "OVERALL_MAX", 10**9)
    patch.setattr(ratelimit, "CHAT_RATE", 1e9)
    patch.setattr(ratelimit, "GROUP_MAX", 10**9)
    try:
        hub = emulator.create_supergroup("BYT hub", forum=True)
        emulator.add_bot(hub.id, rights=BOT_RIGHTS)
        with db.session() as s:
            byt = Agency(
                code="BYT",
                name="Bộ Y tế",
                owner="chat",
                hub_channel="telegram",
                hub_chat_id=str(hub.id),
            )
            btc = Agency(code="BTC", name="Bộ Tài chính", owner="chat")
            s.add(byt)
            s.add(btc)
            s.flush()
            agencies = {"BYT": byt.id or 0, "BTC": btc.id or 0}
        people = _add_people(emulator, db, agencies)
        lead = emulator.create_user("Lead", username="lead_byt")
        sentinel = emulator.create_user("Sentinel", language_code="en")
        with db.session() as s:
            identity.add_person(
                s,
                person_ref(lead.id),
                User(
                    username="lead_byt",
                    full_name="Lead",
                    agency_id=agencies["BYT"],
                    role="spokesperson",
                    status="active",
                    language="en",
                ),
            )
        for person in people:
            emulator.join(person.tg, hub.id)
        settings = load_settings(
            {
                "CRISISDESK_DATA_DIR": str(tmp / "data"),
                "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
                "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
                "CRISISDESK_TICK_SECONDS": "30",
                "CRISISDESK_SCAN_INTERVAL": "86400",
            }
        )
        app = build_application(settings, db, SimulatedClock(_start()))
        async with running_app(app):
            sent = emulator.send_text(lead.id, "/crisis Fake vaccine rumour")
            await emulator.wait_for_message(
                lead.id, lambda m: "is open" in (m.text or ""), after=sent.message_id
            )
            with db.session() as s:
                crisis = s.exec(select(Crisis)).one()
                thread = int(crisis.room_thread_id) if crisis.room_thread_id else None
                holding = dr.library(None).get("holding", "en")
                s.add(  # the statement /set edits, every field filled
                    Draft(
                        crisis_id=crisis.id or 0,
                        template="holding",
                        language="en",
                        fields={name: "…" for name in holding.field_names},
                        body=".",
                    )
                )
            assert thread is not None
            result = Outcome(people)
            await _burst(emulator, app, db, people, sentinel.id, hub.id, thread, result)
            await _press_buttons(emulator, app, db, people, sentinel.id, agencies, result)
            await _pick_across_agencies(app.bot_data["runtime"], db, people, result)
            await _forge_every_action(emulator, app, db, people, sentinel.id, result)
        result.errors = list(errors.lines)
        yield result
    finally:
        patch.undo()
        logging.getLogger().removeHandler(errors)
        await emulator.stop()
        db.dispose()


async def _pick_across_agencies(
    runtime: Any, db: Database, people: list[Person], result: Outcome
) -> None:
    """The service itself refuses a pick outside the crisis's agency, whatever the button."""
    stranger = _row_of(people, "member", "other")
    with db.session() as s:
        supervisor = s.get(User, _row_of(people, "supervisor", "own"))
        agency = supervisor.agency_id if supervisor else None
        crisis = s.exec(
            select(Crisis).where(Crisis.status != CrisisStatus.RESOLVED, Crisis.agency_id == agency)
        ).first()
        assert supervisor is not None and crisis is not None and crisis.id is not None
        account = identity.account_on(s, supervisor.id, "telegram")
        actor = Actor(str(account), supervisor)
        crisis_id = crisis.id
    try:
        await convening.convene_more(runtime, actor, crisis_id, user_ids=[stranger])
    except crises.TaskForceError as exc:
        result.service_refusal = exc.code
    with db.session() as s:
        result.other_agency_invited = [
            m.crisis_id
            for m in s.exec(select(CrisisMember).where(CrisisMember.user_id == stranger))
        ]


def _row_of(people: list[Person], role: str, side: str) -> int:
    [row_id] = [p.row_id for p in people if p.role == role and p.side == side]
    assert row_id is not None
    return row_id


def _start() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _mark(db: Database) -> int:
    with db.session() as s:
        return s.exec(select(AuditEvent.id).order_by(col(AuditEvent.id).desc())).first() or 0


async def _settle(
    emulator: TelegramEmulator, app: Application[Any, Any, Any, Any, Any, Any], sentinel: int
) -> None:
    """Wait until the burst is handled. Chats run in parallel (each in order), so the
    sentinel's answer only proves every earlier update was taken up; then the processor must
    have no chat left with an update running or waiting."""
    sent = emulator.send_text(sentinel, "/help")
    await emulator.wait_for_message(sentinel, after=sent.message_id, timeout=60)
    processor = app.update_processor
    assert isinstance(processor, ChatOrderedUpdateProcessor)
    deadline = asyncio.get_running_loop().time() + 60
    while processor.chains or not app.update_queue.empty():
        assert asyncio.get_running_loop().time() < deadline, "the burst was not handled in time"
        await asyncio.sleep(0.05)


async def _burst(
    emulator: TelegramEmulator,
    app: Application[Any, Any, Any, Any, Any, Any],
    db: Database,
    people: list[Person],
    sentinel: int,
    hub: int,
    thread: int,
    result: Outcome,
) -> None:
    mark = _mark(db)
    for command, place, rule in COMMANDS:
        # Refused people first, so that an allowed /resolve closes the room after them.
        for person in sorted(people, key=lambda p: rule(p.role, p.side == "own")):
            allowed = rule(person.role, person.side == "own")
            if command == "/resolve" and allowed and (person.role, person.side) != CLOSER:
                continue  # the room is closed by then: Telegram refuses posts in it
            if place == "room":
                emulator.send_text(person.tg, command, chat_id=hub, thread_id=thread)
            else:
                emulator.send_text(person.tg, command)
    await _settle(emulator, app, sentinel)
    with db.session() as s:
        rows = s.exec(
            select(AuditEvent)
            .where(col(AuditEvent.id) > mark, AuditEvent.action == "command.refused")
            .order_by(col(AuditEvent.id))
        ).all()
    for row in rows:
        key = (row.actor_ref, row.subject.removeprefix("command:"))
        result.refused.setdefault(key, []).append(row)
    with db.session() as s:
        result.draft_editors = [
            a
            for a in s.exec(
                select(AuditEvent.actor_id).where(
                    col(AuditEvent.id) > mark, AuditEvent.action == "draft.edited"
                )
            )
            if a is not None
        ]


@pytest.mark.parametrize(("command", "place", "rule"), COMMANDS, ids=[c[0] for c in COMMANDS])
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("role", ROLES)
async def test_command(
    outcome: Outcome, command: str, place: str, rule: Rule, role: str, side: str
) -> None:
    [person] = [p for p in outcome.people if p.role == role and p.side == side]
    if command == "/resolve" and rule(role, side == "own") and (role, side) != CLOSER:
        pytest.skip("one allowed person resolves; the closed room takes no more posts")
    rows = outcome.refused.get((person.ref, _name(command)), [])
    if rule(role, side == "own"):
        assert rows == [], f"{role} ({side} agency) was refused {command}: {rows}"
    else:
        assert len(rows) == 1, f"{role} ({side} agency) ran {command} without a refusal row"
        assert rows[0].after and rows[0].after.get("reason")
        assert rows[0].actor_id == person.row_id


async def test_a_refused_set_changes_no_draft(outcome: Outcome) -> None:
    refused = {
        p.row_id
        for p in outcome.people
        if p.row_id is not None and not for_agency("member")(p.role, p.side == "own")
    }
    assert outcome.draft_editors, "nobody allowed edited the draft with /set"
    assert not refused & set(outcome.draft_editors)


async def test_no_unhandled_error(outcome: Outcome) -> None:
    assert outcome.errors == []


# --------------------------------------------------------------------------- buttons

# (action, whose object, who may). Targets are people of the own agency (BYT).
BUTTONS: list[tuple[str, str, str, Rule]] = [
    ("sys.status", "sys.status", "none", at_least("admin")),
    ("ppl.page", "ppl.page", "agency", for_agency("supervisor")),
    ("ppl.open", "ppl.open", "person", for_agency("supervisor")),
    ("ppl.suspend", "ppl.suspend", "person", for_agency("supervisor")),
    ("ppl.react", "ppl.react", "person", for_agency("supervisor")),
    ("ppl.role", "ppl.role", "person-role", for_agency("supervisor")),
    ("reg.approve", "reg.approve", "applicant", for_agency("supervisor")),
    ("reg.reject", "reg.reject", "applicant", for_agency("supervisor")),
    ("tf.pick", "tf.pick", "pick", for_agency("supervisor")),
    # A forged pick of another agency's person: nobody, admins included (issue 16, item 6).
    ("tf.pick-other-agency", "tf.pick", "pick-other", lambda role, own: False),
    ("tf.join", "tf.join", "invitation", lambda role, own: False),  # someone else's invitation
    ("me.name", "me.name", "none", lambda role, own: role not in ("unregistered", "suspended")),
    ("inv.revoke", "inv.revoke", "invite", lambda role, own: False),  # no such code
]


async def _press_buttons(
    emulator: TelegramEmulator,
    app: Application[Any, Any, Any, Any, Any, Any],
    db: Database,
    people: list[Person],
    sentinel: int,
    agencies: dict[str, int],
    result: Outcome,
) -> None:
    target_tg = emulator.create_user("Target", username="target_byt")
    applicant_tg = emulator.create_user("Applicant", username="applicant_byt")
    with db.session() as s:
        target = User(
            full_name="Target",
            agency_id=agencies["BYT"],
            role="member",
            status="active",
        )
        applicant = User(
            full_name="Applicant",
            agency_id=agencies["BYT"],
            role="member",
            requested_role="member",
            status="pending",
        )
        identity.add_person(s, person_ref(target_tg.id), target)
        identity.add_person(s, person_ref(applicant_tg.id), applicant)
        s.flush()
        crisis = s.exec(select(Crisis)).first()
        assert crisis is not None
        invitation = s.exec(select(CrisisMember).where(CrisisMember.crisis_id == crisis.id)).first()
        assert invitation is not None
        idents = {
            "none": "0",
            "agency": f"{agencies['BYT']}-0",
            "person": str(target.id),
            "person-role": f"{target.id}-s",
            "applicant": str(applicant.id),
            "pick": f"{crisis.id}-{target.id}",
            "pick-other": f"{crisis.id}-{_row_of(people, 'member', 'other')}",
            "invitation": str(invitation.id),
            "invite": "999999",
        }
    # One message of the bot's in each private chat carries the forged presses.
    asked = {p.tg: emulator.send_text(p.tg, "/help").message_id for p in people}
    carrier = {
        tg: (await emulator.wait_for_message(tg, after=after, timeout=30)).message_id
        for tg, after in asked.items()
    }
    mark = _mark(db)
    for label, action, whose, _rule in BUTTONS:
        data = encode(action, idents[whose])
        result.button_data[label] = data
        answers = await asyncio.gather(
            *(
                emulator.press_button(p.tg, p.tg, carrier[p.tg], data=data, timeout=30)
                for p in people
            )
        )
        for person, answer in zip(people, answers, strict=True):
            result.button_answers[(person.ref, data)] = answer
    await _settle(emulator, app, sentinel)
    with db.session() as s:
        rows = s.exec(
            select(AuditEvent).where(
                col(AuditEvent.id) > mark, col(AuditEvent.action).startswith("button.")
            )
        ).all()
    for row in rows:
        data = row.subject.removeprefix("button:")
        result.button_rows.setdefault((row.actor_ref, data), []).append(row)


@pytest.mark.parametrize(("label", "action", "whose", "rule"), BUTTONS, ids=[b[0] for b in BUTTONS])
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("role", ROLES)
async def test_button(
    outcome: Outcome, label: str, action: str, whose: str, rule: Rule, role: str, side: str
) -> None:
    [person] = [p for p in outcome.people if p.role == role and p.side == side]
    data = outcome.button_data[label]
    rows = outcome.button_rows.get((person.ref, data), [])
    answer = outcome.button_answers[(person.ref, data)]
    if rule(role, side == "own"):
        assert rows == [], f"{role} ({side} agency) was refused {label}: {rows}"
    else:
        assert len(rows) == 1, f"{role} ({side} agency) pressed {label} without a refusal row"
        assert rows[0].after and rows[0].after.get("reason")
        assert answer.get("show_alert") is True
        assert "Other" not in str(answer.get("text"))  # no name of the person picked


async def test_forged_pick_convenes_nobody_of_another_agency(outcome: Outcome) -> None:
    assert outcome.other_agency_invited == []
    assert outcome.service_refusal == "not_allowed"


# --------------------------------------------------------------------------- every action
# Every action in the button registry (enumerated when the app is built, so an action added
# later is pressed here without editing this file), pressed with forged data by someone who may
# never press it: a person who is not registered (and not registering) and a suspended one. The
# ids point at real rows where the action's id has a known shape (``FORGED_IDS``), else ``1``.

FORGERS = (("unregistered", "own"), ("suspended", "own"))
IGNORED_TABLES = {"auditevent"}  # the refusal's own row


def _forged_ids(session: Any, target: int, agency: int) -> dict[str, str]:
    """Ids of real rows for the actions whose id has a known shape."""
    from handlers.alerts import DISMISS_REASONS
    from storage.models import Alert, Topic

    def first(model: Any) -> int:
        row = session.exec(select(model.id).order_by(model.id)).first()
        assert row is not None, model
        return int(row)

    alert, crisis, draft, task, topic = (first(m) for m in (Alert, Crisis, Draft, Task, Topic))
    member = first(CrisisMember)
    ids = {
        "alert.dismissr": f"{alert}-{DISMISS_REASONS[0]}",
        "me.lang": "vi",
        "reg.lang": "vi",
        "reg.agency": str(agency),
        "reg.apage": "1",
        "reg.role": "member",
        "reg.approve": str(target),
        "reg.reject": str(target),
        "inv.agency": f"{agency}-s",
        "ppl.page": f"{agency}-0",
        "ppl.role": f"{target}-a",
        "tf.pick": f"{crisis}-{target}",
        "tf.join": str(member),
        "tf.decline": str(member),
        "tf.done": str(task),
        resolve.RESOLVE: str(crisis),
    }
    for action in ("alert.ack", "alert.tf", "alert.draft", "alert.dismiss", "alert.mute"):
        ids[action] = str(alert)
    for action in ("draft.edit", "draft.submit", "draft.discard"):
        ids[action] = str(draft)
    for action in ("appr.ok", "appr.changes", "appr.reject"):
        ids[action] = str(draft)
    for action in ("ppl.open", "ppl.suspend", "ppl.react"):
        ids[action] = str(target)
    for action in ("topic.follow", "topic.unfollow"):
        ids[action] = str(topic)
    return ids


def _state(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log, to prove a refused press changed nothing."""
    from sqlmodel import SQLModel

    state: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in IGNORED_TABLES:
                state[table.name] = sorted(
                    (tuple(r) for r in conn.execute(table.select())), key=repr
                )
    return state


async def _forge_every_action(
    emulator: TelegramEmulator,
    app: Application[Any, Any, Any, Any, Any, Any],
    db: Database,
    people: list[Person],
    sentinel: int,
    result: Outcome,
) -> None:
    from storage.models import Alert, Topic

    runtime = app.bot_data["runtime"]
    for lang in ("en", "vi"):
        for template in ("button_not_allowed", "button_invalid", "suspended"):
            result.refusal_texts.add(runtime.renderer.render(template, lang))
    with db.session() as s:
        supervisor = s.get(User, _row_of(people, "supervisor", "own"))
        assert supervisor is not None and supervisor.agency_id is not None
        agency = supervisor.agency_id
        topic = Topic(agency_id=agency, name="Vaccine", query='"vaccine"', owner="chat")
        s.add(topic)
        s.flush()
        assert topic.id is not None
        now = _start()
        s.add(
            Alert(
                topic_id=topic.id,
                kind="burst",
                dedupe_key="forged",
                window_start=now,
                window_end=now,
            )
        )
        crisis = s.exec(select(Crisis)).first()
        assert crisis is not None and crisis.id is not None
        s.add(Task(crisis_id=crisis.id, title="Call the newsroom"))
        s.flush()
        ids = _forged_ids(s, _row_of(people, "member", "own"), agency)
    forgers = [p for p in people if (p.role, p.side) in FORGERS]
    asked = {p.tg: emulator.send_text(p.tg, "/help").message_id for p in forgers}
    carrier = {
        tg: (await emulator.wait_for_message(tg, after=after, timeout=30)).message_id
        for tg, after in asked.items()
    }
    await _settle(emulator, app, sentinel)
    for action in _registered_actions():
        data = encode(action, ids.get(action, "1"))
        for person in forgers:
            before, mark = _state(db), _mark(db)
            answer = await emulator.press_button(
                person.tg, person.tg, carrier[person.tg], data=data, timeout=30
            )
            await _settle(emulator, app, sentinel)
            after = _state(db)
            with db.session() as s:
                rows = list(
                    s.exec(
                        select(AuditEvent).where(
                            col(AuditEvent.id) > mark, AuditEvent.actor_ref == person.ref
                        )
                    )
                )
            changed = [name for name in before if before[name] != after[name]]
            result.forged[(action, person.role)] = Forged(data, answer, rows, changed)


def _registered_actions() -> list[str]:
    """The app's actions (importing the app registers every handler's); actions that tests
    register for themselves (``test.*``, e.g. tests/foundation/test_clock_buttons_templates.py)
    are not the app's."""
    build_application  # noqa: B018
    return sorted(name for name in _REGISTRY if not name.startswith("test."))


@pytest.mark.parametrize("forger", [role for role, _side in FORGERS])
@pytest.mark.parametrize("action", _registered_actions())
async def test_every_action_refuses_a_forged_press(
    outcome: Outcome, action: str, forger: str
) -> None:
    forged = outcome.forged[(action, forger)]
    assert forged.answer.get("show_alert") is True, forged
    assert forged.answer.get("text") in outcome.refusal_texts, forged.answer
    assert [r.action for r in forged.rows] == ["button.refused"], forged.rows
    assert forged.rows[0].subject == f"button:{forged.data}"
    assert forged.rows[0].after and forged.rows[0].after.get("reason")
    assert forged.changed == [], f"{forged.data} by {forger} changed {forged.changed}"


async def test_the_registry_holds_every_action_of_the_app() -> None:
    """The table above is as wide as the app: every action the flows on the conversation layer
    route is registered."""
    from handlers.conversation.dispatch import _PRESSES

    app_actions = set(_registered_actions())
    routed = {name for name in _PRESSES if not name.startswith("test.")}
    assert routed == app_actions
    assert len(app_actions) >= 34
