"""Emerging terms: which syllable n-grams rise fastest against the background.

Used to say what a burst is about ("sạt lở", "ngộ độc thực phẩm") and to suggest new topics.
Vietnamese writes one syllable per space-separated token and most words are two syllables, so
1-3-grams of syllables (in the exact, toned form, which reads well in a message) cover words and
short phrases without a tokenizer. Each story counts a term once (document frequency), so a long
lead that repeats a word does not win.

Scoring is the log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008,
"Fightin' Words"): the prior is the pooled frequency of the term, so rare terms are shrunk and
the z-score is comparable between a term seen twice and one seen fifty times.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypeVar

from scanner.textnorm import STOPWORDS, exact, syllables, word_ngrams

PRIOR_WEIGHT = 50.0  # total pseudo-count of the Dirichlet prior


@lru_cache(maxsize=1)
def boilerplate() -> frozenset[str]:
    """Attribution, sourcing and newsroom phrases and outlet names (``boilerplate_vi.txt``,
    exact form): every subject's stories carry them, so they never say what a story is about."""
    from importlib.resources import files

    raw = files("scanner.data").joinpath("boilerplate_vi.txt").read_text(encoding="utf-8")
    lines = (line for line in raw.splitlines() if not line.startswith("#"))
    return frozenset(p for p in (" ".join(exact(line).split()) for line in lines) if p)


def _segments(tokens: list[str], words: frozenset[str]) -> list[list[str]]:
    """``tokens`` cut at every boilerplate phrase (longest first, the phrase dropped), so that
    no term holds one: "cho biết", "theo thông tin", "VnExpress" shared by four stories say
    how they were written or who wrote them, and their fragments ("biết", "thông") no more."""
    out: list[list[str]] = [[]]
    i, n = 0, len(tokens)
    while i < n:
        for size in (3, 2, 1):
            if i + size <= n and " ".join(tokens[i : i + size]) in words:
                if out[-1]:
                    out.append([])
                i += size
                break
        else:
            out[-1].append(tokens[i])
            i += 1
    return [seg for seg in out if seg]


@dataclass(frozen=True)
class TermScore:
    term: str
    z: float
    foreground: int  # stories in the window containing the term
    background: int  # stories in the background containing it


@lru_cache(maxsize=50_000)
class _Term(Protocol):
    @property
    def term(self) -> str: ...


T = TypeVar("T", bound=_Term)


def _unsubsumed(ranked: Iterable[T], count: Callable[[T], int], top: int | None = None) -> list[T]:
    """The best-ranked terms, none inside another it does not outnumber (``count``: stories).

    A term within a kept longer one that is in as many stories adds nothing; a kept term within
    a new longer one that is in no fewer stories gives way to it. At most ``top`` terms."""
    kept: list[T] = []
    for cand in ranked:
        if any(cand.term in k.term and count(cand) <= count(k) for k in kept):
            continue
        kept = [k for k in kept if not (k.term in cand.term and count(k) <= count(cand))]
        kept.append(cand)
        if top is not None and len(kept) >= top:
            break
    return kept


def story_terms(text: str, n_max: int = 3) -> frozenset[str]:
    """The distinct 1..``n_max``-grams of a story that neither start nor end with a stopword
    nor hold a boilerplate phrase (:func:`boilerplate`).

    Cached: the background of a topic is mostly the same stories from one scan to the next.
    """
    out = set()
    grams = (
        gram
        for segment in _segments(syllables(text, folded=False), boilerplate())
        for gram in word_ngrams(segment, 1, n_max)
    )
    for gram in grams:
        parts = gram.split(" ")
        if parts[0] in STOPWORDS or parts[-1] in STOPWORDS or gram in STOPWORDS:
            continue
        if all(p.isdigit() for p in parts) or len(gram) < 2:
            continue
        out.add(gram)
    return frozenset(out)


@lru_cache(maxsize=1)
def _general_doc_freq() -> tuple[Counter[str], int]:
    """Document frequencies in a general Vietnamese news corpus: the DANeS headlines and leads
    bundled for the sentiment model, whatever their topic."""
    from scanner.sentiment import load_training_data

    data = load_training_data()
    return _doc_freq(f"{t}. {ld}" for t, ld in zip(data.titles, data.leads, strict=True))


def general_rate(term: str) -> float:
    """Share of general news stories containing ``term`` (Laplace estimate).

    A topic's own background is small (a quiet topic has a hundred stories in three days), so
    a term it never carried gets a rate near 1 %, however ordinary the word is in the news
    ("tiếp tục", a province): three stories sharing it would look like an event. The rate a
    term is tested against is the larger of the topic's and this one.
    """
    df, n = _general_doc_freq()
    return (df.get(term, 0) + 1.0) / (n + 2.0)


def _doc_freq(texts: Iterable[str]) -> tuple[Counter[str], int]:
    df: Counter[str] = Counter()
    n = 0
    for text in texts:
        df.update(story_terms(text))
        n += 1
    return df, n


def emerging_terms(
    foreground: Sequence[str], background: Sequence[str], *, top: int = 5, min_df: int = 2
) -> list[TermScore]:
    """Terms of ``foreground`` stories that are over-represented against ``background`` stories.

    Terms must appear in at least ``min_df`` foreground stories. When a longer n-gram occurs in
    as many stories as a shorter one inside it, only the longer one is kept (it says more).
    """
    fg, _ = _doc_freq(foreground)
    bg, _ = _doc_freq(background)
    n_fg = sum(fg.values())
    n_bg = sum(bg.values())
    if not n_fg:
        return []
    pooled = n_fg + n_bg
    scored: list[TermScore] = []
    for term, y_f in fg.items():
        if y_f < min_df:
            continue
        y_b = bg.get(term, 0)
        a = PRIOR_WEIGHT * (y_f + y_b) / pooled
        delta = math.log((y_f + a) / (n_fg + PRIOR_WEIGHT - y_f - a)) - math.log(
            (y_b + a) / (n_bg + PRIOR_WEIGHT - y_b - a)
        )
        z = delta / math.sqrt(1.0 / (y_f + a) + 1.0 / (y_b + a))
        if z > 0:
            scored.append(TermScore(term, z, y_f, y_b))
    scored.sort(key=lambda t: (-t.z, -len(t.term)))
    return _unsubsumed(scored, lambda t: t.foreground, top)


# --------------------------------------------------------------------------- emerging alerts


@dataclass(frozen=True)
class EmergingTerm:
    """A term whose share of a topic's recent stories rose sharply against its background."""

    term: str
    stories: int  # recent stories containing the term
    outlets: int  # distinct outlets that first published those stories
    background: int  # background stories containing it
    expected: float  # recent stories expected to contain it at the background rate
    p: float  # binomial upper tail, Bonferroni-corrected over the candidate terms


def emerging_signal(
    foreground: Sequence[tuple[str, str]],
    background: Sequence[str],
    *,
    alpha: float,
    min_stories: int = 4,
    min_outlets: int = 3,
    min_lift: float = 3.0,
    min_background: int = 30,
    exclude: Iterable[str] = (),
) -> list[EmergingTerm]:
    """Terms of the recent ``foreground`` stories ``(text, outlet)`` that rose sharply.

    A term is a candidate when at least ``min_stories`` recent stories from ``min_outlets``
    distinct outlets contain it (one outlet repeating itself is not a trend). Its background
    rate is the share of ``background`` stories containing it, as a Laplace estimate
    ``(b + 1) / (n + 2)`` (a term never seen before is not certain to be absent), or its rate in
    general news (:func:`general_rate`) if that is higher; under "nothing changed" the recent
    count is binomial with that rate. The upper tail, Bonferroni-corrected
    over the candidates, must be below ``alpha``, and the recent share at least ``min_lift``
    times the background rate ("rises sharply": a significant 20 % rise on a busy topic is not
    an emerging term). The topic needs ``min_background`` background stories (a norm). Nested
    n-grams found in the same stories are reported once, the longest. ``exclude``: terms that
    are on every story anyway (the topic's own query terms), compared in lower case.
    """
    from scipy import stats

    n_fg, n_bg = len(foreground), len(background)
    if n_fg < min_stories or n_bg < min_background:
        return []
    df, outlets = _candidates(foreground, min_stories, min_outlets, exclude)
    if not outlets:
        return []
    cands = list(outlets)
    bg_sets = [story_terms(text) for text in background]
    m = len(cands)
    found: list[EmergingTerm] = []
    for t in cands:
        b = sum(t in s for s in bg_sets)
        rate = max((b + 1.0) / (n_bg + 2.0), general_rate(t))
        k = df[t]
        if k / n_fg < min_lift * rate:
            continue
        p = min(float(stats.binom.sf(k - 1, n_fg, rate)) * m, 1.0)
        if p < alpha:
            found.append(EmergingTerm(t, k, len(outlets[t]), b, rate * n_fg, p))
    found.sort(key=lambda e: (e.p, -len(e.term)))
    return _unsubsumed(found, lambda e: e.stories)


def _candidates(
    foreground: Sequence[tuple[str, str]],
    min_stories: int,
    min_outlets: int,
    exclude: Iterable[str],
) -> tuple[Counter[str], dict[str, set[str]]]:
    """Story counts of the foreground's terms, and the outlets of those that qualify."""
    skip = {" ".join(syllables(t)) for t in exclude}
    # The outlets' own names ("Thanh Niên", "Lao Động": ordinary words too) in a copy's
    # credit line ("... - Thanh Niên") say who published it, not what happened.
    skip |= {" ".join(syllables(outlet)) for _, outlet in foreground} - {""}
    fg_sets = [story_terms(text) for text, _ in foreground]
    df: Counter[str] = Counter()
    for terms in fg_sets:
        df.update(terms)
    cands = [t for t, c in df.items() if c >= min_stories and not _covered(t, skip)]
    outlets: dict[str, set[str]] = {t: set() for t in cands}
    for terms, (_, outlet) in zip(fg_sets, foreground, strict=True):
        for t in cands:
            if t in terms:
                outlets[t].add(outlet)
    return df, {t: o for t, o in outlets.items() if len(o) >= min_outlets}


def has_candidates(
    foreground: Sequence[tuple[str, str]],
    *,
    min_stories: int = 4,
    min_outlets: int = 3,
    exclude: Iterable[str] = (),
) -> bool:
    """Could any term of ``foreground`` qualify (before reading a background)?"""
    return bool(_candidates(foreground, min_stories, min_outlets, exclude)[1])


def _covered(term: str, own: set[str]) -> bool:
    """Does ``term`` hold one of ``own`` (folded): the topic's own query terms, the outlets'
    names?"""
    folded = " ".join(syllables(term))
    return any(o == folded or f" {o} " in f" {folded} " for o in own)


def suggested_queries(terms: Sequence[str], stories: Sequence[str], *, top: int = 3) -> list[str]:
    """Boolean queries (the scanner's query language) to watch what ``terms`` are about.

    A pair of emerging terms that occur together in at least two of ``stories`` gives
    ``"a" AND "b"`` (narrower: the story itself); each term alone gives ``"a"``. Every query is
    parsed with :func:`scanner.topics.parse_query`; one that does not parse is dropped.
    """
    from scanner.topics import QueryError, parse_query

    sets = [story_terms(text) for text in stories]
    out: list[str] = []
    head = list(terms)[:top]
    for i, a in enumerate(head):
        for b in head[i + 1 :]:
            if a in b or b in a:
                continue
            if sum(a in s and b in s for s in sets) >= 2:
                out.append(f'"{a}" AND "{b}"')
    out += [f'"{t}"' for t in head]
    valid = []
    for q in dict.fromkeys(out):
        if '"' in q.strip('"').replace('" AND "', ""):
            continue
        try:
            parse_query(q)
        except QueryError:
            continue
        valid.append(q)
    return valid
