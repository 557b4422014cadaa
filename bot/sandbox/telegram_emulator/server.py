"""HTTP face of the emulator: Bot API routes, file downloads, call log and injected faults.

Routes (as Telegram serves them):

* ``GET|POST {root}/bot{token}/{method}`` — parameters from the query string, a urlencoded or
  multipart form, or a JSON body; answers ``{"ok": true, "result": ...}`` or Telegram's error
  object with the same HTTP status as ``error_code``.
* ``GET {root}/file/bot{token}/{file_path}`` — bytes of an uploaded file (see ``getFile``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError
from .methods import BotApi
from .params import Params, Upload

MAX_REQUEST_BYTES = 60 * 1024 * 1024  # a 50 MB document plus form overhead

_DEFAULT_FAULT_TEXT = {
    400: "Bad Request: injected error",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: injected error",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class Call:
    """One Bot API request as the emulator answered it."""

    method: str
    params: dict[str, Any]
    time: float
    status: int
    result: Any = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON for the control API: every field, as the Zalo emulator's ``Call`` gives it."""
        return asdict(self)


@dataclass
class Fault:
    """An error or delay to apply to the next ``remaining`` calls of ``method``; with
    ``text_contains``, only to calls whose ``text`` or ``caption`` holds it, so a test can aim
    at one kind of message while the bot sends others in an order it does not promise."""

    method: str
    remaining: int
    status: int | None = None
    description: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    text_contains: str | None = None
    chat_id: int | str | None = None
    # Matching calls let through untouched before the fault applies: "the k+1-th call", counted
    # here as the calls arrive, so a test arms it before the action and cannot miss the call
    # (armed from outside once k calls were seen, two calls between two looks were missed).
    after: int = 0

    def applies(self, method: str, params: Params) -> bool:
        if self.method != method.lower():
            return False
        if self.chat_id is not None and str(params.get("chat_id")) != str(self.chat_id):
            return False
        if self.text_contains is None:
            return True
        text = params.get("text") or params.get("caption") or ""
        return self.text_contains in str(text)

    def error(self) -> ApiError | None:
        if self.status is None:
            return None
        if self.status == 429:
            retry = self.retry_after if self.retry_after is not None else 1
            text = self.description or f"Too Many Requests: retry after {retry}"
            return ApiError(429, text, retry_after=retry)
        text = self.description or _DEFAULT_FAULT_TEXT.get(self.status, "Injected error")
        return ApiError(self.status, text, retry_after=self.retry_after)


class Gateway:
    """Authenticates, parses, applies faults, dispatches to :class:`BotApi`, and logs."""

    def __init__(
        self, api: BotApi, token: str, now: Callable[[], float], on_change: Callable[[], None]
    ) -> None:
        self.api = api
        self.token = token
        self.now = now
        self.on_change = on_change
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.held: list[tuple[str, dict[str, Any]]] = []  # calls an injected delay holds now

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.route("*", "/bot{token}/{method}", self.handle_api),
            web.get("/file/bot{token}/{file_path:.+}", self.handle_file),
        ]

    async def handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        method = request.match_info["method"]
        if not self.api.knows(method):
            return _error(ApiError(404, "Not Found"))
        try:
            params = Params(await _read_params(request))
        except ApiError as error:
            return self._logged(method, {}, error=error)
        except ConnectionResetError:  # the client left mid-request (a bot shutting down)
            return web.Response(status=400)
        fault = self._take_fault(method, params)
        if fault is not None:
            if fault.delay:
                entry = (method, params.raw())
                self.held.append(entry)
                self.on_change()
                try:
                    await asyncio.sleep(fault.delay)
                finally:
                    self.held.remove(entry)
            injected = fault.error()
            if injected is not None:
                return self._logged(method, params.raw(), error=injected)
        try:
            result = await self.api.call(method, params)
        except ApiError as error:
            return self._logged(method, params.raw(), error=error)
        return self._logged(method, params.raw(), result=result)

    async def handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        stored = self.api.world.files_by_path.get(request.match_info["file_path"])
        if stored is None:
            return _error(ApiError(404, "Not Found"))
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def _take_fault(self, method: str, params: Params) -> Fault | None:
        for fault in self.faults:
            if fault.applies(method, params):
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _logged(
        self,
        method: str,
        params: dict[str, Any],
        *,
        result: Any = None,
        error: ApiError | None = None,
    ) -> web.Response:
        status = error.status if error is not None else 200
        description = error.description if error is not None else None
        self.calls.append(Call(method, params, self.now(), status, result, description))
        self.on_change()
        if error is not None:
            return _error(error)
        return web.json_response({"ok": True, "result": result})


def _error(error: ApiError) -> web.Response:
    return web.json_response(error.payload(), status=error.status)


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Merge query string and body, whatever the body's encoding."""
    values: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return values
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise ApiError(400, "Bad Request: can't parse JSON body") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON body must be an object")
        values.update(body)
        return values
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            values[key] = Upload(value.filename, value.content_type, value.file.read())
        elif isinstance(value, bytes):
            values[key] = value.decode("utf-8", errors="replace")
        else:
            values[key] = value
    return values
