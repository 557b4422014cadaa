"""Vietnamese text normalisation for matching, clustering and sentiment.

Everything here is on the scanner's hot path (every fetched item is folded once and reused by
dedupe, topic matching and sentiment), so it avoids tokenisers such as underthesea/pyvi: a
Vietnamese syllable is already a space-separated token, and the folds below are one
``str.translate`` call over a table built at import time.

Two forms of a text are used:

* the *exact* form (:func:`exact`): NFC, case-folded, punctuation turned into spaces — keeps
  tones, so "bão" (storm) and "báo" (newspaper) stay apart;
* the *folded* form (:func:`fold`): the exact form without diacritics, with "đ" → "d" — so
  "Vắc-xin", "vac xin" and "VAC XIN" all become ``vac xin``. Matching and dedupe use this form
  because outlets, readers and officials type Vietnamese with and without tones.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import filterfalse

__all__ = [
    "STOPWORDS",
    "char_ngrams",
    "content_syllables",
    "exact",
    "fold",
    "nfc",
    "syllables",
    "tokens",
    "word_ngrams",
]

# Code points handled by the translate tables. Latin, Latin Extended and the Vietnamese block
# (U+1EA0–U+1EF9) all sit below U+2000; general punctuation (U+2000–U+206F: dashes, curly
# quotes, ellipsis) and a few symbol blocks are mapped to spaces. Characters beyond the table
# (CJK, emoji) pass through unchanged and simply become part of a token.
_TABLE_LIMIT = 0x3000


def _build_tables() -> tuple[dict[int, str], dict[int, str]]:
    fold_table: dict[int, str] = {}
    exact_table: dict[int, str] = {}
    for cp in range(_TABLE_LIMIT):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category[0] in "LN":
            lowered = ch.casefold()
            if lowered != ch:
                exact_table[cp] = lowered
            base = "".join(
                c for c in unicodedata.normalize("NFD", lowered) if unicodedata.category(c) != "Mn"
            )
            base = base.replace("đ", "d")
            if base != ch:
                fold_table[cp] = base
        elif category == "Mn":
            # A stray combining mark (text that was not NFC): the fold drops it; the exact form
            # keeps it, since exact() normalises to NFC first and marks attach to their letter.
            fold_table[cp] = ""
        elif ch != " ":
            fold_table[cp] = " "
            exact_table[cp] = " "
    return fold_table, exact_table


_FOLD_TABLE, _EXACT_TABLE = _build_tables()


def nfc(text: str) -> str:
    """Unicode NFC: feeds mix precomposed and combining-mark Vietnamese; compare only NFC."""
    return unicodedata.normalize("NFC", text)


def exact(text: str) -> str:
    """NFC, case-folded, punctuation → single spaces; keeps the tones."""
    return " ".join(nfc(text).translate(_EXACT_TABLE).split())


def fold(text: str) -> str:
    """Diacritics-free form: ``"Vắc-xin COVID-19 ĐỒNG NAI"`` → ``"vac xin covid 19 dong nai"``.

    NFC is not needed first: combining marks are deleted by the table either way.
    """
    return " ".join(text.translate(_FOLD_TABLE).split())


def syllables(text: str, *, folded: bool = True) -> list[str]:
    """Syllable tokens (Vietnamese writes one syllable per space-separated word)."""
    return (text.translate(_FOLD_TABLE) if folded else nfc(text).translate(_EXACT_TABLE)).split()


_WORD_CACHE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
_WORD_CACHE_LIMIT = 200_000


def _word_forms(word: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (
        tuple(nfc(word).translate(_EXACT_TABLE).split()),
        tuple(word.translate(_FOLD_TABLE).split()),
    )


def tokens(text: str) -> tuple[list[str], list[str]]:
    """``(syllables(text, folded=False), syllables(text))`` in one pass, cached per word.

    News text repeats a few thousand distinct syllables, so each whitespace-separated word is
    normalised once (NFC, translate, split) and remembered; an item costs one dict lookup per
    word instead of two translations and an NFC pass over every character. The results are
    identical: NFC and both tables act within a word (whitespace maps to itself and is a
    boundary for both), so splitting first changes nothing.
    """
    cache = _WORD_CACHE
    exact_out: list[str] = []
    folded_out: list[str] = []
    for word in text.split():
        forms = cache.get(word)
        if forms is None:
            if len(cache) >= _WORD_CACHE_LIMIT:
                cache.clear()
            forms = cache[word] = _word_forms(word)
        exact_out += forms[0]
        folded_out += forms[1]
    return exact_out, folded_out


def word_ngrams(tokens: Sequence[str], n_min: int = 1, n_max: int = 2) -> Iterator[str]:
    """Space-joined n-grams of consecutive tokens, shortest first."""
    if n_min < 1 or n_max < n_min:
        raise ValueError(f"need 1 <= n_min <= n_max, got {n_min}..{n_max}")
    count = len(tokens)
    for n in range(n_min, n_max + 1):
        for i in range(count - n + 1):
            yield " ".join(tokens[i : i + n])


def char_ngrams(text: str, n_min: int = 2, n_max: int = 4) -> Iterator[str]:
    """Character n-grams of ``text`` padded with one space, so word edges are features."""
    if n_min < 1 or n_max < n_min:
        raise ValueError(f"need 1 <= n_min <= n_max, got {n_min}..{n_max}")
    padded = f" {text} "
    length = len(padded)
    for n in range(n_min, n_max + 1):
        for i in range(length - n + 1):
            yield padded[i : i + n]


def _load_stopwords() -> frozenset[str]:
    """Small list on purpose (see the reference notes): big lists drop content words."""
    from importlib.resources import files

    raw = files("scanner.data").joinpath("stopwords_vi.txt").read_text(encoding="utf-8")
    words = {nfc(line.strip()).lower() for line in raw.splitlines()}
    return frozenset(w for w in words if w and not w.startswith("#"))


STOPWORDS: frozenset[str] = _load_stopwords()
"""Vietnamese function words in the exact (toned, lower-case) form, one or more syllables."""

_FOLDED_STOP_SYLLABLES: frozenset[str] = frozenset(
    fold(w) for w in STOPWORDS if " " not in w and fold(w) not in {"bao", "ban", "cho", "dan"}
)


@lru_cache(maxsize=1)
def folded_stopwords() -> frozenset[str]:
    """Single-syllable stopwords in folded form (ambiguous folds such as "bao" are kept out)."""
    return _FOLDED_STOP_SYLLABLES


def content_syllables(tokens: Iterable[str]) -> list[str]:
    """Folded tokens without single-syllable stopwords: the shingles of near-duplicate detection."""
    return list(filterfalse(_FOLDED_STOP_SYLLABLES.__contains__, tokens))  # in C
