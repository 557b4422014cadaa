"""Turn fetched feed bytes into clean items: title, link, summary text and an aware UTC date.

feedparser does the format work (RSS 0.9x/1.0/2.0, Atom, encodings declared in the XML
prolog or the HTTP ``Content-Type``); this module decides what counts as a usable item. A feed
that feedparser flags as malformed ("bozo") still yields the entries it recovered — Vietnamese
outlets often serve slightly broken XML, and dropping a whole feed for one stray ``&`` would
hide news. Only a feed with no usable entry *and* a parse fault is an error.

Charsets: a declared charset (HTTP ``Content-Type`` or the XML prolog) is checked against the
bytes before feedparser reads them (:func:`decode_declared`). Declared single-byte charsets such
as windows-1252 decode any bytes, so a server that labels UTF-8 as one of them used to turn every
headline into mojibake ("BÃ£o sá»‘ 3") with no fault raised. A body that is valid UTF-8 with
non-ASCII bytes is read as UTF-8 whatever the label says (text in a single-byte charset is
practically never valid UTF-8); a declared charset that does not decode the body falls back to
UTF-8 when only a few byte sequences are broken (they become U+FFFD), else to windows-1258
(Vietnamese Windows). Either way the source gets a warning.
"""

from __future__ import annotations

import calendar
import codecs
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import feedparser

from scanner.textnorm import nfc
from storage.text import REPLACEMENT, clean_text

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

    def __post_init__(self) -> None:
        # Text the database refuses (NUL, lone surrogates) never gets this far; the scanner
        # matches stored rows back to items by value, so items must hold what is stored.
        for name in ("title", "url", "summary", "guid"):
            value = getattr(self, name)
            cleaned = clean_text(value)
            if cleaned is not value:
                object.__setattr__(self, name, cleaned)


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


_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_PROLOG = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
#: The last resort when neither the declared charset nor UTF-8 reads the body: the Vietnamese
#: Windows code page (what a Vietnamese legacy feed would be in).
LEGACY_CHARSET = "windows-1258"
_PROLOG_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def declared_charset(body: bytes, headers: Mapping[str, str]) -> str | None:
    """The charset the server declares: HTTP ``Content-Type`` first, then the XML prolog."""
    match = _CHARSET.search(headers.get("content-type", ""))
    if match:
        return match.group(1)
    prolog = _PROLOG.match(body[:256])
    return prolog.group(1).decode("ascii") if prolog else None


def _decode(body: bytes, charset: str) -> str | None:
    try:
        return body.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return None


def decode_declared(body: bytes, headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``body`` as text, read in its declared charset or a fallback, and a warning when the
    declared one was not used; (None, None) to let feedparser detect the charset itself (none
    declared, UTF-8 as declared, or plain ASCII)."""
    declared = declared_charset(body, headers)
    if declared is None or body.isascii():
        return None, None
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        name = None
    if name is not None and name.startswith(("utf-16", "utf-32")):
        text = _decode(body, declared)
        if text is not None:
            return text, None
    utf8 = _decode(body, "utf-8")
    if utf8 is not None:
        if name in ("utf-8", "utf-8-sig"):
            return None, None
        return utf8, f"declared charset {declared} but the body is UTF-8; read as UTF-8"
    text = _decode(body, declared) if name is not None else None
    if text is not None:
        return text, None
    # The declared charset does not decode: UTF-8 with a few broken bytes, or legacy. Text in
    # a single-byte charset almost never forms a well-formed UTF-8 sequence, so well-formed
    # ones outnumbering the broken ones two to one mean UTF-8.
    lossy = body.decode("utf-8", "replace")
    broken = lossy.count(REPLACEMENT)
    if sum(1 for ch in lossy if ord(ch) > 127) - broken >= 2 * broken:
        return lossy, (
            f"declared charset {declared} does not decode the body; read as UTF-8 "
            f"({broken} broken byte sequence(s) replaced)"
        )
    return body.decode(LEGACY_CHARSET, "replace"), (
        f"declared charset {declared} does not decode the body; read as {LEGACY_CHARSET}"
    )


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
    text, charset_warning = decode_declared(body, response_headers)
    if text is not None:
        # Decoded here and handed over as UTF-8 with a matching label, so neither the HTTP
        # header nor the XML prolog can make feedparser read it otherwise.
        body = _PROLOG_DECL.sub("", text, count=1).encode("utf-8")
        response_headers["content-type"] = "application/xml; charset=utf-8"
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
    warning = charset_warning
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        fault = f"{type(exc).__name__}: {exc}" if exc else "malformed feed"
        warning = f"{warning}; {fault}" if warning else fault
    if not items:
        if warning is not None:
            raise FeedError(f"not a readable feed ({warning[:300]})")
        if not parsed.get("version") and not parsed.entries:
            raise FeedError("not a feed: no RSS or Atom document found")
    feed_title = html_to_text(str(parsed.feed.get("title") or "")) if parsed.get("feed") else ""
    return ParsedFeed(items=items, title=feed_title, warning=warning, skipped=skipped)
