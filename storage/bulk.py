"""Many rows into one table in one statement: the scanner's batches of articles, stories and
topic links, and its updates of the stories that grew.

SQLAlchemy's Core executemany builds every row's parameters in Python (the compiled
statement's parameters constructed, each bind processor applied, per row), and its multi-row
``INSERT … VALUES (…), (…) RETURNING`` ("insertmanyvalues") makes SQLite parse a new
statement of thousands of placeholders for every batch. For a 500-item batch that was more
work than SQLite's own inserting. On SQLite the rows therefore go to the driver's
``executemany`` of one single-row statement (parsed once, kept in the driver's statement
cache) as tuples built a column at a time, and new rows are numbered here rather than read
back with RETURNING. Other databases (PostgreSQL) keep SQLAlchemy's path, whose multi-row
statements are what they run best.

Every statement still passes ``storage.db``'s ``before_cursor_execute`` hook, so text is
cleaned the same way on either path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Table, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import begin_write

__all__ = ["execute_many", "insert_returning_ids", "insert_rows"]


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` on the session's connection."""
    execute_many(session, _insert(table), rows)


def execute_many(session: Session, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Run ``statement`` (an INSERT, or an UPDATE whose WHERE names its own parameters) once
    per row of ``rows``, dicts with the same keys: on SQLite by the driver's executemany,
    elsewhere by SQLAlchemy's. ``statement`` should be built once (a module constant): its
    SQL and parameter order are kept per statement object."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        _execute_many(connection, statement, rows, ())
    else:
        connection.execute(statement, list(rows))


def insert_returning_ids(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], key: tuple[str, ...]
) -> list[int]:
    """Insert ``rows`` (dicts with the same keys, no ``id``) into ``table``; their new ids, in
    row order.

    On SQLite the batch takes the database's write lock (:func:`storage.db.begin_write`, a
    no-op in a transaction already open) and numbers the rows itself from the table's largest
    id on: while the lock is held no other writer can take those numbers, and they are the ids
    SQLite would have given (the largest rowid plus one, row after row). A number taken all
    the same would fail the insert on the primary key, never store a row under a wrong id.

    Elsewhere: one multi-row ``INSERT … RETURNING``, the ids matched to the rows by the
    ``key`` columns returned with them, not by the order of the returned rows, which the
    database does not promise (SQLAlchemy's ``sort_by_parameter_order`` would fall back to
    one INSERT per row where it cannot tell). Rows with equal keys take their ids in ascending
    order; the key is unique within ``rows`` or is the whole row, so such rows are
    interchangeable.
    """
    if not rows:
        return []
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        begin_write(session)
        largest = connection.execute(select(func.max(table.c.id))).scalar()
        first = (largest or 0) + 1
        ids = range(first, first + len(rows))
        _execute_many(connection, _insert(table), rows, (("id", ids),))
        return list(ids)
    statement = insert(table).returning(table.c.id, *(table.c[name] for name in key))
    returned_key = itemgetter(*range(1, len(key) + 1))  # a value, or a tuple, like row_key
    found: dict[Any, list[int]] = defaultdict(list)
    for returned in connection.execute(statement, list(rows)):
        found[returned_key(returned)].append(returned[0])
    for same in found.values():
        same.sort(reverse=True)
    row_key = itemgetter(*key)
    return [found[row_key(row)].pop() for row in rows]


def _execute_many(
    connection: Connection,
    statement: Any,
    rows: Sequence[dict[str, Any]],
    given: tuple[tuple[str, Iterable[Any]], ...],
) -> None:
    """``rows`` by the driver's executemany of ``statement``; ``given``: more parameters, each
    with its values in row order (the numbered ids).

    The parameter tuples are built a column at a time (``map`` and ``zip``, no Python step per
    row), each column through its type's bind processor where it has one (the UTC times'
    DATETIME text), as SQLAlchemy would have applied it."""
    extra = dict(given)
    sql, names, processors = _positional(connection.dialect, statement, (*extra, *rows[0]))
    values: list[Iterable[Any]] = []
    for name, process in zip(names, processors, strict=True):
        column = extra[name] if name in extra else map(itemgetter(name), rows)
        values.append(column if process is None else map(process, column))
    connection.exec_driver_sql(sql, list(zip(*values, strict=True)))


@lru_cache(maxsize=32)
def _insert(table: Table) -> Any:
    """The INSERT into ``table``, one object per table (the key of :func:`_positional`)."""
    return insert(table)


@lru_cache(maxsize=32)
def _positional(
    dialect: Dialect, statement: Any, names: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...]]:
    """``statement`` for the parameters ``names`` in the dialect's positional form: its SQL,
    the parameters in order, and each one's bind processor (or None)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    order = tuple(compiled.positiontup or ())
    if sorted(order) != sorted(names):
        raise ValueError(f"the statement's parameters {order} are not {names}")
    processors = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
    )
    return compiled.string, order, processors
