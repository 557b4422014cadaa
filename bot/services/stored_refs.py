"""Channel-neutral references to and from the rows that store them.

Storage keeps a chat as (channel, chat id, thread id) columns and a message as those plus a
message id, all strings (``storage`` cannot import ``bot``); this module is the one place that
turns those columns into ``ChatRef``/``MessageRef`` and back, so no service spells them out.
"""

from __future__ import annotations

from datetime import datetime

from bot.channels.refs import ChatRef, MessageRef
from storage.models import Crisis, Delivery, DeliveryStatus, Room


def crisis_room(crisis: Crisis) -> ChatRef | None:
    """Where the crisis's task force meets, once its room is ready."""
    if crisis.room_channel is None or crisis.room_chat_id is None:
        return None
    return ChatRef(crisis.room_channel, crisis.room_chat_id, crisis.room_thread_id)


def set_crisis_room(crisis: Crisis, room: ChatRef) -> None:
    crisis.room_channel = room.channel
    crisis.room_chat_id = room.chat_id
    crisis.room_thread_id = room.thread_id


def crisis_brief(crisis: Crisis) -> MessageRef | None:
    """The brief pinned in the crisis room, once posted."""
    room = crisis_room(crisis)
    if room is None or crisis.brief_message_id is None:
        return None
    return MessageRef(room, crisis.brief_message_id)


def room_chat(room: Room) -> ChatRef:
    return ChatRef(room.channel, room.chat_id, room.thread_id)


def delivered(row: Delivery) -> MessageRef | None:
    """The message a ledger row was sent as, if it was (to edit it later)."""
    if row.channel is None or row.chat_id is None or row.message_id is None:
        return None
    return MessageRef(ChatRef(row.channel, row.chat_id), row.message_id)


def keep_delivered(row: Delivery, message: MessageRef) -> None:
    """Remember on the ledger row where its message went."""
    row.channel = message.chat.channel
    row.chat_id = message.chat.chat_id
    row.message_id = message.message_id


def sent_delivery(
    message: MessageRef, *, kind: str, ref_id: int, user_id: int, part: str, at: datetime
) -> Delivery:
    """A ledger row for a message sent without the outbox's claim (a version shown in a room,
    an approval request): written once it went out, so the message can be found again by a
    reply to it or edited later."""
    row = Delivery(
        kind=kind,
        ref_id=ref_id,
        user_id=user_id,
        part=part,
        status=DeliveryStatus.SENT,
        attempts=1,
        created_at=at,
        sent_at=at,
    )
    keep_delivered(row, message)
    return row
