"""Telegram HTML, as the templates render it, turned into Zalo's plain text.

The templates are written once, in the HTML subset Telegram parses (``<b>``, ``<i>``, ``<a>``,
``<code>``, ``<pre>`` and entities); Zalo shows text exactly as sent, so every message to Zalo
passes through :func:`to_plain` here, the one place that knows the markup. The standard
library's ``HTMLParser`` does the parsing (entities included) rather than a regular expression,
which would miss ``&amp;lt;`` and attributes containing ``>``.
"""

from __future__ import annotations

from html.parser import HTMLParser


class _Plain(HTMLParser):
    """Keeps the text; a link whose label is not its address keeps the address after it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None
        self._label_start = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._label_start = len(self.parts)
        elif tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href:
            label = "".join(self.parts[self._label_start :]).strip()
            if label != self._href:
                self.parts.append(f" ({self._href})")
            self._href = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def to_plain(html: str) -> str:
    """The text a person should read where no markup is shown."""
    parser = _Plain()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)
