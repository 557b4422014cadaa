"""Updates from the Zalo Bot Platform as plain dataclasses.

One update is ``{"event_name": "message.text.received", "message": {...}}``. Zalo's own documents
show it both bare and wrapped as ``{"ok": true, "result": {...}}`` (getUpdates answers wrapped;
webhook deliveries have been seen both ways), so :func:`parse_update` accepts both. Ids are
strings (Zalo's are hex, not numbers) and ``date`` is in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TEXT_RECEIVED = "message.text.received"
IMAGE_RECEIVED = "message.image.received"
STICKER_RECEIVED = "message.sticker.received"
UNSUPPORTED_RECEIVED = "message.unsupported.received"


class UpdateFormatError(ValueError):
    """A payload that is not a Zalo update (the receiver answers 400)."""


@dataclass(frozen=True)
class ZaloUser:
    id: str
    display_name: str = ""
    is_bot: bool = False


@dataclass(frozen=True)
class ZaloChat:
    id: str
    chat_type: str = "PRIVATE"

    @property
    def is_private(self) -> bool:
        return self.chat_type.upper() == "PRIVATE"


@dataclass(frozen=True)
class ZaloMessage:
    message_id: str
    chat: ZaloChat
    sender: ZaloUser
    date: datetime
    text: str | None = None
    photo_url: str | None = None
    caption: str | None = None
    sticker: str | None = None


@dataclass(frozen=True)
class ZaloUpdate:
    event_name: str
    message: ZaloMessage | None
    raw: dict[str, Any]

    @property
    def is_text(self) -> bool:
        return self.event_name == TEXT_RECEIVED and self.message is not None

    @property
    def dedupe_key(self) -> str:
        """Zalo has no update id; the message id is the key to drop a redelivery."""
        return f"{self.event_name}:{self.message.message_id if self.message else ''}"


def unwrap(payload: Any) -> Any:
    """The update inside ``{"ok": true, "result": …}``, or ``payload`` if it is bare."""
    if isinstance(payload, dict) and "result" in payload and "ok" in payload:
        return payload["result"]
    return payload


def parse_update(payload: Any) -> ZaloUpdate:
    """One update, bare or wrapped. Raises :class:`UpdateFormatError` for anything else."""
    data = unwrap(payload)
    if not isinstance(data, dict):
        raise UpdateFormatError("an update must be a JSON object")
    event = data.get("event_name")
    raw_message = data.get("message")
    if not isinstance(event, str) and not isinstance(raw_message, dict):
        raise UpdateFormatError("not a Zalo update: no event_name and no message")
    message = _message(raw_message) if isinstance(raw_message, dict) else None
    if not isinstance(event, str):
        # getUpdates' documented sample has no event_name; a message with text is a text event.
        event = TEXT_RECEIVED if message and message.text is not None else UNSUPPORTED_RECEIVED
    return ZaloUpdate(event_name=event, message=message, raw=data)


def _message(data: dict[str, Any]) -> ZaloMessage:
    chat = data.get("chat")
    sender = data.get("from")
    if not isinstance(chat, dict) or "id" not in chat:
        raise UpdateFormatError("message.chat.id is missing")
    if not isinstance(sender, dict) or "id" not in sender:
        sender = {"id": chat["id"]}  # in a private chat the chat is the person
    name = sender.get("display_name") or sender.get("first_name") or sender.get("name") or ""
    return ZaloMessage(
        message_id=str(data.get("message_id", "")),
        chat=ZaloChat(str(chat["id"]), str(chat.get("chat_type") or "PRIVATE")),
        sender=ZaloUser(str(sender["id"]), str(name), bool(sender.get("is_bot", False))),
        date=_from_millis(data.get("date")),
        text=_opt_str(data.get("text")),
        photo_url=_opt_str(data.get("photo_url") or data.get("photo")),
        caption=_opt_str(data.get("caption")),
        sticker=_opt_str(data.get("sticker")),
    )


def _from_millis(value: Any) -> datetime:
    try:
        millis = float(value)
    except (TypeError, ValueError):
        millis = 0.0
    return datetime.fromtimestamp(millis / 1000, UTC)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
