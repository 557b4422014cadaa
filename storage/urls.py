"""What a database URL names: a SQLite file, an in-memory SQLite database, or a server.

The engine (its pool), the one-process lock (its lock file) and backup (what to copy) each
need to tell these apart, and must agree on what "in memory" means (``sqlite://``,
``:memory:``, ``mode=memory``), so the reading is done here once.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["is_sqlite", "sqlite_file"]


def is_sqlite(url: str) -> bool:
    """Whether ``url`` is a SQLite database (a file or in memory)."""
    from sqlalchemy.engine import make_url  # not at import: the CLI imports storage.lock

    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite file database, as written in ``url`` (not resolved); None for
    in-memory SQLite and for a server database (PostgreSQL)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or "mode=memory" in str(parsed.query):
        return None
    return Path(database)
