"""The Zalo Bot Platform client against the emulator, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from emulator_fixtures import serving

from bot.channels.zalo import (
    MessageTooLong,
    ZaloBadRequest,
    ZaloBadResponse,
    ZaloBotClient,
    ZaloNetworkError,
    ZaloServerError,
    ZaloTimeout,
    ZaloUnauthorized,
)
from bot.sandbox.zalo_emulator import ZaloEmulator

ALICE = "a11ce0000000000000a1"


async def test_get_me(client: ZaloBotClient, zalo: ZaloEmulator) -> None:
    me = await client.get_me()
    assert me.id == zalo.token.split(":")[0]
    assert me.account_type == "BASIC" and me.can_join_groups is False


async def test_a_wrong_token_is_refused_and_never_shown(zalo: ZaloEmulator) -> None:
    async with ZaloBotClient("1:WRONGSECRET", base_url=zalo.bot_api_url) as bad:
        with pytest.raises(ZaloUnauthorized) as caught:
            await bad.get_me()
    assert "WRONGSECRET" not in str(caught.value)
    assert zalo.calls[-1].error_code == 401


async def test_get_updates_hands_out_one_update_per_call(
    client: ZaloBotClient, zalo: ZaloEmulator
) -> None:
    zalo.send_text(ALICE, "xin chào", display_name="Alice")
    zalo.send_text(ALICE, "/ack 12")
    first = await client.get_update(wait_seconds=1)
    second = await client.get_update(wait_seconds=1)
    assert first is not None and first.message is not None and first.message.text == "xin chào"
    assert second is not None and second.message is not None and second.message.text == "/ack 12"
    assert first.message.sender.display_name == "Alice"
    started = time.monotonic()
    assert await client.get_update(wait_seconds=1) is None  # 408 "Request timeout": nothing came
    assert 0.8 < time.monotonic() - started < 3


async def test_a_long_poll_returns_as_soon_as_a_message_arrives(
    client: ZaloBotClient, zalo: ZaloEmulator
) -> None:
    poll = asyncio.create_task(client.get_update(wait_seconds=10))
    await asyncio.sleep(0.2)
    zalo.send_text(ALICE, "đang chờ")
    update = await asyncio.wait_for(poll, timeout=3)
    assert update is not None and update.message is not None and update.message.text == "đang chờ"


async def test_send_message_limits(client: ZaloBotClient, zalo: ZaloEmulator) -> None:
    zalo.send_text(ALICE, "hi")
    sent = await client.send_message(ALICE, "ớ" * 2000)
    assert zalo.messages(ALICE, from_bot=True)[-1].text == "ớ" * 2000
    assert sent.message_id == zalo.messages(ALICE, from_bot=True)[-1].message_id
    with pytest.raises(MessageTooLong):
        await client.send_message(ALICE, "ớ" * 2001)
    # Zalo itself refuses it too, should a caller bypass the check.
    with pytest.raises(ZaloBadRequest, match="too long"):
        await client.call("sendMessage", {"chat_id": ALICE, "text": "ớ" * 2001})
    with pytest.raises(ZaloBadRequest, match="empty"):
        await client.call("sendMessage", {"chat_id": ALICE, "text": ""})
    assert len(zalo.messages(ALICE, from_bot=True)) == 1


async def test_long_text_is_split_at_line_boundaries(
    client: ZaloBotClient, zalo: ZaloEmulator
) -> None:
    zalo.send_text(ALICE, "hi")
    lines = [f"Dòng {i}: " + "nội dung " * 20 for i in range(40)]
    sent = await client.send_long_message(ALICE, "\n".join(lines))
    received = [m.text or "" for m in zalo.messages(ALICE, from_bot=True)]
    assert len(sent) == len(received) >= 3
    assert all(len(t) <= 2000 for t in received)
    assert [line.strip() for t in received for line in t.split("\n")] == [
        line.strip() for line in lines
    ]


@pytest.mark.parametrize("markup", ["reply_markup", "inline_keyboard", "keyboard", "buttons"])
async def test_buttons_are_refused(client: ZaloBotClient, zalo: ZaloEmulator, markup: str) -> None:
    zalo.send_text(ALICE, "hi")
    with pytest.raises(ZaloBadRequest, match="buttons are not supported"):
        await client.call("sendMessage", {"chat_id": ALICE, "text": "Duyệt?", markup: [[]]})
    assert zalo.messages(ALICE, from_bot=True) == []


async def test_a_chat_nobody_opened_is_refused(client: ZaloBotClient) -> None:
    with pytest.raises(ZaloBadRequest, match="chat not found"):
        await client.send_message("0000stranger0000", "hello")


async def test_chat_action_and_photo_by_url(client: ZaloBotClient, zalo: ZaloEmulator) -> None:
    zalo.send_text(ALICE, "hi")
    await client.send_chat_action(ALICE, "typing")
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100

    async def chart(_request: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    app = web.Application()
    app.router.add_get("/chart.png", chart)
    async with serving(app) as root:
        await client.send_photo(ALICE, f"{root}/chart.png", caption="Biểu đồ")
        with pytest.raises(ZaloBadRequest, match="cannot fetch photo"):
            await client.send_photo(ALICE, f"{root}/missing.png")
    photo = zalo.messages(ALICE, from_bot=True)[-1]
    assert photo.photo_url == f"{root}/chart.png"
    assert photo.caption == "Biểu đồ" and photo.photo_bytes == len(png)
    with pytest.raises(ValueError):
        await client.send_chat_action(ALICE, "record_video")


async def test_webhook_lifecycle_excludes_get_updates(
    client: ZaloBotClient, zalo: ZaloEmulator
) -> None:
    info = await client.set_webhook("https://bot.example.vn/zalo", "s3cret-s3cret")
    assert info.url == "https://bot.example.vn/zalo" and info.updated_at is not None
    assert (await client.get_webhook_info()).url == "https://bot.example.vn/zalo"
    with pytest.raises(ZaloBadRequest) as caught:
        await client.get_update(wait_seconds=1)
    assert caught.value.code == 409
    assert (await client.delete_webhook()).url == ""
    assert await client.get_update(wait_seconds=0) is None
    with pytest.raises(ValueError, match="https"):
        await client.set_webhook("http://bot.example.vn/zalo", "s3cret-s3cret")
    with pytest.raises(ValueError, match="8-256"):
        await client.set_webhook("https://bot.example.vn/zalo", "short")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"message_id": "m1", "date": 1749632637199}, None),  # bare result
        (200, {"ok": True, "result": {"message_id": "m1", "date": 1749632637199}}, None),
        (400, {"ok": False, "error_code": 400, "description": "bad"}, ZaloBadRequest),
        (500, {"ok": False, "error_code": 500, "description": "oops"}, ZaloServerError),
        (502, None, ZaloServerError),
        (200, None, ZaloBadResponse),
    ],
)
async def test_envelopes_and_error_mapping(
    status: int, body: object, expected: type | None
) -> None:
    async def answer(_request: web.Request) -> web.Response:
        if body is None:
            return web.Response(status=status, text="<html>gateway</html>")
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", answer)
    async with serving(app) as root, ZaloBotClient("1:T", base_url=root) as bot:
        if expected is None:
            sent = await bot.send_message("c", "hi")
            assert sent.message_id == "m1" and sent.date.year == 2025
        else:
            with pytest.raises(expected):
                await bot.send_message("c", "hi")


async def test_timeouts_and_unreachable_servers() -> None:
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": {}})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", slow)
    async with serving(app) as root, ZaloBotClient("1:T", base_url=root, timeout=0.3) as bot:
        with pytest.raises(ZaloTimeout):
            await bot.get_me()
    async with ZaloBotClient("1:T", base_url=root, timeout=1) as bot:  # the server is gone
        with pytest.raises(ZaloNetworkError) as caught:
            await bot.get_me()
    assert "1:T" not in str(caught.value)
