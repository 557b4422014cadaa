"""What every webhook receiver checks first: the secret header, then that the body is JSON.

A messenger POSTs each update with the secret given when the webhook was set. Without that check
anyone who learns the URL could post an update that speaks as any user, so a POST without the
right secret is refused (403) before its body is read; the comparison runs in constant time
(``hmac.compare_digest``), so the secret cannot be guessed byte by byte from response times. A
refusal is logged with its origin only: the body may hold whatever a forger chose.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


async def verified_json(request: web.Request, header: str, secret: bytes, receiver: str) -> Any:
    """The JSON body of a POST whose ``header`` carries ``secret``.

    Raises ``HTTPForbidden`` (a wrong or missing secret) or ``HTTPBadRequest`` (not JSON), which
    aiohttp answers as they are.
    """
    given = request.headers.get(header, "")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), secret):
        log.warning(
            "%s: refused a POST to %s from %s (%s secret header)",
            receiver,
            request.path,
            request.remote,
            "wrong" if given else "no",
        )
        raise web.HTTPForbidden(text="wrong secret token")
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="body is not JSON") from None
