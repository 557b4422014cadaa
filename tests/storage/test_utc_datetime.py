"""UtcDateTime writes SQLite's DATETIME text itself: the same text as SQLAlchemy's own path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

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
