"""Crash matrix: SIGKILL the real ``crisisdesk run`` at named points, restart it, check invariants.

    python -m bench.crash_matrix [--db sqlite|postgres|both] [--points N] [--only NAME] [--list]

Each kill point gets a fresh database (a SQLite file, or a fresh PostgreSQL schema on
``CRISISDESK_TEST_DATABASE_URL``) and fresh people and chats in one shared Bot API emulator
(in this process), plus a real local aiohttp feed server. The bot runs as a subprocess
(``python -m bot.cli run``) with ``CRISISDESK_TELEGRAM_API_URL`` at the emulator. Emulated people
drive a scenario (alert scan and fan-out, registration, approval and publication, convening,
resolve); a kill point holds one Bot API call (or one feed response) and SIGKILLs the process
while it is held — the emulator still carries the call out afterwards, as Telegram does with a
request whose sender died — or kills when a count of calls is reached. The bot is started
again, the people carry on where they are, and the invariants are checked in the database and
in what every emulated chat received. Prints one row per kill point and exits 1 if any
invariant broke (or a kill point was never reached).

Invariants: no alert lost and none twice to one person; no approval lost or applied twice; every
reminder still due; no room (or channel) message twice and none lost; every registration
decided once and told once; every invitee invited once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiohttp import web
from sqlmodel import Session, col, select

from bench import stories
from bench.alert_latency import OUTLETS, store_history
from bench.workers import Front, Worker, serve_front
from bot.channels.telegram.notifier import person_ref
from bot.sandbox.personas import BOT_RIGHTS
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.errors import ControlError
from bot.sandbox.telegram_emulator.state import StoredMessage
from bot.services import approval_reminders, due, identity
from bot.services import drafts as dr
from bot.services.taskforces import resolve
from bot.services.taskforces.deadline import schedule_deadline
from bot.wiring import wire
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Agency,
    Alert,
    Approval,
    AuditEvent,
    ChannelIdentity,
    Crisis,
    CrisisMember,
    Delivery,
    Draft,
    DraftStatus,
    Due,
    Room,
    Source,
    Subscription,
    Topic,
    User,
)

BUDGET = float(os.environ.get("CRASH_MATRIX_BUDGET", "120"))  # s to reach a point, s to finish
PRESS_TIMEOUT = 15.0  # a press expires unanswered after this (Telegram allows about as long)
HOLD = 2.5  # seconds a held call waits at "Telegram" before it is carried out
PG_ENV = "CRISISDESK_TEST_DATABASE_URL"
# The matrix's feeds: four background stories and twelve burst headlines (two per outlet) are
# enough for one alert and keep each kill point's scan short.
BACKGROUND = stories.BACKGROUND[:4]
BURST = stories.BURST[:12]
TOPIC = "An toàn thực phẩm"
FIRST_LINE = "Thông cáo của Bộ Y tế về vụ ngộ độc."
LAST_LINE = "Hết thông cáo."
BODY = "\n".join(
    [
        FIRST_LINE,
        *(
            f"{i}. Đoàn công tác đã đến Trường Tiểu học Tân Phong; các em đã ổn định."
            for i in range(60)
        ),
        LAST_LINE,
    ]
)  # long enough for two messages


# --------------------------------------------------------------------------- the feed server


@dataclass
class Feeds:
    """One RSS feed per outlet; an outlet in ``hold`` answers after ``HOLD`` seconds."""

    base: str = ""
    items: dict[int, list[tuple[str, str, datetime]]] = field(default_factory=dict)
    hold: set[int] = field(default_factory=set)
    holding: int = 0
    served: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        index = int(request.match_info["index"])
        if index in self.hold:
            self.hold.discard(index)
            self.holding += 1
            try:
                await asyncio.sleep(HOLD)
            finally:
                self.holding -= 1
        entries = "".join(
            f"<item><title>{t}</title><link>{link}</link><description>Các em đau bụng, nôn ói;"
            f" phụ huynh bức xúc.</description><pubDate>{format_datetime(p)}</pubDate></item>"
            for t, link, p in self.items.get(index, [])
        )
        self.served += 1
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>'
            f"{OUTLETS[index]}</title><link>https://example.vn</link><description>x"
            f"</description>{entries}</channel></rss>"
        )
        return web.Response(body=body.encode(), content_type="application/rss+xml")


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    """Everything one kill point works with."""

    emu: TelegramEmulator
    feeds: Feeds
    db: Database
    url: str
    data_dir: Path
    people: dict[str, int] = field(default_factory=dict)  # name -> Telegram id
    users: dict[str, int] = field(default_factory=dict)  # name -> User.id
    chats: dict[str, int] = field(default_factory=dict)  # hub, room, channel
    ids: dict[str, int] = field(default_factory=dict)  # agency, crisis, draft, thread, ...
    channel: str = ""  # the public channel's @username
    calls_at_start: int = 0

    def calls(self, method: str, pred: Callable[[Any], bool] | None = None) -> list[Any]:
        return [
            c
            for c in self.emu.calls[self.calls_at_start :]
            if c.method.lower() == method.lower() and c.status == 200 and (not pred or pred(c))
        ]

    def private(self, name: str) -> list[StoredMessage]:
        try:
            return self.emu.messages(self.people[name], from_bot=True)
        except ControlError:
            return []

    def texts(self, chat: int, thread: int | None = None) -> list[str]:
        return [
            m.text or m.data.get("document", {}).get("file_name", "") or ""
            for m in self.emu.messages(chat, thread_id=thread, from_bot=True)
        ]

    def person(self, name: str, role: str | None, *, lang: str = "en") -> int:
        """A Telegram user who has started the bot, registered with ``role`` (None: not yet)."""
        tg = self.emu.create_user(name.title(), username=f"{name}_{uuid.uuid4().hex[:6]}")
        tg.language_code = lang
        tg.started = True
        self.emu.world.private_chat(tg)
        self.people[name] = tg.id
        if role is not None:
            with self.db.session() as s:
                row = User(
                    username=tg.username,
                    full_name=name.title(),
                    agency_id=self.ids["agency"],
                    role=role,
                    status="active",
                    language=lang,
                )
                identity.add_person(s, person_ref(tg.id), row)
                s.flush()
                assert row.id is not None
                self.users[name] = row.id
        return tg.id


Check = tuple[str, bool, str]  # invariant, held, detail


@dataclass
class Scenario:
    name: str
    setup: Callable[[Run], Awaitable[None]]
    drive: Callable[[Run], Awaitable[None]]  # acts as the people; re-entrant after a restart
    done: Callable[[Run], bool]
    check: Callable[[Run], list[Check]]
    scan_interval: int = 3600


@dataclass
class Point:
    name: str
    scenario: Scenario
    arm: Callable[[Run], None]  # injects the hold before the bot starts
    fired: Callable[[Run], bool]  # kill now


def _agency(run: Run, **policy: Any) -> None:
    with run.db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế", owner="chat", **policy)
        s.add(agency)
        s.flush()
        assert agency.id is not None
        run.ids["agency"] = agency.id


def _held(method: str, text: str | None = None) -> Callable[[Run], bool]:
    def fired(run: Run) -> bool:
        return any(
            m.lower() == method.lower() and (text is None or text in str(p.get("text", "")))
            for m, p in run.emu.held
        )

    return fired


def once(items: list[str], needle: str) -> int:
    return sum(1 for t in items if needle in t)


def _db_one(run: Run, stmt: Any) -> Any:
    with run.db.session() as s:
        return s.exec(stmt).all()


# --------------------------------------------------------------------------- alerts


ALERT_PEOPLE = 8  # the k-th chart or text is held for k up to 5: some still to go


async def alert_setup(run: Run) -> None:
    _agency(run)
    now = datetime.now(UTC)
    with run.db.session() as s:
        topic = Topic(
            agency_id=run.ids["agency"],
            name=TOPIC,
            query='"ngộ độc" OR "an toàn thực phẩm"',
            owner="chat",
        )
        s.add(topic)
        s.flush()
        assert topic.id is not None
        run.ids["topic"] = topic.id
    for i in range(ALERT_PEOPLE):
        run.person(f"s{i}", "spokesperson")
    with run.db.session() as s:
        for i in range(ALERT_PEOPLE):
            s.add(Subscription(user_id=run.users[f"s{i}"], topic_id=run.ids["topic"]))
        for i in range(len(OUTLETS)):
            s.add(
                Source(
                    name=OUTLETS[i],
                    outlet=OUTLETS[i],
                    url=f"{run.feeds.base}/{run.ids['agency']}-{uuid.uuid4().hex[:6]}/rss/{i}",
                    owner="chat",
                )
            )
    titles = [f"{BACKGROUND[i % len(BACKGROUND)]}, đợt {i + 1}" for i in range(14 * 4)]
    store_history(run.db, titles, "https://bg.example.vn", timedelta(hours=6), now)
    run.feeds.items = {}
    tag = uuid.uuid4().hex[:8]
    for i, title in enumerate(BURST):
        run.feeds.items.setdefault(i % len(OUTLETS), []).append(
            (title, f"https://news.example.vn/{tag}/{i}", now - timedelta(minutes=12 - i % 10))
        )


async def no_one_acts(run: Run) -> None:
    await asyncio.sleep(3600)


def _alert_ids(run: Run) -> list[int]:
    return [a for a in _db_one(run, select(Alert.id)) if a is not None]


def alert_done(run: Run) -> bool:
    statuses = _db_one(run, select(Delivery.status).where(Delivery.kind == "alert"))
    return len(statuses) >= 2 * ALERT_PEOPLE and all(
        s not in ("pending", "sending") for s in statuses
    )


def _alert_copies(run: Run, name: str) -> tuple[int, int]:
    messages = run.private(name)
    photos = sum(1 for m in messages if "photo" in m.data)
    texts = sum(1 for m in messages if TOPIC in (m.data.get("text") or "") and m.buttons())
    return photos, texts


def alert_check(run: Run) -> list[Check]:
    alerts = _alert_ids(run)
    copies = {f"s{i}": _alert_copies(run, f"s{i}") for i in range(ALERT_PEOPLE)}
    lost = {n: c for n, c in copies.items() if 0 in c}
    twice = {n: c for n, c in copies.items() if max(c) > len(alerts)}
    # A part claimed and never settled is ``uncertain`` (at most once: the residual of a kill
    # between the claim's commit and the request's write, docs/reliability.md). Named here, so
    # that a loss can be told from a silent one.
    flagged = {
        n: _db_one(
            run,
            select(Delivery.part).where(
                Delivery.kind == "alert",
                Delivery.user_id == run.users[n],
                Delivery.status == "uncertain",
            ),
        )
        for n in lost
    }
    return [
        ("one alert per burst", len(alerts) == 1, f"{len(alerts)} alerts"),
        (
            "no alert lost",
            not lost,
            f"(charts, texts) missing: {lost}, uncertain {flagged}" if lost else "",
        ),
        ("no alert twice to one person", not twice, f"(charts, texts): {twice}" if twice else ""),
    ]


ALERTS = Scenario("alerts", alert_setup, no_one_acts, alert_done, alert_check, scan_interval=10)


def _nothing(run: Run) -> None:
    """No fault armed before the start (the point counts calls instead)."""


def _call_point(
    scenario: Scenario,
    name: str,
    method: str,
    *,
    text: str | None = None,
    chat: Callable[[Run], int | str] | None = None,
    after: int = 0,
) -> Point:
    """Hold the ``after``+1-th call of ``method`` (to ``chat``, holding ``text``).

    The emulator counts the ``after`` calls it lets through as they arrive, so the hold is
    armed before the bot starts; armed by the bench once it had seen them, it missed the call
    when both went out between two looks (``conv.invitation.5``, ``res.boss2-docx``)."""

    def arm(run: Run) -> None:
        target = chat(run) if chat else None
        run.emu.inject_delay(method, HOLD, text_contains=text, chat_id=target, after=after)

    return Point(name, scenario, arm, _held(method, text))


def _feed_hold(i: int) -> Callable[[Run], None]:
    return lambda run: run.feeds.hold.add(i)


def _after_fetch(delay: float) -> Callable[[Run], bool]:
    def fired(run: Run) -> bool:
        at = run.ids.get("fetched_at")
        if at is None and run.feeds.served >= len(OUTLETS):
            run.ids["fetched_at"] = int(time.monotonic() * 1000)
            return False
        return at is not None and time.monotonic() * 1000 - at >= delay * 1000

    return fired


def _sends_reached(n: int) -> Callable[[Run], bool]:
    return lambda run: len(run.calls("sendPhoto")) + len(run.calls("sendMessage")) >= n


def alert_points() -> list[Point]:
    points = [
        Point(
            f"scan.fetch.{OUTLETS[i].lower().replace(' ', '')}",
            ALERTS,
            _feed_hold(i),
            lambda run: run.feeds.holding > 0,
        )
        for i in range(len(OUTLETS))
    ]
    points += [
        Point(f"scan.detect+{ms}ms", ALERTS, _nothing, _after_fetch(ms / 1000)) for ms in (100, 400)
    ]
    for k in (1, 3, 5):
        points.append(_call_point(ALERTS, f"fanout.chart.{k}", "sendPhoto", after=k - 1))
        points.append(
            _call_point(ALERTS, f"fanout.text.{k}", "sendMessage", text=TOPIC, after=k - 1)
        )
    points += [Point(f"fanout.after{n}sends", ALERTS, _nothing, _sends_reached(n)) for n in (2, 7)]
    return points


# --------------------------------------------------------------------------- registration


async def reg_setup(run: Run) -> None:
    _agency(run)
    run.person("sup1", "supervisor")
    run.person("sup2", "supervisor")
    run.person("newbie", None)


def _press_later(run: Run, who: str, chat: int, message: StoredMessage, label: str) -> None:
    async def press() -> None:
        with contextlib.suppress(Exception):  # the bot may be dead: the press then expires
            await run.emu.press_button(
                run.people[who], chat, message.message_id, text=label, timeout=PRESS_TIMEOUT
            )

    task = asyncio.get_running_loop().create_task(press())
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


_TASKS: set[asyncio.Task[Any]] = set()


def _by_account(query: Any, telegram_id: int) -> Any:
    """``query`` over ``User`` narrowed to the person with this Telegram account."""
    return query.join(ChannelIdentity, col(ChannelIdentity.user_id) == col(User.id)).where(
        ChannelIdentity.channel == "telegram", ChannelIdentity.external_id == str(telegram_id)
    )


def _newbie(run: Run) -> User | None:
    rows = _db_one(run, _by_account(select(User), run.people["newbie"]))
    return rows[0] if rows else None


def _reg_step(run: Run) -> str:
    from storage.models import ConversationState

    rows = _db_one(
        run,
        select(ConversationState.step).where(
            ConversationState.user_ref == f"tg:{run.people['newbie']}",
            ConversationState.flow == "register",
        ),
    )
    if rows:
        return str(rows[0])
    user = _newbie(run)
    return f"user:{user.status}" if user else "none"


UNANSWERED = 10.0  # s a newcomer waits for the next question before writing /start again


async def reg_drive(run: Run) -> None:
    """The newcomer answers what the bot last asked; a supervisor approves the request. An
    action is repeated only if nothing changed for a while (a person whose message went
    unanswered writes again). A question that never came — its step committed, the reply in
    flight when the process died (``reg.commands``: ``/start`` arrived as the start-up menu call
    was held, and the kill fell after the step's commit, before the question left) — is
    asked again when the person writes ``/start`` again, as a person left without an answer
    does; the bench sent nothing then and the point timed out."""
    emu, tg = run.emu, run.people["newbie"]
    waiting: tuple[str, float] | None = None  # a question step with no question, since when
    while True:
        step = _reg_step(run)
        messages = run.private("newbie")
        last = messages[-1] if messages else None
        acted = True
        if step == "none":
            emu.send_text(tg, "/start")
        elif step == "language" and last and last.buttons():
            _press_later(run, "newbie", tg, last, "English")
        elif step == "name":
            emu.send_text(tg, "Nguyễn Văn An")
        elif step in ("agency", "role") and last and last.buttons():
            _press_later(run, "newbie", tg, last, str(last.buttons()[0]["text"]))
        elif step == "phone":
            emu.send_contact(tg, "+84 912 345 678")
        elif step == "user:pending" and (
            requests := [m for m in run.private("sup1") if m.buttons()]
        ):
            _press_later(run, "sup1", run.people["sup1"], requests[-1], "✓ Approve")
        elif step == "user:active":
            return
        else:
            acted = False  # the question is not there yet
        if acted or step.startswith("user:") or (waiting is not None and waiting[0] != step):
            waiting = None
        elif waiting is None:
            waiting = (step, time.monotonic())
        elif time.monotonic() - waiting[1] > UNANSWERED:
            emu.send_text(tg, "/start")  # no answer: the person writes again
            waiting, acted = None, True
        await _until(_changed_from(run, step), 6 if acted else 0.1)


def _changed_from(run: Run, step: str) -> Callable[[], bool]:
    return lambda: _reg_step(run) != step


def reg_done(run: Run) -> bool:
    return _reg_step(run) == "user:active" and bool(
        [m for m in run.private("newbie") if "has been approved" in (m.text or "")]
    )


def reg_check(run: Run) -> list[Check]:
    user = _newbie(run)
    approved = once([m.text or "" for m in run.private("newbie")], "has been approved")
    requests = {
        who: once([m.text or "" for m in run.private(who)], "New registration request")
        for who in ("sup1", "sup2")
    }
    decided = _db_one(run, select(AuditEvent.id).where(AuditEvent.action == "user.approved"))
    users = _db_one(run, _by_account(select(User.id), run.people["newbie"]))
    return [
        ("registration kept", len(users) == 1 and user is not None, f"{len(users)} rows"),
        ("approval applied once", len(decided) == 1, f"{len(decided)} user.approved"),
        ("applicant told once", approved == 1, f"told {approved}×"),
        # A decider not asked yet when another decided is not asked any more.
        ("no decider asked twice", max(requests.values()) <= 1, f"requests {requests}"),
        ("request reached a decider", sum(requests.values()) >= 1, f"requests {requests}"),
    ]


REGISTRATION = Scenario("registration", reg_setup, reg_drive, reg_done, reg_check)


def _reg_point(name: str, method: str, text: str | None, chat: str | None = None) -> Point:
    def target(run: Run) -> int:
        return run.people[str(chat)]

    return _call_point(REGISTRATION, name, method, text=text, chat=target if chat else None)


def registration_points() -> list[Point]:
    return [
        _reg_point("reg.language-question", "sendMessage", "Choose your language"),
        _reg_point("reg.name-question", "sendMessage", "full name"),
        _reg_point("reg.agency-question", "sendMessage", "Which agency"),
        _reg_point("reg.role-question", "sendMessage", "Which role"),
        _reg_point("reg.phone-question", "sendMessage", "share your phone"),
        _reg_point("reg.pending-reply", "sendMessage", "awaiting approval"),
        _reg_point("reg.request-to-first", "sendMessage", "New registration request", "sup1"),
        _reg_point("reg.request-to-second", "sendMessage", "New registration request", "sup2"),
        _reg_point("reg.approve-answer", "answerCallbackQuery", None),
        _reg_point("reg.copy-edited", "editMessageText", "Approved by"),
        _reg_point("reg.applicant-told", "sendMessage", "has been approved"),
        _reg_point("reg.commands", "setMyCommands", None),
    ]


# --------------------------------------------------------------------------- publication


async def _create_topic(run: Run, chat: int, name: str) -> int:
    topic = await _bot_api(run.emu, "createForumTopic", chat_id=chat, name=name)
    return int(topic["message_thread_id"])


async def _bot_api(emu: TelegramEmulator, method: str, **params: Any) -> Any:
    """Call the Bot API as the bot (set-up steps the bot would have taken earlier)."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{emu.bot_url}{emu.token}/{method}", json=params)
    body = answer.json()
    if not body.get("ok"):
        raise RuntimeError(f"{method}: {body}")
    return body["result"]


def _crisis_in_topic(
    s: Session, run: Run, title: str, lead: str, hub: int, thread: int, detected_at: datetime
) -> Crisis:
    """A crisis of the run's agency led by ``lead``, its room the forum topic ``thread`` of
    ``hub``, with its 24 h deadline scheduled."""
    crisis = Crisis(
        agency_id=run.ids["agency"],
        title=title,
        lead_id=run.users[lead],
        room_channel="telegram",
        room_chat_id=str(hub),
        room_thread_id=str(thread),
        detected_at=detected_at,
        deadline_at=detected_at + timedelta(hours=24),
    )
    s.add(crisis)
    s.flush()
    schedule_deadline(s, crisis)
    return crisis


async def pub_setup(run: Run) -> None:
    channel = f"@byt{uuid.uuid4().hex[:8]}"
    _agency(run, public_channel=channel)
    run.person("author", "spokesperson")
    run.person("boss", "supervisor")
    hub = run.emu.create_supergroup(
        "Hub", forum=True, member_ids=[run.people["author"], run.people["boss"]]
    )
    run.emu.add_bot(hub.id, rights=BOT_RIGHTS)
    ch = run.emu.create_channel("Bộ Y tế", username=channel[1:])
    run.emu.add_bot(ch.id, rights={"can_post_messages": True})
    run.chats.update(room=hub.id, channel=ch.id)
    run.channel = channel
    run.ids["thread"] = await _create_topic(run, hub.id, "Crisis 1")
    now = datetime.now(UTC)
    with run.db.session() as s:
        crisis = _crisis_in_topic(
            s,
            run,
            "Ngộ độc thực phẩm",
            "author",
            hub.id,
            run.ids["thread"],
            now - timedelta(hours=1),
        )
        assert crisis.id is not None
        draft = Draft(
            crisis_id=crisis.id,
            template="holding",
            language="vi",
            body=BODY,
            body_sha256=dr.sha256(BODY),
            status=DraftStatus.SUBMITTED,
            author_id=run.users["author"],
            submitted_at=now,
        )
        s.add(draft)
        s.flush()
        assert draft.id is not None
        run.ids.update(crisis=crisis.id, draft=draft.id)
        due.schedule(
            s,
            approval_reminders.REMIND,
            now + timedelta(minutes=30),
            ref_id=draft.id,
            dedupe_key="r",
        )
    # The approval request, as send_requests posts it (the button is what counts).
    request = await _bot_api(
        run.emu,
        "sendMessage",
        chat_id=run.people["boss"],
        text="Approval requested: draft #1 v1",
        reply_markup={
            "inline_keyboard": [[{"text": "✓ Approve", "callback_data": f"appr.ok:{draft.id}"}]]
        },
    )
    run.ids["request"] = int(request["message_id"])


def _draft_status(run: Run) -> str:
    rows = _db_one(run, select(Draft.status).where(Draft.id == run.ids["draft"]))
    return str(rows[0])


async def pub_drive(run: Run) -> None:
    boss = run.people["boss"]
    while _draft_status(run) == DraftStatus.SUBMITTED:
        message = run.emu.message(boss, run.ids["request"])
        _press_later(run, "boss", boss, message, "✓ Approve")
        await _until(lambda: _draft_status(run) != DraftStatus.SUBMITTED, 6)
    await asyncio.sleep(3600)


def _room_texts(run: Run) -> list[str]:
    return run.texts(run.chats["room"], run.ids["thread"])


def pub_done(run: Run) -> bool:
    return _draft_status(run) == DraftStatus.PUBLISHED


def pub_check(run: Run) -> list[Check]:
    room = _room_texts(run)
    channel = run.texts(run.chats["channel"])
    author = [m.text or "" for m in run.private("author")]
    doubt = _db_one(run, select(Delivery.part).where(Delivery.status == "in_doubt"))
    approvals_ = _db_one(run, select(Approval.id).where(Approval.draft_id == run.ids["draft"]))
    published = _db_one(
        run,
        select(AuditEvent.id).where(AuditEvent.action == "draft.published"),
    )
    counts = {
        "room.1": once(room, FIRST_LINE),
        "room.2": once(room, LAST_LINE),
        "room.doc1": once(room, ".docx"),
        "room.doc2": once(room, ".txt"),
        "author.1": once(author, FIRST_LINE),
        "author.2": once(author, LAST_LINE),
        "channel.1": once(channel, FIRST_LINE),
        "channel.2": once(channel, LAST_LINE),
    }
    twice = {k: v for k, v in counts.items() if v > 1}
    lost = {k: v for k, v in counts.items() if v == 0}
    reminders = _db_one(
        run,
        select(Due.kind).where(
            Due.kind == "crisis.deadline",
            Due.ref_id == run.ids["crisis"],
            col(Due.done_at).is_(None),
        ),
    )
    return [
        ("approval applied once", len(approvals_) == 1, f"{len(approvals_)} approvals"),
        (
            "published once",
            pub_done(run) and len(published) <= 1,
            f"status {_draft_status(run)}, {len(published)} draft.published events",
        ),
        ("no room message twice", not twice, f"{twice}" if twice else ""),
        ("no statement part lost", not lost, f"lost {lost}, in doubt {doubt}" if lost else ""),
        ("every reminder still due", len(reminders) == 3, f"{len(reminders)} deadline rows due"),
    ]


PUBLICATION = Scenario("publication", pub_setup, pub_drive, pub_done, pub_check)


_pub_point = partial(_call_point, PUBLICATION)


def _room(run: Run) -> int:
    return run.chats["room"]


def _author(run: Run) -> int:
    return run.people["author"]


def _channel(run: Run) -> str:
    return run.channel


def publication_points() -> list[Point]:
    return [
        _pub_point("pub.approve-answer", "answerCallbackQuery"),
        _pub_point("pub.decided-in-room", "sendMessage", text="is approved", chat=_room),
        _pub_point("pub.room.part1", "sendMessage", text="Published", chat=_room),
        _pub_point("pub.room.part2", "sendMessage", text="(2/2)", chat=_room),
        _pub_point("pub.room.docx", "sendDocument", chat=_room),
        _pub_point("pub.room.txt", "sendDocument", chat=_room, after=1),
        _pub_point("pub.author.part1", "sendMessage", text="Published", chat=_author),
        _pub_point("pub.author.part2", "sendMessage", text="(2/2)", chat=_author),
        _pub_point("pub.channel.part1", "sendMessage", text=FIRST_LINE, chat=_channel),
        _pub_point("pub.channel.part2", "sendMessage", text="(2/2)", chat=_channel),
    ]


# --------------------------------------------------------------------------- convening

INVITEES = 4
INVITATION = "You are convened"


async def conv_setup(run: Run) -> None:
    _agency(run)
    run.person("lead", "spokesperson")
    run.person("boss", "supervisor")
    for i in range(INVITEES):
        run.person(f"p{i}", "spokesperson")
    hub = run.emu.create_supergroup("Hub", forum=True, member_ids=[run.people["lead"]])
    run.emu.add_bot(hub.id, rights=BOT_RIGHTS)
    run.chats["hub"] = hub.id
    with run.db.session() as s:
        agency = s.get(Agency, run.ids["agency"])
        assert agency is not None
        agency.hub_channel, agency.hub_chat_id = "telegram", str(hub.id)


def _crises(run: Run) -> list[Crisis]:
    return list(_db_one(run, select(Crisis)))


async def conv_drive(run: Run) -> None:
    names = [f"p{i}" for i in range(INVITEES)]
    usernames = []
    for n in names:
        usernames.append(run.emu.user(run.people[n]).username)
    if not _crises(run):
        run.emu.send_text(
            run.people["lead"], "/crisis Ngộ độc ở Sao Mai " + " ".join(f"@{u}" for u in usernames)
        )
    while not _crises(run):
        await asyncio.sleep(0.1)
        if not _crises(run) and not run.ids.get("retried") and run.ids.get("restarted"):
            run.ids["retried"] = 1  # the command died with the first process: say it again
            run.emu.send_text(
                run.people["lead"],
                "/crisis Ngộ độc ở Sao Mai " + " ".join(f"@{u}" for u in usernames),
            )
    await asyncio.sleep(3600)


def _invited(run: Run) -> dict[str, int]:
    return {
        n: once([m.text or "" for m in run.private(n)], INVITATION)
        for n in ["boss", *[f"p{i}" for i in range(INVITEES)]]
    }


def conv_done(run: Run) -> bool:
    crises = _crises(run)
    if not crises or crises[0].room_thread_id is None:
        return False
    brief_in_doubt = _db_one(
        run,
        select(Delivery.id).where(
            Delivery.kind == "crisis_brief", col(Delivery.status).in_(["in_doubt", "sending"])
        ),
    )
    if crises[0].brief_message_id is None and not brief_in_doubt:
        return False
    rows = _db_one(run, select(Delivery.status).where(Delivery.kind == "crisis_invite"))
    return len(rows) == INVITEES + 1 and all(r in ("sent", "unreachable") for r in rows)


def conv_check(run: Run) -> list[Check]:
    crises = _crises(run)
    topics = run.emu.topics(run.chats["hub"])
    rooms_ = _db_one(run, select(Room.thread_id).where(Room.state == "in_use"))
    invited = _invited(run)
    lost = {k: v for k, v in invited.items() if v == 0}
    twice = {k: v for k, v in invited.items() if v > 1}
    reminders = _db_one(
        run,
        select(Due.kind).where(Due.kind == "crisis.deadline", col(Due.done_at).is_(None)),
    )
    briefs = []
    if crises and crises[0].room_thread_id:
        thread = int(crises[0].room_thread_id)
        briefs = [t for t in run.texts(run.chats["hub"], thread) if "📌" in t]
    opened = once([m.text or "" for m in run.private("lead")], "is open")
    return [
        ("one crisis", len(crises) == 1, f"{len(crises)} crises"),
        (
            # A kill while Telegram creates the topic leaves that topic empty and unknown to
            # the bot (the Bot API cannot list topics): a residual risk, shown, not failed.
            "one room",
            len(rooms_) == 1 and any(str(t.message_thread_id) == rooms_[0] for t in topics),
            f"{len(topics) - 1} empty topic left behind" if len(topics) > 1 else "",
        ),
        ("no room message twice", len(briefs) == 1, f"{len(briefs)} briefs"),
        ("every invitee invited", not lost, f"{lost}" if lost else ""),
        (
            # At-least-once by design (docs/reliability.md): the one invitation in flight at
            # the kill may be re-sent; anything more is a bug.
            "no invitation twice (but the one in flight)",
            len(twice) <= 1 and all(v == 2 for v in twice.values()),
            f"{twice}" if twice else "",
        ),
        ("lead told once", opened <= 1, f"{opened}×"),
        ("every reminder still due", len(reminders) == 3, f"{len(reminders)} deadline rows due"),
    ]


CONVENING = Scenario("convening", conv_setup, conv_drive, conv_done, conv_check)


def _conv_point(name: str, method: str, text: str | None = None, after: int = 0) -> Point:
    return _call_point(CONVENING, name, method, text=text, after=after)


def _invitations(run: Run) -> int:
    return len(run.calls("sendMessage", lambda c: INVITATION in str(c.params.get("text"))))


def convening_points() -> list[Point]:
    return [
        _conv_point("conv.topic", "createForumTopic"),
        _conv_point("conv.invite-link", "createChatInviteLink"),
        _conv_point("conv.brief", "sendMessage", "📌"),
        _conv_point("conv.pin", "pinChatMessage"),
        _conv_point("conv.lead-reply", "sendMessage", "is open"),
        *[
            _conv_point(f"conv.invitation.{k + 1}", "sendMessage", INVITATION, after=k)
            for k in range(INVITEES + 1)
        ],
        Point("conv.after-2-invitations", CONVENING, _nothing, lambda run: _invitations(run) >= 2),
    ]


# --------------------------------------------------------------------------- resolve


async def res_setup(run: Run) -> None:
    _agency(run)
    run.person("lead", "spokesperson")
    run.person("boss", "supervisor")
    run.person("boss2", "supervisor")
    hub = run.emu.create_supergroup("Hub", forum=True, member_ids=[run.people["lead"]])
    run.emu.add_bot(hub.id, rights=BOT_RIGHTS)
    run.chats["hub"] = hub.id
    thread = await _create_topic(run, hub.id, "#1 Ngộ độc ở Sao Mai")
    run.ids["thread"] = thread
    link = await _bot_api(
        run.emu, "createChatInviteLink", chat_id=hub.id, creates_join_request=True
    )
    # The room's brief, as convening posts it: resolving edits it (``res.brief-edit``).
    brief = await _bot_api(
        run.emu, "sendMessage", chat_id=hub.id, message_thread_id=thread, text="Brief #1"
    )
    now = datetime.now(UTC)
    with run.db.session() as s:
        agency = s.get(Agency, run.ids["agency"])
        assert agency is not None
        agency.hub_channel, agency.hub_chat_id = "telegram", str(hub.id)
        crisis = _crisis_in_topic(
            s, run, "Ngộ độc ở Sao Mai", "lead", hub.id, thread, now - timedelta(hours=2)
        )
        crisis.brief_message_id, crisis.invite_link = str(brief["message_id"]), link["invite_link"]
        assert crisis.id is not None
        run.ids["crisis"] = crisis.id
        s.add(
            Room(
                kind="forum_topic",
                channel="telegram",
                chat_id=str(hub.id),
                thread_id=str(thread),
                title="#1 Ngộ độc ở Sao Mai",
                state="in_use",
                invite_link=link["invite_link"],
                crisis_id=crisis.id,
            )
        )
        for name in ("lead", "boss"):
            s.add(
                CrisisMember(
                    crisis_id=crisis.id,
                    user_id=run.users[name],
                    role="lead" if name == "lead" else "member",
                    state="joined",
                )
            )


def _crisis_status(run: Run) -> str:
    return str(_db_one(run, select(Crisis.status).where(Crisis.id == run.ids["crisis"]))[0])


def _resolve_confirmations(run: Run) -> list[StoredMessage]:
    """The bot's "close this crisis?" questions in the room (/resolve asks before closing)."""
    hub, thread = run.chats["hub"], run.ids["thread"]
    return [
        m
        for m in run.emu.messages(hub, thread_id=thread, from_bot=True)
        if any(
            str(b.get("callback_data", "")).startswith(f"{resolve.RESOLVE}:") for b in m.buttons()
        )
    ]


async def res_drive(run: Run) -> None:
    hub, thread = run.chats["hub"], run.ids["thread"]
    while _crisis_status(run) != "resolved":
        asked = len(_resolve_confirmations(run))
        run.emu.send_text(run.people["lead"], "/resolve", chat_id=hub, thread_id=thread)
        await _until(partial(lambda n: len(_resolve_confirmations(run)) > n, asked), 6)
        questions = _resolve_confirmations(run)
        if len(questions) > asked:
            with contextlib.suppress(Exception):  # the bot may be dead: the press then expires
                await run.emu.press_button(
                    run.people["lead"],
                    hub,
                    questions[-1].message_id,
                    data=f"{resolve.RESOLVE}:{run.ids['crisis']}",
                    timeout=PRESS_TIMEOUT,
                )
        await _until(lambda: _crisis_status(run) == "resolved", 6)
    await asyncio.sleep(3600)


# The room's resolution summary (templates/messages/en/crisis_resolved), in its HTML as sent
# and as shown.
SUMMARY = "The after-action report (.md, .docx) follows"


def _room_parts(run: Run) -> dict[str, int]:
    room = run.texts(run.chats["hub"], run.ids["thread"])
    return {
        # Not "is resolved": the refusal "This crisis is resolved." that a /resolve or a press
        # delivered again after the restart gets has it too.
        "summary": once(room, SUMMARY),
        "md": once(room, "report.md"),
        "docx": once(room, "report.docx"),
    }


def _sup_parts(run: Run, who: str) -> dict[str, int]:
    texts = [
        m.text or m.data.get("document", {}).get("file_name", "") or "" for m in run.private(who)
    ]
    return {
        "summary": once(texts, "After-action report"),
        "md": once(texts, "report.md"),
        "docx": once(texts, "report.docx"),
    }


def _topic_closed(run: Run) -> bool:
    return not any(
        t.message_thread_id == run.ids["thread"] and not t.closed
        for t in run.emu.topics(run.chats["hub"])
    )


def res_done(run: Run) -> bool:
    if _crisis_status(run) != "resolved" or not _topic_closed(run):
        return False
    open_rows = _db_one(
        run, select(Due.id).where(Due.kind == "crisis.resolved", col(Due.done_at).is_(None))
    )
    return not open_rows


def res_check(run: Run) -> list[Check]:
    parts = {
        **{f"room.{k}": v for k, v in _room_parts(run).items()},
        **{f"boss.{k}": v for k, v in _sup_parts(run, "boss").items()},
        **{f"boss2.{k}": v for k, v in _sup_parts(run, "boss2").items()},
    }
    twice = {k: v for k, v in parts.items() if v > 1}
    lost = {k: v for k, v in parts.items() if v == 0}
    resolved = _db_one(run, select(AuditEvent.id).where(AuditEvent.action == "crisis.resolved"))
    reminders = _db_one(
        run,
        select(Due.id).where(Due.kind == "crisis.deadline", col(Due.done_at).is_(None)),
    )
    return [
        ("resolved once", len(resolved) == 1, f"{len(resolved)} crisis.resolved"),
        ("no room message twice", not twice, f"{twice}" if twice else ""),
        ("no report lost", not lost, f"{lost}" if lost else ""),
        ("room closed", _topic_closed(run), ""),
        ("no reminder after resolve", not reminders, f"{len(reminders)} deadline rows due"),
    ]


RESOLVE = Scenario("resolve", res_setup, res_drive, res_done, res_check)


def _res_point(
    name: str, method: str, text: str | None = None, chat: str | None = None, after: int = 0
) -> Point:
    def target(run: Run) -> int:
        return run.chats["hub"] if chat == "hub" else run.people[str(chat)]

    where = target if chat else None
    return _call_point(RESOLVE, name, method, text=text, chat=where, after=after)


def resolve_points() -> list[Point]:
    return [
        _res_point("res.room-summary", "sendMessage", SUMMARY),
        _res_point("res.room-md", "sendDocument", chat="hub"),
        _res_point("res.room-docx", "sendDocument", chat="hub", after=1),
        _res_point("res.brief-edit", "editMessageText"),
        _res_point("res.boss-summary", "sendMessage", "After-action report", chat="boss"),
        _res_point("res.boss-md", "sendDocument", chat="boss"),
        _res_point("res.boss2-docx", "sendDocument", chat="boss2", after=1),
        _res_point("res.close-topic", "closeForumTopic"),
        _res_point("res.revoke-link", "revokeChatInviteLink"),
    ]


# --------------------------------------------------------------------------- the runner


def all_points() -> list[Point]:
    points = [
        *alert_points(),
        *registration_points(),
        *publication_points(),
        *convening_points(),
        *resolve_points(),
    ]
    names = [p.name for p in points]
    assert len(set(names)) == len(names), Counter(names).most_common(3)
    return points


@contextlib.contextmanager
def fresh_database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    # A database of its own, not a schema: the bot's leader election is an advisory lock per
    # database, and any other process on the shared one (a test, a second bench) would hold it.
    base = sa.engine.make_url(os.environ[PG_ENV])
    name = f"crash_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database "{name}" with (force)'))
        admin.dispose()


def _spawn(run: Run, scenario: Scenario, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    env.update(
        CRISISDESK_TELEGRAM_TOKEN=run.emu.token,
        CRISISDESK_TELEGRAM_API_URL=run.emu.root_url,
        CRISISDESK_DATABASE_URL=run.url,
        CRISISDESK_DATA_DIR=str(run.data_dir),
        CRISISDESK_TICK_SECONDS="0.2",
        CRISISDESK_SCAN_INTERVAL=str(scenario.scan_interval),
        CRISISDESK_ALLOW_PRIVATE_FEEDS="true",
        # No /healthz server: its fixed port would be held by another bench or app on the
        # machine (or the other database's matrix), and the bot would exit at start.
        CRISISDESK_HTTP_PORT="0",
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], env=env, stdout=out, stderr=out
        )


async def _drive(scenario: Scenario, run: Run) -> None:
    await scenario.drive(run)


LEADER_CHECK = "0.5"  # CRISISDESK_LEADER_CHECK_SECONDS of the two workers (as tests/ops)


@dataclass
class Fleet:
    """The bot processes of one kill point: one ``crisisdesk run`` polling (the default), or
    two webhook workers behind ``bench/workers.py``'s round-robin front on one PostgreSQL
    database (``--workers 2``). With two, the kill point kills the leader — the process that
    runs the outbox, fan-out and timers, and one of the two that handle updates — while the
    other carries on and takes the lead; the killed one is then started again."""

    run: Run
    scenario: Scenario
    log: Path
    workers: int
    tag: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pool: list[Worker] = field(default_factory=list)
    killed: Worker | None = None

    def __post_init__(self) -> None:
        if self.workers > 1:
            self.pool = [
                Worker(
                    f"{self.tag}.w{i + 1}",
                    self.run.url,
                    self.run.emu,
                    self.run.data_dir,
                    tick_seconds="0.2",
                    scan_interval=str(self.scenario.scan_interval),
                    allow_private_feeds="true",
                    leader_check_seconds=LEADER_CHECK,
                )
                for i in range(self.workers)
            ]

    def start(self, front: str) -> None:
        """Start the process, or each worker not running (``front``: the webhook URL)."""
        if self.workers == 1:
            self.processes.append(_spawn(self.run, self.scenario, self.log))
            return
        for worker in self.pool:
            if worker.process is None or worker.process.poll() is not None:
                worker.start(front)

    async def kill_one(self) -> None:
        """SIGKILL the single process, or the leader of the two (the first if none leads)."""
        if self.workers == 1:
            await _kill(self.processes[-1])
            return
        leaders = [w for w in self.pool if await w.leads()]
        self.killed = leaders[0] if leaders else self.pool[0]
        await self.killed.kill()

    async def stop(self) -> None:
        for process in self.processes:
            await _kill(process)
        for worker in self.pool:
            await worker.kill()

    def logs(self) -> str:
        if not self.pool:
            return str(self.log)
        killed = f" ({self.killed.name} killed)" if self.killed else ""
        return ", ".join(str(w.log) for w in self.pool) + killed


async def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(process.wait)


async def _until(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> bool:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


@dataclass
class Result:
    point: str
    db: str
    reached: bool
    checks: list[Check]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.reached and all(held for _, held, _ in self.checks)


async def run_point(
    point: Point,
    kind: str,
    emu: TelegramEmulator,
    feeds: Feeds,
    tmp: Path,
    verbose: bool,
    workers: int = 1,
) -> Result:
    started = time.monotonic()
    scenario = point.scenario
    emu.gateway.faults.clear()
    # Updates left over from the previous point would reach this bot: drop them.
    await _bot_api(emu, "deleteWebhook", drop_pending_updates=True)
    feeds.hold.clear()
    feeds.served = 0
    with fresh_database(kind, tmp) as url:
        upgrade(url)
        db = Database.from_url(url)
        run = Run(emu, feeds, db, url, tmp, calls_at_start=len(emu.calls))
        log = tmp / f"{point.name}.{kind}.log"
        try:
            await scenario.setup(run)
            if verbose:
                print(
                    f"  {point.name}: set up in {time.monotonic() - started:.1f} s", file=sys.stderr
                )
            point.arm(run)
            fleet = Fleet(run, scenario, log, workers, f"{point.name}.{kind}")
            async with _front(fleet) as front:
                driver: asyncio.Task[None] = asyncio.create_task(_drive(scenario, run))
                try:
                    fleet.start(front)
                    reached = await _until(lambda: point.fired(run), BUDGET)
                    phases = [time.monotonic() - started]
                    await fleet.kill_one()
                    if workers == 1:  # the people wait for the restart; with two, one serves
                        driver.cancel()
                        await asyncio.gather(driver, return_exceptions=True)
                    emu.gateway.faults.clear()
                    await _until(lambda: not emu.held and not feeds.holding, 10)
                    run.ids["restarted"] = 1
                    phases.append(time.monotonic() - started)
                    fleet.start(front)
                    if workers == 1:
                        driver = asyncio.create_task(_drive(scenario, run))
                    finished = await _until(lambda: scenario.done(run), BUDGET, step=0.2)
                    phases.append(time.monotonic() - started)
                    await asyncio.sleep(1.0)  # time for a double to show up
                finally:
                    await fleet.stop()
                    driver.cancel()
                    await asyncio.gather(driver, return_exceptions=True)
            checks = scenario.check(run)
            if not finished:
                checks.append(("finished after the restart", False, "timed out"))
        finally:
            db.dispose()
    label = kind if workers == 1 else f"{kind}×{workers}"
    result = Result(point.name, label, reached, checks, time.monotonic() - started)
    if verbose or not result.ok:
        marks = ", ".join(f"{t:.1f}" for t in phases)
        print(
            f"  {point.name} [{kind}]: kill, restart, done at {marks} s; log {fleet.logs()}",
            file=sys.stderr,
        )
    return result


@contextlib.asynccontextmanager
async def _front(fleet: Fleet) -> AsyncIterator[str]:
    """The round-robin front of two workers (its webhook URL); nothing for one process."""
    if fleet.workers == 1:
        yield ""
        return
    async with serve_front(Front([w.hook_port for w in fleet.pool])) as url:
        yield url


async def matrix(
    kinds: list[str], points: list[Point], verbose: bool, workers: int = 1
) -> list[Result]:
    wire()  # the set-ups schedule due rows, as the app that is killed would
    feeds = Feeds()
    app = web.Application()
    app.router.add_get("/{prefix}/rss/{index}", feeds.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    feeds.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    results: list[Result] = []
    try:
        tmp = Path(tempfile.mkdtemp(prefix="crash-matrix-"))
        async with TelegramEmulator(flood_limits=False) as emu:
            for kind in kinds:
                for point in points:
                    result = await run_point(point, kind, emu, feeds, tmp, verbose, workers)
                    results.append(result)
                    _print_row(result)
    finally:
        await runner.cleanup()
    if all(r.ok for r in results) and not verbose:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"bot logs kept in {tmp}", file=sys.stderr)
    return results


def _print_row(result: Result) -> None:
    held = sum(1 for _, ok, _ in result.checks if ok)
    broken = [f"{name}: {detail}" for name, ok, detail in result.checks if not ok]
    status = "ok" if result.ok else ("NOT REACHED" if not result.reached else "BROKEN")
    print(
        f"{result.db:<10} {result.point:<28} {status:<11} {held}/{len(result.checks)} held"
        f"  {result.seconds:5.1f} s  {'; '.join(broken)}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--points", type=int, default=0, help="only the first N kill points")
    parser.add_argument("--only", action="append", default=[], help="kill points by name prefix")
    parser.add_argument("--list", action="store_true", help="list the kill points and exit")
    parser.add_argument("--verbose", action="store_true", help="name every run's bot log")
    parser.add_argument(
        "--workers",
        type=int,
        choices=[1, 2],
        default=1,
        help="2: two webhook workers behind a round-robin front, the leader killed (PostgreSQL)",
    )
    args = parser.parse_args(argv)
    points = all_points()
    if args.only:
        points = [p for p in points if any(p.name.startswith(o) for o in args.only)]
    if args.points:
        points = points[: args.points]
    if args.list:
        for p in points:
            print(f"{p.scenario.name:<13} {p.name}")
        return 0
    if not points:
        print("no kill point matches", file=sys.stderr)
        return 2
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in kinds and not os.environ.get(PG_ENV):
        print(f"--db postgres needs {PG_ENV} (a PostgreSQL URL)", file=sys.stderr)
        return 2
    print(f"{'database':<10} {'kill point':<28} {'status':<11} invariants")
    if args.workers > 1 and kinds != ["postgres"]:
        print("--workers 2 needs --db postgres (the workers' leader lock)", file=sys.stderr)
        return 2
    results = asyncio.run(matrix(kinds, points, args.verbose, args.workers))
    for kind in sorted({r.db for r in results}, key=[r.db for r in results].index):
        mine = [r for r in results if r.db == kind]
        checks = [c for r in mine for c in r.checks]
        print(
            f"{kind}: {len(mine)} kill points, {sum(r.reached for r in mine)} reached; "
            f"{sum(1 for c in checks if c[1])}/{len(checks)} invariant checks held; "
            f"{sum(r.ok for r in mine)}/{len(mine)} points clean; "
            f"{sum(r.seconds for r in mine):.0f} s"
        )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
