"""A conversation row opened by two workers at once is written once, not failed.

Two workers record where a decider's copy of a registration request went, each after its own
run of the same step (crash matrix with two workers, ``reg.phone-question``): the second
insert met the row's unique key and the handler failed with an unhandled error. Here another
connection commits the row between this session's read and its insert (the window of the
race), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlmodel import select

from bot.services import states
from storage.db import Database
from storage.models import ConversationState

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ROW = {"chat_ref": "100077", "user_ref": "user:3", "flow": "review", "channel": "telegram"}


def test_a_row_another_worker_inserted_after_the_read_is_moved_instead(db: Database) -> None:
    def other_worker_records_it() -> None:
        with db.session() as other:
            states.put(other, step="sent", data={"message_id": "1"}, at=AT, **ROW)

    raced = False

    def after_read(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal raced
        if not raced and statement.lstrip().upper().startswith("SELECT"):
            raced = True
            other_worker_records_it()

    with db.session() as session:
        connection = session.connection()
        event.listen(connection, "after_cursor_execute", after_read)
        try:
            state = states.put(session, step="sent", data={"message_id": "1"}, at=AT, **ROW)
        finally:
            event.remove(connection, "after_cursor_execute", after_read)
        assert raced
        assert state.data == {"message_id": "1"}
    with db.session() as session:
        rows = session.exec(select(ConversationState)).all()
    assert [(r.chat_ref, r.user_ref, r.flow, r.step) for r in rows] == [
        ("100077", "user:3", "review", "sent")
    ]


def test_put_opens_a_row_then_moves_it(db: Database) -> None:
    with db.session() as session:
        states.put(session, step="asked", data={"n": 1}, at=AT, **ROW)
    with db.session() as session:
        moved = states.put(session, step="sent", data={"n": 2}, at=AT, **ROW)
        assert (moved.step, moved.data) == ("sent", {"n": 2})
    with db.session() as session:
        rows = session.exec(select(ConversationState)).all()
    assert [(r.step, r.data) for r in rows] == [("sent", {"n": 2})]
