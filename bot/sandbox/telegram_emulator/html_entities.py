"""Telegram's HTML parse mode: turn marked-up text into plain text plus message entities.

Why a hand-written parser: :mod:`html.parser` is forgiving (it accepts unknown tags, unclosed
tags and every named entity), while Telegram answers such text with
``400 Bad Request: can't parse entities: ...``. The emulator must fail where Telegram fails, so
that an unescaped user string in a template breaks a test and not a production send.

Rules (https://core.telegram.org/bots/api#html-style):

* tags: ``b strong i em u ins s strike del span class="tg-spoiler" tg-spoiler a href
  code pre blockquote [expandable] tg-emoji emoji-id tg-time unix format``; names are
  case-insensitive; anything else is rejected;
* entities: ``&lt; &gt; &amp; &quot;`` and numeric ones (``&#39;``, ``&#x27;``); any other ``&``
  is rejected. (tdlib passes a stray ``&`` through literally; we are deliberately stricter,
  because a stray ``&`` nearly always means a string that was not escaped.) A bare ``>`` is
  accepted, as Telegram does;
* tags must be closed, in order; error texts and byte offsets follow tdlib's wording.

Entity offsets and lengths are in UTF-16 code units, as in the Bot API. Leading and trailing
whitespace is trimmed, as Telegram trims message text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, bad_request

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_SUPPORTED_TAGS = {*_SIMPLE_TAGS, "a", "span", "blockquote", "tg-emoji", "tg-time"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z][a-zA-Z0-9]*));")
_TAG_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR_RE = re.compile(r"\s*([a-zA-Z][a-zA-Z0-9_-]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")

# Auto-detected entities Telegram adds to plain text (a subset: the ones bots rely on).
_AUTO_PATTERNS = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")),
    ("url", re.compile(r"(?<![\w/])https?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")),
)
_NO_AUTO_INSIDE = {"code", "pre", "text_link", "text_mention"}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Bot API entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _parse_error(detail: str) -> ApiError:
    return bad_request(f"can't parse entities: {detail}")


@dataclass
class _Open:
    tag: str
    entity: dict[str, Any] | None
    start: int  # UTF-16 offset in the output text
    attrs: dict[str, str] = field(default_factory=dict)


class _Builder:
    """Accumulates output text and tracks its UTF-16 length."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def text(self) -> str:
        return "".join(self.parts)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into ``(text, entities)`` or raise a 400 :class:`ApiError`."""
    out = _Builder()
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "&":
            i = _read_entity(source, i, out)
        elif ch == "<":
            if source.startswith("</", i):
                i = _read_end_tag(source, i, stack, entities, out)
            else:
                i = _read_start_tag(source, i, stack, out)
        else:
            j = i
            while j < n and source[j] not in "&<":
                j += 1
            out.add(source[i:j])
            i = j
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return _trim(out.text(), entities)


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _read_entity(source: str, i: int, out: _Builder) -> int:
    match = _ENTITY_RE.match(source, i)
    if match is None:
        raise _parse_error(
            f"Character '&' at byte offset {_byte_offset(source, i)} must be escaped as &amp;"
        )
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        if name not in _NAMED_ENTITIES:
            raise _parse_error(
                f'Unsupported HTML entity "&{name};" at byte offset {_byte_offset(source, i)}'
            )
        out.add(_NAMED_ENTITIES[name])
    else:
        code = int(decimal) if decimal is not None else int(hexadecimal, 16)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise _parse_error(f"Invalid numeric entity at byte offset {_byte_offset(source, i)}")
        out.add(chr(code))
    return match.end()


def _unescape_attr(value: str, source: str, i: int) -> str:
    if value[:1] in "\"'":
        value = value[1:-1]
    scratch = _Builder()
    pos = 0
    while pos < len(value):
        if value[pos] == "&":
            pos = _read_entity(value, pos, scratch)
        else:
            scratch.add(value[pos])
            pos += 1
    return scratch.text()


def _read_start_tag(source: str, i: int, stack: list[_Open], out: _Builder) -> int:
    offset = _byte_offset(source, i)
    name_match = _TAG_NAME_RE.match(source, i + 1)
    name = name_match.group(0).lower() if name_match else ""
    if name not in _SUPPORTED_TAGS:
        raise _parse_error(f'Unsupported start tag "{name}" at byte offset {offset}')
    assert name_match is not None
    pos = name_match.end()
    attrs: dict[str, str] = {}
    while True:
        while pos < len(source) and source[pos].isspace():
            pos += 1
        if pos >= len(source):
            raise _parse_error(f"Unclosed start tag at byte offset {offset}")
        if source[pos] == ">":
            pos += 1
            break
        attr = _ATTR_RE.match(source, pos)
        if attr is None or attr.end() == pos:
            raise _parse_error(f'Empty attribute name in the tag "{name}" at byte offset {offset}')
        attrs[attr.group(1).lower()] = _unescape_attr(attr.group(2) or "", source, pos)
        pos = attr.end()
    stack.append(_Open(name, _entity_for(name, attrs, stack, offset), out.length, attrs))
    return pos


def _entity_for(
    name: str, attrs: dict[str, str], stack: list[_Open], offset: int
) -> dict[str, Any] | None:
    if name in _SIMPLE_TAGS:
        if name == "code" and stack and stack[-1].tag == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-") and stack[-1].entity is not None:
                stack[-1].entity["language"] = language.removeprefix("language-")
            return None  # <pre><code> is one pre entity, not two
        return {"type": _SIMPLE_TAGS[name]}
    if name == "span":
        if attrs.get("class") != "tg-spoiler":
            raise _parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        return {"type": "spoiler"}
    if name == "a":
        href = attrs.get("href")
        if not href:
            return None  # Telegram keeps the text and drops a link without a target
        match = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if match:
            return {"type": "text_mention", "user_id": int(match.group(1))}
        return {"type": "text_link", "url": href}
    if name == "blockquote":
        return {"type": "expandable_blockquote" if "expandable" in attrs else "blockquote"}
    if name == "tg-emoji":
        emoji_id = attrs.get("emoji-id")
        if not emoji_id:
            raise _parse_error(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {offset}'
            )
        return {"type": "custom_emoji", "custom_emoji_id": emoji_id}
    # tg-time
    unix = attrs.get("unix", "")
    if not unix.isdigit():
        raise _parse_error(
            f'Tag "tg-time" must have a valid attribute "unix" at byte offset {offset}'
        )
    entity: dict[str, Any] = {"type": "date_time", "unix_time": int(unix)}
    if attrs.get("format"):
        entity["date_time_format"] = attrs["format"]
    return entity


def _read_end_tag(
    source: str,
    i: int,
    stack: list[_Open],
    entities: list[dict[str, Any]],
    out: _Builder,
) -> int:
    offset = _byte_offset(source, i)
    close = source.find(">", i)
    if close == -1:
        raise _parse_error(f"Unclosed end tag at byte offset {offset}")
    name = source[i + 2 : close].strip().lower()
    if not stack:
        raise _parse_error(f"Unexpected end tag at byte offset {offset}")
    top = stack.pop()
    if name != top.tag:
        raise _parse_error(
            f'Unmatched end tag at byte offset {offset}, expected "</{top.tag}>", found "</{name}>"'
        )
    if top.entity is not None and out.length > top.start:
        entities.append({**top.entity, "offset": top.start, "length": out.length - top.start})
    return close + 1


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip surrounding whitespace as Telegram does, shifting and clipping entities."""
    stripped = text.strip()
    if not stripped:
        return "", []
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        stop = min(entity["offset"] + entity["length"] - shift, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    kept.sort(key=lambda e: (e["offset"], -e["length"]))
    return stripped, kept


def detect_entities(text: str, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add Telegram's automatic entities (bot commands, mentions, hashtags, URLs).

    Telegram detects them server-side in every message; PTB's ``CommandHandler`` needs the
    ``bot_command`` entity at offset 0 to route ``/start payload``.
    """
    blocked = [
        (e["offset"], e["offset"] + e["length"]) for e in existing if e["type"] in _NO_AUTO_INSIDE
    ]
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            start = utf16_len(text[: match.start()])
            stop = start + utf16_len(match.group(0))
            spans = blocked + taken
            if any(start < b_stop and b_start < stop for b_start, b_stop in spans):
                continue
            taken.append((start, stop))
            found.append({"type": kind, "offset": start, "length": stop - start})
    merged = existing + found
    merged.sort(key=lambda e: (e["offset"], -e["length"]))
    return merged
