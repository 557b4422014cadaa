"""The local feed server: each outlet's RSS 2.0 feed, replaying the news day on the simulated clock.

``GET /feeds/{outlet}.rss`` serves the outlet's newest items whose publication time is ≤ the
clock's now, with ``ETag`` and ``Last-Modified`` (answering 304 when nothing is new, as a polite
outlet does). ``GET /news/{outlet}/{slug}`` is the article page of a written item, so links in
alerts lead somewhere. ``GET /feeds/`` lists the feeds.
"""

from __future__ import annotations

import hashlib
from email.utils import format_datetime
from html import escape

from aiohttp import web

from bot.clock import Clock
from bot.sandbox.newsday import OUTLET_BY_SLUG, OUTLETS, TZ, NewsDay, rss

CLOCK_KEY = web.AppKey("clock", Clock)
NEWSDAY_KEY = web.AppKey("newsday", NewsDay)


def feed_app(newsday: NewsDay, clock: Clock) -> web.Application:
    app = web.Application()
    app[CLOCK_KEY] = clock
    app[NEWSDAY_KEY] = newsday
    app.add_routes(
        [
            web.get("/feeds/", index),
            web.get("/feeds/{outlet}.rss", feed),
            web.get("/news/{outlet}/{slug}", article),
        ]
    )
    return app


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def index(request: web.Request) -> web.Response:
    rows = "".join(
        f'<li><a href="/feeds/{o.slug}.rss">{escape(o.name)}</a> — {escape(o.description)}</li>'
        for o in OUTLETS
    )
    return web.Response(
        text=f"<!doctype html><meta charset=utf-8><title>Feeds</title><ul>{rows}</ul>",
        content_type="text/html",
    )


async def feed(request: web.Request) -> web.Response:
    outlet = OUTLET_BY_SLUG.get(request.match_info["outlet"])
    if outlet is None:
        raise web.HTTPNotFound(text="no such outlet")
    day = request.app[NEWSDAY_KEY]
    now = request.app[CLOCK_KEY].now()
    items = day.published_by(now, outlet.slug)
    newest = items[-1] if items else None
    tag = hashlib.sha1(f"{outlet.slug}:{newest.id if newest else ''}".encode()).hexdigest()[:16]
    etag = f'"{tag}"'
    headers = {"ETag": etag, "Cache-Control": "max-age=0"}
    if newest is not None:
        headers["Last-Modified"] = format_datetime(day.published_at(newest), usegmt=True)
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    body = rss(outlet, items, day, _base(request))
    return web.Response(
        text=body, content_type="application/rss+xml", charset="utf-8", headers=headers
    )


async def article(request: web.Request) -> web.Response:
    day = request.app[NEWSDAY_KEY]
    item = day.by_slug(request.match_info["outlet"], request.match_info["slug"])
    now = request.app[CLOCK_KEY].now()
    if item is None or day.published_at(item) > now:
        raise web.HTTPNotFound(text="no such article (yet)")
    outlet = OUTLET_BY_SLUG[item.outlet]
    when = day.published_at(item).astimezone(TZ)
    page = (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{escape(item.title)}</title>"
        "<body style='font:16px/1.5 system-ui;max-width:40em;margin:2em auto'>"
        f"<p><b>{escape(outlet.name)}</b> · {when:%H:%M %d/%m/%Y}</p>"
        f"<h1>{escape(item.title)}</h1><p>{escape(item.lead)}</p>"
        "<p><i>Bài viết mô phỏng cho sandbox CrisisDesk (không phải tin thật).</i></p>"
    )
    return web.Response(text=page, content_type="text/html")
