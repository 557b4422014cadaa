"""Statements awaiting work, for the approval tests on every channel: a crisis led by the
author (in a room, or in none: Zalo has none) holding one holding statement per number."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.channels.refs import ChatRef
from bot.services import drafts as dr
from storage.models import Crisis, Draft

BODY = "Sở Y tế đang xác minh thông tin về vụ ngộ độc tại Tân Phong và sẽ cập nhật lúc 17 giờ."


def add_crisis(
    session: Session, agency_id: int, lead_id: int | None, now: datetime, room: ChatRef | None
) -> int:
    """An open crisis led by ``lead_id``, with its room (or none); returns its id."""
    crisis = Crisis(
        agency_id=agency_id,
        title="Ngộ độc thực phẩm",
        lead_id=lead_id,
        room_channel=room.channel if room else None,
        room_chat_id=room.chat_id if room else None,
        detected_at=now - timedelta(hours=1),
        deadline_at=now + timedelta(hours=23),
    )
    session.add(crisis)
    session.flush()
    assert crisis.id is not None
    return crisis.id


def add_statements(
    session: Session,
    agency_id: int,
    author_id: int | None,
    now: datetime,
    *,
    room: ChatRef | None = None,
    numbers: Sequence[int] = (1,),
    body: str = BODY,
    **draft_fields: Any,
) -> list[int]:
    """The crisis and version 1 of each numbered statement; returns the drafts' ids."""
    crisis_id = add_crisis(session, agency_id, author_id, now, room)
    drafts = [
        Draft(
            crisis_id=crisis_id,
            number=number,
            template="holding",
            language="vi",
            body=body,
            body_sha256=dr.sha256(body),
            author_id=author_id,
            **draft_fields,
        )
        for number in numbers
    ]
    session.add_all(drafts)
    session.flush()
    return [draft.id or 0 for draft in drafts]
