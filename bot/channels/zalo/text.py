"""Fitting text into Zalo's 1–2,000 character messages.

Zalo refuses longer text outright (there is no server-side splitting, unlike a mail client), so a
long draft or alert is cut here at the most natural boundary that fits: a blank line, then a line
break, then a space, and only when a single word is longer than the limit, in the middle of it.
Characters are counted as Python ``str`` code points, which is how we assume Zalo counts them
(docs/zalo.md).
"""

from __future__ import annotations

from .errors import MessageTooLong

TEXT_LIMIT = 2000

_BOUNDARIES = ("\n\n", "\n", " ")


def check_text(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` if Zalo will take it as one message; otherwise a clear error."""
    if not text.strip():
        raise ValueError("Zalo refuses an empty message")
    if len(text) > limit:
        raise MessageTooLong(len(text), limit)
    return text


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` characters, none of them blank.

    Joining the parts with the boundary each cut removed gives the text back, apart from the
    whitespace at the cuts; the order of the words is never changed.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _cut_point(text: str, limit: int) -> int:
    """Where to cut: the strongest boundary in the second half of the window, else any
    boundary, else the limit itself (a "word" longer than a whole message)."""
    window = text[: limit + 1]  # a boundary right after the limit still leaves a full part
    for floor in (limit // 2, 1):
        for boundary in _BOUNDARIES:
            found = window.rfind(boundary)
            if found >= floor:
                return found
    return limit
