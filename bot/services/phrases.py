"""Terms as people wrote them: whole words and named places and organisations, for display.

The scanner's terms are lower-cased syllable n-grams chosen for statistics ("trường sao mai",
"vụ nghi ngộ", "sinh nhập viện"). A press officer reads them in the alert's "what is it about"
line and in the crisis title, where a syllable cut out of a word ("ngộ" of "ngộ độc") reads as
nonsense. :func:`as_written` maps each term back onto the stories' own text:

* a named place or organisation is given in full, as written: the longest run of capitalised
  words (a lower-case syllable inside, as in "Trường Tiểu học Sao Mai", is kept) that contains
  the term's capitalised words;
* a phrase is widened, word by word, while the stories agree on the neighbouring word (at least
  two occurrences, and four in five of them): "ngộ" is always followed by "độc", "sinh" always
  preceded by "học"; with too few stories to tell, when general news uses the edge syllable
  mostly inside that two-syllable word (``scanner.terms.general_rate``, the DANeS corpus);
  function words ("và", "của", "tại"…), numbers and punctuation are never crossed, except into
  a fixed compound that begins or ends with one ("theo dõi", "không khí", "ra viện"): "dõi"
  never stands alone, so "dõi sát" is widened to "theo dõi sát", not cut;
* a single lower-case syllable that cannot be widened is dropped; so is a phrase contained in
  another one shown.

This is display only: detection (``scanner.terms``) is untouched.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from scanner.terms import general_rate

MAX_WORDS = 7
AGREEMENT = 0.8
COHESION = 0.25  # share of a syllable's general-news uses inside the two-syllable word
MIN_PAIR_RATE = 0.002  # the pair itself is seen in general news (a few stories at least)

# Words a phrase never starts or ends with, and that never join two names into one.
_FUNCTION_WORDS_TEXT = (
    "và của ở tại với cho về từ đến trong ngoài sau trước khi là có được bị đã đang sẽ các "
    "những một này đó thì mà nhưng hay hoặc do vì nên để theo trên dưới ra vào lúc như "
    "không chưa vẫn cũng rất gì ai nào phải cần đều lại còn vừa mới rồi"
)
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())
# Words of one meaning made of a function word and another syllable: the function word is part
# of the word, so a phrase may take it in and may begin or end with it.
_COMPOUNDS_TEXT = (
    "theo dõi, theo đuổi, có thể, có mặt, có lợi, cho phép, cho biết, được phép, vào cuộc, "
    "vào viện, ra viện, ra mắt, ra quân, ra đi, không khí, không gian, không quân, trước mắt, "
    "sau cùng, về hưu, đến nay, tại chỗ, trên không, dưới nước"
)
COMPOUNDS = frozenset(tuple(c.split()) for c in _COMPOUNDS_TEXT.split(", "))
_SEGMENTS = re.compile(r"[.,;:!?()\[\]\"“”«»|–—]+|\s-\s")
_WORD = re.compile(r"\w+(?:[-'’]\w+)*")

Words = list[str]


def _segments(texts: Sequence[str]) -> list[Words]:
    out = []
    for text in texts:
        for part in _SEGMENTS.split(unicodedata.normalize("NFC", text)):
            words = _WORD.findall(part)
            if words:
                out.append(words)
    return out


def _fold(words: Sequence[str]) -> tuple[str, ...]:
    return tuple(w.casefold() for w in words)


def _capital(word: str) -> bool:
    return word[:1].isupper()


def _find(docs: list[Words], phrase: tuple[str, ...]) -> list[tuple[int, int, int]]:
    """(segment, start, end) of every occurrence of the folded ``phrase``."""
    n = len(phrase)
    return [
        (k, i, i + n)
        for k, doc in enumerate(docs)
        for i in range(len(doc) - n + 1)
        if _fold(doc[i : i + n]) == phrase
    ]


def _name_span(doc: Words, i: int, j: int) -> tuple[int, int]:
    """Widen ``doc[i:j]`` over the capitalised words around it (one lower-case word between two
    capitalised ones is part of the name: "Tiểu học Sao")."""

    def joins(k: int, step: int) -> bool:
        if not 0 <= k < len(doc):
            return False
        if _capital(doc[k]):
            return True
        beyond = k + step
        return (
            doc[k].casefold() not in FUNCTION_WORDS
            and 0 <= beyond < len(doc)
            and _capital(doc[beyond])
        )

    while j - i < MAX_WORDS and joins(i - 1, -1):
        i -= 1
    while j - i < MAX_WORDS and joins(j, 1):
        j += 1
    return i, j


def _longest_name(docs: list[Words], core: tuple[str, ...]) -> Words | None:
    """The longest capitalised name, as written anywhere, that contains the words ``core``."""
    best: Words | None = None
    for k, i, j in _find(docs, core):
        doc = docs[k]
        if not all(_capital(w) for w in doc[i:j]):
            continue
        a, b = _name_span(doc, i, j)
        if best is None or b - a > len(best):
            best = doc[a:b]
    return best


def _agreed(docs: list[Words], phrase: Words) -> Words:
    """Widen ``phrase`` while the stories agree on the next (then the previous) word."""
    words = list(phrase)
    for side in (1, -1):
        while len(words) < MAX_WORDS:
            found = _find(docs, _fold(words))
            neighbours = []
            for k, i, j in found:
                at = j if side == 1 else i - 1
                neighbours.append(docs[k][at] if 0 <= at < len(docs[k]) else None)
            counts = Counter(w.casefold() for w in neighbours if w is not None)
            if not counts:
                break
            word, count = counts.most_common(1)[0]
            edge = (words[-1] if side == 1 else words[0]).casefold()
            pair = f"{edge} {word}" if side == 1 else f"{word} {edge}"
            if word.isdigit():
                break
            if word in FUNCTION_WORDS:
                if tuple(pair.split()) not in COMPOUNDS or count < AGREEMENT * len(found):
                    break
                written = next(w for w in neighbours if w is not None and w.casefold() == word)
                words = [*words, written] if side == 1 else [written, *words]
                continue
            agreed = count >= 2 and count >= AGREEMENT * len(found)
            # Too few stories to tell: general news says whether the syllable is usually part
            # of that word ("sinh" of "học sinh", "ngộ" of "ngộ độc").
            cohesive = (
                count == len(found)
                and general_rate(pair) >= MIN_PAIR_RATE
                and general_rate(pair) >= COHESION * general_rate(edge)
            )
            if not (agreed or cohesive):
                break
            written = next(w for w in neighbours if w is not None and w.casefold() == word)
            words = [*words, written] if side == 1 else [written, *words]
    return words


def _compound(words: Words) -> bool:
    return len(words) == 2 and _fold(words) in COMPOUNDS


def _usual_case(docs: list[Words], words: Words) -> Words:
    """The phrase as written away from the start of a sentence ("vụ", not "Vụ", mid-line)."""
    for k, i, j in _find(docs, _fold(words)):
        if i > 0:
            return docs[k][i:j]
    return words


def _written(docs: list[Words], term: str) -> Words | None:
    folded = tuple(term.casefold().split())
    found = _find(docs, folded)
    if found:
        k, i, j = found[0]
        words = docs[k][i:j]
    else:  # not in the stories read (older than the window): shown as it is
        words = term.split()
    capitals = [n for n, w in enumerate(words) if _capital(w)]
    if capitals:  # a name: the capitalised part, then the longest way it is written
        core = _fold(words[capitals[0] : capitals[-1] + 1])
        name = _longest_name(docs, core)
        if name is not None and len(name) >= len(words):
            words = name
    words = _usual_case(docs, _agreed(docs, words))
    while words and words[0].casefold() in FUNCTION_WORDS and not _compound(words[:2]):
        words = words[1:]
    while words and words[-1].casefold() in FUNCTION_WORDS and not _compound(words[-2:]):
        words = words[:-1]
    if len(words) == 1 and not _capital(words[0]) and not re.search(r"[-\d]", words[0]):
        return None  # a lone syllable says nothing
    return words or None


def as_written(terms: Sequence[str], texts: Sequence[str]) -> list[str]:
    """Each term as the stories write it (see the module's docstring); order kept, no repeats."""
    docs = _segments(texts)
    phrases: list[Words] = []
    for term in terms:
        words = _written(docs, term)
        if words is not None:
            phrases.append(words)
    out: list[str] = []
    folded = [" " + " ".join(_fold(p)) + " " for p in phrases]
    for n, words in enumerate(phrases):
        inside = any(
            m != n and folded[n] in folded[m] and (folded[n] != folded[m] or m < n)
            for m in range(len(phrases))
        )
        if not inside:
            out.append(" ".join(words))
    return out
