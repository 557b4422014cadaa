"""A lying charset must not turn headlines into mojibake silently: detect, fall back, warn."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest

from scanner.parse import parse_feed

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
TITLE = "Bão số 3 đổ bộ Quảng Ninh"


def feed(encoding_decl: str | None, body_encoding: str = "utf-8") -> bytes:
    prolog = f'<?xml version="1.0" encoding="{encoding_decl}"?>' if encoding_decl else ""
    return (
        f'{prolog}<rss version="2.0"><channel><title>T</title>'
        f"<item><title>{TITLE}</title><link>https://a.vn/1</link></item></channel></rss>"
    ).encode(body_encoding)


@pytest.mark.parametrize(
    ("content_type", "prolog"),
    [
        ("text/xml; charset=windows-1252", "utf-8"),  # feedparser read this as mojibake, no fault
        ("application/rss+xml; charset=iso-8859-1", "utf-8"),
        ("application/rss+xml", "windows-1252"),  # the prolog lies
        ("application/rss+xml; charset=no-such-charset", "utf-8"),
    ],
)
def test_a_utf8_body_under_a_wrong_label_is_read_as_utf8_with_a_warning(
    content_type: str, prolog: str
) -> None:
    parsed = parse_feed(feed(prolog), fetched_at=NOW, headers={"Content-Type": content_type})
    assert parsed.items[0].title == TITLE
    assert parsed.warning is not None and "read as UTF-8" in parsed.warning


def test_a_declared_charset_that_does_not_decode_falls_back_with_a_warning() -> None:
    body = feed(None).replace(b"Qu", b"Qu\xff")  # not UTF-8 any more
    parsed = parse_feed(body, fetched_at=NOW, headers={"Content-Type": "text/xml; charset=utf-8"})
    assert parsed.items[0].title.startswith("Bão số 3")
    assert "does not decode" in (parsed.warning or "")


def test_truthful_labels_give_no_warning() -> None:
    assert parse_feed(feed("utf-8"), fetched_at=NOW).warning is None
    latin = "Café crème"
    body = (
        '<?xml version="1.0" encoding="windows-1252"?><rss version="2.0"><channel>'
        f"<item><title>{latin}</title><link>https://a.vn/1</link></item></channel></rss>"
    ).encode("cp1252")
    parsed = parse_feed(body, fetched_at=NOW, headers={"Content-Type": "text/xml"})
    assert parsed.items[0].title == latin
    assert parsed.warning is None


def test_a_legacy_vietnamese_body_labelled_utf8_is_read_as_windows_1258() -> None:
    title = "Lũ lụt ở Huế"
    # windows-1258 as Vietnamese sites wrote it: base letters precomposed, tones combining.
    legacy = b"".join(
        (ch.encode("cp1258") if _encodes(ch) else _split_tone(ch))
        for ch in f"<rss version='2.0'><channel><item><title>{title}</title>"
        "<link>https://a.vn/1</link></item></channel></rss>"
    )
    parsed = parse_feed(
        legacy, fetched_at=NOW, headers={"Content-Type": "application/rss+xml; charset=utf-8"}
    )
    assert parsed.items[0].title == title
    assert "read as windows-1258" in (parsed.warning or "")


def _encodes(ch: str) -> bool:
    try:
        ch.encode("cp1258")
    except UnicodeEncodeError:
        return False
    return True


def _split_tone(ch: str) -> bytes:
    tones = "\u0300\u0301\u0303\u0309\u0323"
    decomposed = unicodedata.normalize("NFD", ch)
    base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in tones))
    return (base + "".join(c for c in decomposed if c in tones)).encode("cp1258")
