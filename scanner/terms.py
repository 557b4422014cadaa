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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from scanner.textnorm import STOPWORDS, syllables, word_ngrams

PRIOR_WEIGHT = 50.0  # total pseudo-count of the Dirichlet prior


@dataclass(frozen=True)
class TermScore:
    term: str
    z: float
    foreground: int  # stories in the window containing the term
    background: int  # stories in the background containing it


@lru_cache(maxsize=50_000)
def story_terms(text: str, n_max: int = 3) -> frozenset[str]:
    """The distinct 1..``n_max``-grams of a story that neither start nor end with a stopword.

    Cached: the background of a topic is mostly the same stories from one scan to the next.
    """
    tokens = syllables(text, folded=False)
    out = set()
    for gram in word_ngrams(tokens, 1, n_max):
        parts = gram.split(" ")
        if parts[0] in STOPWORDS or parts[-1] in STOPWORDS or gram in STOPWORDS:
            continue
        if all(p.isdigit() for p in parts) or len(gram) < 2:
            continue
        out.add(gram)
    return frozenset(out)


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
    kept: list[TermScore] = []
    for cand in scored:
        if any(cand.term in k.term and cand.foreground <= k.foreground for k in kept):
            continue
        kept = [k for k in kept if not (k.term in cand.term and k.foreground <= cand.foreground)]
        kept.append(cand)
        if len(kept) >= top:
            break
    return kept
