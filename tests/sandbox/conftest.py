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
        output = stop_sandbox(sandbox)
        (tmp_path / "sandbox.log").write_text(output, encoding="utf-8")
        print(output[-4000:])
