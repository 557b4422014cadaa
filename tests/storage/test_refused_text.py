"""Text the databases refuse (NUL, lone surrogates) is cleaned on its way in, on both backends.

On PostgreSQL a NUL in any text value failed the statement (and with it the transaction); on
both backends a lone surrogate cannot be encoded. Every path is covered: ORM objects, Core
statements (how the scanner writes), JSON columns and query parameters.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlmodel import col

from bot.channels.telegram.notifier import person_ref
from bot.services import identity
from storage.db import Database
from storage.models import AuditEvent, Story, User
from storage.text import _REFUSED, clean_deep, clean_text, needs_cleaning

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
NUL = "Bão\x00 số 3"
LONE = "Lũ \ud83d quét"


def test_clean_text_drops_nul_and_replaces_lone_surrogates() -> None:
    assert clean_text(NUL) == "Bão số 3"
    assert clean_text(LONE) == "Lũ \ufffd quét"
    assert clean_text("😀 sạt lở") == "😀 sạt lở"  # a real pair is one character
    clean = "không sao"
    assert clean_text(clean) is clean
    value = {"a": [NUL, 1, {"k\x00": LONE}], "b": None}
    assert clean_deep(value) == {"a": ["Bão số 3", 1, {"k": "Lũ \ufffd quét"}], "b": None}
    same = {"a": ["x", 2]}
    assert clean_deep(same) is same


def test_orm_objects_are_stored_clean_and_match_what_is_stored(db: Database) -> None:
    with db.session() as s:
        user = User(full_name=NUL, username="an\ud800", created_at=NOW)
        identity.add_person(s, person_ref(7), user)
        s.flush()
        # The object the service goes on using says what was stored.
        assert user.full_name == "Bão số 3"
        s.add(AuditEvent(action="x", subject="user:7", after={"text": NUL, LONE: [LONE]}, at=NOW))
    with db.session() as s:
        stored = s.exec(select(User)).scalars().one()
        assert stored.full_name == "Bão số 3"
        assert stored.username == "an\ufffd"
        event = s.exec(select(AuditEvent)).scalars().one()
        assert event.after == {"text": "Bão số 3", "Lũ \ufffd quét": ["Lũ \ufffd quét"]}
        # A query parameter with a NUL is cleaned the same way, so it finds the row.
        found = s.exec(select(User).where(col(User.full_name) == NUL)).scalars().all()
        assert [u.id for u in found] == [user.id]


def test_core_statements_are_cleaned(db: Database) -> None:
    table = Story.__table__  # type: ignore[attr-defined]
    rows = [
        {"title": NUL, "first_seen_at": NOW, "last_seen_at": NOW},
        {"title": LONE, "first_seen_at": NOW, "last_seen_at": NOW},
        {"title": "sạch", "first_seen_at": NOW, "last_seen_at": NOW},
    ]
    with db.session() as s:
        s.connection().execute(insert(table), rows)
        s.connection().execute(
            insert(table).values(title="một\x00", first_seen_at=NOW, last_seen_at=NOW)
        )
    with db.session() as s:
        titles = sorted(s.connection().execute(select(table.c.title)).scalars())
    assert titles == sorted(["Bão số 3", "Lũ \ufffd quét", "sạch", "một"])


_ODD = st.sampled_from(["\x00", "\ud800", "\ud83d", "\ude00", "\udfff", "ạ", "😀", "\ufffd"])


@given(st.text(alphabet=st.one_of(st.characters(), _ODD)))
def test_needs_cleaning_finds_what_the_expression_finds(text: str) -> None:
    """The cheap check (substring test, UTF-8 encoding) answers as the expression does."""
    assert needs_cleaning(text) == (_REFUSED.search(text) is not None)
    assert needs_cleaning(text) == (clean_text(text) != text)
