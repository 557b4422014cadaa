"""Migration 0012 on a database with people in it: ``room_identity`` arrives empty beside
them, holds a person's OA-scoped ids under its two unique keys, goes with a deleted person, and
the downgrade drops it leaving people untouched, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.migrate import downgrade, upgrade

BEFORE = "0011_agency_zalo_oa"
AFTER = "0012_room_identity"
AT = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
DEFAULTS = {
    "username": None,
    "phone": None,
    "agency_id": None,
    "role": "member",
    "requested_role": None,
    "status": "active",
    "language": "vi",
    "reachable": True,
    "pin_hash": None,
    "created_at": AT,
    "updated_at": AT,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, sa.Engine]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rooms.sqlite3'}"
    else:
        url = str(request.getfixturevalue("pg_schema_url"))
    engine = sa.create_engine(url)
    if request.param == "sqlite":  # the application turns foreign keys on for every connection
        sa.event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))
    yield url, engine
    engine.dispose()


def _table(engine: sa.Engine, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), autoload_with=engine)


def _rows(engine: sa.Engine) -> list[tuple[int, str, str, str]]:
    table = _table(engine, "room_identity")
    with engine.connect() as conn:
        query = sa.select(table.c.user_id, table.c.channel, table.c.scope, table.c.external_id)
        return [tuple(r) for r in conn.execute(query.order_by(table.c.id))]  # type: ignore[misc]


def test_room_identities_beside_people_and_back(engine: tuple[str, sa.Engine]) -> None:
    url, db = engine
    upgrade(url, BEFORE)
    with db.begin() as conn:
        conn.execute(
            sa.insert(_table(db, "user")),
            [{**DEFAULTS, "id": 1, "full_name": "An"}, {**DEFAULTS, "id": 2, "full_name": "Bình"}],
        )

    upgrade(url, AFTER)
    assert _rows(db) == []
    table = _table(db, "room_identity")
    row = {"channel": "zalo", "created_at": AT}
    with db.begin() as conn:
        conn.execute(
            sa.insert(table),
            [
                {**row, "user_id": 1, "scope": "3158806452351286345", "external_id": "84121"},
                {**row, "user_id": 1, "scope": "9000000000000000001", "external_id": "77001"},
                {**row, "user_id": 2, "scope": "3158806452351286345", "external_id": "84122"},
            ],
        )
    # One OA id belongs to one person, and a person has one id per OA.
    for clash in (
        {**row, "user_id": 2, "scope": "3158806452351286345", "external_id": "84121"},
        {**row, "user_id": 2, "scope": "3158806452351286345", "external_id": "84999"},
    ):
        with pytest.raises(sa.exc.IntegrityError), db.begin() as conn:
            conn.execute(sa.insert(table), [clash])
    # A person's room ids go with them.
    with db.begin() as conn:
        conn.execute(sa.delete(_table(db, "user")).where(sa.column("id") == 2))
    assert _rows(db) == [
        (1, "zalo", "3158806452351286345", "84121"),
        (1, "zalo", "9000000000000000001", "77001"),
    ]

    downgrade(url, BEFORE)
    assert "room_identity" not in sa.inspect(db).get_table_names()
    with db.connect() as conn:
        assert conn.execute(sa.select(_table(db, "user").c.full_name)).scalars().all() == ["An"]
