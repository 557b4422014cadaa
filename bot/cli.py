"""The ``crisisdesk`` command.

Each subcommand is a small function taking the parsed arguments and returning an exit code.
Configuration errors are printed as one line on stderr with exit code 2: an operator on a bad day
must see what to fix, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from bot.clock import SystemClock
from bot.config import ConfigError, Settings, load_settings
from bot.logging_setup import configure_logging
from storage.lock import DatabaseInUse

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
MAX_PORT = 65535

Command = Callable[[argparse.Namespace], int]


def _version() -> str:
    try:
        return version("crisisdesk")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "config", None):
        overrides["config"] = args.config
    settings = load_settings(**overrides)
    args.settings = settings  # for the one-line report of a failure (see main)
    configure_logging(settings)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    """Run the bot: migrate, sync the TOML, then poll Telegram (or Zalo, with only a Zalo
    token; both, with both tokens) with the scheduler and tick."""
    settings = _settings(args)
    if settings.zalo is not None:  # ZALO_TOKEN without TELEGRAM_TOKEN: CrisisDesk on Zalo
        from bot.channels.zalo.app import run_zalo

        run_zalo(settings)
        return EXIT_OK
    if settings.token is None:
        print(
            "crisisdesk: no CRISISDESK_TELEGRAM_TOKEN is set, so this is the local sandbox "
            "(set a bot token from @BotFather to run the real bot).",
            file=sys.stderr,
            flush=True,
        )
        return _run_sandbox(data=None, port=None, speed=None, drill=False, open_browser=True)
    from bot.startup_errors import check_telegram

    check_telegram(settings)  # a wrong token or API address: one line, not PTB's traceback
    from bot.app import run_bot
    from bot.polling import PollingConflict

    try:
        run_bot(settings)
    except PollingConflict as exc:
        print(f"crisisdesk: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _run_sandbox(
    *, data: str | None, port: int | None, speed: float | None, drill: bool, open_browser: bool
) -> int:
    import asyncio
    from pathlib import Path

    from bot.sandbox.runner import DEFAULT_SPEED, SandboxOptions, can_open_browser, run_sandbox

    options = SandboxOptions(
        data_dir=Path(data) if data else None,
        port=8080 if port is None else port,
        port_fallback=port is None,  # the default port may be taken: then any free one
        speed=DEFAULT_SPEED if speed is None else speed,
        drill=drill,
    )
    try:
        asyncio.run(run_sandbox(options, open_browser=open_browser and can_open_browser()))
    except OSError as exc:  # the port is taken, the data directory is not writable…
        print(f"crisisdesk: the sandbox could not start: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    """The whole CrisisDesk on loopback with a simulated news day; prints the page's address."""
    if args.speed is not None and not 0 <= args.speed <= 3600:
        print("crisisdesk: --speed must be between 0 and 3600", file=sys.stderr)
        return EXIT_USAGE
    if args.port is not None and not 0 <= args.port <= MAX_PORT:
        print(f"crisisdesk: --port must be between 0 and {MAX_PORT}", file=sys.stderr)
        return EXIT_USAGE
    return _run_sandbox(
        data=args.data,
        port=args.port,
        speed=args.speed,
        drill=args.drill,
        open_browser=not args.no_browser_open,
    )


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply every pending migration and sync the TOML's agencies, topics and sources."""
    settings = _settings(args)
    from storage.sync import prepare_database

    prepare_database(settings).dispose()
    print("crisisdesk: database is at the latest revision and the config is synced")
    return EXIT_OK


def _database_file_command(args: argparse.Namespace, action: Callable[[str], str]) -> int:
    """Run a backup or restore ``action`` on the configured database; one line either way."""
    from storage.backup import BackupError

    url = _settings(args).effective_database_url
    try:
        done = action(url)
    except BackupError as exc:
        print(f"crisisdesk: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"crisisdesk: {done}")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the SQLite database while the bot runs; for PostgreSQL, print the pg_dump line."""
    from storage.backup import backup

    return _database_file_command(args, lambda url: backup(url, args.out))


def cmd_restore(args: argparse.Namespace) -> int:
    """Replace the SQLite database by a backup (no bot may run on it) and migrate it to head."""
    from storage.backup import restore

    return _database_file_command(args, lambda url: restore(url, args.backup))


def cmd_emulator(args: argparse.Namespace) -> int:
    """Serve the local Telegram Bot API emulator until interrupted; print its root URL."""
    import asyncio

    from bot.sandbox.telegram_emulator import TelegramEmulator

    if not 0 <= args.port <= MAX_PORT:
        print(f"crisisdesk: --port must be between 0 and {MAX_PORT}", file=sys.stderr)
        return EXIT_USAGE

    async def serve() -> None:
        emulator = TelegramEmulator(args.token, host=args.host, port=args.port)
        print(await emulator.start(), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await emulator.stop()

    asyncio.run(serve())
    return EXIT_OK


def cmd_trends_replay(args: argparse.Namespace) -> int:
    """Backtest the detectors on a recorded stream (logic in ``scanner.replay``)."""
    from pathlib import Path

    from scanner.replay import cmd_replay

    return cmd_replay(Path(args.stream), _settings(args), sys.stdout, sys.stderr)


def cmd_zalo_oa_seed(args: argparse.Namespace) -> int:
    """Store and check an agency's first Zalo OA refresh token (``zalo.oa.seeding``)."""
    for option, value in (("--agency", args.agency), ("--refresh-token", args.refresh_token)):
        if not value:  # checked here, not by argparse, so the mistake is one line
            print(f"crisisdesk: zalo-oa seed: {option} is required", file=sys.stderr)
            return EXIT_USAGE
    settings = _settings(args)
    from bot.channels.zalo.oa.seeding import SeedError, seed
    from storage.sync import prepare_database

    db = prepare_database(settings)
    try:
        print(f"crisisdesk: {seed(settings, db, args.agency, args.refresh_token)}")
    except SeedError as exc:
        print(f"crisisdesk: zalo-oa seed: {exc}", file=sys.stderr)
        return EXIT_FAILURE if exc.stored else EXIT_USAGE
    finally:
        db.dispose()
    return EXIT_OK


def cmd_templates_check(args: argparse.Namespace) -> int:
    """Check press templates: front matter, syntax, sandbox, a render with sample data."""
    from bot.services.press_templates import run_check

    templates_dir = None if args.dir else _settings(args).templates_dir
    code, lines = run_check(args.dir, templates_dir)
    for line in lines:
        print(line, file=sys.stderr if code else sys.stdout)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crisisdesk",
        description="Crisis-response coordination bot for government press offices.",
    )
    parser.add_argument("--version", action="version", version=f"crisisdesk {_version()}")
    parser.add_argument(
        "--config", help="TOML config file (default: $CRISISDESK_CONFIG)", metavar="FILE"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the bot (polling or webhook); no token: the sandbox")
    run.set_defaults(func=cmd_run)

    sandbox = sub.add_parser(
        "sandbox", help="the whole CrisisDesk in a browser, on a simulated news day (no token)"
    )
    sandbox.add_argument(
        "--data",
        metavar="DIR",
        help="keep the sandbox's SQLite and state here (default: temporary)",
    )
    sandbox.add_argument(
        "--port", type=int, default=None, help="web page port (default 8080, or a free one)"
    )
    sandbox.add_argument(
        "--speed", type=float, default=None, help="simulated seconds per real second (default 144)"
    )
    sandbox.add_argument("--drill", action="store_true", help="guided drill with a step panel")
    sandbox.add_argument(
        "--no-browser-open", action="store_true", help="do not open the page in a browser"
    )
    sandbox.set_defaults(func=cmd_sandbox)

    emulator = sub.add_parser("emulator", help="run the local Telegram Bot API emulator")
    emulator.add_argument("--port", type=int, required=True, help="0 picks a free port")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--token", default="123456:TEST", help="the one bot token accepted")
    emulator.set_defaults(func=cmd_emulator)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_upgrade = db_sub.add_parser("upgrade", help="apply migrations and sync the TOML config")
    db_upgrade.set_defaults(func=cmd_db_upgrade)
    db.set_defaults(func=lambda _args: _usage(db))

    backup = sub.add_parser("backup", help="copy the SQLite database, safe while the bot runs")
    backup.add_argument("out", metavar="OUT", help="the new backup file (must not exist)")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore", help="replace the database by a backup (bot stopped) and migrate it"
    )
    restore.add_argument("backup", metavar="IN", help="a file made by 'crisisdesk backup'")
    restore.set_defaults(func=cmd_restore)

    from scanner.cli_commands import register as register_scanner

    register_scanner(sub, _settings, SystemClock())  # scan --once, sentiment score|train|eval

    trends = sub.add_parser("trends", help="trend detection tools")
    trends_sub = trends.add_subparsers(dest="trends_command", metavar="ACTION")
    trends_replay = trends_sub.add_parser(
        "replay", help="replay a JSON-lines stream through the detectors"
    )
    trends_replay.add_argument("stream", metavar="STREAM.jsonl")
    trends_replay.add_argument(
        "--config",
        help="TOML config file (default: $CRISISDESK_CONFIG)",
        metavar="FILE",
        default=argparse.SUPPRESS,
    )
    trends_replay.set_defaults(func=cmd_trends_replay)
    trends.set_defaults(func=lambda _args: _usage(trends))

    zalo_oa = sub.add_parser("zalo-oa", help="Zalo Official Account rooms")
    zalo_oa_sub = zalo_oa.add_subparsers(dest="zalo_oa_command", metavar="ACTION")
    seed = zalo_oa_sub.add_parser(
        "seed", help="store an agency's OA refresh token from the administrator's grant"
    )
    seed.add_argument("--agency", help="the agency's code in the TOML (required)")
    seed.add_argument("--refresh-token", help="the refresh token of the grant (required)")
    seed.set_defaults(func=cmd_zalo_oa_seed)
    zalo_oa.set_defaults(func=lambda _args: _usage(zalo_oa))

    templates = sub.add_parser("templates", help="press-statement templates")
    templates_sub = templates.add_subparsers(dest="templates_command", metavar="ACTION")
    check = templates_sub.add_parser("check", help="validate press templates; exit 1 on problems")
    check.add_argument(
        "dir",
        nargs="?",
        help="folder with vi/ and en/ (default: built-ins + CRISISDESK_TEMPLATES_DIR)",
    )
    check.set_defaults(func=cmd_templates_check)
    templates.set_defaults(func=lambda _args: _usage(templates))

    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        return _usage(parser)
    try:
        return func(args)
    except ConfigError as exc:
        print(f"crisisdesk: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseInUse as exc:
        print(f"crisisdesk: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from bot.startup_errors import StartupError, known_failure

        settings = getattr(args, "settings", None)
        failure = exc if isinstance(exc, StartupError) else known_failure(exc, settings)
        if failure is None:
            raise
        print(f"crisisdesk: {failure}", file=sys.stderr)
        return failure.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
