"""How much harm to people a topic's stories describe, weighted by how many outlets carry it.

Statistical surprise alone ranks a mass food poisoning of schoolchildren that grows slowly
below a routine announcement that every outlet reprints. A press office ranks it the other
way, so alert severity (:func:`scanner.alerting.severity_for`) also reads what the stories say:
a curated lexicon (``scanner/data/harm_vi.tsv``) of harm categories — deaths, injuries,
hospitalisation, poisoning, outbreaks, collapse, fire, disaster, accidents, violence (weight
2-3), fraud, protest, pollution (weight 1) — and "vulnerable" victims (children, the elderly,
pregnant women), which add their weight only to a story that also names a harm.

Each category counts once however many stories name it, in proportion to the distinct outlets
that carry it (copies included) up to :data:`FULL_REACH`: one outlet's claim counts a third, a
harm three outlets report counts in full. The score is the sum over categories of ``weight ×
min(outlets, FULL_REACH) / FULL_REACH``. Matching is on folded syllables (no diacritics, "đ"
→ "d", whole syllables only), as readers and outlets write with and without tones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from scanner.textnorm import fold

FULL_REACH = 3  # distinct outlets at which a harm counts in full
VULNERABLE = "vulnerable"


@dataclass(frozen=True)
class Lexicon:
    """Folded phrases by category, and each category's weight."""

    phrases: dict[str, str]  # folded phrase -> category
    weights: dict[str, float]

    def categories(self, text: str) -> set[str]:
        """The categories ``text`` names (vulnerable only alongside a harm)."""
        padded = f" {fold(text)} "
        found = {cat for phrase, cat in self.phrases.items() if f" {phrase} " in padded}
        if found == {VULNERABLE}:
            return set()
        return found


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The bundled lexicon; a line with a category weight that disagrees is an error."""
    raw = files("scanner.data").joinpath("harm_vi.tsv").read_text(encoding="utf-8")
    phrases: dict[str, str] = {}
    weights: dict[str, float] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        category, weight, phrase = line.split("\t")
        if weights.setdefault(category, float(weight)) != float(weight):
            raise ValueError(f"harm_vi.tsv line {number}: {category} has two weights")
        phrases[fold(phrase)] = category
    return Lexicon(phrases, weights)


@dataclass(frozen=True)
class Harm:
    """The harm score and, per category, how many distinct outlets carry it."""

    score: float = 0.0
    outlets: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"score": round(self.score, 3), "outlets": dict(sorted(self.outlets.items()))}


def assess(stories: Iterable[tuple[str, Iterable[str]]], lex: Lexicon | None = None) -> Harm:
    """Harm of ``stories``: each is (title and lead, the outlets that carried it)."""
    lex = lex or lexicon()
    carriers: dict[str, set[str]] = defaultdict(set)
    for text, outlets in stories:
        cats = lex.categories(text)
        if cats:
            members = set(outlets)
            for cat in cats:
                carriers[cat] |= members
    counts = {cat: len(o) for cat, o in carriers.items()}
    score = sum(lex.weights[c] * min(n, FULL_REACH) / FULL_REACH for c, n in counts.items())
    return Harm(score, counts)
