"""Zalo OA group rooms (GMF) on the emulator, and signed OA events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from emulator_fixtures import serving

from bot.channels.zalo import MessageTooLong
from bot.channels.zalo.oa import (
    SIGNATURE_HEADER,
    OaApiError,
    OaTokenStore,
    ZaloOaClient,
    event_signature,
    group_of,
    oa_event_handler,
)
from bot.clock import SystemClock
from bot.sandbox.zalo_emulator import DEFAULT_APP_ID, ZaloEmulator, oa_user_id
from storage.db import Database

OA_KEY = "oa-secret-key-for-tests"

# The OA knows people by OA-scoped ids, never their Bot Platform ids ("u1"…).
U1, U2, U3 = (oa_user_id(DEFAULT_APP_ID, u) for u in ("u1", "u2", "u3"))


@pytest_asyncio.fixture
async def oa(zalo: ZaloEmulator, sqlite_db: Database) -> AsyncIterator[ZaloOaClient]:
    store = OaTokenStore(sqlite_db, zalo.oa.app_id, SystemClock())
    store.seed(zalo.grant_oa_access())
    for user in ("u1", "u2", "u3"):
        zalo.add_oa_follower(user)
    zalo.add_oa_asset("gmf10-asset-1")
    async with ZaloOaClient(
        store, "app-secret-for-tests", oauth_url=zalo.root_url, api_url=zalo.root_url
    ) as client:
        yield client


async def test_a_room_is_created_staffed_used_and_closed(
    oa: ZaloOaClient, zalo: ZaloEmulator
) -> None:
    group = await oa.create_group(
        "KH-2026-031 Tin đồn lũ",
        [U1, U2, U1],
        asset_id="gmf10-asset-1",
        description="Tổ phản ứng nhanh",
    )
    assert group.group_link.endswith(group.group_id)
    await oa.invite(group.group_id, [U3])
    await oa.remove_members(group.group_id, [U1])
    assert await oa.list_members(group.group_id) == [U2, U3]
    message_id = await oa.send_group_text(group.group_id, "Bản tóm tắt vụ việc")
    stored = zalo.oa.group(group.group_id)
    assert stored.messages == [
        {"from": "oa", "text": "Bản tóm tắt vụ việc", "message_id": message_id}
    ]
    assert stored.description == "Tổ phản ứng nhanh"
    await oa.close_group(group.group_id)
    assert stored.closed and zalo.oa.assets["gmf10-asset-1"] is None
    with pytest.raises(OaApiError, match="group not found"):
        await oa.send_group_text(group.group_id, "sau khi đóng")


async def test_errors_arrive_as_http_200_and_are_raised(
    oa: ZaloOaClient, zalo: ZaloEmulator
) -> None:
    with pytest.raises(OaApiError) as caught:
        await oa.create_group("Tổ", ["stranger"], asset_id="gmf10-asset-1")
    assert caught.value.code == -230  # not a follower of the OA
    group = await oa.create_group("Tổ", [U1], asset_id="gmf10-asset-1")
    with pytest.raises(OaApiError, match="already used"):
        await oa.create_group("Tổ 2", [U1], asset_id="gmf10-asset-1")
    with pytest.raises(MessageTooLong):
        await oa.send_group_text(group.group_id, "x" * 2001)
    assert all(c.error_code in (0, -230, -201) for c in zalo.calls if c.api == "oa")


async def received_events() -> tuple[web.Application, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    async def on_event(event: dict[str, Any]) -> None:
        events.append(event)

    app = web.Application()
    app.router.add_post("/zalo/oa", oa_event_handler(ZaloEmulator().oa.app_id, OA_KEY, on_event))
    return app, events


async def test_signed_group_events_are_accepted(oa: ZaloOaClient, zalo: ZaloEmulator) -> None:
    group = await oa.create_group("Tổ", [U1, U2], asset_id="gmf10-asset-1")
    app, events = await received_events()
    async with serving(app) as root:
        zalo.set_oa_webhook(f"{root}/zalo/oa")
        assert await zalo.user_sends_group_text(group.group_id, "u2", "/ack 12") == 200
    [event] = events
    assert event["message"]["text"] == "/ack 12" and event["sender"]["id"] == U2 != "u2"
    assert group_of(event) == group.group_id


def sign(body: bytes, key: str, app_id: str, timestamp: str) -> str:
    return "mac=" + event_signature(app_id, body, timestamp, key)


@pytest.mark.parametrize("forgery", ["missing", "wrong_key", "app_secret", "tampered", "other_app"])
async def test_bad_signatures_are_refused(forgery: str) -> None:
    app_id = ZaloEmulator().oa.app_id
    event = {
        "app_id": app_id,
        "event_name": "user_send_group_text",
        "timestamp": "1750000000000",
        "sender": {"id": "u9"},
        "recipient": {"id": "g1"},
        "message": {"text": "/duyet 45"},
    }
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json"}
    if forgery == "wrong_key":
        headers[SIGNATURE_HEADER] = sign(body, "guessed-key", app_id, event["timestamp"])
    elif forgery == "app_secret":
        headers[SIGNATURE_HEADER] = sign(body, "app-secret-for-tests", app_id, event["timestamp"])
    elif forgery == "tampered":
        headers[SIGNATURE_HEADER] = sign(body, OA_KEY, app_id, event["timestamp"])
        body = body.replace(b"/duyet 45", b"/duyet 46")
    elif forgery == "other_app":
        other = json.dumps({**event, "app_id": "999"}).encode()
        headers[SIGNATURE_HEADER] = sign(other, OA_KEY, "999", event["timestamp"])
        body = other
    app, events = await received_events()
    async with serving(app) as root, aiohttp.ClientSession() as http:
        async with http.post(f"{root}/zalo/oa", data=body, headers=headers) as answer:
            assert answer.status == 403
        good = {
            **headers,
            SIGNATURE_HEADER: sign(body, OA_KEY, json.loads(body)["app_id"], event["timestamp"]),
        }
        async with http.post(f"{root}/zalo/oa", data=body, headers=good) as answer:
            assert answer.status == (403 if forgery == "other_app" else 200)
    assert len(events) == (0 if forgery == "other_app" else 1)
