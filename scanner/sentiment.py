"""Sentiment of news items: a curated lexicon baseline and a trained linear model.

No Vietnamese sentiment model ships in any wheel (see the reference notes), so CrisisDesk has two
of its own:

* :class:`LexiconScorer` — a hand-curated news lexicon (``scanner/data/lexicon_vi.tsv``) with
  negators ("không", "chưa", "khắc phục", "giảm") and intensifiers ("rất", "nghiêm trọng")
  from ``modifiers_vi.tsv``. Transparent, and the baseline the model must beat.
* :class:`ModelScorer` — TF-IDF over toned syllable 1–2-grams plus the lexicon's numbers, with
  a class-balanced logistic regression, trained on the DANeS annotated headlines (CC BY 4.0,
  DATASET JSC and AIV Group; see ``scanner/data/README.md``).
  It ships as ``scanner/data/sentiment_model.joblib``; when that file is missing or was written
  by another scikit-learn version it is retrained, deterministically, from the bundled data.

Both return :class:`Sentiment` (score in [-1, 1] and a label) and score batches, because the
scanner scores a whole scan at once and vectorising in one call is what makes it fast.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from scanner.textnorm import exact, fold, syllables

log = logging.getLogger(__name__)

__all__ = [
    "LABELS",
    "LexiconScorer",
    "ModelScorer",
    "Scorer",
    "Sentiment",
    "cross_validate",
    "default_scorer",
    "label_for",
    "load_training_data",
    "train_model",
]

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")
RANDOM_STATE = 20240601
MODEL_FILE = "sentiment_model.joblib"
#: 3: records the SHA-256 of the lexicon files the model's lexicon columns were computed with.
MODEL_FORMAT = 3
LEXICON_FILES = ("lexicon_vi.tsv", "modifiers_vi.tsv")
DATA_FILE = "danes-sentiment-train.jsonl"
#: Scores within this distance of 0 are neutral for the lexicon. With ~660 terms many items
#: carry one weak hit; a label needs about one strong or two weak hits. Chosen from 0.2–0.8 by
#: an inner CV in every outer fold of the nested evaluation (it picked 0.6 every time).
NEUTRAL_BAND = 0.6


@dataclass(frozen=True, slots=True)
class Sentiment:
    score: float  # in [-1, 1]: negative … positive
    label: Label


class Scorer(Protocol):
    name: str

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[Sentiment]:
        """Score (title, lead) pairs, in order."""
        ...


def label_for(score: float, band: float = NEUTRAL_BAND) -> Label:
    if score <= -band:
        return "negative"
    if score >= band:
        return "positive"
    return "neutral"


def _data_path(name: str) -> Path:
    return Path(str(files("scanner.data").joinpath(name)))


# --------------------------------------------------------------------------- lexicon


def _lexicon_columns(sums: Sequence[Sequence[float]]) -> np.ndarray:
    """The lexicon's view of items as model features, from each item's (title, lead) sums:
    the two sums and their positive and negative parts, the squashed score and its label as
    two indicators (nine columns, computed for the whole batch at once)."""
    raw = np.array(sums, dtype=float).reshape(-1, 2)
    title, lead = raw[:, 0], raw[:, 1]
    total = title * LexiconScorer.title_factor + lead
    score = total / np.sqrt(total * total + 1.0)
    return np.column_stack(
        [
            title,
            np.maximum(title, 0.0),
            np.minimum(title, 0.0),
            lead,
            np.maximum(lead, 0.0),
            np.minimum(lead, 0.0),
            score,
            (score >= NEUTRAL_BAND).astype(float),
            (score <= -NEUTRAL_BAND).astype(float),
        ]
    )


#: A phrase trie node: the phrase (kind, value) that ends here, if any, and the nodes of the
#: syllables that can follow (None: no phrase goes on).
_Node = tuple[tuple[str, float] | None, dict[str, "_Node"] | None]


def _trie(phrases: dict[str, tuple[str, float]]) -> dict[str, _Node]:
    """The phrases as a trie keyed by their first syllable.

    A text's span at a syllable is the longest phrase spelled by the syllables from there on:
    a walk down the trie finds it with one lookup of each (hashed) syllable, where trying
    every phrase length longest first joined a new string and hashed it for each length. A
    phrase that is not single-spaced syllables (none of the shipped ones) spells no run of
    syllables and is left out.
    """
    building: dict[str, list[Any]] = {}
    for phrase, found in phrases.items():
        first, *rest = words = phrase.split(" ")
        if "" in words:
            continue
        node = building.setdefault(first, [None, None])
        for word in rest:
            if node[1] is None:
                node[1] = {}
            node = node[1].setdefault(word, [None, None])
        node[0] = found

    def freeze(node: list[Any]) -> _Node:
        following = node[1]
        return node[0], (
            None if following is None else {w: freeze(n) for w, n in following.items()}
        )

    return {word: freeze(node) for word, node in building.items()}


class LexiconScorer:
    """Longest-phrase lexicon lookup on the toned form, with negation and intensifiers."""

    name = "lexicon"
    #: Title hits weigh more: the headline states what the story is about.
    title_factor = 1.5

    def __init__(
        self,
        lexicon: dict[str, float] | None = None,
        modifiers: dict[str, tuple[str, float]] | None = None,
    ) -> None:
        self.lexicon = lexicon if lexicon is not None else _load_lexicon()
        self.modifiers = modifiers if modifiers is not None else _load_modifiers()
        phrases = list(self.lexicon) + list(self.modifiers)
        self.max_len = max((len(p.split()) for p in phrases), default=1)
        # Terms and modifiers in one table, a term winning over a modifier spelled the same.
        table: dict[str, tuple[str, float]] = {
            **self.modifiers,
            **{phrase: ("term", weight) for phrase, weight in self.lexicon.items()},
        }
        self._starts: dict[str, _Node] = _trie(table)

    def score(self, title: str, lead: str = "") -> Sentiment:
        total = self.raw(exact(title).split()) * self.title_factor + self.raw(exact(lead).split())
        # Squash the unbounded sum into (-1, 1); two strong hits already give about ±0.8.
        score = total / math.sqrt(total * total + 1.0)
        return Sentiment(round(score, 4), label_for(score))

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[Sentiment]:
        return [self.score(title, lead) for title, lead in items]

    def spans(self, tokens: list[str]) -> list[tuple[int, int, str, float]]:
        """The text segmented into lexicon terms and modifiers, longest phrase first: (start,
        end, kind, value) of each (``tokens``: syllables, as ``str.split`` gives them)."""
        spans: list[tuple[int, int, str, float]] = []
        n = len(tokens)
        starts = self._starts
        # Only syllables that start some phrase can start a span: find them in one C-speed
        # pass instead of stepping through every syllable in Python.
        candidates = list(itertools.compress(range(n), map(starts.__contains__, tokens)))
        covered = 0  # first position not inside an earlier span
        for i in candidates:
            if i < covered:
                continue
            # Walk the phrases that start here syllable by syllable; the last one found is
            # the longest.
            found, following = starts[tokens[i]]
            end = i + 1
            j = end
            while following is not None and j < n:
                node = following.get(tokens[j])
                if node is None:
                    break
                j += 1
                if node[0] is not None:
                    found, end = node[0], j
                following = node[1]
            if found is not None:
                spans.append((i, end, *found))
                covered = end
        return spans

    def raw(self, tokens: list[str]) -> float:
        """The unsquashed sum of one text's terms, after negators and intensifiers (``tokens``:
        syllables, as ``str.split`` gives them)."""
        spans = self.spans(tokens)
        # Negators (before, within 3 syllables) and intensifiers (either side).
        total = 0.0
        for index, (start, end, kind, value) in enumerate(spans):
            if kind != "term":
                continue
            weight = value
            for _start, other_end, other_kind, factor in spans[max(0, index - 2) : index]:
                if (other_kind == "negator" and start - other_end <= 3) or (
                    other_kind == "intensifier" and start - other_end <= 2
                ):
                    weight *= factor
            for other_start, _e, other_kind, factor in spans[index + 1 : index + 2]:
                if other_kind == "intensifier" and other_start - end <= 2:
                    weight *= factor
            total += weight
        return total


def _read_tsv(name: str) -> list[list[str]]:
    rows = []
    for line in _data_path(name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append([part.strip() for part in line.split("\t")])
    return rows


def lexicon_sha256() -> str:
    """SHA-256 of the lexicon and modifier files: a saved model is only valid with these."""
    digest = hashlib.sha256()
    for name in LEXICON_FILES:
        digest.update(_data_path(name).read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _load_lexicon() -> dict[str, float]:
    return {exact(term): float(weight) for term, weight in _read_tsv("lexicon_vi.tsv")}


@lru_cache(maxsize=1)
def _load_modifiers() -> dict[str, tuple[str, float]]:
    return {exact(term): (kind, float(f)) for term, kind, f in _read_tsv("modifiers_vi.tsv")}


# --------------------------------------------------------------------------- trained model


@dataclass(frozen=True)
class FeatureSpec:
    """Which n-grams the model sees. Syllables are tokens already (Vietnamese writes one
    syllable per space-separated word), so 1–2-grams of them capture two-syllable words
    ("tử vong", "khởi tố"). The other blocks are off: under nested CV, folded (diacritics-free)
    n-grams next to the toned ones, title-only n-grams and character n-grams gave no gain on
    1,206 headlines (folded ones cost −0.01 macro-F1: news text is toned, so they mostly
    duplicate the toned block); see docs/scanner.md."""

    words_exact: bool = True  # toned syllable 1–2-grams of title + lead
    words_folded: bool = False  # diacritics-free syllable 1–2-grams of title + lead
    title_words: bool = False  # extra toned 1–2-grams of the title alone (headline weight)
    chars_title: tuple[int, int] | None = None  # char n-grams of the folded title
    chars_lead: tuple[int, int] | None = None  # char n-grams of the folded lead
    min_df: int = 2
    lexicon_weight: float = 3.0  # scale of the lexicon's numbers as extra columns


def _ngrams(tokens: list[str]) -> list[str]:
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def _chars(text: str, span: tuple[int, int]) -> list[str]:
    padded = f" {text} "
    length = len(padded)
    return [padded[i : i + n] for n in range(span[0], span[1] + 1) for i in range(length - n + 1)]


#: A word block's bigrams: their codes ``a × (size + 1) + b``, sorted, and their columns.
Bigrams = tuple[np.ndarray, np.ndarray]


class Featurizer:
    """TF-IDF (sublinear tf, smoothed idf, one L2 norm per item) over a fixed vocabulary.

    The same numbers as scikit-learn's ``TfidfVectorizer`` over pre-analysed token lists, but
    with the n-grams built once per item from the text the scanner has already normalised,
    one dictionary per block (no prefixed strings) and the sparse matrix assembled for the
    whole batch in three numpy calls: scikit-learn's per-document analyzer chain was the
    slowest part of the scanner.
    """

    BLOCKS = ("words_exact", "words_folded", "title_words", "chars_title", "chars_lead")

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.lexicon = LexiconScorer()
        self.vocab: dict[str, dict[str, int]] = {}
        self.idf: np.ndarray = np.zeros(0)
        self.size = 0
        # (tables, bigrams), built from the vocabulary on first use (:meth:`_build_lookups`)
        self._lookups: tuple[dict[str, dict[str, int]], dict[str, Bigrams]] | None = None

    def analyse(
        self,
        title: str,
        lead: str,
        folded: tuple[str, str] | None = None,
        tokens: tuple[list[str], list[str], list[str], list[str]] | None = None,
        sums: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """The tokens of one item, per block (empty blocks omitted), and the lexicon's sums
        of its title and lead (:func:`_lexicon_columns` turns them into features).

        Word blocks hold their syllable lists (title and lead apart: no bigram crosses
        them); their 1–2-grams are only spelled out as strings when fitting (:func:`_grams`).
        Scoring looks unigrams up by syllable and bigrams by their syllables' columns
        (:attr:`Featurizer.bigrams`), so no n-gram string is built on the hot path.
        ``folded`` is ``(fold(title), fold(lead))`` when the caller has it already;
        ``tokens`` is ``(exact title, exact lead, folded title, folded lead)`` syllables
        (:func:`scanner.textnorm.tokens`; the scanner makes them once per item).
        ``sums`` remembers the lexicon's sum of each text (title or lead) across the items
        of one batch: copies repeat a headline or a lead.
        """
        spec = self.spec
        out: dict[str, Any] = {}
        title_fs: list[str] | None
        lead_fs: list[str] | None
        if tokens is not None:
            title_e, lead_e, title_fs, lead_fs = tokens
        else:
            title_e, lead_e = syllables(title, folded=False), syllables(lead, folded=False)
            title_fs = lead_fs = None
        if spec.words_exact:
            out["words_exact"] = (title_e, lead_e)
        if spec.title_words:
            out["title_words"] = (title_e,)
        if spec.words_folded or spec.chars_title or spec.chars_lead:
            # Folding is only paid for when a block uses it (the default spec does not).
            if title_fs is None or lead_fs is None:
                title_f, lead_f = folded if folded is not None else (fold(title), fold(lead))
                title_fs, lead_fs = title_f.split(), lead_f.split()
            else:
                title_f, lead_f = " ".join(title_fs), " ".join(lead_fs)
            if spec.words_folded:
                out["words_folded"] = (title_fs, lead_fs)
            if spec.chars_title:
                out["chars_title"] = _chars(title_f, spec.chars_title)
            if spec.chars_lead and lead:
                out["chars_lead"] = _chars(lead_f, spec.chars_lead)
        if spec.lexicon_weight:
            if sums is None:
                out["lexicon"] = (self.lexicon.raw(title_e), self.lexicon.raw(lead_e))
            else:
                title_sum = sums.get(title)
                if title_sum is None:
                    title_sum = sums[title] = self.lexicon.raw(title_e)
                lead_sum = sums.get(lead)
                if lead_sum is None:
                    lead_sum = sums[lead] = self.lexicon.raw(lead_e)
                out["lexicon"] = (title_sum, lead_sum)
        return out

    def fit(self, docs: Sequence[dict[str, list[Any]]]) -> Featurizer:
        offset = 0
        idf_parts = []
        n = len(docs)
        for block in self.BLOCKS:
            df: dict[str, int] = {}
            for doc in docs:
                for gram in set(_grams(block, doc.get(block, ()))):
                    df[gram] = df.get(gram, 0) + 1
            kept = sorted(g for g, c in df.items() if c >= self.spec.min_df)
            if not kept:
                continue
            self.vocab[block] = {g: offset + i for i, g in enumerate(kept)}
            counts = np.array([df[g] for g in kept], dtype=float)
            idf_parts.append(np.log((1.0 + n) / (1.0 + counts)) + 1.0)
            offset += len(kept)
        self.size = offset
        self.idf = np.concatenate(idf_parts) if idf_parts else np.zeros(0)
        self._lookups = None
        return self

    @property
    def tables(self) -> dict[str, dict[str, int]]:
        """The vocabulary as lookup tables: word blocks keyed by syllable (their unigrams;
        bigrams are looked up in :attr:`bigrams`), the other blocks by n-gram."""
        if self._lookups is None:
            self._lookups = self._build_lookups()
        return self._lookups[0]

    @property
    def bigrams(self) -> dict[str, Bigrams]:
        """Per word block, the bigrams as ``a × (size + 1) + b`` of their syllables' unigram
        columns, sorted, and their own columns in the same order: a batch's bigrams are
        looked up with one ``searchsorted`` instead of a tuple and a dict lookup each."""
        if self._lookups is None:
            self._lookups = self._build_lookups()
        return self._lookups[1]

    def _build_lookups(self) -> tuple[dict[str, dict[str, int]], dict[str, Bigrams]]:
        tables: dict[str, dict[str, int]] = {}
        bigrams: dict[str, Bigrams] = {}
        width = self.size + 1
        for block, vocab in self.vocab.items():
            if block not in _WORD_BLOCKS:
                tables[block] = vocab
                continue
            tables[block] = {g: i for g, i in vocab.items() if " " not in g}
            pairs = [(g.split(" "), i) for g, i in vocab.items() if " " in g]
            # A bigram's syllables are unigrams of the vocabulary: every item holding the
            # bigram holds both, so neither is rarer than min_df.
            codes = np.array([vocab[a] * width + vocab[b] for (a, b), _ in pairs], np.int64)
            order = np.argsort(codes)
            columns = np.array([i for _, i in pairs], np.int64)
            bigrams[block] = (codes[order], columns[order])
        return tables, bigrams

    def transform(self, docs: Sequence[dict[str, Any]]) -> Any:
        """The L2-normalised TF-IDF rows of ``docs`` (``size`` columns), built in one go."""
        from scipy.sparse import csr_matrix

        n = len(docs)
        if self.size == 0:
            return csr_matrix((n, 0))
        rows, cols, data = self.entries(docs)
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n))))
        return csr_matrix((data, cols, indptr), shape=(n, self.size))

    def entries(self, docs: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The nonzero TF-IDF entries of ``docs`` as (row, column, value) arrays, row-major
        with columns ascending in each row: the matrix :meth:`transform` wraps, for callers
        that only need products with it (scoring builds no sparse matrix: scipy's
        constructors cost ~0.2 ms a call, as much as 50 items' arithmetic)."""
        # Unknown n-grams map to ``unknown`` (map(dict.get, grams, repeat(unknown)) stays in
        # C, with no per-gram Python test) and are dropped after counting.
        n = len(docs)
        unknown = self.size
        width = unknown + 1
        tables = self.tables
        rep = itertools.repeat(unknown)
        other: list[int] = []  # columns of the non-word blocks, item after item
        other_counts: list[int] = []
        # per word block: unigram column of every syllable, syllables per list, list's item
        words: dict[str, tuple[list[int], list[int], list[int]]] = {}
        for row, doc in enumerate(docs):
            before = len(other)
            for block, value in doc.items():
                table = tables.get(block)
                if table is None:
                    continue
                if block in _WORD_BLOCKS:
                    ids, sizes, owners = words.setdefault(block, ([], [], []))
                    get = table.get
                    for tokens in value:
                        ids.extend(map(get, tokens, rep))
                        sizes.append(len(tokens))
                        owners.append(row)
                else:
                    other.extend(map(table.get, value, rep))
            other_counts.append(len(other) - before)
        parts = [
            np.repeat(np.arange(n, dtype=np.int64) * width, other_counts)
            + np.fromiter(other, np.int64, len(other))
        ]
        for block, (ids, sizes, owners) in words.items():
            flat = np.fromiter(ids, np.int64, len(ids))
            rows = np.repeat(np.array(owners, np.int64), sizes)
            parts.append(rows * width + flat)
            codes, columns = self.bigrams[block]
            if flat.size < 2 or codes.size == 0:
                continue
            # Pair p joins syllables p and p + 1 unless p ends its list.
            inside = np.ones(flat.size - 1, dtype=bool)
            last = np.cumsum(sizes)[:-1] - 1
            inside[last[(last >= 0) & (last < inside.size)]] = False
            left, right = flat[:-1], flat[1:]
            inside &= (left != unknown) & (right != unknown)
            pair = left[inside] * width + right[inside]
            at = np.minimum(np.searchsorted(codes, pair), codes.size - 1)
            hit = codes[at] == pair
            parts.append(rows[:-1][inside][hit] * width + columns[at[hit]])
        everything = np.concatenate(parts)
        if n * width <= np.iinfo(np.int32).max:
            # The same keys, sorted (to be counted) on 32 bits: twice the numbers per vector.
            everything = everything.astype(np.int32)
        keys, counts = np.unique(everything, return_counts=True)
        rows, cols = np.divmod(keys, width)
        known = cols != unknown
        rows, cols, counts = rows[known], cols[known], counts[known]
        data = (1.0 + np.log(counts)) * self.idf[cols]
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=n))
        norms[norms == 0.0] = 1.0
        return rows, cols, data / norms[rows]


_WORD_BLOCKS = frozenset({"words_exact", "words_folded", "title_words"})


def _grams(block: str, value: Any) -> list[str]:
    """A block's features as strings (fitting): 1–2-grams of each syllable list of a word
    block, the character n-grams themselves otherwise."""
    if block in _WORD_BLOCKS:
        return [gram for tokens in value for gram in _ngrams(tokens)]
    return list(value)


class ModelScorer:
    """TF-IDF over syllable n-grams plus the lexicon's numbers, class-balanced logistic
    regression.

    C is chosen by stratified cross-validation on the training data (:func:`choose_c`), so
    ``crisisdesk sentiment eval`` can nest that choice inside each outer fold and report an
    honest figure.
    """

    name = "model"

    def __init__(self, C: float = 1.0, spec: FeatureSpec | None = None) -> None:
        self.C = C
        self.spec = spec or DEFAULT_SPEC
        self.featurizer: Featurizer | None = None
        self.classifier: Any = None

    def fit(
        self, titles: Sequence[str], leads: Sequence[str], labels: Sequence[str]
    ) -> ModelScorer:
        featurizer = Featurizer(self.spec)
        docs = [featurizer.analyse(t, ld) for t, ld in zip(titles, leads, strict=True)]
        featurizer.fit(docs)
        self.featurizer = featurizer
        return self.fit_analysed(docs, labels)

    def fit_analysed(
        self, docs: Sequence[dict[str, list[Any]]], labels: Sequence[str]
    ) -> ModelScorer:
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        assert self.featurizer is not None
        self.classifier = LogisticRegression(
            C=self.C, class_weight="balanced", max_iter=5000, random_state=RANDOM_STATE
        )
        # One thread: the solver's OpenMP threads fight over the cores for a problem this small
        # (a fit took 15 s instead of 0.6 s on the 2-core machine, and train/eval fit dozens).
        with threadpool_limits(limits=1):
            self.classifier.fit(self._matrix(docs), list(labels))
        return self

    def _matrix(self, docs: Sequence[dict[str, list[Any]]]) -> Any:
        """TF-IDF of the n-grams, plus the lexicon's numbers (scaled) as dense columns.

        The lexicon carries curated knowledge (negation, intensifiers, crisis vocabulary)
        that 1,200 training headlines cannot teach; the model learns how far to trust it.
        """
        assert self.featurizer is not None, "model is not trained"
        matrix = self.featurizer.transform(docs)
        if self.spec.lexicon_weight:
            from scipy.sparse import csr_matrix, hstack

            lexicon = _lexicon_columns([doc["lexicon"] for doc in docs])
            matrix = hstack([matrix, csr_matrix(lexicon * self.spec.lexicon_weight)], format="csr")
        return matrix

    def _proba(self, docs: Sequence[dict[str, Any]]) -> np.ndarray:
        """Class probabilities of analysed items: the multinomial logistic model's own
        arithmetic, softmax(X·Wᵀ + b), as ``predict_proba`` computes it, but summed straight
        from the TF-IDF entries and the lexicon columns. Stacking them into one sparse matrix
        and scikit-learn's input checks cost ~0.6 ms a call, which the scanner pays per feed
        and per batch of topic links (``tests/scanner/test_scanner_sentiment.py`` holds it equal to
        ``predict_proba``)."""
        assert self.featurizer is not None, "model is not trained"
        coef = self.classifier.coef_
        size = self.featurizer.size
        rows, cols, data = self.featurizer.entries(docs)
        n = len(docs)
        logits = np.empty((n, coef.shape[0]))
        for c in range(coef.shape[0]):
            logits[:, c] = np.bincount(rows, weights=data * coef[c, cols], minlength=n)
        if self.spec.lexicon_weight:
            lexicon = _lexicon_columns([doc["lexicon"] for doc in docs])
            logits += (lexicon * self.spec.lexicon_weight) @ coef[:, size:].T
        logits += self.classifier.intercept_
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def score_many(
        self,
        items: Sequence[tuple[str, str]],
        *,
        folded: Sequence[tuple[str, str]] | None = None,
        tokens: Sequence[tuple[list[str], list[str], list[str], list[str]]] | None = None,
    ) -> list[Sentiment]:
        """Score (title, lead) pairs; ``folded`` optionally gives their folded forms, in order,
        ``tokens`` their syllables (exact title, exact lead, folded title, folded lead)."""
        if not items:
            return []
        assert self.featurizer is not None, "model is not trained"
        analyse = self.featurizer.analyse
        if tokens is not None:
            sums: dict[str, float] = {}  # a text's syllables are the same in every item
            docs = [
                analyse(t, ld, None, tk, sums) for (t, ld), tk in zip(items, tokens, strict=True)
            ]
        elif folded is None:
            docs = [analyse(t, ld) for t, ld in items]
        else:
            docs = [analyse(t, ld, f) for (t, ld), f in zip(items, folded, strict=True)]
        proba = self._proba(docs)
        classes = list(self.classifier.classes_)
        score = proba[:, classes.index("positive")] - proba[:, classes.index("negative")]
        labels = map(classes.__getitem__, np.argmax(proba, axis=1).tolist())
        return [
            Sentiment(round(x, 4), label) for x, label in zip(score.tolist(), labels, strict=True)
        ]

    def score(self, title: str, lead: str = "") -> Sentiment:
        return self.score_many([(title, lead)])[0]

    # ---------------------------------------------------------------- persistence

    def save(self, path: Path, *, data_sha256: str) -> None:
        import joblib
        import sklearn

        payload = {
            "format": MODEL_FORMAT,
            "sklearn_version": sklearn.__version__,
            "data_sha256": data_sha256,
            "lexicon_sha256": lexicon_sha256(),
            "C": self.C,
            "spec": self.spec.__dict__,
            "vocab": self.featurizer.vocab if self.featurizer else {},
            "idf": self.featurizer.idf if self.featurizer else None,
            "size": self.featurizer.size if self.featurizer else 0,
            "classifier": self.classifier,
        }
        joblib.dump(payload, path, compress=3)

    @classmethod
    def load(cls, path: Path) -> ModelScorer:
        """Load a saved model; raises ``ValueError`` if it was made by another scikit-learn,
        in another format or with other lexicon files (its lexicon columns would then mean
        something else than what it learned)."""
        import joblib
        import sklearn

        payload = joblib.load(path)
        if payload.get("sklearn_version") != sklearn.__version__:
            raise ValueError(
                f"model built with scikit-learn {payload.get('sklearn_version')}, "
                f"running {sklearn.__version__}"
            )
        if payload.get("format") != MODEL_FORMAT:
            raise ValueError(
                f"model file format {payload.get('format')!r}, expected {MODEL_FORMAT}"
            )
        if payload.get("lexicon_sha256") != lexicon_sha256():
            raise ValueError("model built with other lexicon files")
        model = cls(C=payload["C"], spec=FeatureSpec(**payload["spec"]))
        featurizer = Featurizer(model.spec)
        featurizer.vocab = payload["vocab"]
        featurizer.idf = payload["idf"]
        featurizer.size = payload["size"]
        model.featurizer = featurizer
        model.classifier = payload["classifier"]
        return model


DEFAULT_SPEC = FeatureSpec()
#: C values tried by :func:`choose_c` (larger C = weaker regularisation).
C_GRID = (0.3, 1.0, 3.0)


# --------------------------------------------------------------------------- data, training


@dataclass(frozen=True)
class TrainingData:
    titles: list[str]
    leads: list[str]
    labels: list[str]
    sha256: str


def load_training_data(path: Path | None = None) -> TrainingData:
    """The bundled DANeS training set (or another JSONL file with title/lead/sentiment)."""
    path = path or _data_path(DATA_FILE)
    raw = path.read_bytes()
    titles, leads, labels = [], [], []
    for line in raw.decode("utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("sentiment") not in LABELS:
            continue
        titles.append(str(row.get("title") or ""))
        leads.append(str(row.get("lead") or ""))
        labels.append(row["sentiment"])
    return TrainingData(titles, leads, labels, hashlib.sha256(raw).hexdigest())


def _fit_on(
    docs: Sequence[dict[str, list[Any]]], labels: Sequence[str], C: float, spec: FeatureSpec
) -> ModelScorer:
    """A model fitted on already-analysed items (the vocabulary is built from these only)."""
    model = ModelScorer(C=C, spec=spec)
    model.featurizer = Featurizer(spec).fit(docs)
    return model.fit_analysed(docs, labels)


def choose_c(
    docs: Sequence[dict[str, list[Any]]],
    labels: Sequence[str],
    *,
    spec: FeatureSpec = DEFAULT_SPEC,
    grid: Sequence[float] = C_GRID,
    folds: int = 3,
    seed: int = RANDOM_STATE,
) -> float:
    """The C of ``grid`` with the best macro-F1 under stratified ``folds``-fold CV of these
    items (ties → the smaller C, the stronger regularisation)."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    y = np.array(labels)
    predicted = {c: np.empty(len(y), dtype=object) for c in grid}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros(len(y)), y):
        train_docs = [docs[i] for i in train_idx]
        test_docs = [docs[i] for i in test_idx]
        for c in grid:
            model = _fit_on(train_docs, y[train_idx], c, spec)
            matrix = model._matrix(test_docs)
            predicted[c][test_idx] = model.classifier.predict(matrix)
    scores = {c: f1_score(y, predicted[c], average="macro") for c in grid}
    best = max(scores.values())
    return min(c for c, f in scores.items() if f >= best - 1e-9)


def train_model(path: Path | None = None, data: TrainingData | None = None) -> ModelScorer:
    """Train on the bundled data (deterministic: fixed folds and seeds; C chosen by CV) and,
    if ``path`` is given, save it there."""
    data = data or load_training_data()
    pairs = list(zip(data.titles, data.leads, strict=True))
    analyser = Featurizer(DEFAULT_SPEC)
    docs = [analyser.analyse(t, ld) for t, ld in pairs]
    c = choose_c(docs, data.labels)
    model = _fit_on(docs, data.labels, c, DEFAULT_SPEC)
    if path is not None:
        model.save(path, data_sha256=data.sha256)
    return model


_model_lock = threading.Lock()


def default_scorer(model_path: Path | None = None) -> ModelScorer:
    """The shipped model; retrained from the bundled data if missing or version-mismatched."""
    path = model_path or _data_path(MODEL_FILE)
    with _model_lock:
        cached = _MODEL_CACHE.get(path)
        if cached is not None:
            return cached
        try:
            model = ModelScorer.load(path)
        except FileNotFoundError:
            log.warning("sentiment model %s missing; retraining from bundled data", path)
            model = _retrain(path)
        except Exception as exc:  # version mismatch, truncated file, unpicklable classes
            log.warning("sentiment model %s unusable (%s); retraining from bundled data", path, exc)
            model = _retrain(path)
        _MODEL_CACHE[path] = model
        return model


_MODEL_CACHE: dict[Path, ModelScorer] = {}


def _retrain(path: Path) -> ModelScorer:
    model = train_model()
    try:
        model.save(path, data_sha256=load_training_data().sha256)
    except OSError as exc:  # read-only install: keep the model in memory only
        log.warning("cannot save retrained sentiment model to %s: %s", path, exc)
    return model


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EvalResult:
    """Pooled over the held-out folds of one split (the mean over seeds when there are several);
    ``*_std`` is the standard deviation across all folds of all seeds."""

    name: str
    macro_f1: float
    negative_recall: float
    macro_f1_std: float = 0.0
    negative_recall_std: float = 0.0
    #: Per class (``LABELS`` order): (precision, recall, F1), pooled like the figures above —
    #: which class a macro-F1 loses on says where more labels or lexicon terms would help.
    per_class: tuple[tuple[float, float, float], ...] = ()


def cross_validate(
    data: TrainingData | None = None,
    *,
    folds: int = 5,
    seeds: Sequence[int] = (RANDOM_STATE,),
    spec: FeatureSpec = DEFAULT_SPEC,
) -> list[EvalResult]:
    """Stratified k-fold macro-F1 and negative recall of the model, the lexicon and the majority,
    once per seed of the outer split (one split varies by a few hundredths with the seed).

    Nested: inside each outer fold, C is chosen by an inner 3-fold CV of the training part
    only, exactly as :func:`train_model` chooses it on the whole set, so the held-out fold
    never influences the model that scores it. The lexicon's one parameter, its neutral band,
    is a constant (every inner CV of the nested search chose the same value, see
    ``NEUTRAL_BAND``), so its per-fold scores are its scores on the held-out fold; the
    majority baseline predicts the most common training label of each fold.
    """
    from collections import Counter

    from sklearn.metrics import f1_score, precision_recall_fscore_support, recall_score
    from sklearn.model_selection import StratifiedKFold

    data = data or load_training_data()
    labels = np.array(data.labels)
    lexicon = LexiconScorer()
    items = list(zip(data.titles, data.leads, strict=True))
    analyser = Featurizer(spec)
    docs = [analyser.analyse(t, ld) for t, ld in items]
    lexicon_labels = [s.label for s in lexicon.score_many(items)]

    def scores(gold: list[str], predicted: list[Any]) -> tuple[float, float]:
        return (
            float(f1_score(gold, predicted, average="macro", labels=list(LABELS))),
            float(recall_score(gold, predicted, labels=["negative"], average="macro")),
        )

    def per_class(gold: list[str], predicted: list[Any]) -> np.ndarray:
        found = precision_recall_fscore_support(
            gold, predicted, labels=list(LABELS), zero_division=0.0
        )
        return np.array(found[:3]).T  # one row per class: precision, recall, F1

    names = ("model", "lexicon", "majority")
    pooled: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    classes: dict[str, list[np.ndarray]] = {name: [] for name in names}
    per_fold: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for seed in seeds:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        predictions: dict[str, list[Any]] = {name: [] for name in names}
        truth: list[str] = []
        bounds: list[int] = [0]  # fold boundaries in the pooled lists
        for train_idx, test_idx in splitter.split(np.zeros(len(labels)), labels):
            train_docs = [docs[i] for i in train_idx]
            c = choose_c(train_docs, labels[train_idx], spec=spec)
            model = _fit_on(train_docs, labels[train_idx], c, spec)
            matrix = model._matrix([docs[i] for i in test_idx])
            predictions["model"] += [str(p) for p in model.classifier.predict(matrix)]
            predictions["lexicon"] += [lexicon_labels[i] for i in test_idx]
            majority = Counter(labels[train_idx]).most_common(1)[0][0]
            predictions["majority"] += [majority] * len(test_idx)
            truth += [data.labels[i] for i in test_idx]
            bounds.append(len(truth))
        for name, predicted in predictions.items():
            pooled[name].append(scores(truth, predicted))
            classes[name].append(per_class(truth, predicted))
            per_fold[name] += [
                scores(truth[a:b], predicted[a:b]) for a, b in itertools.pairwise(bounds)
            ]

    results = []
    for name in names:
        mean = np.array(pooled[name]).mean(axis=0)
        std = np.array(per_fold[name]).std(axis=0)
        by_class = np.mean(classes[name], axis=0)
        results.append(
            EvalResult(
                name,
                float(mean[0]),
                float(mean[1]),
                float(std[0]),
                float(std[1]),
                tuple((float(p), float(r), float(f)) for p, r, f in by_class),
            )
        )
    return results


def score_pairs(scorer: Scorer, pairs: Iterable[tuple[str, str]]) -> list[Sentiment]:
    """Convenience for callers holding an iterator."""
    return scorer.score_many(list(pairs))
