"""One clear line for each start-up failure a newcomer can cause, instead of a traceback.

A wrong bot token, a Bot API address that does not answer, a database that cannot be reached:
each used to end ``crisisdesk`` with a hundred or more lines of traceback (PTB logs its own
before raising). The CLI checks the token against the Bot API before the bot starts
(:func:`check_telegram`) and turns a database connection error into a sentence
(:func:`known_failure`); everything else still shows its traceback, because that is a bug.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.config import ENV_PREFIX, Settings

EXIT_FAILURE = 1
EXIT_USAGE = 2
API_TIMEOUT = 10.0  # seconds to connect to and hear from the Bot API at start-up


class StartupError(Exception):
    """A failure the operator can fix; ``str(exc)`` is the one line to print."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


async def serve_or_explain(
    app: web.Application, host: str, port: int, *, what: str, check: str
) -> web.AppRunner:
    """Serve ``app`` on ``host:port``, the runner to clean up at the end.

    A port already taken or an address that is not this machine's is a setting to fix, not a
    bug: it becomes one :class:`StartupError` line saying ``what`` could not be served and which
    settings to ``check`` (the half-started runner is cleaned up first)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(
            f"cannot serve {what} on {host}:{port}: {exc.strerror or exc} (check {check})"
        ) from None
    return runner


def check_telegram(settings: Settings) -> None:
    """Ask the Bot API who the bot is (``getMe``), as PTB would, and explain a refusal.

    Raises :class:`StartupError`: exit 2 when the token is refused (configuration), 1 when the
    API cannot be reached (network or ``TELEGRAM_API_URL``).
    """
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError
    from telegram.request import HTTPXRequest

    assert settings.token is not None
    url = settings.telegram_api_url

    async def get_me() -> None:
        request = HTTPXRequest(connect_timeout=API_TIMEOUT, read_timeout=API_TIMEOUT)
        bot = Bot(
            settings.token or "",
            base_url=settings.bot_base_url,
            base_file_url=settings.bot_file_url,
            request=request,
            get_updates_request=HTTPXRequest(),
        )
        async with bot:  # initialize() calls getMe
            pass

    try:
        asyncio.run(get_me())
    except InvalidToken as exc:
        # PTB's own message quotes the token; the cause says how it was refused.
        cause = exc.__cause__
        how = cause.message if isinstance(cause, TelegramError) else "refused"
        hint = "" if how.lower() == "unauthorized" else f" and {ENV_PREFIX}TELEGRAM_API_URL"
        raise StartupError(
            f"the Bot API at {url} refused the bot token ({how}): check "
            f"{ENV_PREFIX}TELEGRAM_TOKEN (the token @BotFather gave, like 123456789:AAE…){hint}",
            EXIT_USAGE,
        ) from None
    except NetworkError as exc:
        reason = exc.message.removeprefix("httpx.").split(": ", 1)[-1]
        raise StartupError(
            f"cannot reach the Telegram Bot API at {url} ({reason}): check the network "
            f"or {ENV_PREFIX}TELEGRAM_API_URL"
        ) from None


def known_failure(exc: BaseException, settings: Settings | None = None) -> StartupError | None:
    """The one-line form of ``exc`` if a person can cause and fix it, else ``None``."""
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = ""
        if settings is not None:
            from sqlalchemy.engine import make_url

            shown = make_url(settings.effective_database_url).render_as_string(hide_password=True)
            where = f" {shown}"
        return StartupError(
            f"cannot use the database{where}: {reason} (check {ENV_PREFIX}DATABASE_URL, or "
            f"{ENV_PREFIX}DATA_DIR for SQLite)"
        )
    if isinstance(exc, OSError) and exc.filename:  # a data folder that cannot be made or read
        return StartupError(
            f"cannot use {exc.filename}: {exc.strerror} (check {ENV_PREFIX}DATA_DIR and the "
            "paths in the config)"
        )
    return None
