"""Text the databases refuse, and how it is made storable.

PostgreSQL refuses a NUL character in any text value ("cannot contain NUL (0x00) characters")
and neither database can encode a lone UTF-16 surrogate (``"\\ud83d"`` without its pair, which a
JSON ``\\u`` escape in a Telegram update or a feed can produce) as UTF-8. Either one in a single
feed item used to fail the whole scan transaction on PostgreSQL, and in a command argument it
ended in "Something went wrong". Such text is cleaned on its way in rather than refused: a NUL
carries no meaning in a headline or a name, and a broken surrogate becomes U+FFFD, the
replacement character Unicode defines for exactly this.

:func:`clean_text` is applied by the hooks in :mod:`storage.db` to every value written through
the ORM and to every parameter of every statement, so no caller has to remember it.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REPLACEMENT", "clean_deep", "clean_text", "needs_cleaning"]

REPLACEMENT = "\ufffd"
_REFUSED = re.compile("[\x00\ud800-\udfff]")


def needs_cleaning(text: str) -> bool:
    """True if ``text`` holds a NUL or a lone surrogate.

    The same answer as searching :data:`_REFUSED`, at a fraction of its cost per character
    (the hooks of :mod:`storage.db` check every string written): a NUL by a substring test (a
    ``memchr``), a surrogate only in non-ASCII text, by UTF-16 encoding, which refuses exactly
    the lone surrogates. UTF-8 refuses the same ones, but its encoder (one to three bytes per
    character) cost four times UTF-16's (two bytes, or a pair, per character) on Vietnamese
    text."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-16-le")
    except UnicodeEncodeError:
        return True
    return False


def _replace(match: re.Match[str]) -> str:
    return "" if match.group() == "\x00" else REPLACEMENT


def clean_text(text: str) -> str:
    """``text`` without NUL characters and with each lone surrogate replaced by U+FFFD.

    Surrogate *pairs* never reach here as two code points: Python decodes them into one
    character, so every surrogate left in a ``str`` is a lone one.
    """
    if not needs_cleaning(text):
        return text
    return _REFUSED.sub(_replace, text)


def clean_deep(value: Any) -> Any:
    """``value`` with :func:`clean_text` applied to every string inside dicts, lists and tuples
    (keys too): the shape of a JSON column's value. Returns ``value`` itself when it is clean."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        cleaned = {clean_deep(k): clean_deep(v) for k, v in value.items()}
        same = all(
            a is b and v is w for (a, v), (b, w) in zip(value.items(), cleaned.items(), strict=True)
        )
        return value if same and len(cleaned) == len(value) else cleaned
    if isinstance(value, list | tuple):
        items = [clean_deep(v) for v in value]
        if all(a is b for a, b in zip(value, items, strict=True)):
            return value
        return type(value)(items) if isinstance(value, tuple) else items
    return value
