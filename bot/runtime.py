"""What a running CrisisDesk holds: settings, database, clock, renderer and notifier.

One ``Runtime`` is built at start-up and handed to services, jobs and handlers (handlers find it
in ``context.bot_data["runtime"]``; beside it only the Telegram handlers' send queue). Tests
build their own with a simulated clock and a throw-away database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bot.channels.base import Notifier
from bot.channels.routing import RoutingNotifier
from bot.clock import Clock
from bot.config import Settings
from bot.metrics import Monitor
from bot.templating import Renderer
from storage.db import Database
from storage.leader import Leadership


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    renderer: Renderer
    notifier: Notifier
    leadership: Leadership | None = field(default=None)
    #: The trend series were checked against the stored articles (and repaired) since start.
    series_repaired: bool = field(default=False)
    monitor: Monitor = field(default_factory=Monitor)  # /metrics and /healthz (bot.health)

    def leads(self) -> bool:
        """Whether this process runs the tick, the scan and the fan-out (always, without a
        Leadership); from the last leader check, without database I/O."""
        return self.leadership is None or self.leadership.holds

    async def leading(self) -> bool:
        """:meth:`leads`, once this process's first leader check has finished: the jobs that
        run right after start would otherwise find leadership undecided and skip that run."""
        if self.leadership is not None and not self.leadership.checked:
            await self.leadership.refresh()
        return self.leads()

    def per_channel(self) -> list[Runtime]:
        """This runtime once per messenger it speaks, each holding that messenger's notifier.

        The fan-out sends each ledger row on its own channel (``bot.services.delivery`` works
        on the notifier's channel); a process serving several messengers runs it once per
        view. Everything but the notifier is shared (database, leadership, monitor)."""
        if not isinstance(self.notifier, RoutingNotifier):
            return [self]
        return [replace(self, notifier=n) for n in self.notifier.notifiers.values()]
