"""The ``crisisdesk`` command: version, help, run without a token, db upgrade, emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import sqlalchemy as sa

CLI = [sys.executable, "-m", "bot.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    return subprocess.run(
        [*CLI, *args], env={**base, **(env or {})}, capture_output=True, text=True, check=False
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


def test_run_without_token_starts_the_sandbox(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    env = {
        **base,
        "CRISISDESK_DATA_DIR": str(tmp_path / "configured"),
        # The sandbox must never use a configured database.
        "CRISISDESK_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/production",
    }
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    process = subprocess.Popen(
        [*CLI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
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


def test_emulator_command_serves_the_bot_api() -> None:
    process = subprocess.Popen(
        [*CLI, "emulator", "--port", "0", "--token", "42:SECRET"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        root = process.stdout.readline().strip()
        assert root.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{root}/bot42:SECRET/getMe", timeout=5) as response:
            body = json.load(response)
        assert body["ok"] is True and body["result"]["id"] == 42
    finally:
        process.terminate()
        process.wait(timeout=10)
