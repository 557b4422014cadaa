"""Two ``crisisdesk run`` webhook workers on one PostgreSQL, behind a round-robin front.

The real processes, the real Bot API emulator (flood limits on) and a small aiohttp proxy on
loopback that hands each update to the next worker and then *also* to the other one (the way
Telegram re-delivers an update whose answer was slow), so every update reaches both workers.
People register, an alert fans out to 40 spokespeople, a supervisor approves a statement; the
leader is SIGKILLed in the middle of the fan-out. Checked: nothing lost, nothing twice, never two
leaders, and the other worker took over within the configured leader check.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alert_desk import burst_alert
from sqlmodel import col, func, select

from bench.workers import Front, Worker, serve_front
from bot.channels.telegram.notifier import person_ref
from bot.sandbox.personas import BOT_RIGHTS
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.limits import COUNTED_METHODS, GLOBAL_MAX, GLOBAL_WINDOW
from bot.services import drafts as dr
from bot.services import identity
from bot.services.alerts import plan_delivery
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Agency,
    Approval,
    AuditEvent,
    ChannelIdentity,
    ConversationState,
    Crisis,
    Delivery,
    Draft,
    DraftStatus,
    ReceivedUpdate,
    Subscription,
    Topic,
    User,
)

PEOPLE = 40  # two messages each (chart, text): about 3 s of fan-out at Telegram's 30/s
LEADER_CHECK = 0.5  # CRISISDESK_LEADER_CHECK_SECONDS of both workers
TAKEOVER_SLACK = 2.0
# Sends the leader can have claimed and not settled at once: the bulk gate's four places and
# the requests that left it (a bound, not a target).
IN_FLIGHT = 8  # a loaded 2-core CI machine: scheduling, not design
pytestmark = [pytest.mark.slow, pytest.mark.postgres]
TOPIC = "An toàn thực phẩm"
FIRST_LINE = "Thông cáo của Bộ Y tế về vụ ngộ độc."
BODY = f"{FIRST_LINE}\nĐoàn công tác đã đến trường; các em đã ổn định.\nHết thông cáo."


def leader_since(worker: Worker) -> datetime:
    """When the worker last logged that it became the leader."""
    lines = worker.log.read_text(encoding="utf-8", errors="replace").splitlines()
    line = [x for x in lines if "this process is now the leader" in x][-1]
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


async def leaders_now(workers: list[Worker]) -> list[Worker]:
    return [w for w in workers if await w.leads()]


async def sample_leaders(workers: list[Worker], out: list[int]) -> None:
    """Records how many workers say they lead, every 0.2 s, until cancelled."""
    while True:
        out.append(len(await leaders_now(workers)))
        await asyncio.sleep(0.2)


async def until(predicate: Callable[[], Any], timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await _value(predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def _value(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


class World:
    """The database and the chats the scenario works with."""

    def __init__(self, emulator: TelegramEmulator, db: Database) -> None:
        self.emu, self.db = emulator, db
        self.tg: dict[str, int] = {}
        self.ids: dict[str, int] = {}

    def person(self, name: str, role: str | None) -> int:
        user = self.emu.create_user(name.title(), username=f"{name}_{uuid.uuid4().hex[:6]}")
        user.language_code = "en"
        user.started = True
        self.emu.world.private_chat(user)
        self.tg[name] = user.id
        if role is not None:
            with self.db.session() as s:
                row = identity.add_person(
                    s,
                    person_ref(user.id),
                    User(
                        username=user.username,
                        full_name=name.title(),
                        agency_id=self.ids["agency"],
                        role=role,
                        status="active",
                        language="en",
                    ),
                )
                assert row.id is not None
                self.ids[name] = row.id
        return user.id

    def one(self, statement: Any) -> Any:
        with self.db.session() as s:
            return s.exec(statement).first()

    def private(self, name: str) -> list[Any]:
        return self.emu.messages(self.tg[name], from_bot=True)

    def told(self, name: str, needle: str) -> int:
        return sum(1 for m in self.private(name) if needle in (m.text or ""))


async def _bot_api(emu: TelegramEmulator, method: str, **params: Any) -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{emu.bot_url}{emu.token}/{method}", json=params)
    return answer.json()["result"]


async def set_up(world: World) -> None:
    """An agency with a public channel, a forum hub with a crisis and a submitted draft, a
    supervisor holding its approval request, 40 subscribed spokespeople and one newcomer."""
    emu = world.emu
    channel = f"@byt{uuid.uuid4().hex[:8]}"
    with world.db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế", owner="chat", public_channel=channel)
        s.add(agency)
        s.flush()
        assert agency.id is not None
        topic = Topic(agency_id=agency.id, name=TOPIC, query='"ngộ độc"', owner="chat")
        s.add(topic)
        s.flush()
        assert topic.id is not None
        world.ids.update(agency=agency.id, topic=topic.id)
    world.person("boss", "supervisor")
    world.person("author", "spokesperson")
    world.person("newbie", None)
    for i in range(PEOPLE):
        world.person(f"s{i}", "spokesperson")
    with world.db.session() as s:
        for i in range(PEOPLE):
            s.add(Subscription(user_id=world.ids[f"s{i}"], topic_id=world.ids["topic"]))
    hub = emu.create_supergroup(
        "Hub", forum=True, member_ids=[world.tg["author"], world.tg["boss"]]
    )
    emu.add_bot(hub.id, rights=BOT_RIGHTS)
    public = emu.create_channel("Bộ Y tế", username=channel[1:])
    emu.add_bot(public.id, rights={"can_post_messages": True})
    thread = (await _bot_api(emu, "createForumTopic", chat_id=hub.id, name="Crisis 1"))[
        "message_thread_id"
    ]
    now = datetime.now(UTC)
    with world.db.session() as s:
        author = s.get(User, world.ids["author"])
        assert author is not None
        crisis = Crisis(
            agency_id=world.ids["agency"],
            title="Ngộ độc thực phẩm",
            lead_id=author.id,
            room_channel="telegram",
            room_chat_id=str(hub.id),
            room_thread_id=str(thread),
            detected_at=now - timedelta(hours=1),
            deadline_at=now + timedelta(hours=23),
        )
        s.add(crisis)
        s.flush()
        assert crisis.id is not None
        draft = Draft(
            crisis_id=crisis.id,
            template="holding",
            language="vi",
            body=BODY,
            body_sha256=dr.sha256(BODY),
            status=DraftStatus.SUBMITTED,
            author_id=author.id,
            submitted_at=now,
        )
        s.add(draft)
        s.flush()
        assert draft.id is not None
        world.ids.update(draft=draft.id, channel=public.id)
    request = await _bot_api(
        emu,
        "sendMessage",
        chat_id=world.tg["boss"],
        text="Approval requested: draft #1 v1",
        reply_markup={
            "inline_keyboard": [
                [{"text": "✓ Approve", "callback_data": f"appr.ok:{world.ids['draft']}"}]
            ]
        },
    )
    world.ids["request"] = int(request["message_id"])


def raise_alert(world: World) -> None:
    now = datetime.now(UTC)
    with world.db.session() as s:
        alert = burst_alert(world.ids["topic"], now, "two-workers")
        s.add(alert)
        s.flush()
        planned = plan_delivery(s, alert, now, escalate_after=timedelta(minutes=15))
        assert planned == 2 * PEOPLE


def registration_step(world: World) -> str:
    step = world.one(
        select(ConversationState.step).where(
            ConversationState.user_ref == f"tg:{world.tg['newbie']}",
            ConversationState.flow == "register",
        )
    )
    if step is not None:
        return str(step)
    with world.db.session() as s:
        user = identity.person_for(s, person_ref(world.tg["newbie"]))
    return f"user:{user.status}" if user else "none"


async def press(world: World, who: str, message: Any, label: str) -> None:
    """A press whose update reached a worker that died is never answered: people press again."""
    with contextlib.suppress(TimeoutError):
        await world.emu.press_button(
            world.tg[who], world.tg[who], message.message_id, text=label, timeout=3
        )


def registration_requests(world: World) -> list[Any]:
    return [
        m
        for m in world.private("boss")
        if m.buttons() and "New registration request" in (m.text or "")
    ]


async def register(world: World) -> None:
    """The newcomer answers what the bot last asked; the supervisor approves. A step is done
    again only when nothing changed for a while (its update went to the killed worker); a
    question that never came is asked for again with /start."""
    emu, tg = world.emu, world.tg["newbie"]
    while (step := registration_step(world)) != "user:active":
        messages = world.private("newbie")
        last = messages[-1] if messages else None
        if step == "none":
            emu.send_text(tg, "/start")
        elif step == "language" and last and last.buttons():
            await press(world, "newbie", last, "English")
        elif step == "name":
            emu.send_text(tg, "Nguyễn Văn An")
        elif step in ("agency", "role") and last and last.buttons():
            await press(world, "newbie", last, str(last.buttons()[0]["text"]))
        elif step == "phone":
            emu.send_contact(tg, "+84 912 345 678")
        elif step == "user:pending" and (asks := registration_requests(world)):
            await press(world, "boss", asks[-1], "✓ Approve")
        elif step != "user:pending":
            # The question never came (the worker that took the answer died): ask again.
            emu.send_text(tg, "/start")
        with contextlib.suppress(AssertionError):
            await until(lambda s=step: registration_step(world) != s, 4, "a registration step")


async def approve(world: World) -> None:
    message = world.emu.message(world.tg["boss"], world.ids["request"])
    while world.one(select(Draft.status).where(Draft.id == world.ids["draft"])) == "submitted":
        await press(world, "boss", message, "✓ Approve")
        with contextlib.suppress(AssertionError):
            await until(
                lambda: (
                    world.one(select(Draft.status).where(Draft.id == world.ids["draft"]))
                    != "submitted"
                ),
                4,
                "the approval",
            )


def alert_sends(emu: TelegramEmulator, spokespeople: set[str]) -> int:
    return sum(
        1
        for c in emu.calls
        if c.method in ("sendPhoto", "sendMessage")
        and c.status == 200
        and str(c.params.get("chat_id")) in spokespeople
    )


def overall_refusals(emulator: TelegramEmulator) -> list[str]:
    """429s refused for the bot's overall window: 30 counted sends in the second before."""
    sent = [c for c in emulator.calls if c.status == 200 and c.method.lower() in COUNTED_METHODS]
    refusals = []
    for refused in (c for c in emulator.calls if c.status == 429):
        window = [c for c in sent if refused.time - GLOBAL_WINDOW < c.time <= refused.time]
        if len(window) >= GLOBAL_MAX:
            refusals.append(f"{refused.method} after {len(window)} sends in a second")
    return refusals


async def test_two_workers_share_the_work_and_survive_the_leaders_death(
    emulator: TelegramEmulator, pg_schema_url: str, tmp_path: Path
) -> None:
    upgrade(pg_schema_url)
    db = Database.from_url(pg_schema_url)
    world = World(emulator, db)
    workers: list[Worker] = []
    driving: asyncio.Future[Any] | None = None
    try:
        await set_up(world)
        emulator.set_flood_limits(True)
        workers = [
            Worker(
                name,
                pg_schema_url,
                emulator,
                tmp_path,
                tick_seconds="0.5",
                leader_check_seconds=str(LEADER_CHECK),
            )
            for name in ("w1", "w2")
        ]
        front = Front([w.hook_port for w in workers], redeliver=True)
        async with serve_front(front) as front_url:
            for worker in workers:
                worker.start(front_url)
            await asyncio.gather(*(worker.ready() for worker in workers))
            await until(lambda: leaders_now(workers), 10, "a leader")
            leaders = await leaders_now(workers)
            assert len(leaders) == 1, "exactly one leader"
            leader = leaders[0]
            survivor = next(w for w in workers if w is not leader)
            most_leaders: list[int] = []
            sampling = asyncio.ensure_future(sample_leaders(workers, most_leaders))

            raise_alert(world)
            people = {str(world.tg[f"s{i}"]) for i in range(PEOPLE)}
            driving = asyncio.gather(register(world), approve(world))
            await until(lambda: alert_sends(emulator, people) >= PEOPLE // 2, 20, "fan-out")
            killed_at = datetime.now()  # the workers' log lines are in local time
            await leader.kill()
            sent_before = alert_sends(emulator, people)
            assert sent_before < 2 * PEOPLE, "the kill must land mid fan-out"
            await until(survivor.leads, 10, "the survivor leads")
            took_over = (leader_since(survivor) - killed_at).total_seconds()
            print(f"the survivor led {took_over:.2f} s after the kill")  # shown with -s

            await asyncio.wait_for(driving, 40)
            sampling.cancel()
            with db.session() as s:

                def pending() -> int:
                    return s.exec(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.status == "pending")
                    ).one()

                await until(lambda: not pending(), 20, "the fan-out finishes")
                await until(
                    lambda: world.told("newbie", "has been approved") >= 1, 10, "newbie told"
                )
                await until(
                    lambda: (
                        world.one(select(Draft.status).where(Draft.id == world.ids["draft"]))
                        == DraftStatus.PUBLISHED
                    ),
                    10,
                    "the statement published",
                )
                await asyncio.sleep(1.0)  # anything sent twice would arrive by now
                approvals_ = s.exec(select(Approval.id)).all()
                published = s.exec(
                    select(AuditEvent.id).where(AuditEvent.action == "draft.published")
                ).all()
                decided = s.exec(
                    select(AuditEvent.id).where(AuditEvent.action == "user.approved")
                ).all()
                claimed = set(s.exec(select(ReceivedUpdate.update_id)).all())
                rows = s.exec(
                    select(ChannelIdentity.external_id, Delivery.part, Delivery.status)
                    .join(ChannelIdentity, col(ChannelIdentity.user_id) == Delivery.user_id)
                    .where(Delivery.kind == "alert", ChannelIdentity.channel == "telegram")
                ).all()
    finally:
        if driving is not None and not driving.done():
            driving.cancel()
            await asyncio.gather(driving, return_exceptions=True)
        for worker in workers:
            await worker.kill()
        db.dispose()

    # Never two leaders; the other worker took over within its configured leader check (from
    # the kill to its log line; the slack is for a loaded machine's scheduling).
    assert most_leaders and max(most_leaders) == 1, most_leaders
    assert took_over <= LEADER_CHECK + TAKEOVER_SLACK, took_over
    # Every update reached both workers; each was claimed once (ids are unique by key).
    emitted = {u["update_id"] for u in emulator.updates}
    assert emitted <= claimed, emitted - claimed
    # Nothing twice, nothing lost silently: every spokesperson has each part at most once;
    # every part recorded as sent arrived; a part that did not arrive is one the killed leader
    # had claimed and may have sent (uncertain: never sent again, as with a lost answer).
    ledger = {(int(tg or 0), part.split(":")[0]): status for tg, part, status in rows}
    assert len(ledger) == 2 * PEOPLE
    assert set(ledger.values()) <= {"sent", "uncertain"}, ledger
    for i in range(PEOPLE):
        tg = world.tg[f"s{i}"]
        received = [
            m
            for m in world.private(f"s{i}")
            if "photo" in m.data or TOPIC in m.data.get("text", "")
        ]
        for part in ("photo", "text"):
            copies = sum(1 for m in received if ("photo" in m.data) == (part == "photo"))
            assert copies <= 1, (i, part, copies)
            assert copies == 1 or ledger[(tg, part)] == "uncertain", (i, part, ledger[(tg, part)])
    in_doubt = sum(1 for status in ledger.values() if status == "uncertain")
    assert in_doubt <= IN_FLIGHT, in_doubt  # only what was on its way at the kill
    # The registration and the approval: applied once, told once.
    assert len(decided) == 1 and world.told("newbie", "has been approved") == 1
    assert len(approvals_) == 1 and len(published) == 1
    channel = [m.text or "" for m in emulator.messages(world.ids["channel"], from_bot=True)]
    assert sum(FIRST_LINE in t for t in channel) == 1, channel
    # The shared budget kept the bot's overall limit for both workers together. Each worker
    # keeps Telegram's window on its own sends (counted until answered: none of its own can make
    # a 31st), but it cannot see the other's: slots of 1/29.5 s and a late send kept only within
    # 10 ms of its slot while the other worker is sending leave ~7 ms for requests bunched on
    # the way, so on a loaded machine a send may still be refused once, then retried (0 in each
    # of three runs on 2026-12-07). Two workers each pacing only themselves would send up to 59
    # a second. (A person's own window is kept per worker: two workers answering one person in
    # one second may meet a 429 too.)
    assert len(overall_refusals(emulator)) <= 3, overall_refusals(emulator)
