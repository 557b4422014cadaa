"""The Zalo Bot Platform side of the emulator: ``{root}/bot<TOKEN>/<method>``.

As strict as Zalo where Zalo is documented, stricter where a fake cannot know better:
* text and captions 1–2,000 characters; no buttons, keyboards or markup of any kind
  (``reply_markup``, ``inline_keyboard``, ``keyboard``, ``buttons``), and no parameter a method
  does not document;
* ``getUpdates`` hands out **one** update per call, has no offsets, waits up to ``timeout``
  seconds and answers ``error_code`` 408 when nothing came; it is refused while a webhook is set;
* a webhook gets each update POSTed with ``X-Bot-Api-Secret-Token``, in order, retried until it
  answers 200; ``setWebhook`` needs HTTPS (plain HTTP to loopback is allowed for tests) and a
  secret of 8–256 characters;
* a bot may only write to a chat whose person has written to it; ``sendPhoto`` fetches the
  photo URL as Zalo's servers would, and refuses one that does not answer with an image;
* a wrong token is 401 ``Unauthorized``; an unknown method 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from .errors import BotApiError, ControlError
from .state import Call, Person, StoredMessage

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000
SECRET_HEADER = "X-Bot-Api-Secret-Token"
BUTTON_PARAMS = frozenset({"reply_markup", "inline_keyboard", "keyboard", "buttons"})
PARAMS: dict[str, frozenset[str]] = {
    "getme": frozenset(),
    "getupdates": frozenset({"timeout"}),
    "setwebhook": frozenset({"url", "secret_token"}),
    "deletewebhook": frozenset(),
    "getwebhookinfo": frozenset(),
    "sendmessage": frozenset({"chat_id", "text"}),
    "sendphoto": frozenset({"chat_id", "photo", "caption"}),
    "sendsticker": frozenset({"chat_id", "sticker"}),
    "sendchataction": frozenset({"chat_id", "action"}),
}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def bad_request(detail: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {detail}")


class BotPlatform:
    """One bot: its token, the people who wrote to it, its update queue and webhook."""

    def __init__(
        self, token: str, *, now: Callable[[], float], on_change: Callable[[], None]
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id or not secret:
            raise ValueError("a Zalo bot token looks like '<bot id>:<secret>'")
        self.token = token
        self.bot_id = bot_id
        self.now = now
        self.on_change = on_change
        self._closing = False  # close() releases long polls
        self.people: dict[str, Person] = {}
        self.messages: list[StoredMessage] = []
        self.updates: list[dict[str, Any]] = []  # every update produced, for tests
        self.calls: list[Call] = []
        self.fetch_photos = True
        self.webhook_envelope = "bare"  # or "wrapped": {"ok": true, "result": update}
        self._queue: deque[dict[str, Any]] = deque()
        self._arrived = asyncio.Condition()
        self._ids = itertools.count(1)
        self.webhook_url = ""
        self._webhook_secret = ""
        self.webhook_updated_at = 0
        self.webhook_last_error = ""
        self._delivery: asyncio.Task[None] | None = None
        self._wakers: set[asyncio.Task[None]] = set()  # held so they are not collected mid-run
        self._http: aiohttp.ClientSession | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/bot{token}/{method}", self.handle)]

    async def close(self) -> None:
        """Stop deliveries and release long polls at once (a stopping server would otherwise
        wait out each poll's timeout, up to 60 s)."""
        self._closing = True
        await self._stop_delivery()
        if self._http is not None:
            await self._http.close()
            self._http = None
        async with self._arrived:
            self._arrived.notify_all()

    # ---- acting as people ----------------------------------------------------------------

    def user_sends(self, user_id: str, text: str, *, display_name: str = "") -> StoredMessage:
        """``user_id`` writes ``text`` to the bot in their private chat (chat id = user id)."""
        if not text:
            raise ControlError("a person cannot send an empty message")
        person = self.people.get(user_id)
        if person is None:
            person = Person(user_id, display_name or f"User {user_id[-4:]}")
            self.people[user_id] = person
        message = StoredMessage(
            message_id=self._new_id(),
            chat_id=user_id,
            from_bot=False,
            date=self._millis(),
            text=text,
        )
        self.messages.append(message)
        update = {
            "event_name": "message.text.received",
            "message": {
                "message_id": message.message_id,
                "date": message.date,
                "chat": {"id": user_id, "chat_type": "PRIVATE"},
                "from": {"id": user_id, "display_name": person.display_name, "is_bot": False},
                "text": text,
            },
        }
        self.updates.append(update)
        self._queue.append(update)
        self._wake()
        return message

    def add_person(self, user_id: str, display_name: str = "") -> None:
        self.people.setdefault(user_id, Person(user_id, display_name or f"User {user_id[-4:]}"))
        self.on_change()

    def chat(self, chat_id: str, *, from_bot: bool | None = None) -> list[StoredMessage]:
        if chat_id not in self.people:
            raise ControlError(f"no chat {chat_id}: that person never wrote to the bot")
        return [
            m
            for m in self.messages
            if m.chat_id == chat_id and (from_bot is None or m.from_bot == from_bot)
        ]

    @property
    def pending(self) -> int:
        """Updates produced but not yet handed to the bot."""
        return len(self._queue)

    # ---- HTTP ----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        try:
            if request.match_info["token"] != self.token:
                raise BotApiError(401, "Unauthorized")
            if method.lower() not in PARAMS:
                raise BotApiError(404, "Not Found")
            params = await _read_json(request)
            result = await self._dispatch(method.lower(), params)
        except BotApiError as error:
            self._log(method, params, error.code, error.text)
            return web.json_response(error.payload(), status=error.code)
        self._log(method, params)
        return web.json_response({"ok": True, "result": result})

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        buttons = BUTTON_PARAMS & params.keys()
        if buttons:
            raise bad_request(f"buttons are not supported ({sorted(buttons)[0]})")
        unknown = params.keys() - PARAMS[method]
        if unknown:
            raise bad_request(f"unknown parameter {sorted(unknown)[0]}")
        handler = getattr(self, f"_m_{method}")
        return await handler(params)

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return {
            "id": self.bot_id,
            "account_name": f"bot.{self.bot_id}",
            "account_type": "BASIC",
            "can_join_groups": False,
        }

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        if self.webhook_url:
            raise BotApiError(409, "Conflict: a webhook is set; call deleteWebhook first")
        try:
            timeout = float(params.get("timeout", 30))
        except (TypeError, ValueError):
            raise bad_request("timeout must be a number of seconds") from None
        async with self._arrived:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._arrived.wait_for(
                        lambda: bool(self._queue) or bool(self.webhook_url) or self._closing
                    ),
                    timeout=max(0.0, min(timeout, 60.0)),
                )
            if self.webhook_url:
                raise BotApiError(409, "Conflict: a webhook is set; call deleteWebhook first")
            if not self._queue:
                raise BotApiError(408, "Request timeout")
            update = self._queue.popleft()
        self.on_change()
        return update

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        url = str(params.get("url") or "")
        secret = str(params.get("secret_token") or "")
        parts = urlsplit(url)
        if not (
            parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
        ):
            raise bad_request("url must be HTTPS")
        if not 8 <= len(secret) <= 256:
            raise bad_request("secret_token must be 8-256 characters")
        await self._stop_delivery()
        self.webhook_url, self._webhook_secret = url, secret
        self.webhook_updated_at = self._millis()
        self.webhook_last_error = ""
        self._delivery = asyncio.create_task(self._deliver())
        self._wake()
        return {"url": url, "updated_at": self.webhook_updated_at}

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        await self._stop_delivery()
        self.webhook_url, self._webhook_secret = "", ""
        self.webhook_updated_at = self._millis()
        return {"url": "", "updated_at": self.webhook_updated_at}

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook_url, "updated_at": self.webhook_updated_at}

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_id(params)
        text = _text(params.get("text"), "text", required=True)
        return self._store(StoredMessage(self._new_id(), chat_id, True, self._millis(), text=text))

    async def _m_sendphoto(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_id(params)
        url = str(params.get("photo") or "")
        if urlsplit(url).scheme not in ("http", "https"):
            raise bad_request("photo must be an http(s) URL")
        caption = _text(params.get("caption"), "caption", required=False)
        size = await self._fetch_photo(url) if self.fetch_photos else None
        return self._store(
            StoredMessage(
                self._new_id(),
                chat_id,
                True,
                self._millis(),
                photo_url=url,
                caption=caption,
                photo_bytes=size,
            )
        )

    async def _m_sendsticker(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_id(params)
        if not params.get("sticker"):
            raise bad_request("sticker is required")
        return self._store(StoredMessage(self._new_id(), chat_id, True, self._millis()))

    async def _m_sendchataction(self, params: dict[str, Any]) -> Any:
        self._chat_id(params)
        if params.get("action") not in ("typing", "upload_photo"):
            raise bad_request("action must be typing or upload_photo")
        return None

    # ---- helpers -------------------------------------------------------------------------

    def _chat_id(self, params: dict[str, Any]) -> str:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            raise bad_request("chat_id is required (a string)")
        if chat_id not in self.people:
            raise bad_request("chat not found")
        return chat_id

    def _store(self, message: StoredMessage) -> dict[str, Any]:
        self.messages.append(message)
        self.on_change()
        return {"message_id": message.message_id, "date": message.date}

    async def _fetch_photo(self, url: str) -> int:
        try:
            async with self._client().get(url, timeout=aiohttp.ClientTimeout(total=5)) as answer:
                body = await answer.read()
                if answer.status != 200 or not answer.content_type.startswith("image/"):
                    raise bad_request(f"cannot fetch photo (HTTP {answer.status})")
                return len(body)
        except (aiohttp.ClientError, TimeoutError):
            raise bad_request("cannot fetch photo (unreachable)") from None

    async def _deliver(self) -> None:
        """POST queued updates to the webhook one at a time, in order, until each gets a 200."""
        while True:
            async with self._arrived:
                await self._arrived.wait_for(lambda: bool(self._queue))
                update = self._queue[0]
            body = update if self.webhook_envelope == "bare" else {"ok": True, "result": update}
            try:
                async with self._client().post(
                    self.webhook_url,
                    json=body,
                    headers={SECRET_HEADER: self._webhook_secret},
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as answer:
                    delivered = answer.status == 200
                    self.webhook_last_error = "" if delivered else f"HTTP {answer.status}"
            except (aiohttp.ClientError, TimeoutError) as error:
                delivered = False
                self.webhook_last_error = type(error).__name__
            if delivered:
                self._queue.popleft()
            self.on_change()
            if not delivered:
                await asyncio.sleep(0.2)

    async def _stop_delivery(self) -> None:
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    def _wake(self) -> None:
        async def notify() -> None:
            async with self._arrived:
                self._arrived.notify_all()

        with contextlib.suppress(RuntimeError):  # no running loop: nobody is waiting
            task = asyncio.get_running_loop().create_task(notify())
            self._wakers.add(task)
            task.add_done_callback(self._wakers.discard)
        self.on_change()

    def _new_id(self) -> str:
        return f"{next(self._ids):04x}{secrets.token_hex(8)}"

    def _millis(self) -> int:
        return int(self.now() * 1000)

    def _log(self, method: str, params: dict[str, Any], code: int = 0, text: str = "") -> None:
        self.calls.append(Call("bot", method, params, self.now(), code, text))
        self.on_change()


def _text(value: Any, name: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise bad_request(f"{name} is empty")
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    if len(value) > TEXT_LIMIT:
        raise bad_request(f"{name} is too long ({len(value)} > {TEXT_LIMIT} characters)")
    return value


async def _read_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("body must be JSON") from None
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    return body
