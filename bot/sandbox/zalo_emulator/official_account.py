"""The Official Account side of the emulator: OAuth v4 token refresh and the GMF group API.

* ``POST /v4/oa/access_token`` (form: ``app_id``, ``grant_type=refresh_token``,
  ``refresh_token``; header ``secret_key``): a refresh token works **once**; each refresh issues a
  new access token (valid 25 h on the emulator's clock) and a new refresh token. A wrong secret,
  app or a used or unknown refresh token is refused in the body (HTTP 200, ``error`` ≠ 0).
* ``/v3.0/oa/group/*`` with an ``access_token`` header: an unknown or expired token answers
  ``{"error": -216, "message": "Access token is invalid"}`` with HTTP 200; every other failure is
  also HTTP 200 with a negative ``error``. Members must follow the OA (Zalo's rule: invitees have
  interacted with it); creating a group consumes one unused GMF asset, closing it frees it.
* Ids: as on Zalo, the OA knows a person by an id scoped to the OA, never the one the Bot
  Platform gives them. People are named by their Bot Platform id in the control API, and
  :meth:`oa_user_id` derives their OA-scoped id from it (and the app-scoped ``user_id_by_app``
  likewise); followers, ``member_user_ids``, group members and every event's ``sender.id`` are
  OA-scoped ids, so a bot that passed Bot Platform ids to GMF is refused (-230).
* Events: :meth:`user_sends_group_text`, :meth:`user_sends_oa_text` (a message in the OA's own
  chat) and :meth:`user_follows_oa` POST signed events (``user_send_group_text``,
  ``user_send_text``, ``follow``; ``X-ZEvent-Signature: mac=<sha256(app_id + body + timestamp
  + OA secret key)>``) to the OA webhook. The digest is computed here independently of the
  bot's verifier, on purpose.

Error codes other than -216 are the emulator's own choice (docs/zalo.md lists them); the bot's
client treats any non-zero ``error`` alike.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from .errors import ControlError, OaFailure
from .state import Call, Group

ACCESS_TTL_S = 90_000  # 25 hours
TEXT_LIMIT = 2000
MEMBERS_PER_REQUEST = 99
SIGNATURE_HEADER = "X-ZEvent-Signature"

TOKEN_EXPIRED = OaFailure(-216, "Access token is invalid")
REFRESH_REFUSED = -14014  # emulator's code: refresh token invalid, expired or already used
SECRET_REFUSED = -14002  # emulator's code: wrong app id or secret key
INVALID_PARAM = -201  # emulator's code
NOT_FOLLOWER = -230  # emulator's code: the user has not interacted with the OA


class OfficialAccount:
    """One OA app with its secrets, tokens, followers, GMF assets and groups."""

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        oa_secret_key: str,
        now: Callable[[], float],
        on_change: Callable[[], None],
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.oa_secret_key = oa_secret_key
        self.now = now
        self.on_change = on_change
        self.refresh_tokens: dict[str, bool] = {}  # token → already used
        self.access_tokens: dict[str, float] = {}  # token → expiry (emulator seconds)
        self.followers: dict[str, str] = {}  # OA-scoped user id → display name
        self.oa_id = _scoped("oa", app_id, "account")  # the OA's own id (events' recipient)
        self.inbox: list[dict[str, str]] = []  # what people wrote in the OA's own chat
        self.assets: dict[str, str | None] = {}  # GMF asset id → group using it
        self.groups: dict[str, Group] = {}
        self.webhook_url = ""
        self.calls: list[Call] = []
        self._forced: list[list[Any]] = []  # [path suffix, code, message, times left]
        self._group_ids = itertools.count(1)
        self._http: aiohttp.ClientSession | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v4/oa/access_token", self.token_endpoint),
            web.route("*", "/v3.0/oa/group/{action}", self.group_endpoint),
        ]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ---- control ---------------------------------------------------------------------------

    def grant(self) -> str:
        """The OA administrator grants the app access: a fresh refresh token for the bot."""
        token = "rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = False
        self.on_change()
        return token

    def expire_access_tokens(self) -> None:
        """Every access token stops working now (as after 25 hours)."""
        for token in self.access_tokens:
            self.access_tokens[token] = self.now() - 1
        self.on_change()

    def oa_user_id(self, user_id: str) -> str:
        """The id this OA knows the person with Bot Platform id ``user_id`` by."""
        return oa_user_id(self.app_id, user_id)

    def add_follower(self, user_id: str, display_name: str = "") -> str:
        """The person with Bot Platform id ``user_id`` follows the OA (no event: they did so
        before the webhook was set). Returns their OA-scoped id."""
        oa_user = self.oa_user_id(user_id)
        self.followers[oa_user] = display_name or f"Follower {user_id[-4:]}"
        self.on_change()
        return oa_user

    def add_asset(self, asset_id: str) -> None:
        self.assets.setdefault(asset_id, None)
        self.on_change()

    def set_webhook(self, url: str) -> None:
        self.webhook_url = url

    def inject_error(self, path: str, code: int, message: str = "injected", times: int = 1) -> None:
        """The next ``times`` calls whose path ends with ``path`` answer ``error`` ``code``."""
        self._forced.append([path, code, message, times])

    def group(self, group_id: str) -> Group:
        try:
            return self.groups[group_id]
        except KeyError:
            raise ControlError(f"no group {group_id}") from None

    @property
    def refresh_calls(self) -> list[Call]:
        return [c for c in self.calls if c.method == "access_token"]

    async def user_sends_group_text(self, group_id: str, user_id: str, text: str) -> int:
        """The person with Bot Platform id ``user_id`` writes in a group; the signed event (its
        sender the OA-scoped id) goes to the OA webhook. Returns the webhook's HTTP status."""
        group = self.group(group_id)
        oa_user = self.oa_user_id(user_id)
        if oa_user not in group.members:
            raise ControlError(f"{user_id} is not a member of group {group_id}")
        group.messages.append({"from": oa_user, "text": text})
        return await self._post_event(
            "user_send_group_text",
            {
                "sender": {"id": oa_user},
                "recipient": {"id": group_id},
                "message": {"text": text, "msg_id": secrets.token_hex(10)},
            },
        )

    async def user_sends_oa_text(self, user_id: str, text: str) -> int:
        """The person with Bot Platform id ``user_id`` writes ``text`` in the OA's own chat (as
        they would send the linking code); a signed ``user_send_text`` event goes to the OA
        webhook. Returns its HTTP status."""
        oa_user = self.oa_user_id(user_id)
        self.inbox.append({"from": oa_user, "text": text})
        return await self._post_event(
            "user_send_text",
            {
                "sender": {"id": oa_user},
                "recipient": {"id": self.oa_id},
                "message": {"text": text, "msg_id": secrets.token_hex(10)},
                "user_id_by_app": _scoped("app", self.app_id, user_id),
            },
        )

    async def user_follows_oa(self, user_id: str, display_name: str = "") -> int:
        """The person with Bot Platform id ``user_id`` follows the OA now: a signed ``follow``
        event (``follower.id``, no text, nothing that names their Bot Platform account) goes
        to the OA webhook. Returns its HTTP status."""
        oa_user = self.add_follower(user_id, display_name)
        return await self._post_event(
            "follow",
            {
                "oa_id": self.oa_id,
                "follower": {"id": oa_user},
                "source": "oa_profile",
                "user_id_by_app": _scoped("app", self.app_id, user_id),
            },
        )

    async def _post_event(self, event_name: str, fields: dict[str, Any]) -> int:
        if not self.webhook_url:
            raise ControlError("no OA webhook set (set_oa_webhook)")
        timestamp = str(int(self.now() * 1000))
        event = {"app_id": self.app_id, "event_name": event_name, **fields, "timestamp": timestamp}
        raw = json.dumps(event, ensure_ascii=False).encode()
        digest = hashlib.sha256(
            self.app_id.encode() + raw + timestamp.encode() + self.oa_secret_key.encode()
        ).hexdigest()
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.post(
            self.webhook_url,
            data=raw,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: f"mac={digest}"},
            timeout=aiohttp.ClientTimeout(total=5),
        ) as answer:
            return answer.status

    # ---- OAuth -----------------------------------------------------------------------------

    async def token_endpoint(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        params = {k: str(v) for k, v in form.items()}
        try:
            result = self._refresh(request.headers.get("secret_key", ""), params)
        except OaFailure as failure:
            self._log("access_token", params, failure)
            return web.json_response(
                {
                    **failure.payload(),
                    "error_name": "invalid_grant",
                    "error_description": failure.text,
                }
            )
        self._log("access_token", params)
        return web.json_response(result)

    def _refresh(self, secret: str, params: dict[str, str]) -> dict[str, Any]:
        if secret != self.app_secret or params.get("app_id") != self.app_id:
            raise OaFailure(SECRET_REFUSED, "Invalid app id or secret key")
        if params.get("grant_type") != "refresh_token":
            raise OaFailure(INVALID_PARAM, "grant_type must be refresh_token")
        token = params.get("refresh_token", "")
        if self.refresh_tokens.get(token, True):  # unknown or already used
            raise OaFailure(REFRESH_REFUSED, "Invalid refresh token (expired or already used)")
        self.refresh_tokens[token] = True
        access = "at-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = self.now() + ACCESS_TTL_S
        renewed = self.grant()
        return {"access_token": access, "refresh_token": renewed, "expires_in": str(ACCESS_TTL_S)}

    # ---- GMF -------------------------------------------------------------------------------

    async def group_endpoint(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        params: dict[str, Any] = dict(request.query)
        try:
            if request.can_read_body:
                body = await request.json()
                if not isinstance(body, dict):
                    raise OaFailure(INVALID_PARAM, "body must be a JSON object")
                params.update(body)
            self._check_token(request.headers.get("access_token", ""))
            self._forced_failure(request.path)
            handler = getattr(self, f"_g_{action}", None)
            if handler is None or request.method != ("GET" if action == "listmember" else "POST"):
                raise OaFailure(INVALID_PARAM, f"unknown method {request.method} {action}")
            data = handler(params)
        except ValueError:
            failure = OaFailure(INVALID_PARAM, "body must be JSON")
            self._log(action, params, failure)
            return web.json_response(failure.payload())
        except OaFailure as failure:
            self._log(action, params, failure)
            return web.json_response(failure.payload())
        self._log(action, params)
        return web.json_response({"error": 0, "message": "Success", "data": data})

    def _check_token(self, token: str) -> None:
        expiry = self.access_tokens.get(token)
        if expiry is None or expiry <= self.now():
            raise TOKEN_EXPIRED

    def _forced_failure(self, path: str) -> None:
        for forced in self._forced:
            if path.endswith(forced[0]):
                forced[3] -= 1
                if forced[3] <= 0:
                    self._forced.remove(forced)
                raise OaFailure(forced[1], forced[2])

    def _g_creategroupwithoa(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("group_name") or "").strip()
        if not 1 <= len(name) <= 100:
            raise OaFailure(INVALID_PARAM, "group_name must be 1-100 characters")
        asset = str(params.get("asset_id") or "")
        if asset not in self.assets:
            raise OaFailure(INVALID_PARAM, "unknown asset_id")
        if self.assets[asset] is not None:
            raise OaFailure(INVALID_PARAM, "asset_id is already used by a group")
        members = self._members(params, limit=MEMBERS_PER_REQUEST)
        group = Group(
            group_id=f"g{next(self._group_ids):06d}{secrets.token_hex(4)}",
            name=name,
            description=str(params.get("group_description") or ""),
            asset_id=asset,
            members=members,
        )
        self.groups[group.group_id] = group
        self.assets[asset] = group.group_id
        return {"group_id": group.group_id, "group_link": group.link}

    def _g_invite(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._open_group(params)
        for user_id in self._members(params, limit=MEMBERS_PER_REQUEST):
            if user_id not in group.members:
                group.members.append(user_id)
        return {}

    def _g_removemembers(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._open_group(params)
        users = self._members(params, limit=MEMBERS_PER_REQUEST)
        missing = [u for u in users if u not in group.members]
        if missing:
            raise OaFailure(INVALID_PARAM, f"{missing[0]} is not a member of the group")
        group.members = [m for m in group.members if m not in users]
        return {}

    def _g_message(self, params: dict[str, Any]) -> dict[str, Any]:
        recipient = params.get("recipient")
        message = params.get("message")
        if not isinstance(recipient, dict) or not isinstance(message, dict):
            raise OaFailure(INVALID_PARAM, "recipient and message are required")
        if set(message) - {"text"}:
            raise OaFailure(INVALID_PARAM, "only text messages are emulated")
        group = self._open_group({"group_id": recipient.get("group_id")})
        text = message.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= TEXT_LIMIT:
            raise OaFailure(INVALID_PARAM, f"text must be 1-{TEXT_LIMIT} characters")
        message_id = secrets.token_hex(10)
        group.messages.append({"from": "oa", "text": text, "message_id": message_id})
        return {"message_id": message_id}

    def _g_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._open_group(params)
        group.closed = True
        self.assets[group.asset_id] = None
        return {}

    def _g_listmember(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._open_group(params)
        try:
            offset, count = int(params.get("offset", 0)), int(params.get("count", 50))
        except ValueError:
            raise OaFailure(INVALID_PARAM, "offset and count must be numbers") from None
        page = group.members[offset : offset + count]
        return {
            "total": len(group.members),
            "members": [{"user_id": u, "name": self.followers.get(u, "")} for u in page],
        }

    def _open_group(self, params: dict[str, Any]) -> Group:
        group = self.groups.get(str(params.get("group_id") or ""))
        if group is None or group.closed:
            raise OaFailure(INVALID_PARAM, "group not found")
        return group

    def _members(self, params: dict[str, Any], *, limit: int) -> list[str]:
        members = params.get("member_user_ids")
        if not isinstance(members, list) or not members or len(members) > limit:
            raise OaFailure(INVALID_PARAM, f"member_user_ids must list 1-{limit} user ids")
        for user_id in members:
            if str(user_id) not in self.followers:
                raise OaFailure(NOT_FOLLOWER, f"user {user_id} has not interacted with the OA")
        return [str(u) for u in members]

    def _log(self, method: str, params: dict[str, Any], failure: OaFailure | None = None) -> None:
        code, message = (failure.code, failure.text) if failure else (0, "")
        self.calls.append(Call("oa", method, params, self.now(), code, message))
        self.on_change()


def oa_user_id(app_id: str, user_id: str) -> str:
    """The id the OA of ``app_id`` knows the person with Bot Platform id ``user_id`` by."""
    return _scoped("user", app_id, user_id)


def _scoped(kind: str, app_id: str, name: str) -> str:
    """A stable id of 18 or 19 digits (Zalo's ids are long numbers) for ``name`` in the id space
    ``kind`` of ``app_id``; never equal to the Bot Platform id it is derived from."""
    digest = hashlib.sha256(f"{kind}:{app_id}:{name}".encode()).hexdigest()
    return str(10**17 + int(digest[:15], 16))
