"""One bad item or one bad source never blocks the others, and a failing source is reported.

A real local feed server and the real scan, on SQLite and PostgreSQL. On PostgreSQL a single NUL
byte in one feed item used to fail the whole scan transaction, every scan after it, and nobody
was told.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

import pytest
from aiohttp import web
from emulator_fixtures import serving
from sqlmodel import col, select

from bot.channels.telegram.notifier import person_ref
from bot.clock import SimulatedClock
from bot.config import Settings
from bot.services import identity
from bot.services.scanning import report_source_health
from bot.templating import Renderer
from scanner.pipeline import LAST_SCAN_KEY, REPORT_AFTER_FAILURES, Processor, run_scan
from scanner.sentiment import LexiconScorer
from storage.db import Database
from storage.models import Agency, Article, Due, Role, Setting, Source, Topic, User, UserStatus

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def rss(items: list[tuple[str, str, str]], *, encoding: str = "utf-8") -> bytes:
    """An RSS 2.0 document; text is XML-escaped but otherwise passed through (NUL included)."""
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link>"
        f"<description>{escape(d)}</description>"
        "<pubDate>Mon, 02 Nov 2026 07:30:00 +0700</pubDate></item>"
        for t, link, d in items
    )
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        f"<title>Tin</title><link>http://x.vn</link><description>d</description>{body}"
        "</channel></rss>"
    )
    return xml.encode(encoding)


class Feeds:
    """Feeds served by path; a test changes ``bodies`` between scans."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@pytest.fixture
async def feeds() -> AsyncIterator[Feeds]:
    served = Feeds()

    async def handle(request: web.Request) -> web.Response:
        body = served.bodies.get(request.path)
        if body is None:
            return web.Response(status=503, text="down for maintenance")
        content_type = served.content_types.get(request.path, "application/rss+xml")
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/{name}", handle)
    async with serving(app) as base:
        served.base = base
        yield served


def _seed(db: Database, feeds: Feeds, names: list[str]) -> None:
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        assert agency.id is not None
        s.add(Topic(agency_id=agency.id, name="Bão", query="bão OR lũ"))
        for n, role in enumerate((Role.ADMIN, Role.SUPERVISOR, Role.MEMBER)):
            identity.add_person(
                s,
                person_ref(100 + n),
                User(
                    full_name=f"Người {n}",
                    agency_id=agency.id,
                    role=role,
                    status=UserStatus.ACTIVE,
                    language="vi" if n else "en",
                ),
            )
        for name in names:
            s.add(Source(name=name, outlet=name, url=feeds.url(f"/{name}")))


async def _scan(db: Database, clock: SimulatedClock, *, hook: bool = True):  # type: ignore[no-untyped-def]
    with db.session() as s:
        processor = Processor.from_db(s, clock.now(), scorer=LexiconScorer())
    return await run_scan(
        db,
        Settings(allow_private_feeds=True),
        clock,
        processor=processor,
        on_health=(
            (
                lambda session, source, event: report_source_health(
                    session, source, event, clock.now()
                )
            )
            if hook
            else None
        ),
    )


def _titles(db: Database) -> set[str]:
    with db.session() as s:
        return set(s.exec(select(Article.title)).all())


async def test_a_nul_byte_in_one_item_blocks_nothing(db: Database, feeds: Feeds) -> None:
    feeds.bodies["/a"] = rss(
        [
            ("Bão số 3 \x00đổ bộ Quảng Ninh", "https://a.vn/1\x00", "Gió \x00giật cấp 12"),
            ("Lũ quét ở Lào Cai", "https://a.vn/2", "Mưa lớn kéo dài"),
        ]
    )
    feeds.bodies["/b"] = rss([("Lũ dâng cao ở Huế", "https://b.vn/1", "Nước lên nhanh")])
    _seed(db, feeds, ["a", "b"])
    clock = SimulatedClock(NOW)
    report = await _scan(db, clock)
    assert [o.status for o in report.sources] == ["ok", "ok"]
    assert _titles(db) == {"Bão số 3 đổ bộ Quảng Ninh", "Lũ quét ở Lào Cai", "Lũ dâng cao ở Huế"}
    # The next scan works too (the transaction was never poisoned).
    feeds.bodies["/b"] = rss([("Bão tan dần", "https://b.vn/2", "")])
    clock.advance(timedelta(minutes=10))
    await _scan(db, clock)
    assert "Bão tan dần" in _titles(db)
    with db.session() as s:
        assert s.get(Setting, LAST_SCAN_KEY) is not None


def _refuse_titles_containing(db: Database, word: str) -> None:
    """A real refusal by the database itself, on either backend: a trigger on article."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON article "
                f"WHEN NEW.title LIKE '%{word}%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF strpos(NEW.title, '{word}') > 0 THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON article "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


def _drop_refusal(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER refuse" + ("" if db.engine.dialect.name == "sqlite" else " ON article")
        )


async def test_an_item_the_database_refuses_costs_only_that_item(
    db: Database, feeds: Feeds
) -> None:
    feeds.bodies["/a"] = rss(
        [
            ("Bão số 3 đổ bộ", "https://a.vn/1", ""),
            ("Bão TỪCHỐI đi qua", "https://a.vn/2", ""),
            ("Lũ quét ở Lào Cai", "https://a.vn/3", ""),
        ]
    )
    feeds.bodies["/b"] = rss([("Lũ dâng cao ở Huế", "https://b.vn/1", "")])
    _seed(db, feeds, ["a", "b"])
    _refuse_titles_containing(db, "TỪCHỐI")
    report = await _scan(db, SimulatedClock(NOW))
    assert _titles(db) == {"Bão số 3 đổ bộ", "Lũ quét ở Lào Cai", "Lũ dâng cao ở Huế"}
    a, b = report.sources
    assert (a.status, a.new_articles, b.new_articles) == ("ok", 2, 1)
    with db.session() as s:
        row = s.exec(select(Source).where(Source.name == "a")).one()
        assert row.consecutive_failures == 0
        assert "1 of 3 items could not be stored" in (row.last_error or "")
        # Every article landed in a story that exists (the index forgot the rolled-back one).
        stories = s.exec(select(Article.story_id)).all()
        assert all(sid is not None for sid in stories)


async def test_a_failing_source_is_reported_once_and_again_when_it_recovers(
    db: Database, feeds: Feeds
) -> None:
    feeds.bodies["/good"] = rss([("Lũ dâng cao ở Huế", "https://b.vn/1", "")])
    feeds.bodies["/bad"] = rss([(f"Bão TỪCHỐI số {n}", f"https://a.vn/{n}", "") for n in range(4)])
    _seed(db, feeds, ["good", "bad"])
    _refuse_titles_containing(db, "TỪCHỐI")
    clock = SimulatedClock(NOW)

    def notices() -> list[tuple[str, int]]:
        with db.session() as s:
            return [
                (d.payload["template"], d.payload["user_id"])
                for d in s.exec(select(Due).where(Due.kind == "notify").order_by(col(Due.id)))
            ]

    for scan_number in range(1, REPORT_AFTER_FAILURES + 3):
        report = await _scan(db, clock)
        bad = next(o for o in report.sources if o.name == "bad")
        assert bad.status == "error" and "store error" in (bad.error or "")
        expected = 2 if scan_number >= REPORT_AFTER_FAILURES else 0  # admin + supervisor
        assert len(notices()) == expected, scan_number
        clock.advance(timedelta(hours=7))  # past any backoff
    assert {t for t, _ in notices()} == {"source_down"}
    with db.session() as s:
        admin_and_supervisor = set(
            s.exec(select(User.id).where(col(User.role).in_([Role.ADMIN, Role.SUPERVISOR]))).all()
        )
    assert {uid for _, uid in notices()} == admin_and_supervisor
    assert "Lũ dâng cao ở Huế" in _titles(db)  # the good source was never blocked

    _drop_refusal(db)
    await _scan(db, clock)
    clock.advance(timedelta(hours=7))
    await _scan(db, clock)
    assert [t for t, _ in notices()].count("source_up") == 2  # once, to each of the two
    assert len(_titles(db)) == 5

    renderer = Renderer()
    with db.session() as s:
        for due in s.exec(select(Due).where(Due.kind == "notify")):
            for lang in ("vi", "en"):
                text = renderer.render(due.payload["template"], lang, **due.payload["context"])
                assert "bad" in text


async def test_fetch_failures_are_reported_too(db: Database, feeds: Feeds) -> None:
    _seed(db, feeds, ["gone"])  # no body: the server answers 503
    clock = SimulatedClock(NOW)
    for _ in range(REPORT_AFTER_FAILURES):
        await _scan(db, clock)
        clock.advance(timedelta(hours=7))
    with db.session() as s:
        dues = s.exec(select(Due).where(Due.kind == "notify")).all()
        assert {d.payload["template"] for d in dues} == {"source_down"}
        assert "503" in dues[0].payload["context"]["error"]


async def test_a_lying_charset_header_is_detected_and_recorded_on_the_source(
    db: Database, feeds: Feeds
) -> None:
    feeds.bodies["/a"] = rss([("Bão số 3 đổ bộ", "https://a.vn/1", "")])
    feeds.content_types["/a"] = "text/xml; charset=windows-1252"
    _seed(db, feeds, ["a"])
    await _scan(db, SimulatedClock(NOW))
    assert _titles(db) == {"Bão số 3 đổ bộ"}  # not "BÃ£o sá»‘ 3 Ä‘á»• bá»™"
    with db.session() as s:
        row = s.exec(select(Source)).one()
        assert "declared charset windows-1252 but the body is UTF-8" in (row.last_error or "")
