"""Parsing Zalo updates, bare and wrapped."""

from __future__ import annotations

import pytest

from bot.channels.zalo import UpdateFormatError, parse_update

BARE = {
    "event_name": "message.text.received",
    "message": {
        "message_id": "2d758cb5e222177a4e35",
        "date": 1750316131602,
        "chat": {"id": "6ede9afa66b88fe6d6a9", "chat_type": "PRIVATE"},
        "from": {"id": "6ede9afa66b88fe6d6a9", "display_name": "Ted", "is_bot": False},
        "text": "/ack 12",
    },
}


@pytest.mark.parametrize("payload", [BARE, {"ok": True, "result": BARE}])
def test_both_envelopes_give_the_same_update(payload: dict) -> None:
    update = parse_update(payload)
    assert update.is_text
    assert update.message is not None
    assert update.message.text == "/ack 12"
    assert update.message.sender.display_name == "Ted"
    assert update.message.chat.is_private
    assert update.message.date.year == 2025
    assert update.dedupe_key == "message.text.received:2d758cb5e222177a4e35"


def test_documented_get_updates_sample_without_event_name_is_a_text() -> None:
    sample = {"message": {**BARE["message"], "from": {"id": "x", "first_name": "Nguyen Van A"}}}
    update = parse_update({"ok": True, "result": sample})
    assert (
        update.is_text and update.message and update.message.sender.display_name == "Nguyen Van A"
    )


@pytest.mark.parametrize(
    "payload", [[], "text", {"ok": True, "result": 3}, {"foo": 1}, {"message": {"text": "x"}}]
)
def test_anything_else_is_refused(payload: object) -> None:
    with pytest.raises(UpdateFormatError):
        parse_update(payload)
