"""``POST /_control/{action}`` of both emulators: call the emulator's method of that name.

The body is a JSON object of keyword arguments; only the names in ``actions`` may be called. The
answer is ``{"ok": true, "result": …}``; misuse (arguments that do not fit, a ``ValueError``
such as the emulators' ``ControlError``) answers 400, a wait that ran out 408, an unknown action
404, each as ``{"ok": false, "error": …}``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.Response]]


def action_handler(
    emulator: object, actions: Collection[str], to_json: Callable[[Any], Any]
) -> Handler:
    """The aiohttp handler calling ``emulator``'s methods named in ``actions``."""

    def refuse(error: object, status: int) -> web.Response:
        return web.json_response({"ok": False, "error": str(error)}, status=status)

    async def action(request: web.Request) -> web.Response:
        name = request.match_info["action"]
        if name not in actions:
            return refuse(f"unknown action {name}", 404)
        try:
            kwargs = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            return refuse("body must be JSON", 400)
        if not isinstance(kwargs, dict):
            return refuse("body must be an object", 400)
        method = getattr(emulator, name)
        try:
            inspect.signature(method).bind(**kwargs)
            result = method(**kwargs)
            if inspect.isawaitable(result):
                result = await result
        except (TypeError, ValueError) as error:
            return refuse(error, 400)
        except TimeoutError as error:
            return refuse(error, 408)
        return web.json_response({"ok": True, "result": to_json(result)})

    return action
