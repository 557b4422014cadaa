"""What one headline and lead say about which story they belong to.

Vietnamese headlines are formulaic: "Cháy xưởng gỗ ở KCN Tân Uyên, 3 người thoát nạn" and
"Cháy xưởng nhựa ở KCN Sóng Thần, 5 người thoát nạn" share most of their words and are two
stories. What tells them apart is a *slot*: a place, a person, a company, a number, a date. What
a syndicated copy changes is *decoration*: an outlet tag before the lead ("(Dân trí) - "), a
"NÓNG:" or "[Ảnh]" before the headline, an outlet name after it, a cut sentence. So
:class:`Features` strips the decoration and keeps, per item:

* the headline's content syllables and the lead's content syllable pairs, compared each on its
  own with a containment measure (:func:`containment`: shared / the smaller set), so a
  shortened or decorated copy scores as high as a verbatim one;
* the slots: names (a capitalised syllable that does not start a sentence, or an all-capitals
  code such as "HPM") and numbers (``4/10``, ``1.200``, ``16``), folded;
* every folded syllable and number of the item, to tell whether the other item mentions a slot.

:func:`conflict` is the evidence of two stories: each side names a slot the other never
mentions. A copy can add a slot (a place before the headline) or lose one (a cut sentence), but
only distinct stories do both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from itertools import chain, pairwise
from typing import Any

from scanner.textnorm import content_syllables, fold, syllables

__all__ = [
    "Features",
    "agreeing_slots",
    "conflict",
    "containment",
    "forget_texts",
    "strip_lead",
    "strip_title",
]

#: Syllables of the lead compared (a shortened copy keeps the start of the lead).
LEAD_SYLLABLES = 60
#: Content syllables of the lead that make its key: a masthead repeated under many headlines
#: shares it, distinct stories of one frame differ in a slot before it ends.
LEAD_KEY_SYLLABLES = 16
#: Characters of a lead read at all (mentions included): a lead is a sentence or two.
LEAD_CHARS = 600
#: Below this many content syllables a lead says too little to be evidence.
MIN_LEAD_SYLLABLES = 5

_NUMBER = re.compile(r"\d+(?:[.,/]\d+)*")
#: A time of day ("6h", "6h00", "06:00", "10g30"): the hour, and the minutes unless 00.
_TIME = re.compile(r"(\d{1,2})[hg:](?:(\d\d)|(?!\d))")
_SEPARATORS = re.compile(r"[.,]")
_EDGE = "\"'“”‘’()[]{}<>«»,.;:!?…*/|"
#: A word ending with one of these ends a sentence or a clause: the next word's capital says
#: nothing about it being a name.
_SENTENCE_END = (".", "!", "?", ":", "…", '"', "“", "”", "|")
#: Words a copy desk puts before or around a headline, never a slot (folded).
_DECORATION = frozenset(
    {
        *("nong", "clip", "video", "infographic", "emagazine", "longform", "podcast", "photo"),
        *("truc", "tiep", "cap", "nhat", "doc", "quyen", "live", "breaking", "update"),
    }
)
#: "(Dân trí) - ", "[Ảnh]", "TTO - ", "VOV.VN - ", "(CMO) " before a lead or a headline.
_BRACKETED = re.compile(r"\s*(?:\([^()]{1,40}\)|\[[^\[\]]{1,40}\])\s*[-–—:]?\s*")
_DASH_TAG = re.compile(r"\s*((?:\S+\s){0,3}\S+?)\s*[-–—]\s+")
_TRAILING_TAG = re.compile(r"\s+[-–—|]\s+((?:\S+\s?){1,3})\s*$")
_PREFIX = re.compile(r"\s*(\S+(?:\s\S+)?)\s*:\s+")


def _trailing_tag(text: str) -> re.Match[str] | None:
    """``_TRAILING_TAG.search(text)``, where it can match: a text without a dash or a bar
    cannot (most leads have none), and a match starts in the whitespace before the dash,
    which stands alone among the last four words (one to three words follow it). The search
    would otherwise try every whitespace of the text before failing."""
    if "-" in text or "|" in text or "–" in text or "—" in text:
        head = text.rsplit(None, 4)
        return _TRAILING_TAG.search(text, len(head[0]) if len(head) == 5 else 0)
    return None


def _capitalised(words: str) -> bool:
    """Every word starts with a capital (an outlet name or a tag), at least one letter."""
    parts = words.split()
    return bool(parts) and all(w[:1].isupper() or w[:1] == "(" for w in parts)


def strip_lead(lead: str) -> str:
    """The lead without an outlet tag before it or an outlet name after it."""
    text = lead.strip()
    bracketed = _BRACKETED.match(text)
    if bracketed:
        text = text[bracketed.end() :]
    elif "-" in text or "–" in text or "—" in text:  # the tag's dash (most leads have none)
        dash = _DASH_TAG.match(text)
        if dash and _capitalised(dash[1]):
            text = text[dash.end() :]
    trailing = _trailing_tag(text)
    if trailing and _capitalised(trailing[1]):
        text = text[: trailing.start()]
    return text


def strip_title(title: str) -> str:
    """The headline without a bracketed tag or a decoration word before a colon ("NÓNG:",
    "Clip:"). A place or a code before the colon stays: it is a slot ("Hà Nội: ...",
    "HPM: ..."); so does a name after a dash (an outlet's, or a match's second team), which
    :class:`Features` counts as mentioned but never as evidence of another story."""
    text = title.strip()
    bracketed = _BRACKETED.match(text)
    if bracketed and bracketed.start() == 0 and bracketed.end() < len(text):
        text = text[bracketed.end() :]
    prefix = _PREFIX.match(text) if ":" in text else None
    if prefix and set(fold(prefix[1]).split()) <= _DECORATION:
        text = text[prefix.end() :]
    return text


def _hour(time: re.Match[str]) -> str:
    minutes = time[2]
    return time[1] if not minutes or minutes == "00" else f"{time[1]}/{minutes}"


def _initials(syllables: Sequence[str]) -> set[str]:
    """The initials of every run of 2-4 syllables ("benh vien" → "bv", "uy ban nhan dan" →
    "ubnd"): an abbreviation in one item is the words in the other. Computed only for a
    conflict's unmatched slots, never for every item."""
    heads = "".join(s[0] for s in syllables)
    return {heads[i : i + n] for n in (2, 3, 4) for i in range(len(heads) - n + 1)}


_UPPER_CLASS = "[" + re.escape("".join(c for c in map(chr, range(0x3000)) if c.isupper())) + "]"
_OPENERS = "\"“'‘(["
#: Every capitalised word (after an optional opening quote or bracket); one that starts the
#: text, a sentence or a clause is no name by its capital.
_CAPITALISED = re.compile(_UPPER_CLASS + r"\S*")
_CLAUSE_END = frozenset('.!?:…"“”|-–—')
_DIGIT_START = re.compile(r"(?<!\S)\d")
_DIGIT = re.compile(r"\d")
#: capitalised word → (an all-capitals code, its name syllables)
_NAMES: dict[str, tuple[bool, tuple[str, ...]]] = {}
_NAMES_LIMIT = 100_000


def _name(word: str) -> tuple[bool, tuple[str, ...]]:
    core = word.strip(_EDGE)
    upper = sum(c.isupper() for c in core)
    code = upper >= 2 and upper == sum(c.isalpha() for c in core)
    return code, tuple(s for s in fold(core).split() if s not in _DECORATION)


def _numbers(text: str) -> list[tuple[int, str]]:
    """(offset, number) of ``text``: numbers keep their inner separators, spelled "/" ("4.10"
    and "4/10" are one date; a dash is a range, two numbers); a time of day is its hour
    ("6h00" → "6", "10h30" → "10/30"). The offsets are those of the text with the times
    rewritten (as :func:`_slots` always counted them)."""
    digit = _DIGIT.search(text)
    if digit is None:
        return []
    # Neither expression looks behind, so nothing before the first digit is read again.
    first = digit.start()
    numbers = text
    if "h" in text or "g" in text or ":" in text:
        numbers = text[:first] + _TIME.sub(_hour, text[first:])
    return [
        (m.start(), _SEPARATORS.sub("/", m[0]) if "." in m[0] or "," in m[0] else m[0])
        for m in _NUMBER.finditer(numbers, first)
    ]


def _slots(text: str, names_before: int | None = None) -> list[tuple[int, str]]:
    """(character offset, slot) of the names and numbers of ``text`` (single-spaced); names
    only up to about ``names_before`` characters when given (the caller filters by offset).

    A name is a capitalised word that does not start a sentence or a clause, or a word of two
    or more capitals ("HPM", "UBND"); in a text written in capitals only the numbers count
    (:func:`_numbers`). This runs on every item that has a candidate: regular expressions do
    the reading, Python sees only the capitalised words, each classified once (cached).
    """
    out = _numbers(text)
    capitalised = list(_CAPITALISED.finditer(text))
    if not capitalised:
        return out
    count = len(capitalised)
    words = text.count(" ") + 1
    shouting = count > 0.9 * words or (
        count > 0.5 * words and count > 0.9 * (words - len(_DIGIT_START.findall(text)))
    )
    names = _NAMES
    limit = len(text) if names_before is None else names_before
    for m in capitalised:
        at = m.start()
        if at > limit:
            break
        before = text[at - 1] if at else " "
        quoted = False
        if before != " ":
            if before not in _OPENERS:
                continue  # a capital inside a word
            quoted = before not in "(["  # a quotation's first word; a bracket holds names
            at -= 1
        word = m[0]
        info = names.get(word)
        if info is None:
            if len(names) >= _NAMES_LIMIT:
                names.clear()
            info = names[word] = _name(word)
        code, syllables = info
        # The text is single-spaced: the character two before a word ends the previous one.
        opens = at < 2 or text[at - 2] in _CLAUSE_END
        if (code and not shouting) or not (shouting or quoted or opens):
            if len(syllables) == 1:
                out.append((at, syllables[0]))
            else:
                out += [(at, s) for s in syllables]
    return out


#: Headlines and leads whose reading :func:`_read_title` and :func:`_read_lead` remember.
#: Syndicated copies repeat a headline or a lead (half of the texts read in the throughput
#: bench), and the slots were read for both sides of a conflict test.
_READ_TEXTS = 4096


def forget_texts() -> None:
    """Drop the remembered readings of headlines and leads. Only for measuring: a bench that
    runs the same items through fresh indexes must not find them already read."""
    _read_title.cache_clear()
    _read_lead.cache_clear()


@lru_cache(maxsize=_READ_TEXTS)
def _read_title(text: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """(slots, slots mentioned) of a stripped headline. An outlet's name after a dash is
    mentioned but no evidence of another story: the slots are read before it, the mentioned
    ones are the numbers of the whole headline (names are among the item's syllables)."""
    title = " ".join(text.split())
    outlet = _trailing_tag(title)
    title_numbers: list[tuple[int, str]] = []
    if outlet and _capitalised(outlet[1]):
        title_numbers = _numbers(title)
        slots = _slots(title[: outlet.start()])
    else:
        slots = _slots(title)
    return frozenset(s for _p, s in slots), tuple(s for _p, s in title_numbers or slots)


@lru_cache(maxsize=_READ_TEXTS)
def _read_lead(text: str) -> tuple[int, tuple[tuple[int, str], ...], tuple[str, ...]]:
    """(characters compared, (offset, slot) within them, every slot read) of a stripped lead's
    first :data:`LEAD_CHARS` characters: names only in the part compared."""
    lead = " ".join(text.split())
    compared = (
        len(lead)
        if lead.count(" ") < LEAD_SYLLABLES
        else len(" ".join(lead.split(" ")[:LEAD_SYLLABLES]))
    )
    slots = _slots(lead, compared)
    return (
        compared,
        tuple((p, s) for p, s in slots if p < compared),
        tuple(s for _p, s in slots),
    )


class Features:
    """An item's evidence for the story index (folded, decoration stripped).

    What the candidate keys need (headline terms and ends, the lead key) is read at once;
    the slots, mentions and lead pairs only when a candidate has to be confirmed
    (:func:`conflict`, :func:`containment` of ``lead_grams``): most items of a scan have no
    candidate, and reading names and numbers is most of the cost.

    Built from the raw headline and lead, as the feed gave them. The folded syllables of the raw
    headline and lead (:func:`~scanner.textnorm.fold` split), when the caller has them, are
    reused: only the stripped decorations are folded again. ``contents``, with them, is their
    :func:`~scanner.textnorm.content_syllables` (the lead's of its first :data:`LEAD_SYLLABLES`
    syllables), which the MinHash shingles need too: used where no decoration was stripped, and
    never changed.
    """

    def __init__(
        self,
        title: str,
        lead: str,
        title_syllables: Sequence[str] | None = None,
        lead_syllables: Sequence[str] | None = None,
        contents: tuple[list[str], list[str]] | None = None,
    ) -> None:
        raw_title, raw_lead = title.strip(), lead.strip()
        title = strip_title(raw_title)
        lead = strip_lead(raw_lead)
        title_content: list[str] | None = None
        lead_content: list[str] | None = None
        if title_syllables is None or lead_syllables is None:
            title_words = syllables(title)
            all_lead = syllables(lead)
        else:
            skip = _count(raw_title[: len(raw_title) - len(title)])
            title_words = list(title_syllables[skip:])
            start = raw_lead.find(lead) if lead else 0
            first = _count(raw_lead[:start])
            end = len(lead_syllables) - _count(raw_lead[start + len(lead) :])
            all_lead = list(lead_syllables[first:end])
            # The caller's content syllables hold where nothing was stripped (most items).
            if contents is not None and not skip:
                title_content = contents[0]
            kept = min(end, LEAD_SYLLABLES) == min(len(lead_syllables), LEAD_SYLLABLES)
            if contents is not None and not first and kept:
                lead_content = contents[1]
        self._title = title
        self._lead = lead
        self.words = (title_words, all_lead)  # folded syllables of headline and lead
        if title_content is None:
            title_content = content_syllables(title_words)
        #: content syllables of the headline
        self.title_terms = frozenset(title_content)
        self.title_size = len(self.title_terms)
        #: The headline's first and last four content syllables (a candidate key each, ""
        #: under six): a copy with a word dropped inside, or decorated at one end, keeps one.
        self.title_ends = (
            (" ".join(title_content[:4]), " ".join(title_content[-4:]))
            if len(title_content) >= 6
            else ("", "")
        )
        self._lead_content = (
            content_syllables(all_lead[:LEAD_SYLLABLES]) if lead_content is None else lead_content
        )
        # A lead that is the headline again (or inside it) adds no evidence of its own.
        lead_terms = frozenset(self._lead_content)
        self.informative = len(self._lead_content) >= MIN_LEAD_SYLLABLES and len(
            lead_terms & self.title_terms
        ) < 0.8 * len(lead_terms)
        #: the lead's first LEAD_KEY_SYLLABLES content syllables ("" without a lead)
        self.lead_key = (
            " ".join(self._lead_content[:LEAD_KEY_SYLLABLES]) if self.informative else ""
        )

    @cached_property
    def lead_grams(self) -> frozenset[tuple[str, str]]:
        """Content syllable pairs of the lead's start (empty: no lead)."""
        return frozenset(pairwise(self._lead_content)) if self.informative else frozenset()

    @cached_property
    def _read(self) -> tuple[frozenset[str], tuple[tuple[int, str], ...], int, frozenset[str]]:
        """(headline slots, (offset, slot) of the lead's, characters of the lead compared,
        every folded syllable and number mentioned)."""
        title_slots, title_mentioned = _read_title(self._title)
        compared, lead_slots, lead_mentioned = _read_lead(self._lead[:LEAD_CHARS])
        mentions = frozenset(chain(self.words[0], self.words[1], title_mentioned, lead_mentioned))
        return title_slots, lead_slots, compared if self.informative else 0, mentions

    @cached_property
    def initials(self) -> frozenset[str]:
        """The initials of every run of 2-4 of the item's syllables (:func:`_initials`), read
        once: an index entry is a candidate of many later items."""
        return frozenset(_initials([*self.words[0], *self.words[1]]))

    @property
    def title_slots(self) -> frozenset[str]:
        return self._read[0]

    @property
    def lead_slots(self) -> tuple[tuple[int, str], ...]:
        """(character offset in the lead, slot) within the part compared."""
        return self._read[1]

    @property
    def lead_length(self) -> int:
        """Characters of the lead compared (0 without a lead)."""
        return self._read[2]

    @property
    def mentions(self) -> frozenset[str]:
        """Every folded syllable and number of headline and lead."""
        return self._read[3]


def _count(text: str) -> int:
    """How many folded syllables ``text`` has (a stripped decoration: usually none)."""
    return len(syllables(text)) if text else 0


def containment(a: frozenset[Any], b: frozenset[Any]) -> float:
    """|a ∩ b| / the smaller of |a|, |b| (0 when either is empty): a copy cut short or
    decorated is contained in the original as much as a verbatim one."""
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & large) / len(small)


def conflict(a: Features, b: Features, *, leads: bool = True) -> bool:
    """Whether ``a`` and ``b`` name different slots: each headline holds a name or number the
    other item never mentions, or (``leads``: the leads share enough text to be aligned),
    within the part of the leads both have, each lead does."""
    if _unmatched(a.title_slots, b) and _unmatched(b.title_slots, a):
        return True
    common = min(a.lead_length, b.lead_length) if leads else 0
    if not common:
        return False
    mine = {s for p, s in a.lead_slots if p < common}
    return bool(_unmatched(mine, b)) and bool(
        _unmatched({s for p, s in b.lead_slots if p < common}, a)
    )


def agreeing_slots(a: Features, b: Features) -> int:
    """How many slots the two headlines share, or 0 if either names one the other item never
    mentions: positive evidence of one story where the leads give none."""
    if _unmatched(a.title_slots, b) or _unmatched(b.title_slots, a):
        return 0
    return len(a.title_slots & b.title_slots)


def _unmatched(slots: Iterable[str], other: Features) -> set[str]:
    """The slots ``other`` never mentions, in words or as the initials of its words."""
    missing = set(slots) - other.mentions
    if missing:
        missing -= other.initials
    return missing
