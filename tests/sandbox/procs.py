"""A sandbox process started the way a person starts it (``crisisdesk sandbox ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLI = [sys.executable, "-m", "bot.cli"]


@dataclass
class SandboxProcess:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    first_lines: list[str]

    @property
    def database(self) -> Path:
        return self.data_dir / "crisisdesk.sqlite3"


def start_sandbox(*args: str, data_dir: Path, timeout: float = 60.0) -> SandboxProcess:
    """``crisisdesk sandbox ARGS --data DIR --port 0 --no-browser-open``; waits for the address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    env["CRISISDESK_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/never-used"
    process = subprocess.Popen(
        [*CLI, "sandbox", *args, "--data", str(data_dir), "--port", "0", "--no-browser-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("CrisisDesk sandbox: "):
            url = line.split(": ", 1)[1].strip()
            return SandboxProcess(process, url, data_dir, lines)
    process.kill()
    raise AssertionError("the sandbox did not print its address:\n" + "\n".join(lines))


def stop_sandbox(sandbox: SandboxProcess, grace: float = 15.0) -> str:
    """Terminate (kill after ``grace`` seconds) and return the rest of the output."""
    sandbox.process.terminate()
    try:
        out, _ = sandbox.process.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        sandbox.process.kill()
        out, _ = sandbox.process.communicate()
    return out or ""
