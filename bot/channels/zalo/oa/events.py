"""OA webhook events (group messages, follows…) and their ``X-ZEvent-Signature``.

Zalo signs each OA event: ``mac=<hex SHA-256 of app_id + raw body + timestamp + OA secret
key>``, where ``timestamp`` is the one inside the JSON body and the key is the *OA* secret key,
not the app secret (docs/zalo.md says where this comes from). It is a keyed hash rather than an
HMAC, which is Zalo's choice, not ours. The receiver hashes the raw bytes it received (never a
re-serialised copy), compares in constant time, and refuses (403) anything else before acting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ZEvent-Signature"

EventHandler = Callable[[dict[str, Any]], Awaitable[None]]


class BadSignature(ValueError):
    """The event is not signed by Zalo for this app and OA."""


def event_signature(app_id: str, raw_body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """The hex digest Zalo puts after ``mac=`` in :data:`SIGNATURE_HEADER`."""
    signed = app_id.encode() + raw_body + timestamp.encode() + oa_secret_key.encode()
    return hashlib.sha256(signed).hexdigest()


def verify_event(
    raw_body: bytes, header: str | None, *, app_id: str, oa_secret_key: str
) -> dict[str, Any]:
    """The parsed event if ``header`` is Zalo's signature of ``raw_body``; else BadSignature."""
    given = (header or "").strip()
    if given.lower().startswith("mac="):
        given = given[4:].strip()
    if not given:
        raise BadSignature("no signature")
    try:
        event = json.loads(raw_body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadSignature("body is not JSON") from None
    if not isinstance(event, dict) or str(event.get("app_id", "")) != app_id:
        raise BadSignature("event is for another app")
    expected = event_signature(app_id, raw_body, str(event.get("timestamp", "")), oa_secret_key)
    if not hmac.compare_digest(given.lower().encode(), expected.encode()):
        raise BadSignature("signature does not match")
    return event


def oa_event_handler(
    app_id: str, oa_secret_key: str, on_event: EventHandler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler: verify, then await ``on_event`` (which should only hand it over)."""

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            event = verify_event(
                raw,
                request.headers.get(SIGNATURE_HEADER),
                app_id=app_id,
                oa_secret_key=oa_secret_key,
            )
        except BadSignature as error:
            log.warning("zalo oa webhook: refused a POST from %s (%s)", request.remote, error)
            return web.Response(status=403, text="bad signature")
        await on_event(event)
        return web.Response(text="ok")

    return receive


def group_of(event: dict[str, Any]) -> str | None:
    """The group an event happened in: ``recipient.group_id`` or, for group events,
    ``recipient.id`` (both forms are seen)."""
    recipient = event.get("recipient")
    if not isinstance(recipient, dict):
        return None
    if recipient.get("group_id"):
        return str(recipient["group_id"])
    if "group" in str(event.get("event_name", "")) and recipient.get("id"):
        return str(recipient["id"])
    return None
