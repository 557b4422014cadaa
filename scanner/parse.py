"""Turn fetched feed bytes into clean items: title, link, summary text and an aware UTC date.

feedparser does the format work (RSS 0.9x/1.0/2.0, Atom, encodings declared in the XML
prolog or the HTTP ``Content-Type``); this module decides what counts as a usable item. A feed
that feedparser flags as malformed ("bozo") still yields the entries it recovered — Vietnamese
outlets often serve slightly broken XML, and dropping a whole feed for one stray ``&`` would
hide news. Only a feed with no usable entry *and* a parse fault is an error.
"""

from __future__ import annotations

import calendar
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import feedparser

from scanner.textnorm import nfc

__all__ = ["FeedError", "FeedItem", "ParsedFeed", "html_to_text", "parse_feed"]

MAX_TITLE = 1000
MAX_SUMMARY = 4000


class FeedError(Exception):
    """A feed that yielded nothing usable; the message is stored on the Source row."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a feed, already cleaned (plain text, NFC, UTC)."""

    title: str
    url: str
    summary: str
    published_at: datetime
    guid: str = ""


@dataclass
class ParsedFeed:
    items: list[FeedItem]
    title: str = ""
    #: Description of a recoverable fault (bozo) — the items are still good.
    warning: str | None = None
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _TextExtractor(HTMLParser):
    """Collects text nodes; block tags become spaces so words do not run together."""

    _BLOCK = frozenset(
        {
            "p",
            "br",
            "div",
            "li",
            "ul",
            "ol",
            "tr",
            "td",
            "th",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "section",
            "article",
            "blockquote",
            "figure",
            "figcaption",
            "img",
        }
    )
    _SKIP = frozenset({"script", "style", "noscript", "iframe", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment, whitespace collapsed, NFC."""
    if "<" not in markup and "&" not in markup:
        return " ".join(nfc(markup).split())
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
        text = "".join(extractor.parts)
    except Exception:  # HTMLParser is lenient, but never let one summary sink a feed
        text = html.unescape(markup)
    return " ".join(nfc(text).split())


def _entry_date(entry: Mapping[str, Any], fallback: datetime) -> datetime:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                # feedparser's struct_time is already UTC.
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return fallback


def _entry_summary(entry: Mapping[str, Any]) -> str:
    summary = entry.get("summary") or ""
    if not summary:
        content = entry.get("content") or []
        if content:
            summary = content[0].get("value", "")
    return html_to_text(str(summary))[:MAX_SUMMARY]


def parse_feed(
    body: bytes,
    *,
    fetched_at: datetime,
    headers: Mapping[str, str] | None = None,
    base_url: str = "",
) -> ParsedFeed:
    """Parse ``body``; raises :class:`FeedError` if no entry could be recovered.

    ``headers`` (the HTTP response headers) let feedparser honour the charset of
    ``Content-Type`` when the XML prolog does not declare one. ``fetched_at`` dates entries
    that carry no date of their own.
    """
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be an aware datetime")
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if base_url:
        response_headers.setdefault("content-location", base_url)
    # Summaries are reduced to plain text below, so feedparser need not sanitise their HTML
    # or resolve the relative links inside it (a quarter of its time).
    parsed = feedparser.parse(
        body, response_headers=response_headers, sanitize_html=False, resolve_relative_uris=False
    )
    items: list[FeedItem] = []
    skipped = 0
    fetched_utc = fetched_at.astimezone(UTC)
    for entry in parsed.entries:
        title = html_to_text(str(entry.get("title") or ""))[:MAX_TITLE]
        link = str(entry.get("link") or "").strip()
        if not link:
            guid = str(entry.get("id") or "")
            link = guid if guid.startswith(("http://", "https://")) else ""
        if not title or not link:
            skipped += 1
            continue
        items.append(
            FeedItem(
                title=title,
                url=link,
                summary=_entry_summary(entry),
                published_at=_entry_date(entry, fetched_utc),
                guid=str(entry.get("id") or ""),
            )
        )
    warning = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        warning = f"{type(exc).__name__}: {exc}" if exc else "malformed feed"
    if not items:
        if warning is not None:
            raise FeedError(f"not a readable feed ({warning[:300]})")
        if not parsed.get("version") and not parsed.entries:
            raise FeedError("not a feed: no RSS or Atom document found")
    feed_title = html_to_text(str(parsed.feed.get("title") or "")) if parsed.get("feed") else ""
    return ParsedFeed(items=items, title=feed_title, warning=warning, skipped=skipped)
