"""The Zalo notifier against the strict emulator: plain text within 2,000 characters, charts by
signed links, the layer's degrade for edits and pins, and Zalo's errors as neutral ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from aiohttp import web

from bot.channels.base import Attachment, Button, RecipientUnreachable, Rejected
from bot.channels.refs import ChatRef, MessageRef
from bot.channels.zalo import ChartLinks, ZaloBotClient, chart_route
from bot.channels.zalo.notifier import CAPABILITIES, CHART_LINK_TTL, ZaloNotifier
from bot.channels.zalo.plain import to_plain
from bot.sandbox.zalo_emulator import ZaloEmulator
from handlers.conversation.degrade import DegradingNotifier

USER = "a1b2c3d4e5f60789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_telegram_html_becomes_plain_text() -> None:
    html = '<b>Cảnh báo</b> &amp; <i>x</i> &lt;3\n<a href="https://vnexpress.net/a">Bài</a>'
    assert to_plain(html) == "Cảnh báo & x <3\nBài (https://vnexpress.net/a)"
    assert to_plain('<a href="https://x.vn">https://x.vn</a>') == "https://x.vn"


@pytest.fixture
def chart_dir(tmp_path: Path) -> Path:
    return tmp_path / "charts"


async def served_notifier(
    zalo: ZaloEmulator, client: ZaloBotClient, chart_dir: Path
) -> tuple[ZaloNotifier, web.AppRunner]:
    app = web.Application()
    runner = web.AppRunner(app)
    links = ChartLinks(b"k" * 32, "http://127.0.0.1:0")
    app.router.add_routes([chart_route(chart_dir, links)])
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    links.base_url = f"http://127.0.0.1:{port}"
    return ZaloNotifier(client, links, chart_dir), runner


async def test_long_html_text_is_split_and_plain(zalo: ZaloEmulator, client: ZaloBotClient) -> None:
    zalo.send_text(USER, "hi")
    notifier = ZaloNotifier(client, ChartLinks(b"k" * 32, "http://127.0.0.1"), Path("/nonexistent"))
    paragraph = "<b>Tin</b> " + "ngộ độc thực phẩm " * 40
    await notifier.send_text(ChatRef("zalo", USER), "\n\n".join([paragraph] * 6))
    sent = [m.text or "" for m in zalo.messages(USER, from_bot=True)]
    assert len(sent) >= 2 and all(len(t) <= 2000 for t in sent)
    assert all("<b>" not in t for t in sent) and sent[0].startswith("Tin ngộ độc")


async def test_chart_goes_by_a_signed_link_and_is_reused(
    zalo: ZaloEmulator, client: ZaloBotClient, chart_dir: Path
) -> None:
    zalo.send_text(USER, "hi")
    notifier, runner = await served_notifier(zalo, client, chart_dir)
    try:
        to = ChatRef("zalo", USER)
        first = await notifier.send_photo(to, Attachment("alert-1.png", PNG), "<b>Biểu đồ</b>")
        assert first.file_id and (chart_dir / first.file_id).is_file()
        again = await notifier.send_photo(to, Attachment("chart.png", file_id=first.file_id))
        assert again.file_id == first.file_id
    finally:
        await runner.cleanup()
    photos = [m for m in zalo.messages(USER, from_bot=True) if m.photo_url]
    assert [m.photo_bytes for m in photos] == [len(PNG), len(PNG)]  # Zalo fetched both
    assert photos[0].caption == "Biểu đồ"


async def test_the_layer_degrades_edits_pins_and_buttons(
    zalo: ZaloEmulator, client: ZaloBotClient
) -> None:
    zalo.send_text(USER, "hi")
    zalo_notifier = ZaloNotifier(client, ChartLinks(b"k" * 32, "http://x"), Path("/nonexistent"))
    with pytest.raises(Rejected):
        await zalo_notifier.edit_text(MessageRef(ChatRef("zalo", USER), "1"), "x")
    notifier = DegradingNotifier(zalo_notifier, CAPABILITIES)
    to = ChatRef("zalo", USER)
    sent = await notifier.send_text(to, "Cảnh báo", [[Button("✓ Đã nắm", "alert.ack", 12)]])
    await notifier.edit_text(sent, "Cảnh báo (cập nhật)")
    await notifier.pin(sent)
    texts = [m.text for m in zalo.messages(USER, from_bot=True)]
    assert texts[-1] == "Cảnh báo (cập nhật)" and len(texts) == 2
    assert zalo.calls_to("pinMessage") == []


async def test_errors_become_neutral(zalo: ZaloEmulator, client: ZaloBotClient) -> None:
    notifier = ZaloNotifier(client, ChartLinks(b"k" * 32, "http://x"), Path("/nonexistent"))
    with pytest.raises(RecipientUnreachable):  # never wrote to the bot: "chat not found"
        await notifier.send_text(ChatRef("zalo", "ffffffffffffffff"), "xin chào")
    async with ZaloBotClient("1:wrong", base_url=zalo.bot_api_url, timeout=5) as wrong:
        bad = ZaloNotifier(wrong, ChartLinks(b"k" * 32, "http://x"), Path("/nonexistent"))
        zalo.send_text(USER, "hi")
        with pytest.raises(Rejected):
            await bad.send_text(ChatRef("zalo", USER), "xin chào")


async def test_charts_no_link_can_reach_are_deleted(
    zalo: ZaloEmulator, client: ZaloBotClient, chart_dir: Path
) -> None:
    zalo.send_text(USER, "hi")
    notifier, runner = await served_notifier(zalo, client, chart_dir)
    to = ChatRef("zalo", USER)
    try:
        old = await notifier.send_photo(to, Attachment("a.png", PNG))
        assert old.file_id is not None
        long_ago = time.time() - 3 * CHART_LINK_TTL
        os.utime(chart_dir / old.file_id, (long_ago, long_ago))
        await notifier.send_photo(to, Attachment("b.png", PNG + b"\x01"))
        assert not (chart_dir / old.file_id).exists()
        with pytest.raises(Rejected):  # its id cannot bring it back
            await notifier.send_photo(to, Attachment("chart.png", file_id=old.file_id))
    finally:
        await runner.cleanup()
