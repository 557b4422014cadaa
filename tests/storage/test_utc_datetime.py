"""UtcDateTime writes SQLite's DATETIME text itself: the same text as SQLAlchemy's own path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from storage.models import UtcDateTime

ZONES = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Times whose UTC value is a valid datetime (years 2..9998 leave room for any offset).
TIMES = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES)


@given(TIMES)
def test_sqlite_text_is_sqlalchemys(value: datetime) -> None:
    dialect = sqlite.dialect()
    column = UtcDateTime().dialect_impl(dialect)  # what a statement on SQLite uses
    generic = TypeDecorator.bind_processor(column, dialect)
    fast = column.bind_processor(dialect)
    assert generic is not None and fast is not None
    assert fast.__qualname__.startswith("UtcDateTime.")  # the fast path is the one taken
    assert fast(value) == generic(value)


def test_the_remembered_value_gives_its_own_text() -> None:
    """The processor remembers its last value: a repeated, an equal, another and no value
    each give their own text, in any order."""
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    fetched = datetime(2026, 12, 7, 20, 0, 1, 250, tzinfo=UTC)
    same_instant = fetched.astimezone(timezone(timedelta(hours=7)))
    other = fetched + timedelta(microseconds=1)
    texts = [process(v) for v in (fetched, fetched, None, fetched, same_instant, other, fetched)]
    assert texts == [
        "2026-12-07 20:00:01.000250",
        "2026-12-07 20:00:01.000250",
        None,
        "2026-12-07 20:00:01.000250",
        "2026-12-07 20:00:01.000250",
        "2026-12-07 20:00:01.000251",
        "2026-12-07 20:00:01.000250",
    ]
    with pytest.raises(ValueError):  # a naive time is refused after a remembered one
        process(datetime(2026, 1, 1))


def test_none_and_naive_values_as_before() -> None:
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert process(None) is None
    try:
        process(datetime(2026, 1, 1))
    except ValueError:
        pass
    else:
        raise AssertionError("a naive datetime was stored")


def test_other_dialects_take_sqlalchemys_path() -> None:
    dialect = postgresql.dialect()
    column = UtcDateTime().dialect_impl(dialect)
    process = column.bind_processor(dialect)
    value = datetime(2026, 1, 1, 7, tzinfo=timezone(timedelta(hours=7)))
    converted = process(value) if process is not None else column.process_bind_param(value, dialect)
    assert converted == datetime(2026, 1, 1, tzinfo=UTC)
