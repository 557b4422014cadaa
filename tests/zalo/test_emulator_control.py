"""The Zalo emulator's control API over HTTP: inject what a person writes, read what the bot
sent, drive the Official Account."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.channels.zalo import ZaloBotClient
from bot.sandbox.zalo_emulator import ZaloEmulator


async def control(http: aiohttp.ClientSession, root: str, action: str, **kwargs: Any) -> Any:
    async with http.post(f"{root}/_control/{action}", json=kwargs) as answer:
        body = await answer.json()
        return answer.status, body


async def test_inject_a_message_and_read_the_reply(
    zalo: ZaloEmulator, client: ZaloBotClient
) -> None:
    root = zalo.root_url
    async with aiohttp.ClientSession() as http:
        status, body = await control(
            http, root, "send_text", user_id="b0b", text="/start", display_name="Bob"
        )
        assert status == 200 and body["result"]["text"] == "/start"
        update = await client.get_update(wait_seconds=1)
        assert update is not None and update.message is not None
        await client.send_message(update.message.chat.id, "Chào Bob")
        status, body = await control(
            http, root, "wait_for_message", chat_id="b0b", after=body["result"]["message_id"]
        )
        assert status == 200 and body["result"]["text"] == "Chào Bob"
        async with http.get(f"{root}/_control/chats/b0b/messages") as answer:
            texts = [m["text"] for m in (await answer.json())["result"]]
        assert texts == ["/start", "Chào Bob"]
        async with http.get(f"{root}/_control/calls?method=sendMessage") as answer:
            [call] = (await answer.json())["result"]
        assert call["ok"] and call["params"] == {"chat_id": "b0b", "text": "Chào Bob"}
        async with http.get(f"{root}/_control/state") as answer:
            state = (await answer.json())["result"]
        assert state["people"] == [{"user_id": "b0b", "display_name": "Bob"}]


async def test_control_misuse_is_a_clear_4xx(zalo: ZaloEmulator) -> None:
    root = zalo.root_url
    async with aiohttp.ClientSession() as http:
        assert (await control(http, root, "drop_database"))[0] == 404
        assert (await control(http, root, "send_text", user_id="x"))[0] == 400  # no text
        status, body = await control(http, root, "wait_for_message", chat_id="nobody")
        assert status == 400 and "never wrote" in body["error"]
        assert (await control(http, root, "set_webhook_envelope", envelope="xml"))[0] == 400
        assert (await control(http, root, "set_fetch_photos", enabled=False))[0] == 200
        assert zalo.bot_platform.fetch_photos is False
        async with http.get(f"{root}/_control/chats/nobody/messages") as answer:
            assert answer.status == 404


async def test_official_account_over_the_control_api(zalo: ZaloEmulator) -> None:
    root = zalo.root_url
    async with aiohttp.ClientSession() as http:
        status, body = await control(http, root, "grant_oa_access")
        assert status == 200 and body["result"].startswith("rt-")
        await control(http, root, "add_oa_follower", user_id="u1", display_name="An")
        await control(http, root, "add_oa_asset", asset_id="a1")
        async with http.get(f"{root}/_control/state") as answer:
            oa = (await answer.json())["result"]["oa"]
        assert oa["followers"] == {zalo.oa_user_id("u1"): "An"} and oa["assets"] == {"a1": None}
        async with http.get(f"{root}/_control/oa/groups") as answer:
            assert (await answer.json())["result"] == []
