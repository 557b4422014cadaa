"""The bundled news day and the feed server that replays it on the simulated clock."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from aiohttp import ClientSession, web

from bot.clock import SimulatedClock
from bot.sandbox.feeds import feed_app
from bot.sandbox.newsday import FEED_SIZE, OUTLET_BY_SLUG, NewsDay
from bot.sandbox.runner import TOPICS
from scanner.dedupe import canonical_url
from scanner.parse import parse_feed
from scanner.topics import match

DANES = Path(__file__).resolve().parents[2] / "scanner" / "data" / "danes-sentiment-train.jsonl"
DAY = date(2026, 11, 2)


def test_the_day_is_real_headlines_plus_a_written_crisis() -> None:
    day = NewsDay.load(DAY)
    kinds = Counter(item.kind for item in day.items)
    assert set(kinds) == {"danes", "written"}
    assert kinds["danes"] > 1000 and 15 <= kinds["written"] <= 40
    danes = {
        json.loads(line)["title"].strip() for line in DANES.read_text(encoding="utf-8").splitlines()
    }
    for item in day.items:
        assert item.outlet in OUTLET_BY_SLUG
        if item.kind == "danes":
            assert item.title in danes, item.title  # copied, not invented
            assert item.url and item.url.startswith("http")
        else:
            assert item.slug and item.story and item.url is None
    # Fourteen days of history before the day starts, for the seasonal baselines.
    assert day.start - day.history_start > timedelta(days=13)
    history_days = {day.published_at(i).date() for i in day.history()}
    assert len(history_days) >= 14
    # Syndication: some stories are re-published by other outlets with tracking parameters.
    stories: dict[str, set[str]] = {}
    for item in day.crisis_items():
        stories.setdefault(item.story or "", set()).add(item.outlet)
    assert sum(1 for outlets in stories.values() if len(outlets) >= 3) >= 2
    copies = [i for i in day.crisis_items() if i.tracking]
    assert copies and all("utm_" in (i.tracking or "") for i in copies)
    base = "http://127.0.0.1:1"
    assert all(canonical_url(i.link(base)) != i.link(base) for i in copies)
    # The crisis is about the configured topic and starts after the day does.
    assert day.first_crisis_at() > day.start
    food = next(t["query"] for t in TOPICS if t["name"] == "An toàn thực phẩm")
    assert all(match(food, i.title, i.lead) > 0 for i in day.crisis_items())


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_feeds_serve_only_what_is_published_by_the_simulated_now() -> None:
    day = NewsDay.load(DAY)
    clock = SimulatedClock(day.start)
    runner, base = await _serve(feed_app(day, clock))
    try:
        async with ClientSession() as http:
            url = f"{base}/feeds/thoisu.rss"
            async with http.get(url) as response:
                assert response.status == 200
                assert response.content_type == "application/rss+xml"
                etag = response.headers["ETag"]
                body = await response.read()
            feed = parse_feed(body, fetched_at=clock.now())
            assert 0 < len(feed.items) <= FEED_SIZE
            assert all(item.published_at <= clock.now() for item in feed.items)
            titles = {item.title for item in feed.items}
            assert not any("Sao Mai" in t for t in titles)  # the crisis has not begun

            # Nothing new yet: a polite 304.
            async with http.get(url, headers={"If-None-Match": etag}) as response:
                assert response.status == 304

            clock.advance(timedelta(hours=4))  # 10:00: the first crisis items are out
            async with http.get(url, headers={"If-None-Match": etag}) as response:
                assert response.status == 200
                assert response.headers["ETag"] != etag
                body = await response.read()
            feed = parse_feed(body, fetched_at=clock.now())
            assert all(item.published_at <= clock.now() for item in feed.items)
            assert any("Hàng chục học sinh nhập viện" in item.title for item in feed.items)
            assert not any("ổn định sức khỏe" in item.title for item in feed.items)  # 16:00

            # The written items have an article page, but only once published.
            crisis = next(i for i in day.crisis_items() if i.outlet == "thoisu")
            async with http.get(f"{base}/news/thoisu/{crisis.slug}") as response:
                assert response.status == 200
                assert crisis.title in await response.text()
            later = next(i for i in day.crisis_items() if i.id == "w-s15")
            async with http.get(f"{base}/news/{later.outlet}/{later.slug}") as response:
                assert response.status == 404
            async with http.get(f"{base}/feeds/nope.rss") as response:
                assert response.status == 404
    finally:
        await runner.cleanup()
