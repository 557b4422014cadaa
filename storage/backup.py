"""``crisisdesk backup`` and ``crisisdesk restore`` for the SQLite database.

A backup goes through SQLite's online backup API (``sqlite3.Connection.backup``): it copies a
consistent snapshot page by page while the bot keeps running and writing (the bot's WAL is read
through SQLite, so nothing committed is missed and nothing half-written is copied). The copy is
written beside the destination, checked, switched to the rollback journal (one self-contained
file, no ``-wal`` to forget) and only then renamed into place.

A restore refuses while a bot runs on the target: it takes the same one-process-per-file lock a
running bot holds (an ``flock`` on ``<database>.lock``) for its whole duration, so no bot can
start mid-restore either. It checks that the file is a SQLite database that CrisisDesk made at a
migration revision this version knows, keeps the current database as ``<name>.pre-restore``,
copies the backup in with the same backup API and migrates it to the latest revision.

PostgreSQL is backed up with its own tools (``pg_dump``/``pg_restore``); :func:`pg_dump_line`
prints the line to use. Every failure a person can cause is a :class:`BackupError` whose message
is one line.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from storage.lock import DatabaseInUse, DatabaseLock
from storage.migrate import alembic_config, upgrade
from storage.urls import is_sqlite, sqlite_file

BUSY_TIMEOUT_S = 10.0
PAGES_PER_STEP = 1024  # the backup yields the database between steps so writers are not stalled


class BackupError(Exception):
    """A backup or restore that cannot be done, phrased as one line for the operator."""


@dataclass(frozen=True)
class Copied:
    path: Path
    revision: str
    size: int


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for a server database (PostgreSQL)."""
    if not is_sqlite(url):
        return None
    database = sqlite_file(url)
    if database is None:
        raise BackupError("an in-memory SQLite database has nothing to back up or restore")
    return database.resolve()


def pg_dump_line(url: str, out: str) -> str:
    """The ``pg_dump`` command for a PostgreSQL URL (password hidden: pass it in PGPASSWORD)."""
    parsed = make_url(url).set(drivername="postgresql")
    shown = parsed.render_as_string(hide_password=True)
    return f"pg_dump --format=custom --no-owner --file={_quote(out)} {_quote(shown)}"


def pg_restore_line(url: str, source: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    shown = parsed.render_as_string(hide_password=True)
    return (
        f"pg_restore --clean --if-exists --no-owner --dbname={_quote(shown)} {_quote(source)}"
        " && crisisdesk db upgrade"
    )


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {rev.revision for rev in script.walk_revisions()}


def check_crisisdesk_file(path: Path) -> str:
    """The migration revision of the CrisisDesk database at ``path``; raises BackupError."""
    if not path.exists():
        raise BackupError(f"{path} does not exist")
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        ) as conn:
            tables = {row[0] for row in conn.execute("select name from sqlite_master")}
            if "alembic_version" not in tables:
                raise BackupError(
                    f"{path} is a SQLite database but not a CrisisDesk one (no migration record)"
                )
            rows = conn.execute("select version_num from alembic_version").fetchall()
            check = conn.execute("pragma quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from None
    if check is None or check[0] != "ok":
        raise BackupError(f"{path} is damaged: {check[0] if check else 'no answer'}")
    if len(rows) != 1:
        raise BackupError(f"{path} has no single migration revision (found {len(rows)})")
    revision = str(rows[0][0])
    if revision not in known_revisions():
        raise BackupError(
            f"{path} is at migration revision {revision!r}, unknown to this CrisisDesk "
            "(made by a newer version?); restore it with that version"
        )
    return revision


def _copy(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    source.backup(target, pages=PAGES_PER_STEP)


def backup_sqlite(database: Path, out: Path) -> Copied:
    """Copy the live database at ``database`` to the new file ``out`` (refused if it exists)."""
    if not database.exists():
        raise BackupError(f"there is no database at {database} (check CRISISDESK_DATA_DIR)")
    revision = check_crisisdesk_file(database)
    if out.exists():
        raise BackupError(f"{out} already exists; give a new file name")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a folder")
    partial = out.with_name(f".{out.name}.partial")
    try:
        with (
            contextlib.closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT_S)) as source,
            contextlib.closing(sqlite3.connect(partial)) as target,
        ):
            _copy(source, target)
            target.execute("pragma journal_mode=delete")  # one file, no -wal beside it
        check_crisisdesk_file(partial)
        os.replace(partial, out)
    except OSError as exc:
        raise BackupError(f"cannot write {out}: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise BackupError(f"the backup of {database} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return Copied(out, revision, out.stat().st_size)


@contextlib.contextmanager
def _no_bot_running(database: Path) -> Iterator[None]:
    """Hold the lock a running bot holds on ``database`` (:mod:`storage.lock`), or refuse."""
    try:
        lock = DatabaseLock.acquire(f"sqlite:///{database}")
    except DatabaseInUse as exc:
        raise BackupError(
            f"a CrisisDesk bot ({exc.holder}) is running on {database}; stop it before restoring"
        ) from None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def restore_sqlite(source: Path, database: Path) -> tuple[str, Path | None]:
    """Replace ``database`` by the backup ``source`` and migrate it to the latest revision.

    Returns the backup's revision and where the replaced database was kept (None if there was
    none).
    """
    revision = check_crisisdesk_file(source)
    if database.exists() and source.resolve() == database.resolve():
        raise BackupError(f"{source} is the database itself; restore from a backup file")
    with _no_bot_running(database):
        kept: Path | None = None
        try:
            if database.exists():
                kept = database.with_name(database.name + ".pre-restore")
                kept.unlink(missing_ok=True)
                with (
                    contextlib.closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT_S)) as old,
                    contextlib.closing(sqlite3.connect(kept)) as keep,
                ):
                    _copy(old, keep)
                    keep.execute("pragma journal_mode=delete")
            database.parent.mkdir(parents=True, exist_ok=True)
            with (
                contextlib.closing(
                    sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
                ) as backup,
                contextlib.closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT_S)) as target,
            ):
                _copy(backup, target)
        except OSError as exc:
            raise BackupError(f"cannot write {database}: {exc.strerror or exc}") from None
        except sqlite3.Error as exc:
            raise BackupError(f"the restore into {database} failed: {exc}") from None
        upgrade(f"sqlite:///{database}")
    return revision, kept


def backup(url: str, out: str) -> str:
    """``crisisdesk backup OUT``: what was done, as one line; raises BackupError."""
    database = sqlite_path(url)
    if database is None:
        raise BackupError(
            "back up PostgreSQL with pg_dump (password in PGPASSWORD): " + pg_dump_line(url, out)
        )
    copied = backup_sqlite(database, Path(out).resolve())
    return (
        f"backed up {database} (revision {copied.revision}, {copied.size} bytes) to {copied.path}"
    )


def restore(url: str, source: str) -> str:
    """``crisisdesk restore IN``: what was done, as one line; raises BackupError."""
    database = sqlite_path(url)
    if database is None:
        raise BackupError(
            "restore PostgreSQL with pg_restore, with every worker stopped: "
            + pg_restore_line(url, source)
        )
    revision, kept = restore_sqlite(Path(source).resolve(), database)
    previous = f"; the previous database is kept as {kept}" if kept else ""
    return (
        f"restored {source} (revision {revision}) into {database} and migrated it to the "
        f"latest revision{previous}"
    )
