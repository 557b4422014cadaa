"""The webhook receiver: the emulator delivers over HTTP; forged posts are refused."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from emulator_fixtures import serving

from bot.channels.zalo import SECRET_HEADER, ZaloBotClient, ZaloUpdate, add_webhook_route
from bot.sandbox.zalo_emulator import ZaloEmulator

SECRET = "a-long-webhook-secret_42"
ALICE = "a11ce0000000000000a1"
UPDATE = {
    "event_name": "message.text.received",
    "message": {
        "message_id": "m1",
        "date": 1750316131602,
        "chat": {"id": ALICE, "chat_type": "PRIVATE"},
        "from": {"id": ALICE, "display_name": "Mallory"},
        "text": "/duyet 45",
    },
}


def receiver(received: list[ZaloUpdate]) -> web.Application:
    async def on_update(update: ZaloUpdate) -> None:
        received.append(update)

    app = web.Application()
    add_webhook_route(app, "/zalo/webhook", SECRET, on_update)
    return app


@pytest.mark.parametrize("envelope", ["bare", "wrapped"])
async def test_emulator_delivers_with_the_secret_in_both_envelopes(
    zalo: ZaloEmulator, client: ZaloBotClient, envelope: str
) -> None:
    received: list[ZaloUpdate] = []
    zalo.set_webhook_envelope(envelope)
    async with serving(receiver(received)) as root:
        await client.set_webhook(f"{root}/zalo/webhook", SECRET)
        zalo.send_text(ALICE, "/ack 12", display_name="Alice")
        zalo.send_text(ALICE, "/tuchoi 45 sai số liệu")
        await zalo.wait_for(lambda: len(received) == 2)
    assert [u.message.text for u in received if u.message] == ["/ack 12", "/tuchoi 45 sai số liệu"]
    assert received[0].message and received[0].message.sender.display_name == "Alice"


async def test_a_webhook_with_another_secret_refuses_every_delivery(
    zalo: ZaloEmulator, client: ZaloBotClient
) -> None:
    received: list[ZaloUpdate] = []
    async with serving(receiver(received)) as root:
        await client.set_webhook(f"{root}/zalo/webhook", "not-the-receivers-secret")
        zalo.send_text(ALICE, "/ack 12")
        await zalo.wait_for(lambda: zalo.bot_platform.webhook_last_error == "HTTP 403")
    assert received == []
    assert zalo.bot_platform.pending == 1  # Zalo keeps it and tries again


@pytest.mark.parametrize(
    "headers",
    [{}, {SECRET_HEADER: "wrong-secret-value"}, {SECRET_HEADER: SECRET[:-1]}, {SECRET_HEADER: ""}],
)
async def test_forged_posts_are_refused(headers: dict[str, str]) -> None:
    received: list[ZaloUpdate] = []
    async with (
        serving(receiver(received)) as root,
        aiohttp.ClientSession() as http,
        http.post(f"{root}/zalo/webhook", json=UPDATE, headers=headers) as answer,
    ):
        assert answer.status == 403
    assert received == []


async def test_malformed_bodies_are_400_even_with_the_secret() -> None:
    received: list[ZaloUpdate] = []
    async with serving(receiver(received)) as root, aiohttp.ClientSession() as http:
        for body in (b"not json", b"[1, 2]", b'{"ok": true, "result": {"foo": 1}}'):
            async with http.post(
                f"{root}/zalo/webhook", data=body, headers={SECRET_HEADER: SECRET}
            ) as answer:
                assert answer.status == 400
        async with http.post(
            f"{root}/zalo/webhook",
            json={"ok": True, "result": UPDATE},
            headers={SECRET_HEADER: SECRET},
        ) as answer:
            assert answer.status == 200
    assert len(received) == 1


def test_a_short_secret_is_refused_at_setup() -> None:
    with pytest.raises(ValueError, match="8-256"):
        add_webhook_route(web.Application(), "/x", "short", receiver_noop)


async def receiver_noop(update: ZaloUpdate) -> None:
    return None


async def test_a_failed_hand_over_is_delivered_again_in_order(
    zalo: ZaloEmulator, client: ZaloBotClient
) -> None:
    received: list[ZaloUpdate] = []
    failures = [RuntimeError("queue full")]

    async def flaky(update: ZaloUpdate) -> None:
        if failures:
            raise failures.pop()
        received.append(update)

    app = web.Application()
    add_webhook_route(app, "/zalo/webhook", SECRET, flaky)
    async with serving(app) as root:
        await client.set_webhook(f"{root}/zalo/webhook", SECRET)
        zalo.send_text(ALICE, "một")
        zalo.send_text(ALICE, "hai")
        await zalo.wait_for(lambda: len(received) == 2)
    assert [u.message.text for u in received if u.message] == ["một", "hai"]
    assert len({u.dedupe_key for u in received}) == 2
