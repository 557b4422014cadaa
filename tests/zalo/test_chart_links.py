"""Signed, expiring chart links: served to Zalo's fetcher, refused when altered or old."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from emulator_fixtures import serving

from bot.channels.zalo import ChartLinks, ZaloBotClient, chart_route
from bot.sandbox.zalo_emulator import ZaloEmulator

KEY = b"k" * 32
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def charts(tmp_path: Path) -> Path:
    (tmp_path / "alert-12.png").write_bytes(PNG)
    (tmp_path / "secret.txt").write_text("not a chart")
    return tmp_path


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        return answer.status, await answer.read()


async def test_a_link_works_until_it_expires(charts: Path) -> None:
    clock = Clock()
    links = ChartLinks(KEY, "http://placeholder", now=clock)
    app = web.Application()
    app.add_routes([chart_route(charts, links)])
    async with serving(app) as root:
        links.base_url = root
        url = links.url("alert-12.png", ttl_seconds=600)
        assert await fetch(url) == (200, PNG)
        clock.t += 601
        status, body = await fetch(url)
        assert (status, body) == (403, b"link expired")


async def test_altered_links_are_refused(charts: Path) -> None:
    links = ChartLinks(KEY, "http://x", now=Clock())
    app = web.Application()
    app.add_routes([chart_route(charts, links)])
    async with serving(app) as root:
        links.base_url = root
        url = links.url("alert-12.png", ttl_seconds=600)
        query = parse_qs(urlsplit(url).query)
        exp, sig = query["exp"][0], query["sig"][0]
        later = int(exp) + 86_400
        assert (await fetch(f"{root}/charts/alert-12.png?exp={later}&sig={sig}"))[0] == 403
        assert (await fetch(f"{root}/charts/alert-13.png?exp={exp}&sig={sig}"))[0] == 403
        assert (await fetch(f"{root}/charts/alert-12.png"))[0] == 403
        assert (await fetch(f"{root}/charts/secret.txt?exp={exp}&sig={sig}"))[0] == 404
        other = ChartLinks(b"o" * 32, root, now=Clock()).url("alert-12.png", ttl_seconds=600)
        assert (await fetch(other))[0] == 403
    with pytest.raises(ValueError):
        links.url("../etc/passwd.png", ttl_seconds=60)
    with pytest.raises(ValueError):
        ChartLinks(b"short", "http://x")


async def test_zalo_fetches_the_chart_through_a_signed_link(
    charts: Path, zalo: ZaloEmulator, client: ZaloBotClient
) -> None:
    links = ChartLinks(KEY, "http://x")
    app = web.Application()
    app.add_routes([chart_route(charts, links)])
    zalo.send_text("a11ce", "hi")
    async with serving(app) as root:
        links.base_url = root
        await client.send_photo("a11ce", links.url("alert-12.png", ttl_seconds=300), "Cảnh báo #12")
    photo = zalo.messages("a11ce", from_bot=True)[-1]
    assert photo.photo_bytes == len(PNG) and photo.caption == "Cảnh báo #12"
