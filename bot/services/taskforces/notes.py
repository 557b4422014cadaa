"""Status updates and notes: what participants put on the crisis timeline by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.services import timeline
from bot.services.permissions import (
    Actor,
)
from bot.services.taskforces.brief import touch_brief
from bot.services.taskforces.crises import TaskForceError, participant_crisis

if TYPE_CHECKING:
    from bot.runtime import Runtime


def post_update(runtime: Runtime, actor: Actor, crisis_id: int, text: str) -> None:
    """A status update (``/update …``): on the timeline and in the brief."""
    text = " ".join(text.split())
    if not text:
        raise TaskForceError("update_usage")
    now = runtime.clock.now()
    with runtime.db.session() as session:
        participant_crisis(session, actor, crisis_id, open_only=True)
        timeline.add(session, crisis_id, timeline.UPDATE, actor.user_id, text[:1000], {}, now)
        touch_brief(session, crisis_id, now)


def add_note(
    runtime: Runtime,
    actor: Actor,
    crisis_id: int,
    text: str,
    *,
    message_id: str | None,
    author: str | None,
) -> None:
    """Put a message of the room on the timeline (``/note`` in reply to it); ``message_id`` is
    the channel's id of the noted message."""
    text = text.strip()
    if not text:
        raise TaskForceError("note_usage")
    now = runtime.clock.now()
    with runtime.db.session() as session:
        participant_crisis(session, actor, crisis_id, open_only=False)
        timeline.add(
            session,
            crisis_id,
            timeline.NOTE,
            actor.user_id,
            text[:2000],
            {"message_id": message_id, "author": author},
            now,
        )
