"""Rows for the migration tests, which write to tables as an old revision left them (no models:
the models describe the newest schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa


def reflect(engine: sa.Engine, name: str) -> sa.Table:
    """Table ``name`` as the database has it now."""
    return sa.Table(name, sa.MetaData(), autoload_with=engine)


def user_row(at: datetime, **values: Any) -> dict[str, Any]:
    """A ``user`` row of an active member made at ``at``, with ``values`` (at least ``id`` and
    ``full_name``) over the columns every revision since 0001 has."""
    return {
        "username": None,
        "phone": None,
        "agency_id": None,
        "role": "member",
        "requested_role": None,
        "status": "active",
        "language": "vi",
        "reachable": True,
        "pin_hash": None,
        "created_at": at,
        "updated_at": at,
        **values,
    }
