"""One process per SQLite file, one poller per token: the real ``crisisdesk run`` processes.

Before: a second ``crisisdesk run`` on the same SQLite file ran unchecked (every alert went out
twice), and a second poller on the same token fought the first for updates for ever (Telegram
answers the older ``getUpdates`` with 409 Conflict; python-telegram-bot just polls again).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import running_app

from bot.app import build_application
from bot.polling import ConflictGuard, PollingConflict
from bot.sandbox.telegram_emulator import TelegramEmulator
from storage.db import Database
from storage.lock import DatabaseInUse, DatabaseLock
from storage.migrate import upgrade

CLI = [sys.executable, "-m", "bot.cli", "run"]
ROOT = Path(__file__).resolve().parents[2]
CONFLICT_LINE = (
    "crisisdesk: another process is polling Telegram with this bot token (409 Conflict), so "
    "this one stopped rather than fight it for updates; run one CrisisDesk per token"
)


def _env(emulator: TelegramEmulator, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    env |= {
        "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
        "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
        "CRISISDESK_DATA_DIR": str(data_dir),
        "CRISISDESK_SCAN_INTERVAL": "3600",
        "CRISISDESK_LOG_LEVEL": "WARNING",
    }
    return env


async def _start(emulator: TelegramEmulator, data_dir: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI,
        env=_env(emulator, data_dir),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finish(process: asyncio.subprocess.Process, limit: float) -> tuple[int, str]:
    _out, err = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode is not None
    return process.returncode, err.decode()


@pytest.mark.slow
async def test_a_second_run_on_the_file_or_the_token_is_refused_with_one_line(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, tmp_path: Path
) -> None:
    """The incumbent (polling this token, holding a SQLite file) is this test process; two real
    ``crisisdesk run`` processes start beside it, one on its file, one on its token."""
    (tmp_path / "a").mkdir()
    held = DatabaseLock.acquire(f"sqlite:///{tmp_path / 'a' / 'crisisdesk.sqlite3'}")
    assert held is not None
    settings = make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_SCAN_INTERVAL": "3600",
        }
    )
    incumbent = build_application(settings, sqlite_db, conflicts=ConflictGuard(grace=0))
    try:
        async with running_app(incumbent):
            same_file, same_token = await asyncio.gather(
                _start(emulator, tmp_path / "a"), _start(emulator, tmp_path / "b")
            )
            (code_file, err_file), (code_token, err_token) = await asyncio.gather(
                _finish(same_file, 120), _finish(same_token, 120)
            )
            assert code_file == 1, err_file
            assert err_file.strip().splitlines() == [
                f"crisisdesk: the database {tmp_path / 'a' / 'crisisdesk.sqlite3'} is already "
                f"in use by process {os.getpid()} (another 'crisisdesk run' or sandbox); stop "
                "it first, or give this one its own CRISISDESK_DATA_DIR or DATABASE_URL"
            ]
            assert code_token == 1, err_token
            assert err_token.strip().splitlines() == [CONFLICT_LINE], err_token
            # The incumbent still serves.
            person = emulator.create_user("Lan", language_code="vi")
            sent = emulator.send_text(person.id, "/help")
            await emulator.wait_for_message(person.id, after=sent.message_id, timeout=15)
    finally:
        held.release()


async def test_a_second_poller_in_its_grace_period_gives_way(
    emulator: TelegramEmulator, sqlite_db: Database, make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": emulator.token,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_SCAN_INTERVAL": "3600",
        }
    )
    other_db = Database.from_url(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    upgrade(str(other_db.engine.url))
    first_guard, second_guard = ConflictGuard(grace=0), ConflictGuard()
    first = build_application(settings, sqlite_db, conflicts=first_guard)
    second = build_application(settings, other_db, conflicts=second_guard)
    try:
        async with running_app(first):
            person = emulator.create_user("Lan", language_code="vi")
            sent = emulator.send_text(person.id, "/help")
            await emulator.wait_for_message(person.id, after=sent.message_id, timeout=15)
            async with running_app(second, polling=False):
                assert second.updater is not None
                # As run_polling wires it: polling errors go to the error handlers.
                await second.updater.start_polling(
                    poll_interval=0,
                    timeout=1,
                    error_callback=lambda exc: second.create_task(second.process_error(None, exc)),
                )
                deadline = asyncio.get_running_loop().time() + 15
                while second_guard.tripped is None:
                    assert asyncio.get_running_loop().time() < deadline, "never gave way"
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)
                assert not second.updater.running
            assert first_guard.tripped is None
            assert first.updater is not None and first.updater.running
            sent = emulator.send_text(person.id, "/help")
            await emulator.wait_for_message(person.id, after=sent.message_id, timeout=15)
    finally:
        other_db.dispose()
    assert second_guard.tripped == CONFLICT_LINE.removeprefix("crisisdesk: ")


def test_the_cli_turns_a_polling_conflict_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import bot.app
    import bot.startup_errors
    from bot import cli

    def conflicted(_settings: Any) -> None:
        raise PollingConflict(ConflictGuard().message())

    monkeypatch.setattr(bot.app, "run_bot", conflicted)
    # The token check before start (getMe) has its own tests; this one is about the 409 path.
    monkeypatch.setattr(bot.startup_errors, "check_telegram", lambda _settings: None)
    monkeypatch.setenv("CRISISDESK_TELEGRAM_TOKEN", "123:ABC")
    monkeypatch.setenv("CRISISDESK_DATA_DIR", str(tmp_path))
    assert cli.main(["run"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [CONFLICT_LINE]


def test_the_lock_is_per_file_and_released(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    lock = DatabaseLock.acquire(url)
    assert lock is not None
    with pytest.raises(DatabaseInUse, match=str(os.getpid())):
        DatabaseLock.acquire(url)
    other = DatabaseLock.acquire(f"sqlite:///{tmp_path / 'y.sqlite3'}")
    assert other is not None
    lock.release()
    again = DatabaseLock.acquire(url)
    assert again is not None
    again.release()
    other.release()
    assert DatabaseLock.acquire("sqlite://") is None  # in memory: nothing to share
    assert DatabaseLock.acquire("postgresql+psycopg://u@h/db") is None
