"""The control API both emulators serve under ``/_control/``, for the sandbox pages and tests.

Each emulator brings its own ``GET /_control/state`` document and its own read routes; what
they share is here: the answer format, ``GET /_control/calls[?method=…]`` (the call log) and
``POST /_control/{action}``, which calls the emulator's method of that name.

An action's body is a JSON object of keyword arguments; only the names in ``actions`` may be
called. The answer is ``{"ok": true, "result": …}``; misuse (arguments that do not fit, a
``ValueError`` such as the emulators' ``ControlError``) answers 400, a wait that ran out 408, an
unknown action 404, each as ``{"ok": false, "error": …}``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Protocol

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.Response]]


class CallLog(Protocol):
    """What an emulator records of the requests made to it."""

    @property
    def calls(self) -> Sequence[object]: ...

    def calls_to(self, method: str) -> Sequence[object]: ...


def reply(result: Any, to_json: Callable[[Any], Any]) -> web.Response:
    """A successful answer: ``{"ok": true, "result": …}``."""
    return web.json_response({"ok": True, "result": to_json(result)})


def refuse(error: object, status: int) -> web.Response:
    """A refused request: ``{"ok": false, "error": …}`` with ``status``."""
    return web.json_response({"ok": False, "error": str(error)}, status=status)


def control_routes(
    emulator: CallLog,
    actions: Collection[str],
    to_json: Callable[[Any], Any],
    state: Callable[[], Any],
    reads: Sequence[web.RouteDef],
) -> list[web.RouteDef]:
    """The emulator's control routes: ``state()`` as ``GET /_control/state``, the call log, its
    own ``reads``, and its ``actions``."""

    async def state_route(request: web.Request) -> web.Response:
        return reply(state(), to_json)

    async def calls(request: web.Request) -> web.Response:
        method = request.query.get("method")
        return reply(emulator.calls_to(method) if method else emulator.calls, to_json)

    return [
        web.get("/_control/state", state_route),
        web.get("/_control/calls", calls),
        *reads,
        web.post("/_control/{action}", action_handler(emulator, actions, to_json)),
    ]


def action_handler(
    emulator: object, actions: Collection[str], to_json: Callable[[Any], Any]
) -> Handler:
    """The aiohttp handler calling ``emulator``'s methods named in ``actions``."""

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
        return reply(result, to_json)

    return action
