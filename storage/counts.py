"""Counting rows: the one query shape behind every "how many" the services ask."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select


def count_rows(session: Session, table: type[SQLModel], *where: Any) -> int:
    """How many rows of ``table`` meet every condition in ``where`` (all of them without)."""
    return int(session.exec(select(sa.func.count()).select_from(table).where(*where)).one())
