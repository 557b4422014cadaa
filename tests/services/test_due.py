"""Due rows and the tick: fire when due, once, surviving restarts; retry with backoff on failure."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.channels.base import Attachment, Buttons, RecipientUnreachable, SentMessage
from bot.channels.refs import ChatRef, MessageRef
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.runtime import Runtime
from bot.services import due as due_service
from bot.services import identity
from bot.services.due import due_handler, fire_due, schedule
from bot.services.notify import notify_payload
from bot.templating import Renderer
from storage.db import Database
from storage.models import AuditEvent, Due, User


class RecordingNotifier:
    """An in-process Notifier for service unit tests (end-to-end tests use the emulator).

    It stands in for Telegram: people are added with Telegram accounts (``person_ref``)."""

    channel = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.unreachable: set[int] = set()

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        if int(to.chat_id) in self.unreachable:
            raise RecipientUnreachable("Forbidden: bot was blocked by the user")
        self.sent.append((int(to.chat_id), text))
        return SentMessage(to, str(len(self.sent)))

    def link_to(self, chat: ChatRef) -> str | None:
        return None

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        raise NotImplementedError

    async def send_document(
        self, to: ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        raise NotImplementedError

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        raise NotImplementedError

    async def pin(self, message: MessageRef) -> None:
        raise NotImplementedError


@pytest.fixture
def runtime(db: Database, clock: SimulatedClock, make_settings: Any) -> Runtime:
    return Runtime(make_settings(), db, clock, Renderer(), RecordingNotifier())


def add_user(db: Database, telegram_id: int = 100) -> int:
    with db.session() as s:
        user = User(full_name="Nguyễn Văn A", language="en", status="active")
        identity.add_person(s, person_ref(telegram_id), user)
        s.flush()
        assert user.id is not None
        return user.id


async def test_notify_fires_once_when_due(runtime: Runtime, clock: SimulatedClock) -> None:
    user_id = add_user(runtime.db)
    with runtime.db.session() as s:
        schedule(
            s,
            "notify",
            clock.now() + timedelta(minutes=10),
            payload=notify_payload(user_id, "reminder", text="call the editor"),
        )
    assert await fire_due(runtime) == 0
    clock.advance(timedelta(minutes=10))
    assert await fire_due(runtime) == 1
    assert await fire_due(runtime) == 0
    notifier = runtime.notifier
    assert isinstance(notifier, RecordingNotifier)
    assert notifier.sent == [(100, "⏰ <b>Reminder</b>: call the editor")]


async def test_rows_survive_a_new_runtime(
    runtime: Runtime, clock: SimulatedClock, db: Database, make_settings: Any
) -> None:
    user_id = add_user(db)
    with db.session() as s:
        schedule(
            s,
            "notify",
            clock.now() + timedelta(hours=1),
            payload=notify_payload(user_id, "reminder", text="x"),
        )
    # "Restart": nothing in memory is shared with the next runtime except the database.
    fresh = Runtime(
        make_settings(),
        Database.from_url(str(db.engine.url.render_as_string(hide_password=False))),
        SimulatedClock(clock.now() + timedelta(hours=2)),
        Renderer(),
        RecordingNotifier(),
    )
    try:
        assert await fire_due(fresh) == 1
    finally:
        fresh.db.dispose()


async def test_dedupe_key_schedules_once(runtime: Runtime, clock: SimulatedClock) -> None:
    user_id = add_user(runtime.db)
    with runtime.db.session() as s:
        first = schedule(
            s,
            "notify",
            clock.now(),
            payload=notify_payload(user_id, "reminder", text="a"),
            dedupe_key="k:1",
        )
        second = schedule(
            s,
            "notify",
            clock.now(),
            payload=notify_payload(user_id, "reminder", text="a"),
            dedupe_key="k:1",
        )
    assert first is not None and second is None
    with runtime.db.session() as s:
        assert len(s.exec(select(Due)).all()) == 1


FLAKY_CALLS: list[int] = []


@pytest.fixture(autouse=True)
def test_kinds() -> None:
    """The test's own due kinds, installed the way bot.wiring installs the services'."""
    due_service.install(sys.modules[__name__])


@due_handler("test.flaky")
async def flaky(_rt: Runtime, session: Session, row: Due) -> None:
    FLAKY_CALLS.append(row.attempts)
    identity.add_person(session, person_ref(999), User(full_name="partial"))  # must be rolled back
    session.flush()
    raise RuntimeError("downstream down")


async def test_failures_back_off_then_give_up(runtime: Runtime, clock: SimulatedClock) -> None:
    calls = FLAKY_CALLS
    calls.clear()
    with runtime.db.session() as s:
        schedule(s, "test.flaky", clock.now())
    for _ in range(due_service.MAX_ATTEMPTS):
        await fire_due(runtime)
        clock.advance(timedelta(hours=1))
    await fire_due(runtime)
    assert len(calls) == due_service.MAX_ATTEMPTS
    with runtime.db.session() as s:
        row = s.exec(select(Due)).one()
        assert row.done_at is not None and row.attempts == due_service.MAX_ATTEMPTS
        assert "downstream down" in (row.last_error or "")
        assert identity.person_for(s, person_ref(999)) is None


async def test_blocked_person_is_marked_unreachable(
    runtime: Runtime, clock: SimulatedClock
) -> None:
    user_id = add_user(runtime.db, telegram_id=555)
    notifier = runtime.notifier
    assert isinstance(notifier, RecordingNotifier)
    notifier.unreachable.add(555)
    with runtime.db.session() as s:
        schedule(s, "notify", clock.now(), payload=notify_payload(user_id, "reminder", text="x"))
    assert await fire_due(runtime) == 1
    with runtime.db.session() as s:
        user = s.get(User, user_id)
        assert user is not None and user.reachable is False
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "user.unreachable")).one()


def test_unknown_kind_cannot_be_scheduled(runtime: Runtime, clock: SimulatedClock) -> None:
    with pytest.raises(ValueError, match="no due handler"), runtime.db.session() as s:
        schedule(s, "nope", clock.now())


CONCURRENT_WRITES: list[str] = []


@due_handler("test.await_then_write")
async def await_then_write(rt: Runtime, session: Session, row: Due) -> None:
    """Read, wait on the network while someone else commits, then write (the common shape of
    a reminder: look the person up, send, record)."""
    assert session.get(User, row.payload["user_id"]) is not None
    with rt.db.session() as other:  # e.g. a button handler committing meanwhile
        identity.add_person(other, person_ref(4242), User(full_name="committed meanwhile"))
    await asyncio.sleep(0)
    user = session.get(User, row.payload["user_id"])
    assert user is not None
    user.full_name = "written after the await"
    CONCURRENT_WRITES.append("done")


async def test_handler_may_write_after_others_committed(
    runtime: Runtime, clock: SimulatedClock
) -> None:
    """On SQLite a transaction opened before the await would pin a stale snapshot and the final
    write would fail with "database is locked"; the tick must not open one early."""
    user_id = add_user(runtime.db)
    with runtime.db.session() as s:
        schedule(s, "test.await_then_write", clock.now(), payload={"user_id": user_id})
    assert await fire_due(runtime) == 1
    with runtime.db.session() as s:
        user = s.get(User, user_id)
        assert user is not None and user.full_name == "written after the await"
        assert identity.person_for(s, person_ref(4242)) is not None
