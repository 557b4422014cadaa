"""A small aiohttp client for the Zalo Official Account Open API and its group chats (GMF).

Task-force rooms on Zalo are group chats an OA creates and owns through the Group Message
Framework: create a group with members, invite, remove, post, close. Calls carry the OA's access
token in an ``access_token`` header; every answer is HTTP 200 with ``error`` 0 on success, so the
body is always checked. An expired token answers ``error`` -216: the client refreshes (through
:class:`~.tokens.OaTokenStore`, which rotates the single-use refresh token under a row lock) and
retries the call exactly once; a second -216 is an error, never a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ..session import SessionHolder
from ..text import TEXT_LIMIT, check_text
from .errors import ACCESS_TOKEN_INVALID, OaApiError, OaAuthorizationError, OaTransportError
from .tokens import OaGrant, OaTokens, OaTokenStore

log = logging.getLogger(__name__)

OAUTH_URL = "https://oauth.zaloapp.com"
OPENAPI_URL = "https://openapi.zalo.me"
TOKEN_PATH = "/v4/oa/access_token"
#: The most member ids one create or invite request carries (larger lists are sent in batches).
MEMBERS_PER_REQUEST = 99


@dataclass(frozen=True)
class OaGroup:
    group_id: str
    group_link: str


class ZaloOaClient(SessionHolder):
    """The OA app ``store.app_id`` with its secret; one aiohttp session."""

    def __init__(
        self,
        store: OaTokenStore,
        app_secret: str,
        *,
        oauth_url: str = OAUTH_URL,
        api_url: str = OPENAPI_URL,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.store = store
        self._app_secret = app_secret
        self.oauth_url = oauth_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        super().__init__(session)
        self._rotating = asyncio.Lock()  # one rotation at a time per process; the row lock
        # serialises processes

    # ---- group chats (GMF) ---------------------------------------------------------------

    async def create_group(
        self,
        name: str,
        member_user_ids: Sequence[str],
        *,
        asset_id: str,
        description: str = "",
    ) -> OaGroup:
        """A new group owned by the OA; ``asset_id`` is one unused GMF quota asset."""
        members = _unique(member_user_ids)
        if not members:
            raise ValueError("a Zalo group needs at least one member")
        body: dict[str, Any] = {
            "group_name": name,
            "asset_id": asset_id,
            "member_user_ids": members[:MEMBERS_PER_REQUEST],
        }
        if description:
            body["group_description"] = description
        data = await self.call("POST", "/v3.0/oa/group/creategroupwithoa", body=body)
        group = OaGroup(str(data.get("group_id", "")), str(data.get("group_link", "")))
        if not group.group_id:
            raise OaApiError("/v3.0/oa/group/creategroupwithoa", 0, "no group_id in the answer")
        if len(members) > MEMBERS_PER_REQUEST:
            await self.invite(group.group_id, members[MEMBERS_PER_REQUEST:])
        return group

    async def invite(self, group_id: str, user_ids: Sequence[str]) -> None:
        await self._members("/v3.0/oa/group/invite", group_id, user_ids)

    async def remove_members(self, group_id: str, user_ids: Sequence[str]) -> None:
        await self._members("/v3.0/oa/group/removemembers", group_id, user_ids)

    async def _members(self, path: str, group_id: str, user_ids: Sequence[str]) -> None:
        """A change of a group's members, in requests of at most ``MEMBERS_PER_REQUEST``."""
        members = _unique(user_ids)
        for start in range(0, len(members), MEMBERS_PER_REQUEST):
            batch = members[start : start + MEMBERS_PER_REQUEST]
            await self.call("POST", path, body={"group_id": group_id, "member_user_ids": batch})

    async def send_group_text(self, group_id: str, text: str) -> str:
        """Post plain text (1–2,000 characters) in the group; returns Zalo's message id."""
        check_text(text, TEXT_LIMIT)
        data = await self.call(
            "POST",
            "/v3.0/oa/group/message",
            body={"recipient": {"group_id": group_id}, "message": {"text": text}},
        )
        return str(data.get("message_id") or data.get("msg_id") or "")

    async def list_members(self, group_id: str, *, offset: int = 0, count: int = 50) -> list[str]:
        data = await self.call(
            "GET",
            "/v3.0/oa/group/listmember",
            query={"group_id": group_id, "offset": str(offset), "count": str(count)},
        )
        members = data.get("members", []) if isinstance(data, dict) else []
        return [str(m.get("user_id")) for m in members if isinstance(m, dict) and m.get("user_id")]

    async def close_group(self, group_id: str) -> None:
        """Disband the group (the room's crisis is over); the OA's quota asset is freed."""
        await self.call("POST", "/v3.0/oa/group/delete", body={"group_id": group_id})

    # ---- calls with the access token -----------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Open API call; ``data`` of the answer. -216 → refresh and retry once."""
        tokens = await asyncio.to_thread(self.store.current)
        if not self.store.usable(tokens):
            tokens = await self._rotate(tokens.access_token)
        answer = await self._send(method, path, tokens.access_token, body, query)
        if answer.get("error") == ACCESS_TOKEN_INVALID:
            log.info("zalo oa: access token refused on %s; refreshing and retrying once", path)
            tokens = await self._rotate(tokens.access_token)
            answer = await self._send(method, path, tokens.access_token, body, query)
        code = answer.get("error", 0)
        if code not in (0, "0"):
            raise OaApiError(path, _int(code), str(answer.get("message") or "error"))
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    async def _send(
        self,
        method: str,
        path: str,
        access_token: str,
        body: dict[str, Any] | None,
        query: dict[str, str] | None,
    ) -> dict[str, Any]:
        session = self._ensure_session()
        try:
            async with session.request(
                method,
                self.api_url + path,
                json=body,
                params=query,
                headers={"access_token": access_token},
                timeout=self.timeout,
            ) as response:
                answer = await response.json(content_type=None)
        except TimeoutError:
            raise OaTransportError(f"{path}: no answer from Zalo in time") from None
        except (aiohttp.ClientError, ValueError) as error:
            raise OaTransportError(f"{path}: {type(error).__name__}") from None
        if not isinstance(answer, dict):
            raise OaTransportError(f"{path}: the answer is not a JSON object")
        return answer

    # ---- token refresh -------------------------------------------------------------------

    async def refresh_now(self) -> OaTokens:
        """Rotate even if the access token is still good.

        A refresh token dies after about three months unused; an OA whose rooms sit idle that
        long would need its administrator again. A periodic job (a due row) calls this.
        """
        tokens = await asyncio.to_thread(self.store.current)
        return await self._rotate(tokens.access_token)

    async def _rotate(self, stale_access_token: str) -> OaTokens:
        loop = asyncio.get_running_loop()

        def exchange(refresh_token: str) -> OaGrant:
            # Runs in the worker thread that holds the row lock; the HTTP call runs on the loop.
            future = asyncio.run_coroutine_threadsafe(self._exchange(refresh_token), loop)
            try:
                return future.result(self.timeout.total)
            except TimeoutError:
                future.cancel()
                raise OaTransportError("token refresh: no answer from Zalo in time") from None

        async with self._rotating:
            return await asyncio.to_thread(self.store.rotate, stale_access_token, exchange)

    async def _exchange(self, refresh_token: str) -> OaGrant:
        session = self._ensure_session()
        form = {
            "refresh_token": refresh_token,
            "app_id": self.store.app_id,
            "grant_type": "refresh_token",
        }
        try:
            async with session.post(
                self.oauth_url + TOKEN_PATH,
                data=form,
                headers={"secret_key": self._app_secret},
                timeout=self.timeout,
            ) as response:
                answer = await response.json(content_type=None)
        except TimeoutError:
            raise OaTransportError("token refresh: no answer from Zalo in time") from None
        except (aiohttp.ClientError, ValueError) as error:
            host = urlsplit(self.oauth_url).netloc
            raise OaTransportError(f"token refresh at {host}: {type(error).__name__}") from None
        if not isinstance(answer, dict):
            raise OaTransportError("token refresh: the answer is not a JSON object")
        if answer.get("error") not in (None, 0, "0"):
            detail = answer.get("error_description") or answer.get("message") or "refused"
            raise OaAuthorizationError(
                f"Zalo refused the OA refresh token: {detail} (error {answer.get('error')})"
            )
        try:
            return OaGrant(
                access_token=str(answer["access_token"]),
                refresh_token=str(answer["refresh_token"]),
                expires_in=float(answer.get("expires_in", 90_000)),
            )
        except (KeyError, ValueError):
            raise OaAuthorizationError("Zalo's token answer lacks a token") from None


def _unique(user_ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(str(u).strip() for u in user_ids if str(u).strip()))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
