"""One process per SQLite file: an OS lock on a file beside the database.

SQLite takes one writer at a time but happily serves two bot processes: both run the tick, the
scan and the delivery job, and every alert went out twice. ``crisisdesk run``, the sandbox,
``db upgrade`` and ``scan --once`` take this lock before touching the database and hold it until
the process ends (or :meth:`DatabaseLock.release`); a second one is refused with one line naming
the process that holds it.

``fcntl.flock`` on ``<database>.lock``: the kernel drops the lock when the holder dies, however
it dies (SIGKILL included), so a crash never leaves a stale lock to clear by hand. The holder's
pid is written into the file for the message only; the lock itself is the flock. (The
``filelock`` package would do the flock but truncates the file on every attempt, losing the
holder's pid that makes the refusal useful.) PostgreSQL needs none of this: several workers are
supported there, and ``storage.leader`` picks the one that runs the jobs.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from storage.urls import sqlite_file

__all__ = ["DatabaseInUse", "DatabaseLock", "lock_path_for"]


class DatabaseInUse(RuntimeError):
    """Another process holds the database; the message is one line for the operator, and
    ``holder`` names that process ("process 4242") for callers that word their own line."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


def lock_path_for(url: str) -> Path | None:
    """The lock file of a SQLite file database; None for in-memory SQLite and PostgreSQL."""
    database = sqlite_file(url)
    if database is None:
        return None
    return database.resolve().with_name(database.name + ".lock")


class DatabaseLock:
    """An exclusive, non-blocking flock held for the life of the process."""

    def __init__(self, path: Path, database: str) -> None:
        self.path = path
        self.database = database
        self._fd: int | None = None

    @classmethod
    def acquire(cls, url: str) -> DatabaseLock | None:
        """Take the lock of ``url``'s SQLite file (None when it needs none); raises
        :class:`DatabaseInUse` if another process holds it."""
        path = lock_path_for(url)
        if path is None:
            return None
        lock = cls(path, str(path.with_suffix("")))
        lock._take()
        return lock

    def _take(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise DatabaseInUse(
                f"the database {self.database} is already in use by {who} (another "
                "'crisisdesk run' or sandbox); stop it first, or give this one its own "
                "CRISISDESK_DATA_DIR or DATABASE_URL",
                who,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
