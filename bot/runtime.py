"""What a running CrisisDesk holds: settings, database, clock, renderer and notifier.

One ``Runtime`` is built at start-up and handed to services, jobs and handlers (handlers find it
in ``context.bot_data["runtime"]``, the only thing kept there). Tests build their own with a
simulated clock and a throw-away database.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.channels.base import Notifier
from bot.clock import Clock
from bot.config import Settings
from bot.templating import Renderer
from storage.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    renderer: Renderer
    notifier: Notifier
