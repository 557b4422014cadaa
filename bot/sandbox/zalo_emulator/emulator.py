"""`ZaloEmulator`: a strict local Zalo (Bot Platform + Official Account) with a control API.

A test starts one emulator, points :class:`~bot.channels.zalo.ZaloBotClient` at
:attr:`bot_api_url` and :class:`~bot.channels.zalo.oa.ZaloOaClient` at :attr:`root_url` (both
the OAuth and the Open API base), then plays people (``send_text``,
``user_sends_group_text``, ``user_sends_oa_text``; a person is named by their Bot Platform id,
and the OA side uses the OA-scoped id :meth:`oa_user_id` derives) and asserts on what the bot
sent (``messages``, ``wait_for_message``), on groups (``oa.groups``) and on the call log
(``calls``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from bot.sandbox.serving import LoopbackEmulator

from .bot_platform import BotPlatform
from .control import control_routes
from .errors import ControlError
from .official_account import OfficialAccount
from .state import Call, StoredMessage

DEFAULT_TOKEN = "1459232241454765289:TESTSECRET"
DEFAULT_APP_ID = "3158806452351286345"


class ZaloEmulator(LoopbackEmulator):
    """One bot and one OA app on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        app_id: str = DEFAULT_APP_ID,
        app_secret: str = "app-secret-for-tests",
        oa_secret_key: str = "oa-secret-key-for-tests",
        now: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.now = now
        self.bot_platform = BotPlatform(token, now=now, on_change=self._changed)
        self.oa = OfficialAccount(
            app_id=app_id,
            app_secret=app_secret,
            oa_secret_key=oa_secret_key,
            now=now,
            on_change=self._changed,
        )

    def _routes(self) -> list[web.AbstractRouteDef]:
        return [*self.bot_platform.routes(), *self.oa.routes(), *control_routes(self)]

    async def _release(self) -> None:
        """Release the Bot Platform's long polls and both webhook clients."""
        await self.bot_platform.close()
        await self.oa.close()

    @property
    def bot_api_url(self) -> str:
        """For ``ZaloBotClient(base_url=...)``: the client appends ``/bot<TOKEN>/<method>``."""
        return self.root_url

    # ---- Bot Platform control ------------------------------------------------------------

    def send_text(self, user_id: str, text: str, display_name: str = "") -> StoredMessage:
        """``user_id`` writes ``text`` to the bot (the bot can answer them from then on)."""
        return self.bot_platform.user_sends(str(user_id), text, display_name=display_name)

    def add_person(self, user_id: str, display_name: str = "") -> None:
        """``user_id`` wrote to the bot before this emulator started: the bot may write to them
        (a sandbox kept with ``--data`` finds its registered people again)."""
        self.bot_platform.add_person(str(user_id), display_name)

    def messages(self, chat_id: str, *, from_bot: bool | None = None) -> list[StoredMessage]:
        return self.bot_platform.chat(str(chat_id), from_bot=from_bot)

    async def wait_for_message(
        self,
        chat_id: str,
        after: str = "",
        timeout: float = 5.0,  # noqa: ASYNC109 - tests state how long they are willing to wait
    ) -> StoredMessage:
        """The bot's first message in ``chat_id`` after the message ``after`` (any if empty)."""

        def found() -> StoredMessage | None:
            chat = self.bot_platform.chat(str(chat_id))
            ids = [m.message_id for m in chat]
            start = ids.index(after) + 1 if after in ids else 0
            return next((m for m in chat[start:] if m.from_bot), None)

        return await self.wait_for(found, timeout=timeout)

    def set_webhook_envelope(self, envelope: str) -> None:
        """Deliver webhook updates ``"bare"`` or ``"wrapped"`` in ``{"ok": true, "result": …}``
        (both are seen from Zalo)."""
        if envelope not in ("bare", "wrapped"):
            raise ControlError("envelope must be 'bare' or 'wrapped'")
        self.bot_platform.webhook_envelope = envelope

    def set_fetch_photos(self, enabled: bool) -> None:
        self.bot_platform.fetch_photos = enabled

    # ---- Official Account control --------------------------------------------------------

    def grant_oa_access(self) -> str:
        return self.oa.grant()

    def expire_oa_access_tokens(self) -> None:
        self.oa.expire_access_tokens()

    def oa_user_id(self, user_id: str) -> str:
        """The OA-scoped id of the person with Bot Platform id ``user_id`` (never the same)."""
        return self.oa.oa_user_id(str(user_id))

    def add_oa_follower(self, user_id: str, display_name: str = "") -> str:
        """The person with Bot Platform id ``user_id`` follows the OA; their OA-scoped id."""
        return self.oa.add_follower(str(user_id), display_name)

    async def user_follows_oa(self, user_id: str, display_name: str = "") -> int:
        return await self.oa.user_follows_oa(str(user_id), display_name)

    async def user_sends_oa_text(self, user_id: str, text: str) -> int:
        return await self.oa.user_sends_oa_text(str(user_id), text)

    def add_oa_asset(self, asset_id: str) -> None:
        self.oa.add_asset(asset_id)

    def set_oa_webhook(self, url: str) -> None:
        self.oa.set_webhook(url)

    def inject_oa_error(
        self, path: str, code: int, message: str = "injected", times: int = 1
    ) -> None:
        self.oa.inject_error(path, code, message, times)

    async def user_sends_group_text(self, group_id: str, user_id: str, text: str) -> int:
        return await self.oa.user_sends_group_text(group_id, str(user_id), text)

    # ---- observing -----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        return sorted(self.bot_platform.calls + self.oa.calls, key=lambda c: c.time)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]
