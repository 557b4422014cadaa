"""Fixtures for the sandbox tests (helpers live in ``procs.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sandbox.procs import SandboxProcess, start_sandbox, stop_sandbox

from bot.sandbox.runner import Sandbox, SandboxOptions


@pytest.fixture
def drill_sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    """A drill sandbox with the clock paused (the test moves it with the page's buttons)."""
    sandbox = start_sandbox("--drill", "--speed", "0", data_dir=tmp_path / "sandbox")
    try:
        yield sandbox
    finally:
        # After a walk the bot is still posting the closed case's report and brief to the
        # room, paced by the group's flood limit (20 a minute), and a SIGTERM waits for that
        # (up to a minute). The data folder is the test's own: no need to wait for it.
        output = stop_sandbox(sandbox, grace=5.0)
        (tmp_path / "sandbox.log").write_text(output, encoding="utf-8")
        print(output[-4000:])


@pytest_asyncio.fixture
async def sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Sandbox]:
    # A configured deployment must be ignored: the sandbox never touches its database.
    monkeypatch.setenv("CRISISDESK_DATABASE_URL", "postgresql+psycopg://x@127.0.0.1:1/prod")
    monkeypatch.setenv("CRISISDESK_DATA_DIR", str(tmp_path / "production-data"))
    param = getattr(request, "param", False)  # drill on/off, or the options to change
    options: dict[str, Any] = {
        "speed": 0,
        **(param if isinstance(param, dict) else {"drill": param}),
    }
    box = Sandbox(SandboxOptions(data_dir=tmp_path / "sb", port=0, scan_seconds=1.0, **options))
    await box.start()
    try:
        yield box
    finally:
        await box.stop()
