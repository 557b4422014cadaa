"""Config contract: every variable and TOML key, and one-line errors for bad values."""

from __future__ import annotations

import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from bot.channels.refs import ChatRef, PersonRef
from bot.config import ConfigError, load_settings

FULL_TOML = """
scan_interval = 600

[[agencies]]
code = "BYT"
name = "Bộ Y tế"
hub_chat_id = -1001234567890
deadline_hours = 24
approvals_required = 2
approval_pin = true
public_channel = "@byt_news"

[[agencies]]
code = "BGDDT"
name = "Bộ Giáo dục và Đào tạo"
deadline_hours = 6

[[topics]]
agency = "BYT"
name = "Vắc-xin"
query = '("vắc-xin" OR "vaccine") AND NOT "thú y"'
sensitivity = "high"

[[sources]]
name = "Sức khỏe"
outlet = "VnExpress"
url = "https://example.vn/rss/suc-khoe.rss"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crisisdesk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_the_contract() -> None:
    s = load_settings({})
    assert s.token is None
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.bot_base_url == "https://api.telegram.org/bot"
    assert s.database_url is None
    assert s.effective_database_url.endswith("data/crisisdesk.sqlite3")
    assert s.scan_interval == 300
    assert s.hub_chat_id is None
    assert s.admin_ids == []
    assert s.timezone == "Asia/Ho_Chi_Minh"
    assert s.allow_private_feeds is False
    assert s.webhook_url is None and s.webhook_secret is None and s.webhook_port == 8443
    assert s.invite_ttl_hours == 72
    assert s.escalation_minutes == 15
    assert s.digest_time == time(7, 30)


def test_every_environment_variable_is_read(tmp_path: Path) -> None:
    env = {
        "CRISISDESK_TELEGRAM_TOKEN": "123:ABC",
        "CRISISDESK_TELEGRAM_API_URL": "http://127.0.0.1:8081/",
        "CRISISDESK_DATABASE_URL": "postgresql+psycopg://u@h/db",
        "CRISISDESK_DATA_DIR": str(tmp_path),
        "CRISISDESK_SCAN_INTERVAL": "60",
        "CRISISDESK_HUB_CHAT_ID": "-100123",
        "CRISISDESK_ADMIN_IDS": "1, 2,3",
        "CRISISDESK_TIMEZONE": "Europe/Berlin",
        "CRISISDESK_ALLOW_PRIVATE_FEEDS": "true",
        "CRISISDESK_WEBHOOK_URL": "https://bot.example.vn/hook",
        "CRISISDESK_WEBHOOK_SECRET": "s3cret",
        "CRISISDESK_WEBHOOK_PORT": "8080",
        "CRISISDESK_TICK_SECONDS": "2",
        "CRISISDESK_INVITE_TTL_HOURS": "24",
        "CRISISDESK_ESCALATION_MINUTES": "5",
        "CRISISDESK_DIGEST_TIME": "06:45",
        "CRISISDESK_APPROVAL_REMINDER_MINUTES": "10",
        "CRISISDESK_TEMPLATES_DIR": str(tmp_path / "tpl"),
        "CRISISDESK_LOG_LEVEL": "DEBUG",
    }
    s = load_settings(env)
    assert s.token == "123:ABC"
    assert s.bot_base_url == "http://127.0.0.1:8081/bot"
    assert s.bot_file_url == "http://127.0.0.1:8081/file/bot"
    assert s.effective_database_url == "postgresql+psycopg://u@h/db"
    assert s.data_dir == tmp_path
    assert s.scan_interval == 60
    assert s.hub_chat_id == ChatRef("telegram", "-100123")
    assert s.admin_ids == [PersonRef("telegram", str(n)) for n in (1, 2, 3)]
    assert s.tz.key == "Europe/Berlin"
    assert s.allow_private_feeds is True
    assert s.webhook_url == "https://bot.example.vn/hook"
    assert s.webhook_secret is not None and s.webhook_secret.get_secret_value() == "s3cret"
    assert s.webhook_port == 8080
    assert s.tick_seconds == 2
    assert s.invite_ttl_hours == 24
    assert s.escalation_minutes == 5
    assert s.digest_time == time(6, 45)
    assert s.approval_reminder_minutes == 10
    assert s.templates_dir == tmp_path / "tpl"
    assert s.log_level == "DEBUG"


def test_every_toml_key_is_read_and_env_wins(tmp_path: Path) -> None:
    path = write(tmp_path, FULL_TOML)
    s = load_settings({"CRISISDESK_CONFIG": str(path), "CRISISDESK_SCAN_INTERVAL": "120"})
    assert s.scan_interval == 120  # environment over TOML
    byt, bgd = s.agencies
    assert (byt.code, byt.name) == ("BYT", "Bộ Y tế")
    assert (byt.hub_channel, byt.hub_chat_id) == ("telegram", "-1001234567890")
    assert (byt.deadline_hours, byt.approvals_required, byt.approval_pin) == (24, 2, True)
    assert byt.public_channel == "@byt_news"
    assert (bgd.deadline_hours, bgd.approvals_required, bgd.hub_chat_id) == (6, 1, None)
    assert bgd.hub_channel is None
    (topic,) = s.topics
    assert (topic.agency, topic.name, topic.sensitivity) == ("BYT", "Vắc-xin", "high")
    (source,) = s.sources
    assert (source.name, source.outlet, source.url) == (
        "Sức khỏe",
        "VnExpress",
        "https://example.vn/rss/suc-khoe.rss",
    )
    assert load_settings({"CRISISDESK_CONFIG": str(path)}).scan_interval == 600


def test_ids_may_name_their_channel(tmp_path: Path) -> None:
    """A bare id is Telegram's (as before other channels); ``zalo:…`` names another channel."""
    path = write(
        tmp_path,
        '[[agencies]]\ncode = "BYT"\nname = "Bộ Y tế"\nhub_chat_id = "zalo:g-17"\n'
        '[[agencies]]\ncode = "BTC"\nname = "Bộ Tài chính"\nhub_chat_id = "-100777"\n',
    )
    s = load_settings(
        {
            "CRISISDESK_CONFIG": str(path),
            "CRISISDESK_ADMIN_IDS": "123, zalo:abc-9,telegram:77",
            "CRISISDESK_HUB_CHAT_ID": "zalo:hub-1",
        }
    )
    assert s.admin_ids == [
        PersonRef("telegram", "123"),
        PersonRef("zalo", "abc-9"),
        PersonRef("telegram", "77"),
    ]
    assert s.hub_chat_id == ChatRef("zalo", "hub-1")
    assert [(a.hub_channel, a.hub_chat_id) for a in s.agencies] == [
        ("zalo", "g-17"),
        ("telegram", "-100777"),
    ]
    assert load_settings({}, admin_ids=[7001], hub_chat_id=-1005).admin_ids == [
        PersonRef("telegram", "7001")
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"CRISISDESK_SCAN_INTERVAL": "often"},
            "CRISISDESK_SCAN_INTERVAL: Input should be a valid integer",
        ),
        (
            {"CRISISDESK_SCAN_INTERVAL": "1"},
            "CRISISDESK_SCAN_INTERVAL: Input should be greater than or equal to 10",
        ),
        (
            {"CRISISDESK_ADMIN_IDS": "1,bob"},
            "CRISISDESK_ADMIN_IDS: expected a numeric Telegram id or channel:id (telegram, zalo), "
            "got 'bob'",
        ),
        (
            {"CRISISDESK_ADMIN_IDS": "1,line:abc"},
            "CRISISDESK_ADMIN_IDS: expected a numeric Telegram id or channel:id (telegram, zalo), "
            "got 'line:abc'",
        ),
        (
            {"CRISISDESK_HUB_CHAT_ID": "zalo:"},
            "CRISISDESK_HUB_CHAT_ID: expected a numeric Telegram id or channel:id",
        ),
        (
            {"CRISISDESK_TIMEZONE": "Mars/Olympus"},
            "CRISISDESK_TIMEZONE: unknown time zone 'Mars/Olympus'",
        ),
        (
            {"CRISISDESK_ALLOW_PRIVATE_FEEDS": "maybe"},
            "CRISISDESK_ALLOW_PRIVATE_FEEDS: Input should be a valid boolean",
        ),
        (
            {"CRISISDESK_TELEGRAM_API_URL": "ftp://x"},
            "CRISISDESK_TELEGRAM_API_URL: String should match pattern",
        ),
        (
            {"CRISISDESK_WEBHOOK_PORT": "70000"},
            "CRISISDESK_WEBHOOK_PORT: Input should be less than or equal to 65535",
        ),
        (
            {"CRISISDESK_CONFIG": "/nonexistent/x.toml"},
            "CRISISDESK_CONFIG: cannot read /nonexistent/x.toml",
        ),
    ],
)
def test_bad_environment_values_name_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[[agencies]]\ncode = "BYT"\nname = "Bộ Y tế"\ndeadline_hours = "soon"\n',
            "line 4: agencies[0].deadline_hours: Input should be a valid number",
        ),
        (
            '[[agencies]]\ncode = "A"\nname = "A"\n\n'
            '[[agencies]]\ncode = "B"\nname = "B"\ncolour = 1\n',
            "line 8: agencies[1].colour: Extra inputs are not permitted",
        ),
        (
            '[[agencies]]\ncode = "A"\nname = "A"\n'
            '[[topics]]\nagency = "A"\nname = "T"\nquery = \'("x" OR\'\n',
            "line 7: topics[0].query: ",
        ),
        (
            '[[topics]]\nagency = "NOPE"\nname = "T"\nquery = \'x\'\n',
            "line 2: topics[0].agency: unknown agency 'NOPE'",
        ),
        ("scan_interval = 300\nagencies = [\n", "line 2: malformed TOML: "),
        # tomllib says "at end of document" for these; the line is found all the same.
        ("scan_interval = 300\nscan_interval = 200\n", "line 2: malformed TOML: Cannot overwrite"),
        (
            '[[agencies]]\ncode = "A"\nname = "A"\n\n[[agencies]]\ncode = "A"\nname = "B"\n',
            "line 6: agencies[1].code: agency code 'A' is defined twice",
        ),
        (
            '[[agencies]]\ncode = "A"\nname = "A"\n[agencies.policy]\nx = 1\n',
            "line 4: agencies[0].policy: Extra inputs are not permitted",
        ),
        (
            '[[sources]]\nname = "x"\noutlet = "y"\nurl = "file:///etc/passwd"\n',
            "line 4: sources[0].url: String should match pattern",
        ),
    ],
)
def test_bad_toml_names_the_line(tmp_path: Path, toml: str, expected: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load_settings({"CRISISDESK_CONFIG": str(path)})
    message = str(info.value)
    assert expected in message, message
    assert str(path) in message
    assert "\n" not in message


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, '[[agencies]]\ncode = "BYT"\n')
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"],
        env={"CRISISDESK_CONFIG": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert (
        "configuration error" in result.stderr
        and "agencies[0].name: Field required" in result.stderr
    )
    assert "Traceback" not in result.stderr
