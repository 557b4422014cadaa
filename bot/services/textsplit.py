"""Splitting long plain text into pieces a channel accepts, then escaping each piece for HTML.

Channels refuse a message over their length limit (``bot.channels.limits``) and refuse broken
markup. Splitting escaped or marked-up text can cut a tag or an ``&amp;`` in half, so the order is
always: split the *plain* text at the best boundary (blank line, line, sentence, space), then
escape each piece. The pieces concatenate back to exactly the original text.
"""

from __future__ import annotations

import html

_BOUNDARIES = ("\n\n", "\n", ". ", "; ", ", ", " ")


def split_plain(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters whose concatenation is ``text``.

    Each cut is made after the last paragraph break, else line break, else sentence end, else
    space inside the window; only a single word longer than ``limit`` is cut mid-word.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = 0
        for boundary in _BOUNDARIES:
            position = window.rfind(boundary)
            # A boundary in the first fifth would make a uselessly short piece; try the next.
            if position > limit // 5:
                cut = position + len(boundary)
                break
        if cut == 0:
            cut = limit
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def escape(text: str) -> str:
    """Escape plain text for the HTML messages are written in (``&``, ``<``, ``>``, quotes)."""
    return html.escape(text, quote=True)


def html_pieces(text: str, limit: int) -> list[str]:
    """The plain text split and each piece escaped: ready to send as HTML."""
    return [escape(piece) for piece in split_plain(text, limit)]
