"""Where the registries are filled: one explicit list instead of side effects of imports.

``wire`` is called where the app is built (``bot.app.build_application``; the tests and the
crash-matrix bench call it too): it installs the due handlers every service declares with
``@due_handler``, the Telegram RoomAdmin for the Telegram notifier (and for a router, its
first notifier's), the Zalo OA rooms (RoomAdmin and RoomMaker) for the Zalo notifier that has
them, and each channel's text limit (``bot.channels.limits``). A service that adds a due kind is
added to ``DUE_HANDLER_MODULES`` here, or its rows are refused when scheduled.
"""

from __future__ import annotations

from bot.channels.limits import declare_max_text
from bot.channels.rooms import register_room_admin, register_room_maker, room_admin_for
from bot.channels.routing import RoutingNotifier
from bot.channels.telegram import limits as telegram
from bot.channels.telegram.notifier import CHANNEL as TELEGRAM
from bot.channels.telegram.notifier import TelegramNotifier
from bot.channels.telegram.rooms import room_admin_of
from bot.channels.zalo import text as zalo_text
from bot.channels.zalo.notifier import CHANNEL as ZALO
from bot.channels.zalo.notifier import ZaloNotifier
from bot.channels.zalo.oa.rooms import OaRooms
from bot.services import (
    alerts,
    approvals,
    delivery,
    digest,
    due,
    notify,
    outbox,
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
    outbox,
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
    register_room_admin(ZaloNotifier, _oa_rooms)
    register_room_maker(ZaloNotifier, _oa_rooms)
    # A process on several messengers keeps its rooms on the first (Telegram's).
    register_room_admin(RoutingNotifier, lambda router: room_admin_for(router.primary))
    declare_max_text(TELEGRAM, telegram.TEXT_LIMIT)
    declare_max_text(ZALO, zalo_text.TEXT_LIMIT)


def _oa_rooms(notifier: ZaloNotifier) -> OaRooms | None:
    return notifier.oa_rooms
