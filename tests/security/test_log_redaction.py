"""No bot token and no phone number in the log at any level (issue 16, item 5).

A whole registration, with the phone shared as a contact and an admin's approval, runs through
the real bot on the emulator with every logger at DEBUG (python-telegram-bot's, httpx's and
aiohttp's included); the captured log is then searched for the token and the phone.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from emulator_fixtures import running_app
from registration.reg_helpers import add_agencies, labels, press, say

from bot.app import build_application
from bot.clock import SimulatedClock
from bot.logging_setup import RedactSecrets, configure_logging, redact
from bot.sandbox.telegram_emulator import TelegramEmulator
from storage.db import Database

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw8"
PHONE_DIGITS = "912345678"


@pytest_asyncio.fixture
async def real_token_emulator() -> AsyncIterator[TelegramEmulator]:
    emu = TelegramEmulator(TOKEN, flood_limits=False)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def debug_log() -> Any:
    """Every logger at DEBUG into a buffer; what was changed is put back afterwards."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    saved = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore", "aiohttp")}
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)
    for h in root.handlers:
        for f in [f for f in h.filters if isinstance(f, RedactSecrets)]:
            h.removeFilter(f)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


async def test_registration_at_debug_leaks_neither_token_nor_phone(
    real_token_emulator: TelegramEmulator,
    sqlite_db: Database,
    make_settings: Any,
    clock: SimulatedClock,
    debug_log: io.StringIO,
) -> None:
    emulator = real_token_emulator
    ids = add_agencies(sqlite_db, ("BYT", "Bộ Y tế"))
    admin = emulator.create_user("Admin", language_code="en")
    alice = emulator.create_user("Alice", username="alice_vn", language_code="vi")
    emulator.send_text(admin.id, "hello")
    settings = make_settings(
        {
            "CRISISDESK_TELEGRAM_TOKEN": TOKEN,
            "CRISISDESK_TELEGRAM_API_URL": emulator.root_url,
            "CRISISDESK_ADMIN_IDS": str(admin.id),
            "CRISISDESK_LOG_LEVEL": "DEBUG",
        }
    )
    configure_logging(settings)
    logging.getLogger().setLevel(logging.DEBUG)
    for noisy in ("httpx", "httpcore", "aiohttp"):  # louder than production, to prove the point
        logging.getLogger(noisy).setLevel(logging.DEBUG)

    app = build_application(settings, sqlite_db, clock)
    async with running_app(app):
        first = await say(emulator, alice.id, "/start")
        _, _ask_name = await press(emulator, alice.id, first, "Tiếng Việt")
        ask_agency = await say(emulator, alice.id, "Nguyễn Văn An")
        _, ask_role = await press(emulator, alice.id, ask_agency, "Bộ Y tế (BYT)")
        _, _ask_phone = await press(emulator, alice.id, ask_role, labels(ask_role)[0])
        sent = emulator.send_contact(alice.id, f"+84 {PHONE_DIGITS[:3]} 345 678")
        await emulator.wait_for_message(alice.id, after=sent.message_id)
        review = await emulator.wait_for_message(
            admin.id, lambda m: "Nguyễn Văn An" in (m.text or "")
        )
        await emulator.press_button(admin.id, admin.id, review.message_id, text=labels(review)[0])
        await emulator.wait_for_message(alice.id, lambda m: "đã được phê duyệt" in (m.text or ""))
    assert ids

    text = debug_log.getvalue()
    assert "getUpdates" in text and "sendMessage" in text  # the DEBUG lines were written
    assert "[secret]" in text and "[phone]" in text  # and they did carry both, redacted
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    for shape in (PHONE_DIGITS, "912 345 678", "912-345-678"):
        assert shape not in text


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        (f"POST http://x/bot{TOKEN}/getMe", "POST http://x/bot[secret]/getMe"),
        ("POST http://x/bot7012345678%3AAAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw8/getMe", None),
        ("{'phone_number': '84912345678', 'user_id': 42}", "{'phone_number': '[phone]', "),
        ('{"phone": "0912 345 678"}', '{"phone": "[phone]"}'),
        ("call me on 0912.345.678 today", "call me on [phone] today"),
        ("user 8412345678 in chat -1001234567890", "user 8412345678 in chat -1001234567890"),
    ],
)
def test_redact_shapes(line: str, kept: str | None) -> None:
    record = logging.LogRecord("x", logging.DEBUG, "", 0, line, None, None)
    assert RedactSecrets([TOKEN]).filter(record) is True
    message = record.getMessage()
    assert "AAHdqTcv" not in message and "912" not in message.replace("1234567890", "")
    if kept is not None:
        assert message.startswith(kept)


def test_exception_text_is_redacted_too() -> None:
    try:
        raise RuntimeError(f"failed calling /bot{TOKEN}/sendMessage for +84912345678")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, "", 0, "boom", None, sys.exc_info())
    RedactSecrets([TOKEN]).filter(record)
    assert record.exc_text is not None
    assert TOKEN not in record.exc_text and "84912345678" not in record.exc_text
    assert redact("nothing secret here") == "nothing secret here"


def test_a_job_cancelled_at_shutdown_is_one_info_line() -> None:
    """APScheduler logs a job cancelled by the stopping process as an error with a traceback;
    the process's handlers tell it in one INFO line (tests/foundation/test_cli.py checks the
    sandbox's stderr has no traceback)."""
    import asyncio
    import io
    import logging

    from bot.logging_setup import LOG_FORMAT, CancelledJobsAreNews

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(CancelledJobsAreNews())
    log = logging.getLogger("apscheduler.executors.default")
    log.addHandler(handler)
    try:
        try:
            raise asyncio.CancelledError
        except asyncio.CancelledError:
            log.exception('Job "tick" raised an exception')
        try:
            raise ValueError("real")
        except ValueError:
            log.exception('Job "scan" raised an exception')
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert (
        'INFO apscheduler.executors.default: Job "tick" raised an exception (cancelled'
        in (lines[0])
    )
    assert "CancelledError" not in stream.getvalue()
    assert "ERROR" in lines[1] and "ValueError: real" in stream.getvalue()  # a real error stays
