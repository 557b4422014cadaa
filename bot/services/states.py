"""Conversation states: the rows that hold a conversation half done.

A registration, a reason or PIN an approver is asked for, a statement being filled in: each is a
``ConversationState`` row per (channel, chat, person, flow), written before the bot replies, so
a hard kill resumes where people were. The channel is the one the person's label
(``PersonRef``) names, unless given: review rows are keyed by a person's id, not an account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.channels.refs import PersonRef
from storage.models import ConversationState


def find(
    session: Session, chat_ref: str, user_ref: str, flow: str, channel: str | None = None
) -> ConversationState | None:
    """The row of ``flow`` for this person in this chat, if a conversation is open."""
    return session.exec(
        select(ConversationState).where(
            ConversationState.channel == (channel or PersonRef.from_label(user_ref).channel),
            ConversationState.chat_ref == chat_ref,
            ConversationState.user_ref == user_ref,
            ConversationState.flow == flow,
        )
    ).first()


def put(
    session: Session,
    chat_ref: str,
    user_ref: str,
    flow: str,
    step: str,
    data: dict[str, Any],
    at: datetime,
    channel: str | None = None,
) -> ConversationState:
    """Open the conversation at ``step`` with ``data``, or move an open one there (flushed).

    Two workers may open the same row at once (both recording where a decider's copy of a
    registration request went): the second insert fails on the row's unique key, inside a
    savepoint, and the row the first one wrote is moved instead of failing the update."""
    channel = channel or PersonRef.from_label(user_ref).channel
    state = find(session, chat_ref, user_ref, flow, channel)
    if state is None:
        fresh = ConversationState(
            channel=channel, chat_ref=chat_ref, user_ref=user_ref, flow=flow, step=step
        )
        _move(fresh, step, data, at)
        try:
            with session.begin_nested():
                session.add(fresh)
            return fresh
        except IntegrityError:
            state = find(session, chat_ref, user_ref, flow, channel)
            if state is None:  # the unique key was not what failed
                raise
    _move(state, step, data, at)
    session.add(state)
    session.flush()
    return state


def _move(state: ConversationState, step: str, data: dict[str, Any], at: datetime) -> None:
    state.step = step
    state.data = dict(data)
    state.updated_at = at
