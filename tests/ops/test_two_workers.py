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
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web
from sqlmodel import col, func, select

from bot.sandbox.personas import BOT_RIGHTS
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import drafts as dr
from bot.services.alerts import plan_delivery
from bot.webhook import SECRET_HEADER
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Agency,
    Alert,
    AlertKind,
    Approval,
    AuditEvent,
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
TAKEOVER_SLACK = 2.0  # a loaded 2-core CI machine: scheduling, not design
SECRET = "two-workers-secret"
TOPIC = "An toàn thực phẩm"
FIRST_LINE = "Thông cáo của Bộ Y tế về vụ ngộ độc."
BODY = f"{FIRST_LINE}\nĐoàn công tác đã đến trường; các em đã ổn định.\nHết thông cáo."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Front:
    """Round robin over the workers, skipping a dead one; each update then goes to the other
    worker too, so the workers' update claims decide who handles it."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.turn = 0
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, port: int, body: bytes, secret: str) -> int:
        assert self._session is not None
        async with self._session.post(
            f"http://127.0.0.1:{port}/hook", data=body, headers={SECRET_HEADER: secret}
        ) as answer:
            return answer.status

    async def handle(self, request: web.Request) -> web.Response:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        body, secret = await request.read(), request.headers.get(SECRET_HEADER, "")
        self.turn += 1
        order = self.ports[self.turn % 2 :] + self.ports[: self.turn % 2]
        status = 502
        for i, port in enumerate(order):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                status = await self._post(port, body, secret)
                if status == 200:
                    for other in order[i + 1 :] + order[:i]:  # the re-delivery
                        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                            await self._post(other, body, secret)
                    break
        return web.Response(status=status)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


@contextlib.asynccontextmanager
async def serve_front(front: Front) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", front.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await front.close()
        await runner.cleanup()


class Worker:
    def __init__(self, name: str, url: str, emulator: TelegramEmulator, tmp: Path) -> None:
        self.name = name
        self.hook_port, self.http_port = _free_port(), _free_port()
        self.log = tmp / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
        self.env.update(
            CRISISDESK_TELEGRAM_TOKEN=emulator.token,
            CRISISDESK_TELEGRAM_API_URL=emulator.root_url,
            CRISISDESK_DATABASE_URL=url,
            CRISISDESK_DATA_DIR=str(tmp / name),
            CRISISDESK_TICK_SECONDS="0.5",
            CRISISDESK_LEADER_CHECK_SECONDS=str(LEADER_CHECK),
            CRISISDESK_SCAN_INTERVAL="3600",
            CRISISDESK_WEBHOOK_SECRET=SECRET,
            CRISISDESK_WEBHOOK_LISTEN="127.0.0.1",
            CRISISDESK_WEBHOOK_PORT=str(self.hook_port),
            CRISISDESK_HTTP_PORT=str(self.http_port),
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, front_url: str) -> None:
        self.env["CRISISDESK_WEBHOOK_URL"] = front_url
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"], env=self.env, stdout=out, stderr=out
            )

    async def health(self) -> dict[str, Any] | None:
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                answer = await client.get(f"http://127.0.0.1:{self.http_port}/healthz")
            body: dict[str, Any] = answer.json()
            return body
        except (httpx.HTTPError, ValueError):
            return None

    async def leads(self) -> bool:
        health = await self.health()
        return bool(health and health.get("leader"))

    async def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.process.wait)


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
                s.add(
                    User(
                        telegram_id=user.id,
                        username=user.username,
                        full_name=name.title(),
                        agency_id=self.ids["agency"],
                        role=role,
                        status="active",
                        language="en",
                    )
                )
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
            user = s.exec(select(User).where(User.telegram_id == world.tg[f"s{i}"])).one()
            s.add(Subscription(user_id=user.id, topic_id=world.ids["topic"]))
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
        author = s.exec(select(User).where(User.telegram_id == world.tg["author"])).one()
        crisis = Crisis(
            agency_id=world.ids["agency"],
            title="Ngộ độc thực phẩm",
            lead_id=author.id,
            room_chat_id=hub.id,
            room_thread_id=thread,
            detected_at=now - timedelta(hours=1),
            deadline_at=now + timedelta(hours=23),
        )
        s.add(crisis)
        s.flush()
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
        alert = Alert(
            topic_id=world.ids["topic"],
            kind=AlertKind.VOLUME_BURST,
            severity="warning",
            dedupe_key="two-workers",
            window_start=now - timedelta(minutes=15),
            window_end=now,
            created_at=now,
            updated_at=now,
        )
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
    user = world.one(select(User).where(User.telegram_id == world.tg["newbie"]))
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
    again only when nothing changed for a while (its update went to the killed worker)."""
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


def diagnose_429(emulator: TelegramEmulator, refused: Any) -> str:
    counted = ("sendMessage", "sendPhoto", "sendDocument", "editMessageText")
    sent = [c for c in emulator.calls if c.status == 200 and c.method in counted]
    window = [c for c in sent if refused.time - 1 < c.time <= refused.time]
    chat = [c for c in sent if str(c.params.get("chat_id")) == str(refused.params.get("chat_id"))]
    recent = [round(refused.time - c.time, 2) for c in chat if c.time <= refused.time][-4:]
    return f"{refused.method} to {refused.params.get('chat_id')}: {len(window)} in the last s; chat {recent}"


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
        workers = [Worker(n, pg_schema_url, emulator, tmp_path) for n in ("w1", "w2")]
        front = Front([w.hook_port for w in workers])
        async with serve_front(front) as front_url:
            for worker in workers:
                worker.start(front_url)
            for worker in workers:
                await until(worker.health, 60, f"{worker.name} serves /healthz")
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
            await leader.kill()
            killed_at = time.monotonic()
            sent_before = alert_sends(emulator, people)
            assert sent_before < 2 * PEOPLE, "the kill must land mid fan-out"
            await until(survivor.leads, 10, "the survivor leads")
            took_over = time.monotonic() - killed_at

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
                statuses = s.exec(select(Delivery.status, func.count()).group_by(Delivery.status))
                ledger = dict(statuses.all())
                uncertain = s.exec(
                    select(Delivery.user_id).where(col(Delivery.status) != "sent")
                ).all()
    finally:
        if driving is not None and not driving.done():
            driving.cancel()
            await asyncio.gather(driving, return_exceptions=True)
        for worker in workers:
            await worker.kill()
        db.dispose()

    # Never two leaders; the other worker took over within its configured leader check.
    assert most_leaders and max(most_leaders) == 1, most_leaders
    assert took_over <= LEADER_CHECK + TAKEOVER_SLACK, took_over
    # Every update reached both workers; each was claimed once (ids are unique by key).
    emitted = {u["update_id"] for u in emulator.updates}
    assert emitted <= claimed, emitted - claimed
    # Nothing lost, nothing twice: every spokesperson has the chart and the text exactly once.
    for i in range(PEOPLE):
        received = [
            m
            for m in world.private(f"s{i}")
            if "photo" in m.data or TOPIC in m.data.get("text", "")
        ]
        kinds = sorted("photo" if "photo" in m.data else "text" for m in received)
        assert kinds == ["photo", "text"], (i, kinds, ledger, uncertain)
    # The registration and the approval: applied once, told once.
    assert len(decided) == 1 and world.told("newbie", "has been approved") == 1
    assert len(approvals_) == 1 and len(published) == 1
    channel = [m.text or "" for m in emulator.messages(world.ids["channel"], from_bot=True)]
    assert sum(FIRST_LINE in t for t in channel) == 1, channel
    # The shared budget kept Telegram's overall limit: no 429 for the whole deployment.
    assert not [diagnose_429(emulator, c) for c in emulator.calls if c.status == 429]
