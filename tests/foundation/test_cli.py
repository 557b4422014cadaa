"""The ``crisisdesk`` command: version, help, run without a token, db upgrade, emulator, and one
clear line and a non-zero exit for every mistake a newcomer can make."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

CLI = [sys.executable, "-m", "bot.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    return subprocess.run(
        [*CLI, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
    )


def test_version_and_help() -> None:
    assert run("--version").stdout.startswith("crisisdesk ")
    result = run("--help")
    assert result.returncode == 0
    for command in ("run", "db", "emulator"):
        assert command in result.stdout
    for sub in (("run", "--help"), ("db", "upgrade", "--help"), ("emulator", "--help")):
        assert run(*sub).returncode == 0


def test_no_command_prints_usage() -> None:
    result = run()
    assert result.returncode == 2
    assert "usage: crisisdesk" in result.stderr


def run_without_token(env: dict[str, str]) -> subprocess.Popen[str]:
    """``crisisdesk run`` with no token (the sandbox), no desktop, and ``env`` added."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    full = {**base, **env}
    full.pop("DISPLAY", None)
    full.pop("WAYLAND_DISPLAY", None)
    return subprocess.Popen(
        [*CLI, "run"], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_run_without_token_starts_the_sandbox(tmp_path: Path) -> None:
    process = run_without_token(
        {
            "CRISISDESK_DATA_DIR": str(tmp_path / "configured"),
            # The sandbox must never use a configured database.
            "CRISISDESK_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/production",
        }
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("CrisisDesk sandbox: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip()
        with urllib.request.urlopen(f"{url}api/state", timeout=10) as response:
            state = json.load(response)
        assert [p["key"] for p in state["personas"]][:2] == ["admin", "supervisor"]
        assert not (tmp_path / "configured").exists()
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    assert "no CRISISDESK_TELEGRAM_TOKEN" in err
    assert "Traceback" not in err


def test_db_upgrade_migrates_and_syncs(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[agencies]]\ncode = "BYT"\nname = "Bộ Y tế"\n'
        '[[topics]]\nagency = "BYT"\nname = "Vắc-xin"\nquery = "vắc-xin"\n',
        encoding="utf-8",
    )
    env = {"CRISISDESK_DATA_DIR": str(tmp_path / "data"), "CRISISDESK_CONFIG": str(config)}
    for _ in range(2):  # idempotent
        result = run("db", "upgrade", env=env)
        assert result.returncode == 0, result.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'crisisdesk.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("select name from topic").scalars().all() == ["Vắc-xin"]
    finally:
        engine.dispose()


def test_emulator_command_serves_the_bot_api(emulator_url: str) -> None:
    assert emulator_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{emulator_url}/bot42:SECRET/getMe", timeout=5) as response:
        body = json.load(response)
    assert body["ok"] is True and body["result"]["id"] == 42


# ------------------------------------------------ one clear line for every mistake (issue 18)
# Each case used to end in a traceback (106 lines for a wrong token, 220 for an unreachable Bot
# API); the sandbox logged two lines every 3 s even while paused and left its temporary folder
# behind when stopped with SIGTERM.


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a failed command (and nothing else)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("crisisdesk: ") and "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    process = subprocess.Popen(
        [*CLI, "emulator", "--port", "0", "--token", "42:SECRET"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("command", [("sandbox", "--no-browser-open"), ("emulator",)])
def test_a_port_out_of_range(command: tuple[str, ...]) -> None:
    line = one_line(run(*command, "--port", "99999"), 2)
    assert "--port must be between 0 and 65535" in line


def test_db_upgrade_with_an_unreachable_database(tmp_path: Path) -> None:
    url = "postgresql+psycopg://crisis:hunter2@127.0.0.1:1/desk"
    line = one_line(run("db", "upgrade", env={"CRISISDESK_DATABASE_URL": url}), 1)
    assert "cannot use the database" in line and "127.0.0.1:1" in line
    assert "hunter2" not in line  # the password is never printed


def test_db_upgrade_with_an_unusable_data_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    line = one_line(run("db", "upgrade", env={"CRISISDESK_DATA_DIR": str(blocker / "data")}), 1)
    assert f"cannot use {blocker}" in line


def test_run_with_a_wrong_token(tmp_path: Path, emulator_url: str) -> None:
    env = {
        "CRISISDESK_DATA_DIR": str(tmp_path),
        "CRISISDESK_TELEGRAM_TOKEN": "42:WRONG",
        "CRISISDESK_TELEGRAM_API_URL": emulator_url,
    }
    line = one_line(run("run", env=env), 2)
    assert "refused the bot token (Unauthorized)" in line and "CRISISDESK_TELEGRAM_TOKEN" in line
    assert "WRONG" not in line  # PTB's message quotes the token; ours does not


def test_run_with_an_unreachable_api(tmp_path: Path) -> None:
    env = {
        "CRISISDESK_DATA_DIR": str(tmp_path),
        "CRISISDESK_TELEGRAM_TOKEN": "42:SECRET",
        "CRISISDESK_TELEGRAM_API_URL": "http://127.0.0.1:1",
    }
    line = one_line(run("run", env=env), 1)
    assert "cannot reach the Telegram Bot API at http://127.0.0.1:1" in line


def test_malformed_toml_names_its_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('timezone = "Asia/Ho_Chi_Minh"\ntimezone = "UTC"\n', encoding="utf-8")
    line = one_line(run("db", "upgrade", env={"CRISISDESK_CONFIG": str(config)}), 2)
    assert f"{config} line 2: malformed TOML: Cannot overwrite a value" in line


def test_the_sandbox_is_quiet_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    """``crisisdesk run`` without a token logs at INFO; the sandbox's scans must not."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    process = run_without_token(
        {"TMPDIR": str(temp), "CRISISDESK_DATA_DIR": str(tmp_path / "unused")}
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("CrisisDesk sandbox: ")
        assert [p.name[:19] for p in temp.iterdir()] == ["crisisdesk-sandbox-"]
        time.sleep(7)  # a scan every ~3 s at the default speed
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert list(temp.iterdir()) == []  # the temporary folder is gone
    # Start-up says what it did once; nothing repeats while the day runs (it was two lines
    # per scan, every ~3 s, paused or not).
    assert "scan:" not in err, err
    info = [line.split(" INFO ", 1)[1] for line in err.splitlines() if " INFO " in line]
    assert len(info) == len(set(info)), info
    assert "Traceback" not in err
