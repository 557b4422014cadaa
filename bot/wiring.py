"""Where the registries are filled: one explicit list instead of side effects of imports.

``wire`` is called where the app is built (``bot.app.build_application``; the tests and the
crash-matrix bench call it too): it installs the due handlers every service declares with
``@due_handler``, the Telegram RoomAdmin for the Telegram notifier (and for a router, its
first notifier's) and each channel's text limit (``bot.channels.limits``). A service that adds
a due kind is added to ``DUE_HANDLER_MODULES`` here, or its rows are refused when scheduled.
"""

from __future__ import annotations

from bot.channels.limits import declare_max_text
from bot.channels.rooms import register_room_admin, room_admin_for
from bot.channels.routing import RoutingNotifier
from bot.channels.telegram import limits as telegram
from bot.channels.telegram.notifier import CHANNEL as TELEGRAM
from bot.channels.telegram.notifier import TelegramNotifier
from bot.channels.telegram.rooms import room_admin_of
from bot.channels.zalo import text as zalo_text
from bot.channels.zalo.notifier import CHANNEL as ZALO
from bot.services import (
    alerts,
    approvals,
    delivery,
    digest,
    due,
    notify,
    retention,
    verification,
)
from bot.services.taskforces import brief, convening, deadline, resolve, room, tasks

DUE_HANDLER_MODULES = (
    alerts,
    approvals,
    delivery,
    digest,
    notify,
    retention,
    verification,
    brief,
    convening,
    deadline,
    resolve,
    room,
    tasks,
)


def wire() -> None:
    """Fill the registries (idempotent: wiring twice changes nothing)."""
    due.install(*DUE_HANDLER_MODULES)
    register_room_admin(TelegramNotifier, room_admin_of)
    # A process on several messengers keeps its rooms on the first (Telegram's).
    register_room_admin(RoutingNotifier, lambda router: room_admin_for(router.primary))
    declare_max_text(TELEGRAM, telegram.TEXT_LIMIT)
    declare_max_text(ZALO, zalo_text.TEXT_LIMIT)
