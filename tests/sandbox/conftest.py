"""Fixtures for the sandbox tests (helpers live in ``procs.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox.procs import SandboxProcess, start_sandbox, stop_sandbox


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
