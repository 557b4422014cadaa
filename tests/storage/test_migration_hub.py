"""Migration 0010 on a database with agencies in it: a hub's Telegram number becomes the
channel and the id as text, and back without loss, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from migration_rows import reflect

from storage.migrate import downgrade, upgrade

BEFORE = "0009_linked_channels"
AFTER = "0010_agency_hub_channel"
AT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
POLICY = {"deadline_hours": 24.0, "approvals_required": 1, "approval_pin": False}

# A supergroup id is below -10^12: far past 32 bits, as real ones are.
AGENCIES = [
    {"id": 1, "code": "BYT", "name": "Bộ Y tế", "hub_chat_id": -1001234567890},
    {"id": 2, "code": "BTC", "name": "Bộ Tài chính", "hub_chat_id": None},
]


def _hubs(engine: sa.Engine, *columns: str) -> list[tuple[Any, ...]]:
    agency = reflect(engine, "agency")
    with engine.connect() as conn:
        query = sa.select(*(agency.c[c] for c in columns)).order_by(agency.c.id)
        return [tuple(row) for row in conn.execute(query)]


def test_hub_ids_become_channel_refs_and_back(empty_db: tuple[str, sa.Engine]) -> None:
    url, db = empty_db
    upgrade(url, BEFORE)
    with db.begin() as conn:
        conn.execute(
            sa.insert(reflect(db, "agency")),
            [{**a, **POLICY, "owner": "toml", "created_at": AT} for a in AGENCIES],
        )

    upgrade(url, AFTER)
    assert _hubs(db, "code", "hub_channel", "hub_chat_id") == [
        ("BYT", "telegram", "-1001234567890"),
        ("BTC", None, None),
    ]

    # A hub on another channel, set after the upgrade, has no number to go back to.
    with db.begin() as conn:
        agency = reflect(db, "agency")
        conn.execute(
            sa.insert(agency),
            [{"id": 3, "code": "BGD", "name": "Bộ Giáo dục", **POLICY, "owner": "chat",
              "created_at": AT, "hub_channel": "zalo", "hub_chat_id": "g-8841"}],
        )  # fmt: skip
    downgrade(url, BEFORE)
    assert "hub_channel" not in {c["name"] for c in sa.inspect(db).get_columns("agency")}
    assert _hubs(db, "code", "hub_chat_id") == [
        ("BYT", -1001234567890),
        ("BTC", None),
        ("BGD", None),
    ]
