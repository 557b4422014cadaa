"""Programmatic Alembic: ``crisisdesk db upgrade`` and the start-up migration.

Alembic's scripts ship inside the package (``storage/migrations``), so an installed CrisisDesk can
migrate without an alembic.ini in the working directory.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # '%' is Alembic's interpolation character; escape it in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def heads() -> list[str]:
    """All head revisions; more than one means the history forked (a bug: it must be linear)."""
    return list(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def revision(url: str, message: str) -> None:
    """Autogenerate a new revision against a database at head (a developer tool)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
