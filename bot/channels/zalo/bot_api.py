"""A small aiohttp client for the Zalo Bot Platform (``{base}/bot<TOKEN>/<method>``).

Why our own: the API has nine methods, and the third-party python-zalo-bot package is an
unmaintained cut-down copy of python-telegram-bot that does not check the webhook secret; a second
PTB-like framework in the process would only confuse. Every method is a JSON ``POST``; answers
are ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": N, "description": …}``, and a
bare result (no envelope) is accepted too. Failures raise the typed errors of :mod:`.errors`;
the token is part of every URL, so no error message or log line ever contains a URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.config import ZALO_API_URL as OFFICIAL_API_URL

from .errors import (
    ZaloApiError,
    ZaloBadRequest,
    ZaloBadResponse,
    ZaloNetworkError,
    ZaloServerError,
    ZaloTimeout,
    ZaloUnauthorized,
)
from .session import SessionHolder
from .text import TEXT_LIMIT, check_text, split_text
from .updates import ZaloUpdate, parse_update

log = logging.getLogger(__name__)

#: A long poll that saw nothing answers ``ok: false`` with this code ("Request timeout").
EMPTY_POLL_CODE = 408
SECRET_MIN, SECRET_MAX = 8, 256
CHAT_ACTIONS = frozenset({"typing", "upload_photo"})
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ZaloBotInfo:
    id: str
    account_name: str
    account_type: str = ""
    can_join_groups: bool = False


@dataclass(frozen=True)
class ZaloSent:
    """What Zalo answers for a sent message: its id and when Zalo took it."""

    message_id: str
    date: datetime


@dataclass(frozen=True)
class ZaloWebhookInfo:
    url: str
    updated_at: datetime | None


class ZaloBotClient(SessionHolder):
    """One bot token, one aiohttp session (owned unless one is passed in)."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = OFFICIAL_API_URL,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not token or "/" in token:
            raise ValueError("a Zalo bot token looks like '<bot id>:<secret>'")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        super().__init__(session)

    # ---- the documented methods ----------------------------------------------------------

    async def get_me(self) -> ZaloBotInfo:
        result = _as_dict(await self.call("getMe"), "getMe")
        return ZaloBotInfo(
            id=str(result.get("id", "")),
            account_name=str(result.get("account_name") or result.get("name") or ""),
            account_type=str(result.get("account_type", "")),
            can_join_groups=bool(result.get("can_join_groups", False)),
        )

    async def get_update(self, wait_seconds: int = 30) -> ZaloUpdate | None:
        """Wait up to ``wait_seconds`` for the next update (Zalo's long poll); ``None`` if none
        came.

        Zalo hands out one update per call and has no offsets: an update is gone once
        answered, so the caller must process it (or store it) before asking for the next.
        """
        try:
            result = await self.call(
                "getUpdates",
                {"timeout": str(wait_seconds)},
                time_limit=wait_seconds + self.connect_timeout,
            )
        except ZaloApiError as error:
            if error.code == EMPTY_POLL_CODE:
                return None
            raise
        if result is None or result == {}:
            return None
        return parse_update(result)

    async def set_webhook(self, url: str, secret_token: str) -> ZaloWebhookInfo:
        check_webhook_url(url)
        if not SECRET_MIN <= len(secret_token) <= SECRET_MAX:
            raise ValueError(f"secret_token must be {SECRET_MIN}-{SECRET_MAX} characters")
        return _webhook_info(
            await self.call("setWebhook", {"url": url, "secret_token": secret_token})
        )

    async def delete_webhook(self) -> ZaloWebhookInfo:
        return _webhook_info(await self.call("deleteWebhook"))

    async def get_webhook_info(self) -> ZaloWebhookInfo:
        return _webhook_info(await self.call("getWebhookInfo"))

    async def send_message(self, chat_id: str, text: str) -> ZaloSent:
        """One plain-text message of 1–2,000 characters; longer text raises MessageTooLong."""
        check_text(text, TEXT_LIMIT)
        return _sent(await self.call("sendMessage", {"chat_id": chat_id, "text": text}))

    async def send_long_message(self, chat_id: str, text: str) -> list[ZaloSent]:
        """Text of any length, as consecutive messages cut at line or word boundaries."""
        parts = split_text(text, TEXT_LIMIT)
        if not parts:
            raise ValueError("Zalo refuses an empty message")
        return [await self.send_message(chat_id, part) for part in parts]

    async def send_photo(self, chat_id: str, photo_url: str, caption: str = "") -> ZaloSent:
        """A photo Zalo fetches from ``photo_url`` (HTTP(S)); the caption is plain text."""
        if urlsplit(photo_url).scheme not in ("http", "https"):
            raise ValueError("Zalo sends photos by URL: photo_url must be http(s)")
        params: dict[str, Any] = {"chat_id": chat_id, "photo": photo_url}
        if caption:
            params["caption"] = check_text(caption, TEXT_LIMIT)
        return _sent(await self.call("sendPhoto", params))

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> None:
        if action not in CHAT_ACTIONS:
            raise ValueError(f"action must be one of {sorted(CHAT_ACTIONS)}")
        await self.call("sendChatAction", {"chat_id": chat_id, "action": action})

    # ---- transport -----------------------------------------------------------------------

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, time_limit: float | None = None
    ) -> Any:
        """POST ``params`` as JSON to ``method`` and return its result (envelope removed)."""
        session = self._ensure_session()
        limit = aiohttp.ClientTimeout(
            total=time_limit if time_limit is not None else self.timeout,
            connect=self.connect_timeout,
        )
        url = f"{self.base_url}/bot{self._token}/{method}"
        try:
            async with session.post(url, json=params or {}, timeout=limit) as response:
                status = response.status
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
        except TimeoutError:
            raise ZaloTimeout(f"{method}: no answer from Zalo in time") from None
        except aiohttp.ClientError as error:
            host = urlsplit(self.base_url).netloc
            raise ZaloNetworkError(
                f"{method}: cannot reach {host} ({type(error).__name__})"
            ) from None
        return _result(method, status, body)


def check_webhook_url(url: str) -> str:
    """Zalo delivers to HTTPS only; plain HTTP is accepted for loopback (tests, emulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return url
    raise ValueError("webhook url must be https:// (http:// only for a loopback address)")


def _result(method: str, status: int, body: Any) -> Any:
    if not isinstance(body, dict) or "ok" not in body:
        if status == 200 and body is not None:
            return body  # the bare form: the result itself
        if status >= 500:
            raise ZaloServerError(method, status, f"HTTP {status}")
        raise ZaloBadResponse(f"{method}: HTTP {status} without Zalo's JSON envelope")
    if body.get("ok") is True:
        return body.get("result")
    code = body.get("error_code")
    code = int(code) if isinstance(code, int | str) and str(code).lstrip("-").isdigit() else status
    description = str(body.get("description") or body.get("message") or "error")
    if code == EMPTY_POLL_CODE:
        raise ZaloApiError(method, code, description)
    if code == 401 or status == 401:
        raise ZaloUnauthorized(method, code, description)
    if code >= 500 or status >= 500:
        raise ZaloServerError(method, code, description)
    if 400 <= code < 500:
        raise ZaloBadRequest(method, code, description)
    raise ZaloApiError(method, code, description)


def _as_dict(result: Any, method: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise ZaloBadResponse(f"{method}: expected an object, got {type(result).__name__}")
    return result


def _millis(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value) / 1000, UTC)
    except (TypeError, ValueError):
        return None


def _sent(result: Any) -> ZaloSent:
    data = _as_dict(result, "send")
    return ZaloSent(
        message_id=str(data.get("message_id", "")),
        date=_millis(data.get("date")) or datetime.now(UTC),
    )


def _webhook_info(result: Any) -> ZaloWebhookInfo:
    data = result if isinstance(result, dict) else {}
    return ZaloWebhookInfo(
        url=str(data.get("url") or ""), updated_at=_millis(data.get("updated_at"))
    )


async def poll_updates(
    client: ZaloBotClient, *, wait_seconds: int = 30, backoff: float = 5.0
) -> AsyncIterator[ZaloUpdate]:
    """Yield updates forever; network and server errors wait ``backoff`` seconds and go on."""
    while True:
        try:
            update = await client.get_update(wait_seconds)
        except (ZaloNetworkError, ZaloServerError, ZaloTimeout) as error:
            log.warning("zalo: getUpdates failed (%s); retrying in %.0f s", error, backoff)
            await asyncio.sleep(backoff)
            continue
        if update is not None:
            yield update
