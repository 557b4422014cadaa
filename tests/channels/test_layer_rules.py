"""The conversation layer and the flows written on it name no messenger.

A static check of import statements (``bot.metrics`` imports PTB for the app's metrics, so
whether ``telegram`` ends up in ``sys.modules`` says nothing about these modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEUTRAL = [
    *sorted((ROOT / "handlers" / "conversation").glob("*.py")),
    ROOT / "handlers" / "alert_draft.py",
    ROOT / "handlers" / "alerts.py",
    ROOT / "handlers" / "approvals.py",
    ROOT / "handlers" / "drafts.py",
    ROOT / "handlers" / "linking.py",
    ROOT / "handlers" / "registration.py",
    ROOT / "handlers" / "taskforce.py",
    ROOT / "handlers" / "topics.py",
    ROOT / "handlers" / "people.py",
    ROOT / "handlers" / "start.py",
    ROOT / "handlers" / "admin.py",
]
CHANNEL_SPECIFIC = ("telegram", "bot.channels.telegram", "bot.channels.zalo.bot_api")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", NEUTRAL, ids=lambda p: str(p.relative_to(ROOT)))
def test_neutral_modules_import_no_messenger(path: Path) -> None:
    offending = {
        name
        for name in imported(path)
        for banned in CHANNEL_SPECIFIC
        if name == banned or name.startswith(banned + ".")
    }
    assert not offending, f"{path.name} imports {sorted(offending)}"
