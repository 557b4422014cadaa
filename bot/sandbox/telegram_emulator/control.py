"""The control API over HTTP, for the sandbox web page and out-of-process tests.

``POST /_control/{action}`` with a JSON object of keyword arguments calls the
:class:`~.emulator.TelegramEmulator` method of the same name (only those in :data:`ACTIONS`)
and answers ``{"ok": true, "result": ...}``; a misuse answers 400 ``{"ok": false, "error": ...}``
and a wait that ran out answers 408. ``GET`` routes read state. docs/emulator.md lists them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.control_api import control_routes as shared_routes
from bot.sandbox.control_api import refuse, reply

from .errors import ControlError
from .server import Call
from .state import Chat, InviteLink, StoredMessage, Topic, User

if TYPE_CHECKING:
    from .emulator import TelegramEmulator

ACTIONS = frozenset(
    {
        "create_user",
        "create_group",
        "create_supergroup",
        "create_channel",
        "add_bot",
        "remove_bot",
        "send_text",
        "send_contact",
        "press_button",
        "request_join",
        "join",
        "leave",
        "block_bot",
        "unblock_bot",
        "wait_for_message",
        "set_flood_limits",
        "inject_error",
        "inject_delay",
    }
)


def to_json(value: Any) -> Any:
    """Control-API JSON for emulator objects."""
    if isinstance(value, User):
        return {**value.to_api(), "started": value.started, "blocked": value.blocked}
    if isinstance(value, Chat):
        return chat_summary(value)
    if isinstance(value, StoredMessage | Call):
        return value.to_dict()
    if isinstance(value, InviteLink):
        data = asdict(value)
        data["pending"] = sorted(value.pending)
        return data
    if isinstance(value, Topic):
        return asdict(value)
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


def chat_summary(chat: Chat) -> dict[str, Any]:
    return {
        **chat.to_api(),
        "description": chat.description,
        "members": {
            str(member.user_id): {"status": member.status, "rights": member.rights}
            for member in chat.members.values()
        },
        "pinned": list(chat.pinned),
        "message_count": len(chat.messages),
    }


def control_routes(emulator: TelegramEmulator) -> list[web.RouteDef]:
    """Routes under ``/_control/`` bound to ``emulator``."""

    def int_arg(request: web.Request, name: str) -> int:
        try:
            return int(request.match_info.get(name) or request.query[name])
        except (KeyError, ValueError):
            raise web.HTTPBadRequest(text=f"{name} must be an integer") from None

    def state() -> dict[str, Any]:
        world = emulator.world
        return {
            "bot": world.bot.to_api(),
            "users": [to_json(u) for u in world.users.values() if not u.is_bot],
            "chats": [chat_summary(chat) for chat in world.chats.values()],
            "flood_limits": emulator.flood_limits,
            "webhook": emulator.hub.webhook_info(),
        }

    async def messages(request: web.Request) -> web.Response:
        thread = request.query.get("thread_id")
        try:
            found = emulator.messages(
                int_arg(request, "chat_id"), thread_id=int(thread) if thread else None
            )
        except ControlError as error:
            return refuse(error, 404)
        return reply(found, to_json)

    async def chat_items(request: web.Request) -> web.Response:
        chat_id = int_arg(request, "chat_id")
        try:
            if request.match_info["kind"] == "invite_links":
                return reply(emulator.invite_links(chat_id), to_json)
            return reply(emulator.topics(chat_id), to_json)
        except ControlError as error:
            return refuse(error, 404)

    async def updates(request: web.Request) -> web.Response:
        return reply(emulator.updates, to_json)

    reads = [
        web.get("/_control/updates", updates),
        web.get("/_control/chats/{chat_id}/messages", messages),
        web.get("/_control/chats/{chat_id}/{kind:invite_links|topics}", chat_items),
    ]
    return shared_routes(emulator, ACTIONS, to_json, state, reads)
