"""Alert latency: from a burst appearing on a local feed server to the last subscriber's message.

    python -m bench.alert_latency [--subscribers 50] [--runs 5]

A real local aiohttp feed server (six outlets), the real Application against the Bot API emulator
(flood limits on), a quiet week of history stored through the real pipeline. Each run publishes a
burst of negative stories on the feeds and then runs the scan job at once, as if the scheduler's
next tick had come: what is measured is the delay *beyond* the scan interval — fetch, parse,
dedupe, match, score, detect, plan, render the chart, and fan out to every subscriber (chart and
text each). Prints, per run and as medians, the time to the last subscriber's first message (the
chart) and to the last subscriber's text. Target: ≤ 2 s for 50 subscribers.

Note the floor the bot's own rate limiter sets: 2 messages × N people at 29 per second
(Telegram's bulk limit is 30/s), i.e. 3.4 s for the last text of 50 people.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from aiohttp import web
from sqlmodel import select

from bot.app import SCAN_JOB_ID, build_application
from bot.channels.telegram.notifier import person_ref
from bot.clock import SystemClock
from bot.config import load_settings
from bot.sandbox.telegram_emulator import TelegramEmulator
from bot.services import identity
from scanner.parse import FeedItem
from scanner.pipeline import Incoming, Processor
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Agency, Alert, Source, Subscription, Topic, User

VERBOSE = False
OUTLETS = ["VnExpress", "Tuổi Trẻ", "Thanh Niên", "Dân Trí", "VietNamNet", "Lao Động"]
HEADLINES = [
    "Hơn {n} học sinh nhập viện nghi ngộ độc thực phẩm sau bữa trưa bán trú ở {p}",
    "Phụ huynh bức xúc vụ ngộ độc tập thể ở trường tiểu học {p}, {n} em cấp cứu",
    "Ngộ độc thực phẩm tại bếp ăn trường học {p}: {n} học sinh phải điều trị",
]
PLACES = [
    "Cầu Giấy",
    "Hoàng Mai",
    "Thủ Đức",
    "Ninh Kiều",
    "Hải Châu",
    "Lê Chân",
    "Đống Đa",
    "Ba Đình",
    "Bình Thạnh",
    "Gò Vấp",
    "Sơn Trà",
    "Hồng Bàng",
]


class Feeds:
    def __init__(self) -> None:
        self.items: dict[int, list[tuple[str, str, datetime]]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        index = int(request.match_info["index"])
        entries = "".join(
            f"<item><title>{t}</title><link>{link}</link><description>Nhiều em đau bụng, nôn ói."
            f"</description><pubDate>{format_datetime(at)}</pubDate></item>"
            for t, link, at in self.items.get(index, [])
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x'
            f"</title><link>https://x.vn</link><description>x</description>{entries}"
            "</channel></rss>"
        )
        return web.Response(body=body.encode(), content_type="application/rss+xml")


def seed(db: Database, emulator: TelegramEmulator, feeds_base: str, subscribers: int) -> list[int]:
    now = datetime.now(UTC)
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        topic = Topic(
            agency_id=agency.id, name="An toàn thực phẩm", query='"ngộ độc" OR "an toàn thực phẩm"'
        )
        s.add(topic)
        s.flush()
        for i, _outlet in enumerate(OUTLETS):
            s.add(Source(name="Thời sự", outlet=OUTLETS[i], url=f"{feeds_base}/rss/{i}.rss"))
        ids = []
        for i in range(subscribers):
            tg = emulator.create_user(f"Người {i}")
            emulator.world.private_chat(tg)
            tg.started = True
            user = User(
                full_name=tg.first_name,
                role="spokesperson",
                status="active",
                agency_id=agency.id,
            )
            identity.add_person(s, person_ref(tg.id), user)
            s.flush()
            s.add(Subscription(user_id=user.id, topic_id=topic.id))
            ids.append(tg.id)
    titles = [f"Kiểm tra an toàn thực phẩm định kỳ đợt {i}" for i in range(7 * 6)]
    store_history(db, titles, "https://bg.vn", timedelta(hours=4), now)
    return ids


def store_history(
    db: Database, titles: Sequence[str], site: str, every: timedelta, now: datetime
) -> None:
    """Store ``titles`` through the scanner as quiet history, one each ``every`` back from
    ``now``, the outlets in turn: the baseline a burst stands out against."""
    history = [
        Incoming(
            FeedItem(title, f"{site}/{i}", "Kiểm tra định kỳ.", now - every * (i + 1)),
            OUTLETS[i % len(OUTLETS)],
        )
        for i, title in enumerate(titles)
    ]
    with db.session() as s:
        Processor.from_db(s, now).process(s, history, now)


async def one_run(run: int, subscribers: int) -> tuple[float, float]:
    feeds = Feeds()
    server = web.Application()
    server.router.add_get("/rss/{index}.rss", feeds.handle)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'latency.sqlite3'}"
            upgrade(url)
            db = Database.from_url(url)
            async with TelegramEmulator(flood_limits=True) as emulator:
                people = seed(db, emulator, base, subscribers)
                settings = load_settings(
                    {
                        "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
                        "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
                        "CRISISDESK_DATA_DIR": tmp,
                        "CRISISDESK_SCAN_INTERVAL": "3600",
                        "CRISISDESK_ALLOW_PRIVATE_FEEDS": "true",
                    }
                )
                app = build_application(settings, db, SystemClock())
                async with app:
                    await app.start()
                    await asyncio.sleep(0.5)  # let the start-up jobs settle
                    now = datetime.now(UTC)
                    for i in range(18):
                        title = HEADLINES[i % 3].format(n=20 + 3 * i, p=PLACES[i % len(PLACES)])
                        feeds.items.setdefault(i % len(OUTLETS), []).append(
                            (
                                f"{title} (tin {run}-{i})",
                                f"https://news.vn/{run}/{i}",
                                now - timedelta(minutes=i % 9),
                            )
                        )
                    started = time.perf_counter()
                    assert app.job_queue is not None
                    job = app.job_queue.scheduler.get_job(SCAN_JOB_ID)
                    assert job is not None
                    job.modify(next_run_time=datetime.now(UTC))

                    def got(predicate_photo: bool) -> bool:
                        return all(
                            any(
                                ("photo" in m.data) if predicate_photo else bool(m.buttons())
                                for m in emulator.messages(pid, from_bot=True)
                            )
                            for pid in people
                        )

                    await emulator.wait_for(lambda: got(True), timeout=120)
                    first = time.perf_counter() - started
                    await emulator.wait_for(lambda: got(False), timeout=120)
                    last = time.perf_counter() - started
                    await app.stop()
                    sends = [c for c in emulator.calls if c.method in ("sendPhoto", "sendMessage")]
                    if VERBOSE and sends:
                        t0 = emulator.calls[0].time
                        print(f"  first send at +{sends[0].time - t0:.2f} s of the emulator log")
                with db.session() as s:
                    assert s.exec(select(Alert)).first() is not None
            db.dispose()
    finally:
        await runner.cleanup()
    return first, last


async def run(subscribers: int, runs: int) -> None:
    firsts, lasts = [], []
    for i in range(runs):
        first, last = await one_run(i, subscribers)
        firsts.append(first)
        lasts.append(last)
        print(
            f"run {i + 1}: every subscriber has the chart after {first:.2f} s, "
            f"the text after {last:.2f} s"
        )
    chart = statistics.median(firsts)
    print(
        f"median over {runs} runs, {subscribers} subscribers: chart {chart:.2f} s, "
        f"text {statistics.median(lasts):.2f} s beyond the scan interval "
        f"(rate-limit floor for the text: {2 * subscribers / 29:.2f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    asyncio.run(run(args.subscribers, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
