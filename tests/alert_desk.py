"""A small agency desk for the alert tests: people, a topic, a local feed server, the app.

Imported by tests/alerts/conftest.py (fixtures) and by the alert tests and benches (helpers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from emulator_fixtures import running_app, serving
from sqlmodel import select
from telegram.ext import Application

from bot.app import DELIVER_JOB_ID, SCAN_JOB_ID, TICK_JOB_ID, build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.sandbox.telegram_emulator.state import User as EmuUser
from bot.services import identity
from storage.db import Database
from storage.models import (
    Agency,
    Alert,
    AlertKind,
    AlertStatus,
    Role,
    Severity,
    Source,
    Subscription,
    Topic,
    User,
    UserStatus,
)

OUTLETS = ["VnExpress", "Tuổi Trẻ", "Thanh Niên", "Dân Trí", "VietNamNet", "Lao Động"]


@dataclass
class FeedServer:
    """Serves one RSS feed per outlet from ``items`` (title, link, description, published)."""

    base: str = ""
    items: dict[str, list[tuple[str, str, str, datetime]]] = field(default_factory=dict)

    def url(self, outlet_index: int) -> str:
        return f"{self.base}/rss/{outlet_index}.rss"

    async def handle(self, request: web.Request) -> web.Response:
        index = int(request.match_info["index"])
        entries = "".join(
            f"<item><title>{t}</title><link>{link}</link><description>{d}</description>"
            f"<pubDate>{format_datetime(p)}</pubDate></item>"
            for t, link, d, p in self.items.get(OUTLETS[index], [])
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>'
            f"{OUTLETS[index]}</title><link>https://example.vn</link><description>x</description>"
            f"{entries}</channel></rss>"
        )
        return web.Response(body=body.encode(), content_type="application/rss+xml")


@pytest_asyncio.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    app = web.Application()
    app.router.add_get("/rss/{index}.rss", server.handle)
    async with serving(app) as base:
        server.base = base
        yield server


@dataclass
class Desk:
    emulator: TelegramEmulator
    db: Database
    clock: SimulatedClock
    settings: Any
    agency_id: int
    topic_id: int
    spokespeople: list[tuple[EmuUser, int]]  # (emulator user, User.id)
    supervisor: tuple[EmuUser, int]
    outsider: tuple[EmuUser, int]
    make_app: Callable[[], Application]  # type: ignore[type-arg]

    def add_person(self, name: str, role: str, lang: str = "vi") -> tuple[EmuUser, int]:
        """Another active person of the desk's agency who has started the bot."""
        return _person(self.emulator, self.db, name, role, self.agency_id, lang)

    def add_alert(self, severity: str = Severity.WARNING, **fields: Any) -> int:
        now = self.clock.now()
        with self.db.session() as s:
            alert = burst_alert(
                self.topic_id,
                now,
                f"topic:{self.topic_id}:volume",
                severity=severity,
                status=AlertStatus.OPEN,
                volume=9,
                baseline=0.4,
                score=12.0,
                outlets=5,
                negative_share=0.8,
                forecast={"hours": 3, "expected": 20, "low": 12, "high": 31},
                details={"terms": ["ngộ độc", "bếp ăn"], "top_story_ids": []},
                **fields,
            )
            s.add(alert)
            s.flush()
            assert alert.id is not None
            return alert.id


def burst_alert(
    topic_id: int, now: datetime, dedupe_key: str, severity: str = Severity.WARNING, **fields: Any
) -> Alert:
    """A volume-burst alert over the quarter hour before ``now`` (not yet added to a session)."""
    return Alert(
        topic_id=topic_id,
        kind=AlertKind.VOLUME_BURST,
        severity=severity,
        dedupe_key=dedupe_key,
        window_start=now - timedelta(minutes=15),
        window_end=now,
        created_at=now,
        updated_at=now,
        **fields,
    )


async def run_job_now(app: Application, job_id: str) -> None:  # type: ignore[type-arg]
    """Wake a repeating job at once, as the scheduler would when it is due."""
    from datetime import UTC

    assert app.job_queue is not None
    job = app.job_queue.scheduler.get_job(job_id)
    assert job is not None, job_id
    job.modify(next_run_time=datetime.now(UTC))


JOB_IDS = (TICK_JOB_ID, SCAN_JOB_ID, DELIVER_JOB_ID)


def _person(
    emulator: TelegramEmulator, db: Database, name: str, role: str, agency_id: int, lang: str
) -> tuple[EmuUser, int]:
    tg = emulator.create_user(name, language_code=lang, username=name.lower())
    # They registered long ago: their private chat with the bot exists, and no /start is
    # waiting in the update queue to be answered when the app starts.
    emulator.world.private_chat(tg)
    tg.started = True
    with db.session() as s:
        user = User(
            username=tg.username,
            full_name=name,
            role=role,
            status=UserStatus.ACTIVE,
            agency_id=agency_id,
            language=lang,
        )
        identity.add_person(s, person_ref(tg.id), user)
        s.flush()
        assert user.id is not None
        return tg, user.id


@pytest.fixture
def desk(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, clock: SimulatedClock
) -> Desk:
    return make_desk(emulator, sqlite_db, make_settings, clock)


def make_desk(
    emulator: TelegramEmulator, db: Database, make_settings: Any, clock: SimulatedClock
) -> Desk:
    """The desk on any database (the ``desk`` fixture: on SQLite)."""

    def person(name: str, role: str, agency_id: int, lang: str = "vi") -> tuple[EmuUser, int]:
        return _person(emulator, db, name, role, agency_id, lang)

    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        other = Agency(code="BGDDT", name="Bộ Giáo dục và Đào tạo")
        s.add(agency)
        s.add(other)
        s.flush()
        topic = Topic(
            agency_id=agency.id,
            name="An toàn thực phẩm",
            query='"ngộ độc" OR "an toàn thực phẩm"',
            owner="chat",
        )
        other_topic = Topic(agency_id=other.id, name="Học đường", query='"học sinh"', owner="chat")
        s.add(topic)
        s.add(other_topic)
        s.flush()
        assert agency.id and other.id and topic.id and other_topic.id
        agency_id, other_id, topic_id, other_topic_id = (
            agency.id,
            other.id,
            topic.id,
            other_topic.id,
        )
    spokespeople = [
        person(name, Role.SPOKESPERSON, agency_id, lang)
        for name, lang in (("Lan", "vi"), ("Minh", "vi"), ("Anna", "en"))
    ]
    supervisor = person("Hung", Role.SUPERVISOR, agency_id)
    outsider = person("Khoa", Role.SPOKESPERSON, other_id)
    with db.session() as s:
        for _tg, uid in spokespeople:
            s.add(Subscription(user_id=uid, topic_id=topic_id))
        s.add(Subscription(user_id=outsider[1], topic_id=other_topic_id))
    settings = make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_TICK_SECONDS": "0.1",
            "CRISISDESK_SCAN_INTERVAL": "3600",
            "CRISISDESK_ALLOW_PRIVATE_FEEDS": "true",
            "CRISISDESK_ESCALATION_MINUTES": "15",
        }
    )

    def make_app() -> Application:  # type: ignore[type-arg]
        return build_application(settings, db, clock)

    return Desk(
        emulator,
        db,
        clock,
        settings,
        agency_id,
        topic_id,
        spokespeople,
        supervisor,
        outsider,
        make_app,
    )


def add_sources(db: Database, feeds: FeedServer) -> None:
    with db.session() as s:
        for i, outlet in enumerate(OUTLETS):
            s.add(Source(name="Thời sự", outlet=outlet, url=feeds.url(i)))


def existing_alerts(db: Database) -> list[Alert]:
    with db.session() as s:
        return list(s.exec(select(Alert)))


__all__ = [
    "Desk",
    "FeedServer",
    "add_sources",
    "existing_alerts",
    "make_desk",
    "run_job_now",
    "running_app",
]
