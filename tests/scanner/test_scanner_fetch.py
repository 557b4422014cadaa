"""The scan against a real local feed server: every fault lands on its own Source row."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta

from aiohttp.abc import AbstractResolver, ResolveResult
from scanner_feeds import NOW, FeedServer
from sqlalchemy import func, select

from bot.clock import SimulatedClock
from bot.config import Settings
from scanner.pipeline import LAST_SCAN_KEY, Processor, run_scan
from scanner.sentiment import LexiconScorer
from scanner.sources import FeedFetcher, FetchPolicy, check_url
from storage.db import Database
from storage.models import Article, ArticleTopic, Setting, Source, Story

POLICY = FetchPolicy(
    allow_private=True,
    total_timeout=1.0,
    connect_timeout=1.0,
    max_bytes=256 * 1024,
    max_redirects=3,
)


def settings() -> Settings:
    return Settings(allow_private_feeds=True)


def sources_by_name(db: Database) -> dict[str, Source]:
    with db.session() as s:
        return {src.name: src for src in s.execute(select(Source)).scalars()}


async def scan(db: Database, clock: SimulatedClock, policy: FetchPolicy = POLICY):
    with db.session() as s:
        processor = Processor.from_db(s, clock.now(), scorer=LexiconScorer())
    return await run_scan(db, settings(), clock, policy=policy, processor=processor)


async def test_every_kind_of_feed_in_one_scan(
    db: Database, feed_server: FeedServer, add_sources: Callable[[dict[str, str]], None]
) -> None:
    add_sources(
        {
            "A": feed_server.url("/rss2"),
            "B": feed_server.url("/atom"),
            "C": feed_server.url("/bozo"),
            "Broken": feed_server.url("/broken"),
            "Huge": feed_server.url("/huge"),
            "Slow": feed_server.url("/slow"),
            "Loop": feed_server.url("/loop"),
            "Legacy": feed_server.url("/legacy"),
            "VN": feed_server.url("/vn1258"),
            "Gz": feed_server.url("/gz"),
            "Moved": feed_server.url("/moved"),
            "Ftp": "ftp://127.0.0.1/feed.rss",
        }
    )
    clock = SimulatedClock(NOW)
    report = await scan(db, clock)
    rows = sources_by_name(db)

    # Bad sources record a clear error and back off; none stops the others.
    assert "not a readable feed" in (rows["Broken"].last_error or "") or "not a feed" in (
        rows["Broken"].last_error or ""
    )
    assert "cap" in (rows["Huge"].last_error or "")
    assert "timed out" in (rows["Slow"].last_error or "")
    assert "too many redirects" in (rows["Loop"].last_error or "")
    assert "only http(s)" in (rows["Ftp"].last_error or "")
    for name in ("Broken", "Huge", "Slow", "Loop", "Ftp"):
        assert rows[name].consecutive_failures == 1
        assert rows[name].next_fetch_after is not None and rows[name].next_fetch_after > NOW
        assert rows[name].last_success_at is None
    for name in ("A", "B", "C", "Legacy", "VN", "Gz", "Moved"):
        assert rows[name].consecutive_failures == 0, (name, rows[name].last_error)
        assert rows[name].last_success_at == NOW
    assert (rows["C"].last_error or "").startswith("warning:")  # recoverable fault, items kept

    with db.session() as s:
        articles = {a.title: a for a in s.execute(select(Article)).scalars()}
    fire = articles["Cháy lớn tại chợ Đồng Xuân, nhiều ki-ốt bị thiêu rụi"]
    assert fire.canonical_url == "https://a.vn/chay-cho"
    assert (
        fire.summary == "Đám cháy bùng phát lúc 3h sáng & lan nhanh."
    )  # HTML stripped, script dropped
    assert fire.published_at == NOW - timedelta(minutes=30)  # 07:30 +07:00 → 00:30 UTC
    assert fire.sentiment_label == "negative"
    assert articles["Sốt xuất huyết tăng mạnh ở phía Nam"].summary == "Số ca tăng gấp đôi"
    assert "Giá xăng giảm mạnh" in articles
    assert "Café crème à Paris — été" in articles
    assert articles["Café crème à Paris — été"].summary == "Déjà vu, naïve façade"
    assert "Lũ lụt ở Quảng Nam" in articles  # windows-1258 decoded and NFC-normalised
    assert "Tin nén gzip" in articles
    # /moved redirects to /rss2: same canonical URLs, so nothing is stored twice.
    assert len([a for a in articles.values() if a.canonical_url == "https://a.vn/chay-cho"]) == 1

    assert {o.name for o in report.failing} == {"Broken", "Huge", "Slow", "Loop", "Ftp"}
    with db.session() as s:
        summary = s.get(Setting, LAST_SCAN_KEY)
        assert summary is not None
        assert summary.value["new_articles"] == len(articles)
        assert {f["name"] for f in summary.value["failing_sources"]} == {
            "Broken",
            "Huge",
            "Slow",
            "Loop",
            "Ftp",
        }
        # The fire article matched the "Cháy nổ" topic; the inactive "xăng" topic matched nothing.
        links = s.execute(select(ArticleTopic)).scalars().all()
    assert [link.article_id for link in links] == [fire.id]


async def test_backoff_skips_failing_source_until_due(
    db: Database, feed_server: FeedServer, add_sources: Callable[[dict[str, str]], None]
) -> None:
    add_sources({"Broken": feed_server.url("/broken")})
    clock = SimulatedClock(NOW)
    await scan(db, clock)
    await scan(db, clock)  # still backing off: not fetched again
    assert feed_server.hits["/broken"] == 1
    clock.advance(timedelta(minutes=1, seconds=1))
    await scan(db, clock)
    assert feed_server.hits["/broken"] == 2
    row = sources_by_name(db)["Broken"]
    assert row.consecutive_failures == 2
    assert row.next_fetch_after == clock.now() + timedelta(minutes=2)


async def test_conditional_get_and_idempotent_rescan(
    db: Database, feed_server: FeedServer, add_sources: Callable[[dict[str, str]], None]
) -> None:
    add_sources({"E": feed_server.url("/etag"), "A": feed_server.url("/rss2")})
    clock = SimulatedClock(NOW)
    first = await scan(db, clock)
    assert len(first.new_articles) == 3
    row = sources_by_name(db)["E"]
    assert row.etag == '"v1"' and row.last_modified
    clock.advance(timedelta(minutes=5))
    second = await scan(db, clock)
    statuses = {o.name: o.status for o in second.sources}
    assert statuses == {"E": "not_modified", "A": "ok"}
    assert second.new_articles == [] and second.new_stories == []
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Article)).scalar_one() == 3
        assert s.execute(select(func.count()).select_from(Story)).scalar_one() == 3


async def test_syndicated_copies_make_one_story(
    db: Database, feed_server: FeedServer, add_sources: Callable[[dict[str, str]], None]
) -> None:
    add_sources({f"Outlet{n}": feed_server.url(f"/outlet/{n}") for n in range(10)})
    clock = SimulatedClock(NOW)
    report = await scan(db, clock)
    assert len(report.new_articles) == 20
    with db.session() as s:
        stories = s.execute(select(Story).order_by(Story.article_count.desc())).scalars().all()
    vaccine = stories[0]
    assert vaccine.article_count == 10 and vaccine.outlet_count == 10
    assert vaccine.first_seen_at == NOW - timedelta(minutes=30)
    # The unrelated per-outlet gold items stay separate stories (different numbers, own outlets)
    # or merge among themselves; never into the vaccine story.
    assert sum(st.article_count for st in stories) == 20
    by_topic = report.by_topic()["Vắc-xin"]
    assert len(by_topic["articles"]) == 10 and [
        st["outlet_count"] for st in by_topic["stories"]
    ] == [10]


async def test_private_address_refused_unless_allowed(
    db: Database, feed_server: FeedServer, add_sources: Callable[[dict[str, str]], None]
) -> None:
    add_sources(
        {
            "Local": feed_server.url("/rss2"),
            "Named": feed_server.url("/rss2").replace("127.0.0.1", "localhost"),
        }
    )
    clock = SimulatedClock(NOW)
    strict = FetchPolicy(allow_private=False, total_timeout=2.0)
    report = await run_scan(
        db,
        Settings(allow_private_feeds=False),
        clock,
        policy=strict,
        processor=Processor([], scorer=LexiconScorer()),
    )
    assert {o.name for o in report.failing} == {"Local", "Named"}
    rows = sources_by_name(db)
    assert "127.0.0.1" in (rows["Local"].last_error or "") and "refused" in (
        rows["Local"].last_error or ""
    )
    assert "refused" in (rows["Named"].last_error or "")
    assert feed_server.hits == {}


class _StaticResolver(AbstractResolver):
    """DNS stand-in: every name resolves to 127.0.0.1, like a rebinding attacker's domain."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def test_dns_name_resolving_to_private_address_is_refused(feed_server: FeedServer) -> None:
    port = feed_server.base.rsplit(":", 1)[1]
    url = f"http://feeds.example.vn:{port}/rss2"
    async with FeedFetcher(
        FetchPolicy(allow_private=False, total_timeout=2.0), resolver=_StaticResolver()
    ) as fetcher:
        refused = await fetcher.fetch(url)
    assert refused.status == "error"
    assert refused.error is not None and "feeds.example.vn resolves to 127.0.0.1" in refused.error
    assert feed_server.hits == {}
    # The same name is fetched when private addresses are allowed (sandbox, tests).
    async with FeedFetcher(
        FetchPolicy(allow_private=True, total_timeout=2.0), resolver=_StaticResolver()
    ) as fetcher:
        allowed = await fetcher.fetch(url)
    assert allowed.status == "ok" and b"<rss" in allowed.body


def test_check_url_rejects_schemes_and_private_literals() -> None:
    import pytest

    from scanner.sources import UnsafeURLError

    for url in (
        "file:///etc/passwd",
        "gopher://x",
        "http://10.0.0.5/rss",
        "http://[::1]/rss",
        "http://169.254.169.254/latest",
        "http://192.168.1.1/",
        "http://[::ffff:127.0.0.1]/",
    ):
        with pytest.raises(UnsafeURLError):
            check_url(url, allow_private=False)
    check_url("https://vnexpress.net/rss/suc-khoe.rss", allow_private=False)
    check_url("http://127.0.0.1:8080/rss", allow_private=True)


async def test_redirect_to_private_address_is_refused(feed_server: FeedServer) -> None:
    """A public-looking feed that bounces to an internal address is refused at the redirect.

    The first hop (our local server) is trusted through the policy hook, as if it were a
    public host; every hop after it is checked like any URL: a real 302 to loopback on the
    same server, and to private and link-local literals that must never be connected to.
    """
    port = feed_server.base.rsplit(":", 1)[1]
    targets = {
        "loopback": feed_server.url("/rss2"),
        "loopback-name": f"http://localhost:{port}/rss2",
        "private": "http://10.0.0.7/rss",
        "link-local": "http://169.254.169.254/latest/meta-data/",
        "v6-mapped": f"http://[::ffff:127.0.0.1]:{port}/rss2",
    }
    entries = {name: feed_server.url(f"/to?target={url}") for name, url in targets.items()}
    policy = FetchPolicy(
        allow_private=False, total_timeout=2.0, trusted_urls=frozenset(entries.values())
    )
    async with FeedFetcher(policy) as fetcher:
        results = {name: await fetcher.fetch(url) for name, url in entries.items()}
    for name, result in results.items():
        assert result.status == "error", (name, result)
        assert result.error is not None and result.error.startswith("refused"), (name, result.error)
    assert "127.0.0.1" in (results["loopback"].error or "")
    assert "10.0.0.7" in (results["private"].error or "")
    assert "169.254.169.254" in (results["link-local"].error or "")
    # The first hops were really served (the redirects happened); /rss2 never was.
    assert feed_server.hits.get("/to") == len(targets)
    assert "/rss2" not in feed_server.hits

    # The same redirect is followed when private addresses are allowed (sandbox, tests).
    async with FeedFetcher(FetchPolicy(allow_private=True, total_timeout=2.0)) as fetcher:
        followed = await fetcher.fetch(entries["loopback"])
    assert followed.status == "ok" and followed.final_url == targets["loopback"]
