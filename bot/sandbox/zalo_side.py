"""The sandbox's Zalo: served as ``crisisdesk run`` serves it with both tokens.

docs/zalo.md, "Running both messengers": one process, one runtime. The sandbox's settings carry
a Zalo token, the Zalo emulator's Bot API address and a chart key; ``bot.channels.zalo.app
.ZaloSide`` (the production class) is built on them, its notifier goes behind the Application's
``RoutingNotifier`` (``build_application(..., also=...)``) and its receiver answers with the
Application's runtime. So the one tick, scan and fan-out serve both messengers: a Zalo
applicant's review request, an alert owed on Zalo and an approval request reach Zalo the way
they do in production, with no second bot racing the first for the same due rows.

Charts reach Zalo as signed links; the sandbox serves them from its feed server (started
before the settings exist, so its address can be ``ZALO_PUBLIC_URL``).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from aiohttp import web

from bot.channels.zalo.chart_links import ChartLinks, chart_route

ZALO_TOKEN = "8800000000000000001:SANDBOXZALO"


def chart_key() -> str:
    """A fresh key to sign chart links with (``ZALO_CHART_KEY``: at least 32 characters)."""
    return secrets.token_urlsafe(32)


def charts_route(data_dir: Path, key: str) -> web.RouteDef:
    """``GET /charts/{name}`` for the charts ``bot.channels.zalo.app.ZaloSide`` writes under
    ``data_dir`` (its ``chart_dir``) and signs with ``key``. A link is checked by its path and
    signature only, so the checker needs no base address (``ZaloSide`` makes the links)."""
    return chart_route(data_dir / "charts", ChartLinks(key.encode(), ""))
