"""Migration 0012 on a database with people in it: ``room_identity`` arrives empty beside
them, holds a person's OA-scoped ids under its two unique keys, goes with a deleted person, and
the downgrade drops it leaving people untouched, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from migration_rows import reflect, user_row

from storage.migrate import downgrade, upgrade

BEFORE = "0011_agency_zalo_oa"
AFTER = "0012_room_identity"
AT = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def _rows(engine: sa.Engine) -> list[tuple[int, str, str, str]]:
    table = reflect(engine, "room_identity")
    with engine.connect() as conn:
        query = sa.select(table.c.user_id, table.c.channel, table.c.scope, table.c.external_id)
        return [tuple(r) for r in conn.execute(query.order_by(table.c.id))]  # type: ignore[misc]


def test_room_identities_beside_people_and_back(empty_db: tuple[str, sa.Engine]) -> None:
    url, db = empty_db
    upgrade(url, BEFORE)
    with db.begin() as conn:
        conn.execute(
            sa.insert(reflect(db, "user")),
            [user_row(AT, id=1, full_name="An"), user_row(AT, id=2, full_name="Bình")],
        )

    upgrade(url, AFTER)
    assert _rows(db) == []
    table = reflect(db, "room_identity")
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
        conn.execute(sa.delete(reflect(db, "user")).where(sa.column("id") == 2))
    assert _rows(db) == [
        (1, "zalo", "3158806452351286345", "84121"),
        (1, "zalo", "9000000000000000001", "77001"),
    ]

    downgrade(url, BEFORE)
    assert "room_identity" not in sa.inspect(db).get_table_names()
    with db.connect() as conn:
        assert conn.execute(sa.select(reflect(db, "user").c.full_name)).scalars().all() == ["An"]
