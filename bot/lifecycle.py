"""Things that start and stop with PTB's ``run_polling``: chained onto its post_init and
post_stop hooks, so several (the monitoring server, Zalo's side) can ride along without
knowing about each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram.ext import Application

Hook = Callable[[Application], Awaitable[None]]


def alongside(application: Application, start: Hook, stop: Hook) -> None:
    """Run ``start`` after the hooks already set when the Application starts, and ``stop``
    before them when it stops (last started, first stopped)."""
    chained_init, chained_stop = application.post_init, application.post_stop

    async def started(app: Application) -> None:
        if chained_init is not None:
            await chained_init(app)
        await start(app)

    async def stopped(app: Application) -> None:
        await stop(app)
        if chained_stop is not None:
            await chained_stop(app)

    application.post_init = started
    application.post_stop = stopped
