"""The HTTP surface: encodings, error shapes, files, webhooks and the /_control/ routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from emulator_fixtures import app_builder, running_app
from telegram import Update
from telegram.error import BadRequest, Conflict
from telegram.ext import CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot.sandbox.telegram_emulator import TelegramEmulator


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_tokens_methods_and_encodings(
    emulator: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    base = f"{emulator.bot_url}{emulator.token}"
    async with http.get(f"{emulator.root_url}/bot1:WRONG/getMe") as response:
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
    async with http.post(f"{base}/noSuchMethod") as response:
        assert response.status == 404
        assert (await response.json())["description"] == "Not Found"
    async with http.get(f"{base}/GETME") as response:
        assert (await response.json())["result"]["id"] == 123456

    user = emulator.create_user("Dan")
    emulator.send_text(user.id, "/start")
    markup = json.dumps({"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]})
    async with http.get(f"{base}/sendMessage", params={"chat_id": user.id, "text": "q"}) as r:
        assert (await r.json())["result"]["text"] == "q"
    form = {"chat_id": str(user.id), "text": "form", "reply_markup": markup}
    async with http.post(f"{base}/sendMessage", data=form) as r:
        assert (await r.json())["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "a"
    body = {"chat_id": user.id, "text": "json", "reply_markup": json.loads(markup)}
    async with http.post(f"{base}/sendmessage", json=body) as r:
        assert (await r.json())["ok"] is True
    multipart = aiohttp.FormData()
    multipart.add_field("chat_id", str(user.id))
    multipart.add_field("document", b"%PDF", filename="a.pdf", content_type="application/pdf")
    async with http.post(f"{base}/sendDocument", data=multipart) as r:
        document = (await r.json())["result"]["document"]
    assert document["mime_type"] == "application/pdf"
    async with http.post(f"{base}/getFile", json={"file_id": document["file_id"]}) as r:
        path = (await r.json())["result"]["file_path"]
    async with http.get(f"{emulator.file_url}{emulator.token}/{path}") as r:
        assert await r.read() == b"%PDF"

    emulator.inject_error("sendMessage", 429, retry_after=3)
    async with http.post(f"{base}/sendMessage", json=body) as r:
        assert r.status == 429
        assert await r.json() == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        }


async def test_injected_delay_holds_the_response(
    emulator: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.inject_delay("getMe", 0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with http.get(f"{emulator.bot_url}{emulator.token}/getMe") as response:
        assert response.status == 200
    assert loop.time() - started >= 0.3


async def test_webhook_delivery_with_secret(emulator: TelegramEmulator) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        received.append((secret, await request.json()))
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    app = app_builder(emulator).updater(None).build()
    try:
        async with app:
            await app.bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr3t")
            info = await app.bot.get_webhook_info()
            assert info.url.endswith("/hook")
            user = emulator.create_user("Eve")
            emulator.send_text(user.id, "hello")
            await emulator.wait_for(lambda: received)
            assert received[0][0] == "s3cr3t"
            assert received[0][1]["message"]["text"] == "hello"
            await emulator.wait_for(lambda: not emulator.hub.pending)
            assert await app.bot.delete_webhook(drop_pending_updates=True)
            assert (await app.bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_webhook_blocks_get_updates(emulator: TelegramEmulator) -> None:
    app = app_builder(emulator).build()
    async with app:
        await app.bot.set_webhook("https://example.org/hook")
        with pytest.raises(Conflict):
            await app.bot.get_updates()
        with pytest.raises(BadRequest, match=r"(?i)an https url must be provided"):
            await app.bot.set_webhook("http://example.org/hook")
        await app.bot.delete_webhook()


async def test_polling_receives_message_and_callback(emulator: TelegramEmulator) -> None:
    got: list[str] = []

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        got.append(update.effective_message.text or "")

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        got.append(f"press:{update.callback_query.data}")
        await update.callback_query.answer()

    app = app_builder(emulator).build()
    app.add_handler(MessageHandler(filters.TEXT, on_text))
    app.add_handler(CallbackQueryHandler(on_press))
    async with running_app(app):
        user = emulator.create_user("Fay")
        emulator.send_text(user.id, "ping")
        await emulator.wait_for(lambda: got == ["ping"])
        sent = await app.bot.send_message(
            user.id,
            "pick",
            reply_markup={"inline_keyboard": [[{"text": "Go", "callback_data": "go:1"}]]},
        )
        answer = await emulator.press_button(user.id, user.id, sent.message_id, data="go:1")
        assert answer["text"] is None
        assert got == ["ping", "press:go:1"]


async def test_control_http_routes(emulator: TelegramEmulator, http: aiohttp.ClientSession) -> None:
    control = f"{emulator.root_url}/_control"

    async def act(action: str, **kwargs: Any) -> Any:
        async with http.post(f"{control}/{action}", json=kwargs) as response:
            body = await response.json()
            assert body["ok"], body
            return body["result"]

    user = await act("create_user", first_name="Gia", username="gia", language_code="en")
    group = await act("create_supergroup", title="Room", forum=True, owner_id=user["id"])
    await act("add_bot", chat_id=group["id"], rights={"can_manage_topics": True})
    message = await act("send_text", user_id=user["id"], text="/help", chat_id=group["id"])
    assert message["message"]["entities"][0]["type"] == "bot_command"
    async with http.get(f"{control}/chats/{group['id']}/messages") as response:
        texts = [m["message"].get("text") for m in (await response.json())["result"]]
    assert "/help" in texts
    async with http.get(f"{control}/state") as response:
        state = (await response.json())["result"]
    assert any(chat["id"] == group["id"] for chat in state["chats"])
    async with http.post(f"{control}/send_text", json={"user_id": 1, "text": "x"}) as response:
        assert response.status == 400
    async with http.post(f"{control}/stop", json={}) as response:
        assert response.status == 404
    async with http.get(f"{control}/chats/{group['id']}/topics") as response:
        assert (await response.json())["result"] == []
    async with http.get(f"{control}/calls") as response:
        assert (await response.json())["result"] == []


async def test_a_delay_after_k_calls_holds_the_next_matching_one_only(
    emulator: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    """Counted by the emulator as calls arrive: armed before the calls, it cannot miss one
    (the crash matrix armed it by watching the log, and two calls between two looks went
    through unheld)."""
    user = emulator.create_user("Lan")
    emulator.send_text(user.id, "/start")
    emulator.inject_delay("sendMessage", 0.4, text_contains="hai", after=2)
    loop = asyncio.get_running_loop()

    async def send(text: str) -> float:
        started = loop.time()
        url = f"{emulator.bot_url}{emulator.token}/sendMessage"
        async with http.post(url, json={"chat_id": user.id, "text": text}) as response:
            assert response.status == 200
        return loop.time() - started

    assert await send("một") < 0.3  # not matching: not counted
    assert max(await asyncio.gather(send("hai 1"), send("hai 2"))) < 0.3  # the first two pass
    held = asyncio.ensure_future(send("hai 3"))
    await emulator.wait_for(lambda: emulator.held, timeout=1)
    assert [p["text"] for _, p in emulator.held] == ["hai 3"]
    assert await held >= 0.4
    assert await send("hai 4") < 0.3  # held once
