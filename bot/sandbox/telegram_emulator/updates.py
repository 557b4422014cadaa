"""The bot's update stream: ids, filtering, long polling and webhook delivery.

Telegram keeps unconfirmed updates for the bot and hands them out either through
``getUpdates`` (confirmed by a later ``offset``) or by POSTing them to a webhook, never both.
Update ids increase by one per update. Updates of a type the bot did not allow are dropped
when they happen, as on Telegram; ``chat_member`` and the reaction updates are not allowed
unless asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .errors import ApiError

log = logging.getLogger(__name__)

UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "message_reaction",
    "message_reaction_count",
)
NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
WEBHOOK_RETRY_SECONDS = 0.2


@dataclass
class Webhook:
    """The ``setWebhook`` configuration and its delivery health (for ``getWebhookInfo``)."""

    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


class UpdateHub:
    """Holds pending updates and delivers them by long polling or webhook."""

    def __init__(self, now: Callable[[], float], on_change: Callable[[], None]) -> None:
        self._now = now
        self._on_change = on_change
        self._ids = itertools.count(1)
        self.pending: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.allowed_updates: list[str] = []
        self.webhook: Webhook | None = None
        self._arrived = asyncio.Event()
        self._poll_generation = 0
        self._delivery: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def allows(self, kind: str) -> bool:
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in NOT_DELIVERED_BY_DEFAULT

    def emit(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update; returns it, or ``None`` if the bot's allowed_updates drop it."""
        if not self.allows(kind):
            return None
        update = {"update_id": next(self._ids), kind: payload}
        self.pending.append(update)
        self.history.append(update)
        self._wake()
        if self.webhook is not None:
            self._ensure_delivery()
        return update

    def set_allowed(self, allowed: list[str] | None) -> None:
        """Telegram remembers allowed_updates from the last getUpdates/setWebhook that set it."""
        if allowed is None:
            return
        unknown = [kind for kind in allowed if kind not in UPDATE_TYPES]
        if unknown and allowed != self.allowed_updates:
            # Said once per change: pollers repeat allowed_updates on every getUpdates.
            log.info("allowed_updates has types the emulator never produces: %s", unknown)
        self.allowed_updates = list(allowed)

    async def get_updates(
        self, offset: int | None, limit: int, wait_seconds: float
    ) -> list[dict[str, Any]]:
        """``getUpdates``: confirm below ``offset``, then return or wait up to ``wait_seconds``."""
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # a newer request terminates an older waiting one, as on Telegram
        deadline = asyncio.get_running_loop().time() + max(wait_seconds, 0)
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self.pending or self._closed:
                return self.pending[:limit]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            arrived = self._arrived
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), remaining)

    def _confirm(self, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset < 0:
            self.pending = self.pending[offset:]
        else:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]

    def drop_pending(self) -> None:
        self.pending.clear()

    def set_webhook(self, webhook: Webhook) -> None:
        self.webhook = webhook
        self._ensure_delivery()

    def delete_webhook(self) -> None:
        self.webhook = None
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None

    def webhook_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            if self.allowed_updates:
                info["allowed_updates"] = self.allowed_updates
            if self.webhook.last_error_date is not None:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
        return info

    async def close(self) -> None:
        """Release long polls and stop webhook delivery."""
        self._closed = True
        self._wake()
        self.delete_webhook()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = asyncio.Event()
        self._on_change()

    def _ensure_delivery(self) -> None:
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.get_running_loop().create_task(self._deliver_forever())

    async def _deliver_forever(self) -> None:
        """POST pending updates one at a time, in order, retrying failures like Telegram."""
        while self.webhook is not None and not self._closed:
            if not self.pending:
                arrived = self._arrived
                await arrived.wait()
                continue
            webhook = self.webhook
            update = self.pending[0]
            if await self._post(webhook, update):
                if self.pending and self.pending[0] is update:
                    self.pending.pop(0)
                    self._on_change()
            else:
                await asyncio.sleep(WEBHOOK_RETRY_SECONDS)

    async def _post(self, webhook: Webhook, update: dict[str, Any]) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {}
        if webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook.secret_token
        try:
            async with self._session.post(webhook.url, json=update, headers=headers) as response:
                if 200 <= response.status < 300:
                    return True
                message = f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError) as error:
            message = f"Connection error: {error}"
        webhook.last_error_date = int(self._now())
        webhook.last_error_message = message
        return False
