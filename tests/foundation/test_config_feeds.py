"""The TOML's feed addresses are checked at start-up with the fetcher's own rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

TOML = """
[[sources]]
name = "Metadata"
outlet = "X"
url = "{url}"
"""


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/", "http://192.168.1.10/rss", "http://localhost/rss"]
)
def test_internal_feed_addresses_in_the_toml_are_refused(tmp_path: Path, url: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(TOML.format(url=url), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings({"CRISISDESK_CONFIG": str(path)})
    message = str(info.value)
    assert "sources[0].url" in message and "CRISISDESK_ALLOW_PRIVATE_FEEDS" in message
    assert "\n" not in message
    allowed = load_settings(
        {"CRISISDESK_CONFIG": str(path), "CRISISDESK_ALLOW_PRIVATE_FEEDS": "true"}
    )
    assert allowed.sources[0].url == url


def test_the_cli_says_it_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(TOML.format(url="http://10.1.2.3/rss"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISDESK_")}
    env |= {"CRISISDESK_CONFIG": str(path), "CRISISDESK_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "10.1.2.3" in lines[0], done.stderr
