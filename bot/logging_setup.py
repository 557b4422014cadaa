"""Logging for the ``crisisdesk`` process: one format, quiet libraries, and no secrets.

At DEBUG, python-telegram-bot logs every Bot API call with its parameters and every update it
receives, and httpx logs every request URL, which for the Bot API is ``…/bot<TOKEN>/method``.
So the bot token and the phone numbers people share at registration would reach the log file,
and from there every backup and every support ticket. :class:`RedactSecrets` rewrites each
record on the way out of every root handler (child loggers, PTB's, httpx's and aiohttp's
included, reach the root's handlers by propagation); it redacts the formatted message, the
exception text and the stack, so nothing depends on how a library phrases its lines.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

from bot.config import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SECRET_MARK = "[secret]"
PHONE_MARK = "[phone]"

# Anything shaped like a Bot API token, even one that is not ours (a second bot, an old one).
_ANY_TOKEN = re.compile(r"\b\d{5,16}:[A-Za-z0-9_-]{30,}")
# A phone value under a phone key, in a dict repr or JSON: {'phone_number': '84912345678'}.
_PHONE_FIELD = re.compile(
    r"""(?P<key>["']phone(?:_number)?["']\s*:\s*)(?P<q>["'])(?P<value>[^"']*)(?P=q)""",
    re.IGNORECASE,
)
# Free-text phone numbers: international (+84 912 345 678) or Vietnamese national (0912345678).
# Bare digit runs without + or a leading 0 are left alone: they are Telegram ids, and an operator
# needs those to follow a problem.
_PHONE_TEXT = re.compile(
    r"(?<![\w+])\+\d(?:[ .()-]{0,2}\d){5,14}(?!\w)|(?<![\w+-])0\d(?:[ .-]?\d){7,9}(?!\w)"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secrets, anything shaped like a bot token, and phone numbers
    replaced by markers."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, SECRET_MARK)
    text = _ANY_TOKEN.sub(SECRET_MARK, text)
    text = _PHONE_FIELD.sub(lambda m: f"{m['key']}{m['q']}{PHONE_MARK}{m['q']}", text)
    return _PHONE_TEXT.sub(PHONE_MARK, text)


class RedactSecrets(logging.Filter):
    """A handler filter that rewrites each record's message, exception and stack text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        variants: set[str] = set()
        for secret in secrets:
            if secret:
                variants.update({secret, quote(secret, safe=""), quote(secret)})
        # Longest first, so that a secret containing another is replaced whole.
        self.secrets = sorted(variants, key=len, reverse=True)
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def install_redaction(secrets: Iterable[str], logger: logging.Logger | None = None) -> None:
    """Put one :class:`RedactSecrets` on every handler of ``logger`` (the root by default),
    replacing one installed before (the token may have changed)."""
    target = logger or logging.getLogger()
    redactor = RedactSecrets(secrets)
    for handler in target.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)


class CancelledJobsAreNews(logging.Filter):
    """A scheduled job still running when the process stops is cancelled by APScheduler's
    executor, which logs that as an error with a CancelledError traceback. That is the expected
    end of a job at shutdown (its work is in transactions, picked up by the next run), so it is
    told in one INFO line instead of a traceback an operator would take for a crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name.startswith("apscheduler") and isinstance(exc, asyncio.CancelledError):
            record.msg = f"{record.getMessage()} (cancelled: the process is stopping)"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def settings_secrets(settings: Settings) -> list[str]:
    """The values no log line may contain."""
    found = [settings.token or ""]
    if settings.webhook_secret is not None:
        found.append(settings.webhook_secret.get_secret_value())
    return [s for s in found if s]


def configure_logging(settings: Settings) -> None:
    """The process's logging: level and format from settings, chatty libraries held at WARNING
    or above, and secrets redacted on every root handler."""
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    # Alembic and httpx narrate every step at INFO; an operator needs only their problems.
    for chatty in ("alembic", "httpx", "apscheduler"):
        logging.getLogger(chatty).setLevel(
            max(logging.WARNING, logging.getLevelName(settings.log_level))
        )
    install_redaction(settings_secrets(settings))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, CancelledJobsAreNews) for f in handler.filters):
            handler.addFilter(CancelledJobsAreNews())
