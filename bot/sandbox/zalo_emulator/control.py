"""The Zalo emulator's control API over HTTP (the sandbox page, out-of-process tests).

``POST /_control/{action}`` with a JSON object of keyword arguments calls the
:class:`~.emulator.ZaloEmulator` method of the same name (only those in :data:`ACTIONS`) and
answers ``{"ok": true, "result": …}``; misuse answers 400 ``{"ok": false, "error": …}``, a wait
that ran out 408, an unknown action 404. ``GET`` routes read state (docs/zalo.md lists them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.control_api import control_routes as shared_routes
from bot.sandbox.control_api import refuse, reply

from .errors import ControlError
from .state import Call, Group, StoredMessage

if TYPE_CHECKING:
    from .emulator import ZaloEmulator

ACTIONS = frozenset(
    {
        "send_text",
        "add_person",
        "wait_for_message",
        "set_webhook_envelope",
        "set_fetch_photos",
        "grant_oa_access",
        "expire_oa_access_tokens",
        "add_oa_follower",
        "oa_user_id",
        "user_follows_oa",
        "user_sends_oa_text",
        "add_oa_asset",
        "set_oa_webhook",
        "inject_oa_error",
        "user_sends_group_text",
    }
)


def to_json(value: Any) -> Any:
    if isinstance(value, StoredMessage | Call | Group):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


def control_routes(emulator: ZaloEmulator) -> list[web.RouteDef]:
    """Routes under ``/_control/`` bound to ``emulator``."""

    def state() -> dict[str, Any]:
        bot, oa = emulator.bot_platform, emulator.oa
        return {
            "bot_id": bot.bot_id,
            "people": [vars(p) for p in bot.people.values()],
            "pending_updates": bot.pending,
            "webhook": {
                "url": bot.webhook_url,
                "envelope": bot.webhook_envelope,
                "last_error": bot.webhook_last_error,
            },
            "oa": {
                "app_id": oa.app_id,
                "oa_id": oa.oa_id,
                "followers": oa.followers,
                "inbox": oa.inbox,
                "assets": oa.assets,
                "webhook_url": oa.webhook_url,
            },
        }

    async def messages(request: web.Request) -> web.Response:
        try:
            return reply(emulator.messages(request.match_info["chat_id"]), to_json)
        except ControlError as error:
            return refuse(error, 404)

    async def groups(request: web.Request) -> web.Response:
        return reply(list(emulator.oa.groups.values()), to_json)

    reads = [
        web.get("/_control/chats/{chat_id}/messages", messages),
        web.get("/_control/oa/groups", groups),
    ]
    return shared_routes(emulator, ACTIONS, to_json, state, reads)
