"""``crisisdesk backup`` and ``restore``: a round trip with data, refusals in one line."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.channels.telegram.notifier import person_ref
from bot.cli import main
from bot.services import identity
from storage.db import Database, sqlite_url
from storage.migrate import heads, upgrade
from storage.models import Agency, AuditEvent, User

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("CRISISDESK_"):
            monkeypatch.delenv(name)
    folder = tmp_path / "data"
    monkeypatch.setenv("CRISISDESK_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def live(data_dir: Path) -> Iterator[Database]:
    """The bot's database at the latest revision, with an agency, a person and an audit row."""
    url = sqlite_url(data_dir)
    upgrade(url)
    db = Database.from_url(url)
    with db.session() as session:
        agency = Agency(code="BYT", name="Bộ Y tế")
        session.add(agency)
        session.flush()
        identity.add_person(
            session, person_ref(1), User(full_name="Nguyễn Văn An", agency_id=agency.id)
        )
        session.add(AuditEvent(action="user.verify", subject="user:1", at=NOW))
    yield db
    db.dispose()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def bot_lock(data_dir: Path) -> Iterator[None]:
    """What a running bot holds: the flock on ``<database>.lock`` (storage.lock)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "crisisdesk.sqlite3.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, b"4242\n", 0)
    try:
        yield
    finally:
        os.close(fd)


def names(db: Database) -> list[str]:
    with db.session() as session:
        return sorted(u.full_name for u in session.exec(select(User)))


def test_backup_while_the_bot_writes_then_restore_brings_the_data_back(
    live: Database,
    data_dir: Path,
    tmp_path: Path,
    bot_lock: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "nightly.sqlite3"
    with live.engine.connect() as writer:  # the bot mid-transaction: not in the snapshot
        writer.execute(sa.text("begin immediate"))
        writer.execute(
            sa.text(
                "insert into user (full_name, role, status, language, reachable, created_at,"
                " updated_at) values ('Uncommitted', 'member', 'pending', 'vi', 1,"
                " '2026-12-06 09:00:00', '2026-12-06 09:00:00')"
            )
        )
        code, stdout, err = cli(capsys, "backup", str(out))
        writer.rollback()
    assert (code, err) == (0, "")
    assert "backed up" in stdout and str(out) in stdout
    assert not Path(f"{out}-wal").exists()  # one self-contained file
    with sqlite3.connect(out) as copy:  # the committed rows, not the open transaction's
        assert copy.execute("select full_name from user").fetchall() == [("Nguyễn Văn An",)]
        assert copy.execute("select action from auditevent").fetchall() == [("user.verify",)]
        assert copy.execute("pragma journal_mode").fetchone() == ("delete",)

    with live.session() as session:  # after the backup: a new person, a deleted one
        identity.add_person(session, person_ref(2), User(full_name="Trần Thị Bình"))
        session.delete(identity.person_for(session, person_ref(1)))
    assert names(live) == ["Trần Thị Bình"]

    code, _, err = cli(capsys, "restore", str(out))  # the bot still runs: refused
    assert code == 1
    assert err.strip() == (
        f"crisisdesk: a CrisisDesk bot (process 4242) is running on "
        f"{(data_dir / 'crisisdesk.sqlite3').resolve()}; stop it before restoring"
    )
    assert names(live) == ["Trần Thị Bình"]


def test_restore_replaces_the_database_and_keeps_the_old_one(
    live: Database, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "copy.sqlite3"
    assert cli(capsys, "backup", str(out))[0] == 0
    with live.session() as session:
        identity.add_person(session, person_ref(2), User(full_name="Trần Thị Bình"))
    live.dispose()  # the bot stopped

    code, stdout, err = cli(capsys, "restore", str(out))
    assert (code, err) == (0, "")
    assert "migrated it to the latest revision" in stdout
    assert names(live) == ["Nguyễn Văn An"]
    with live.session() as session:
        assert session.exec(select(AuditEvent.action)).all() == ["user.verify"]
    kept = data_dir / "crisisdesk.sqlite3.pre-restore"
    assert str(kept.resolve()) in stdout
    assert names(Database.from_url(f"sqlite:///{kept}")) == ["Nguyễn Văn An", "Trần Thị Bình"]


def test_an_older_backup_is_migrated_to_head(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.sqlite3"
    upgrade(f"sqlite:///{old}", "0002")
    code, stdout, _ = cli(capsys, "restore", str(old))
    assert code == 0 and "(revision 0002)" in stdout
    with sqlite3.connect(data_dir / "crisisdesk.sqlite3") as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [(heads()[0],)]


def test_every_mistake_is_one_line(
    live: Database, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, just some words " * 100)
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("create table t (x)")
    future = tmp_path / "future.sqlite3"
    upgrade(f"sqlite:///{future}")
    with sqlite3.connect(future) as conn:
        conn.execute("update alembic_version set version_num = '9999_from_the_future'")
    exists = tmp_path / "exists.sqlite3"
    exists.write_bytes(b"")
    cases = [
        (("restore", str(tmp_path / "missing.sqlite3")), "does not exist"),
        (("restore", str(tmp_path)), "is not a file"),
        (("restore", str(text)), "is not a SQLite database"),
        (("restore", str(other)), "is a SQLite database but not a CrisisDesk one"),
        (("restore", str(future)), "revision '9999_from_the_future', unknown to this CrisisDesk"),
        (("backup", str(exists)), "already exists; give a new file name"),
        (("backup", str(tmp_path / "no" / "such" / "dir.sqlite3")), "is not a folder"),
    ]
    before = names(live)
    for args, message in cases:
        code, stdout, err = cli(capsys, *args)
        assert code == 1, args
        assert stdout == ""
        assert err.count("\n") == 1 and err.startswith("crisisdesk: "), err
        assert message in err, (args, err)
    assert names(live) == before


def test_backup_without_a_database_and_on_postgresql(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = cli(capsys, "backup", str(tmp_path / "b.sqlite3"))
    assert code == 1 and "there is no database at" in err and err.count("\n") == 1

    monkeypatch.setenv(
        "CRISISDESK_DATABASE_URL", "postgresql+psycopg://crisis:hunter2@db.local:5432/crisisdesk"
    )
    code, _, err = cli(capsys, "backup", str(tmp_path / "b.dump"))
    assert code == 1 and err.count("\n") == 1
    assert "pg_dump --format=custom --no-owner --file=" in err
    assert "postgresql://crisis:***@db.local:5432/crisisdesk" in err
    assert "hunter2" not in err
    code, _, err = cli(capsys, "restore", str(tmp_path / "b.dump"))
    assert code == 1 and "pg_restore --clean" in err and "hunter2" not in err
