"""Sentiment of news items: a curated lexicon baseline and a trained linear model.

No Vietnamese sentiment model ships in any wheel (see the reference notes), so CrisisDesk has two
of its own:

* :class:`LexiconScorer` — a hand-curated crisis lexicon (``scanner/data/lexicon_vi.tsv``) with
  negators ("không", "chưa", "chẳng", "khắc phục") and intensifiers ("rất", "nghiêm trọng")
  from ``modifiers_vi.tsv``. Transparent, and the baseline the model must beat.
* :class:`ModelScorer` — TF-IDF over syllable word n-grams (toned and folded) and character
  n-grams of the folded text, with a class-balanced logistic regression, trained on the DANeS
  annotated headlines (CC BY 4.0, DATASET JSC and AIV Group; see ``scanner/data/README.md``).
  It ships as ``scanner/data/sentiment_model.joblib``; when that file is missing or was written
  by another scikit-learn version it is retrained, deterministically, from the bundled data.

Both return :class:`Sentiment` (score in [-1, 1] and a label) and score batches, because the
scanner scores a whole scan at once and vectorising in one call is what makes it fast.
"""

from __future__ import annotations

import hashlib
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

from scanner.textnorm import exact, fold

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
DATA_FILE = "danes-sentiment-train.jsonl"
#: Scores within this distance of 0 are neutral for the lexicon.
NEUTRAL_BAND = 0.2


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
        # Longest phrase length per first syllable: most syllables start no phrase at all,
        # and skipping them is what makes the lexicon cheap enough for the hot path.
        self._starts: dict[str, int] = {}
        for phrase in phrases:
            words = phrase.split()
            if words:
                self._starts[words[0]] = max(self._starts.get(words[0], 0), len(words))

    def score(self, title: str, lead: str = "") -> Sentiment:
        total = self._raw(exact(title).split()) * self.title_factor + self._raw(exact(lead).split())
        # Squash the unbounded sum into (-1, 1); two strong hits already give about ±0.8.
        score = total / math.sqrt(total * total + 1.0)
        return Sentiment(round(score, 4), label_for(score))

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[Sentiment]:
        return [self.score(title, lead) for title, lead in items]

    def features(self, title: str, lead: str = "") -> tuple[float, float, float]:
        """(title sum, lead sum, squashed score): the lexicon's view, as model features."""
        return self.token_features(exact(title).split(), exact(lead).split())

    def token_features(self, title: list[str], lead: list[str]) -> tuple[float, float, float]:
        """:meth:`features` on already exact-normalised syllables."""
        t = self._raw(title)
        ld = self._raw(lead)
        total = t * self.title_factor + ld
        return t, ld, total / math.sqrt(total * total + 1.0)

    def _raw(self, tokens: list[str]) -> float:
        # Pass 1: segment into lexicon terms and modifiers, longest phrase first.
        spans: list[tuple[int, int, str, float]] = []  # (start, end, kind, value)
        i = 0
        n = len(tokens)
        starts = self._starts
        while i < n:
            longest = starts.get(tokens[i], 0)
            if not longest:
                i += 1
                continue
            for size in range(min(longest, n - i), 0, -1):
                phrase = " ".join(tokens[i : i + size])
                if phrase in self.lexicon:
                    spans.append((i, i + size, "term", self.lexicon[phrase]))
                    i += size
                    break
                modifier = self.modifiers.get(phrase)
                if modifier is not None:
                    spans.append((i, i + size, modifier[0], modifier[1]))
                    i += size
                    break
            else:
                i += 1
        # Pass 2: apply negators (before, within 3 syllables) and intensifiers (either side).
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


@lru_cache(maxsize=1)
def _load_lexicon() -> dict[str, float]:
    return {exact(term): float(weight) for term, weight in _read_tsv("lexicon_vi.tsv")}


@lru_cache(maxsize=1)
def _load_modifiers() -> dict[str, tuple[str, float]]:
    return {exact(term): (kind, float(f)) for term, kind, f in _read_tsv("modifiers_vi.tsv")}


# --------------------------------------------------------------------------- trained model


def _features() -> tuple[Any, Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Syllables are already tokens; n-grams of 1–2 syllables capture two-syllable words
    # ("tử vong", "khởi tố"). Char n-grams of the folded text generalise across tone typos.
    words_exact = TfidfVectorizer(
        token_pattern=r"\S+", lowercase=False, ngram_range=(1, 2), sublinear_tf=True, min_df=1
    )
    words_folded = TfidfVectorizer(
        token_pattern=r"\S+", lowercase=False, ngram_range=(1, 2), sublinear_tf=True, min_df=1
    )
    chars = TfidfVectorizer(
        analyzer="char_wb", lowercase=False, ngram_range=(2, 5), sublinear_tf=True, min_df=2
    )
    return words_exact, words_folded, chars


class ModelScorer:
    """TF-IDF (word + char n-grams) + class-balanced logistic regression."""

    name = "model"

    def __init__(self, C: float = 1.0) -> None:
        # C = 1 (scikit-learn's default): stratified 5-fold CV over C in {0.3, 1, 3} moved
        # macro-F1 by less than its fold-to-fold noise, so the default stands.
        self.C = C
        self.vectorizers: tuple[Any, Any, Any] | None = None
        self.classifier: Any = None
        self.lexicon = LexiconScorer()

    def fit(
        self, titles: Sequence[str], leads: Sequence[str], labels: Sequence[str]
    ) -> ModelScorer:
        from sklearn.linear_model import LogisticRegression

        pairs = list(zip(titles, leads, strict=True))
        self.vectorizers = _features()
        matrix = self._matrix(pairs, fit=True)
        self.classifier = LogisticRegression(
            C=self.C, class_weight="balanced", max_iter=5000, random_state=RANDOM_STATE
        )
        self.classifier.fit(matrix, list(labels))
        return self

    def _matrix(self, pairs: Sequence[tuple[str, str]], *, fit: bool = False) -> Any:
        """TF-IDF blocks plus three lexicon features (title sum, lead sum, squashed score).

        Toned word 1–2-grams of title + lead; folded word and character n-grams of the title
        only — the headline carries the tone, and character n-grams of the whole lead cost four
        times as much for no measurable gain in cross-validation.

        The lexicon features carry curated knowledge (negation, intensifiers) that 1,200
        training headlines cannot teach; the model learns how much to trust them.
        """
        from scipy.sparse import csr_matrix, hstack

        assert self.vectorizers is not None, "model is not trained"
        # exact() once per field: the same tokens feed the word n-grams and the lexicon.
        title_tokens = [exact(t) for t, _ in pairs]
        lead_tokens = [exact(ld) for _, ld in pairs]
        exact_texts = [f"{t} {ld}" for t, ld in zip(title_tokens, lead_tokens, strict=True)]
        folded_titles = [fold(t) for t, _ in pairs]
        words_exact, words_folded, chars = self.vectorizers
        parts = []
        for vectorizer, data in (
            (words_exact, exact_texts),
            (words_folded, folded_titles),
            (chars, folded_titles),
        ):
            parts.append(vectorizer.fit_transform(data) if fit else vectorizer.transform(data))
        lexicon = [
            self.lexicon.token_features(t.split(), ld.split())
            for t, ld in zip(title_tokens, lead_tokens, strict=True)
        ]
        parts.append(csr_matrix(np.array(lexicon, dtype=float)))
        return hstack(parts, format="csr")

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[Sentiment]:
        if not items:
            return []
        proba = self.classifier.predict_proba(self._matrix(items))
        classes = list(self.classifier.classes_)
        neg = proba[:, classes.index("negative")]
        pos = proba[:, classes.index("positive")]
        best = np.argmax(proba, axis=1)
        return [
            Sentiment(round(float(p - q), 4), classes[int(b)])
            for p, q, b in zip(pos, neg, best, strict=True)
        ]

    def score(self, title: str, lead: str = "") -> Sentiment:
        return self.score_many([(title, lead)])[0]

    # ---------------------------------------------------------------- persistence

    def save(self, path: Path, *, data_sha256: str) -> None:
        import joblib
        import sklearn

        payload = {
            "sklearn_version": sklearn.__version__,
            "data_sha256": data_sha256,
            "C": self.C,
            "vectorizers": self.vectorizers,
            "classifier": self.classifier,
        }
        joblib.dump(payload, path, compress=3)

    @classmethod
    def load(cls, path: Path) -> ModelScorer:
        """Load a saved model; raises ``ValueError`` if it was made by another scikit-learn."""
        import joblib
        import sklearn

        payload = joblib.load(path)
        if payload.get("sklearn_version") != sklearn.__version__:
            raise ValueError(
                f"model built with scikit-learn {payload.get('sklearn_version')}, "
                f"running {sklearn.__version__}"
            )
        model = cls(C=payload["C"])
        model.vectorizers = payload["vectorizers"]
        model.classifier = payload["classifier"]
        return model


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


def train_model(path: Path | None = None, data: TrainingData | None = None) -> ModelScorer:
    """Train on the bundled data (deterministic) and, if ``path`` is given, save it there."""
    data = data or load_training_data()
    model = ModelScorer().fit(data.titles, data.leads, data.labels)
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
    name: str
    macro_f1: float
    negative_recall: float


def cross_validate(
    data: TrainingData | None = None, *, folds: int = 5, seed: int = RANDOM_STATE
) -> list[EvalResult]:
    """Stratified k-fold macro-F1 and negative recall of the model, the lexicon and the majority.

    The lexicon has no parameters, so its per-fold scores are its scores on the held-out fold;
    the majority baseline predicts the most common training label of each fold.
    """
    from collections import Counter

    from sklearn.metrics import f1_score, recall_score
    from sklearn.model_selection import StratifiedKFold

    data = data or load_training_data()
    labels = np.array(data.labels)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predictions: dict[str, list[str]] = {"model": [], "lexicon": [], "majority": []}
    truth: list[str] = []
    lexicon = LexiconScorer()
    items = list(zip(data.titles, data.leads, strict=True))
    for train_idx, test_idx in splitter.split(np.zeros(len(labels)), labels):
        model = ModelScorer().fit(
            [data.titles[i] for i in train_idx],
            [data.leads[i] for i in train_idx],
            [data.labels[i] for i in train_idx],
        )
        test_items = [items[i] for i in test_idx]
        predictions["model"] += [s.label for s in model.score_many(test_items)]
        predictions["lexicon"] += [s.label for s in lexicon.score_many(test_items)]
        majority = Counter(labels[train_idx]).most_common(1)[0][0]
        predictions["majority"] += [majority] * len(test_idx)
        truth += [data.labels[i] for i in test_idx]
    results = []
    for name, predicted in predictions.items():
        results.append(
            EvalResult(
                name,
                float(f1_score(truth, predicted, average="macro", labels=list(LABELS))),
                float(recall_score(truth, predicted, labels=["negative"], average="macro")),
            )
        )
    return results


def score_pairs(scorer: Scorer, pairs: Iterable[tuple[str, str]]) -> list[Sentiment]:
    """Convenience for callers holding an iterator."""
    return scorer.score_many(list(pairs))
