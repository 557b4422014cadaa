"""Signed, expiring links to charts served by the bot's own web server.

Zalo's ``sendPhoto`` takes a URL that Zalo's servers fetch, not an upload, so an alert chart
has to be reachable from the internet for a short while. A link is
``{base}/charts/<name>?exp=<unix seconds>&sig=<HMAC-SHA256 over path and expiry>``: it cannot be
altered to reach another file or live longer, and it stops working after ``exp``. The HMAC is
the standard library's; names are restricted to one safe path segment so that no link can point
outside the chart directory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

CHART_PREFIX = "/charts/"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.png")
MIN_KEY_BYTES = 32


class ChartLinks:
    """Makes and checks chart links for one secret key and one public base URL."""

    def __init__(self, key: bytes, base_url: str, *, now: Callable[[], float] = time.time) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the signing key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.now = now

    def url(self, name: str, *, ttl_seconds: float) -> str:
        """A link to chart ``name`` valid for ``ttl_seconds`` from now."""
        check_name(name)
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        path = CHART_PREFIX + name
        expires = int(self.now() + ttl_seconds)
        query = urlencode({"exp": expires, "sig": self._signature(path, expires)})
        return f"{self.base_url}{path}?{query}"

    def check(self, path: str, exp: str, sig: str) -> str | None:
        """``None`` if the link is good now, else why it is refused."""
        if not exp.isdigit():
            return "malformed link"
        if not hmac.compare_digest(sig.encode(), self._signature(path, int(exp)).encode()):
            return "bad signature"
        if int(exp) < self.now():
            return "link expired"
        return None

    def _signature(self, path: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def check_name(name: str) -> str:
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(f"chart name {name!r} must be one safe file name ending in .png")
    return name


def chart_route(directory: Path, links: ChartLinks) -> web.RouteDef:
    """``GET /charts/{name}``: the PNG if the link is genuine and unexpired, else 403/404."""

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not _SAFE_NAME.fullmatch(name):
            return web.Response(status=404, text="no such chart")
        refused = links.check(
            request.path, request.query.get("exp", ""), request.query.get("sig", "")
        )
        if refused is not None:
            return web.Response(status=403, text=refused)
        path = directory / name
        if not path.is_file():
            return web.Response(status=404, text="no such chart")
        return web.FileResponse(path, headers={"Content-Type": "image/png"})

    return web.get(CHART_PREFIX + "{name}", serve)
