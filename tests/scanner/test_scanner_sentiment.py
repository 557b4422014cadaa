"""Sentiment: the lexicon's rules, the model against the lexicon, loading, and the score CLI."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from scanner import sentiment
from scanner.cli_commands import score_stream
from scanner.sentiment import LexiconScorer, ModelScorer, default_scorer, load_training_data


def test_lexicon_negation_and_intensifiers() -> None:
    lex = LexiconScorer()
    assert lex.score("Cháy lớn, 3 người tử vong").label == "negative"
    assert lex.score("Khánh thành cầu vượt, giảm ùn tắc").score > lex.score("Ùn tắc kéo dài").score
    assert lex.score("Không có thiệt hại").score > 0 > lex.score("Có thiệt hại").score
    assert lex.score("Sự cố rất nghiêm trọng").score < lex.score("Sự cố").score
    assert lex.score("Thời tiết hôm nay").label == "neutral"
    assert -1.0 <= lex.score("tử vong " * 50).score <= 1.0


def test_lexicon_blockers_tone_placements_and_undoing_verbs() -> None:
    """A phrase that starts with a term or modifier but means something else does not fire it
    ("không khí" is air, not negation); both tone placements match; verbs that undo a harm
    ("giảm", "khắc phục") turn it around."""
    lex = LexiconScorer()
    assert lex.score("Không khí phấn khởi").score > 0
    assert lex.score("Tết thiếu nhi").score == 0.0
    assert lex.score("Hòa bình").score == lex.score("Hoà bình").score > 0
    assert lex.score("Giảm tai nạn giao thông").score > 0 > lex.score("Tai nạn giao thông").score
    assert lex.score("Khắc phục sự cố").score > 0


_LEXICON = LexiconScorer()
#: Runs of syllables that texts are made of here: whole phrases of the lexicon, their first
#: syllables (a phrase begun and not finished), single syllables and two unknown ones.
_RUNS = sorted(
    {
        tuple(words[:cut])
        for p in [*_LEXICON.lexicon, *_LEXICON.modifiers]
        for words in [p.split()]
        for cut in range(1, len(words) + 1)
    }
    | {("xyz",), ("abc",)}
)


def _spans_by_lengths(lex: LexiconScorer, tokens: list[str]) -> list[tuple[int, int]]:
    """Where the lexicon's phrases are, found the plain way: at each syllable every phrase
    length, longest first, looked up as a joined string."""
    phrases = {**lex.modifiers, **lex.lexicon}
    lengths = sorted({len(p.split()) for p in phrases}, reverse=True)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        size = next(
            (k for k in lengths if i + k <= len(tokens) and " ".join(tokens[i : i + k]) in phrases),
            0,
        )
        if size:
            spans.append((i, i + size))
        i += size or 1
    return spans


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_RUNS), max_size=8))
def test_lexicon_walk_finds_the_longest_phrases(runs: list[tuple[str, ...]]) -> None:
    """The trie walk finds the longest phrase at each syllable: the same spans as trying
    every phrase length as a joined string, each the phrase's kind and value."""
    tokens = [word for run in runs for word in run]
    spans = _LEXICON.spans(tokens)
    assert [(start, end) for start, end, _k, _v in spans] == _spans_by_lengths(_LEXICON, tokens)
    for start, end, kind, value in spans:
        phrase = " ".join(tokens[start:end])
        term = _LEXICON.lexicon.get(phrase)
        assert (kind, value) == (("term", term) if term is not None else _LEXICON.modifiers[phrase])


@pytest.fixture(scope="session")
def split() -> tuple[list[int], list[int]]:
    data = load_training_data()
    idx = np.arange(len(data.labels))
    train, test = train_test_split(
        idx, test_size=0.25, stratify=data.labels, random_state=sentiment.RANDOM_STATE
    )
    return list(train), list(test)


def test_model_beats_lexicon_and_majority_on_held_out_split(
    split: tuple[list[int], list[int]],
) -> None:
    data = load_training_data()
    train, test = split
    model = ModelScorer().fit(
        [data.titles[i] for i in train],
        [data.leads[i] for i in train],
        [data.labels[i] for i in train],
    )
    items = [(data.titles[i], data.leads[i]) for i in test]
    truth = [data.labels[i] for i in test]
    model_f1 = f1_score(truth, [s.label for s in model.score_many(items)], average="macro")
    lexicon_f1 = f1_score(
        truth, [s.label for s in LexiconScorer().score_many(items)], average="macro"
    )
    majority_f1 = f1_score(truth, ["neutral"] * len(truth), average="macro")
    assert model_f1 > lexicon_f1 > majority_f1


def test_shipped_model_loads_and_scores() -> None:
    scorer = default_scorer()
    results = scorer.score_many(
        [
            ("Cháy lớn tại chung cư, nhiều người thương vong", ""),
            ("Khánh thành bệnh viện mới, người dân phấn khởi", ""),
        ]
    )
    assert [r.label for r in results] == ["negative", "positive"]
    assert all(-1.0 <= r.score <= 1.0 for r in results)


def test_featurizer_is_scikit_learns_tfidf() -> None:
    """Our featurizer (unigrams by dict, bigrams by a sorted array of their syllables'
    columns, counts by np.unique) must be TfidfVectorizer's arithmetic: sublinear tf, smoothed
    idf, L2 rows, 1–2-grams within title and within lead, never across them."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from scanner.sentiment import DEFAULT_SPEC, Featurizer, _grams

    data = load_training_data()
    train = list(zip(data.titles, data.leads, strict=True))
    ours = Featurizer(DEFAULT_SPEC)
    ours.fit([ours.analyse(t, ld) for t, ld in train])

    def analyzer(pair: tuple[str, str]) -> list[str]:
        return _grams("words_exact", ours.analyse(*pair)["words_exact"])

    theirs = TfidfVectorizer(
        analyzer=analyzer, vocabulary=ours.vocab["words_exact"], sublinear_tf=True
    ).fit(train)
    probe = [
        *train[:200],
        ("", ""),
        ("zzzz qqqq", "zzzz"),  # nothing known
        ("giao thông tai tai", "nạn tai"),  # repeats; "tai nạn" only across title and lead
        ("Cháy", ""),
    ]
    for batch in (probe, probe[-4:], probe[-1:]):
        got = ours.transform([ours.analyse(t, ld) for t, ld in batch]).toarray()
        np.testing.assert_allclose(got, theirs.transform(batch).toarray(), rtol=0, atol=1e-12)


def test_scoring_arithmetic_is_the_classifiers_own() -> None:
    """The scanner's scoring path sums the logits itself (no stacked matrix, no input
    checks); it must give what scikit-learn's ``predict_proba`` gives on the full matrix,
    for ordinary, empty and out-of-vocabulary items and for a batch of one."""
    scorer = default_scorer()
    assert scorer.featurizer is not None
    data = load_training_data()
    pairs = list(zip(data.titles[:300], data.leads[:300], strict=True))
    pairs += [("", ""), ("zzzz qqqq", ""), ("", "Cháy lớn tại chung cư")]
    for batch in (pairs, pairs[:1], pairs[-3:]):
        docs = [scorer.featurizer.analyse(t, ld) for t, ld in batch]
        ours = scorer._proba(docs)
        theirs = scorer.classifier.predict_proba(scorer._matrix(docs))
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).all()


def test_missing_or_foreign_model_is_retrained(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retrain path itself (load fails → train → save → load again). Choosing C by inner CV
    is what `crisisdesk sentiment train` and eval exercise; here it would only add minutes."""
    import scanner.sentiment

    monkeypatch.setattr(scanner.sentiment, "choose_c", lambda *_args, **_kwargs: 1.0)
    path = tmp_path / "model.joblib"
    import joblib

    joblib.dump({"sklearn_version": "0.0.1"}, path)
    with caplog.at_level(logging.WARNING, logger="scanner.sentiment"):
        model = default_scorer(path)
    assert "retraining" in caplog.text
    assert (
        ModelScorer.load(path).score("Tai nạn giao thông").label
        == model.score("Tai nạn giao thông").label
    )


def test_model_from_other_lexicon_files_is_rejected(tmp_path: Path) -> None:
    """The model's lexicon columns depend on the lexicon files: a model saved with other files
    is not loaded (default_scorer then retrains it)."""
    import joblib

    payload = joblib.load(sentiment._data_path(sentiment.MODEL_FILE))
    payload["lexicon_sha256"] = "0" * 64
    path = tmp_path / "model.joblib"
    joblib.dump(payload, path)
    with pytest.raises(ValueError, match="lexicon"):
        ModelScorer.load(path)


def test_cross_validate_averages_over_seeds() -> None:
    """Several outer seeds: one result per scorer; the lexicon has no fitted parameter, so its
    pooled figure is its score on all items whatever the split."""
    data = load_training_data()
    small = sentiment.TrainingData(data.titles[:240], data.leads[:240], data.labels[:240], "")
    results = {r.name: r for r in sentiment.cross_validate(small, folds=3, seeds=(1, 2))}
    assert set(results) == {"model", "lexicon", "majority"}
    items = list(zip(small.titles, small.leads, strict=True))
    lexicon_f1 = f1_score(
        small.labels,
        [s.label for s in LexiconScorer().score_many(items)],
        average="macro",
        labels=list(sentiment.LABELS),
    )
    assert results["lexicon"].macro_f1 == pytest.approx(lexicon_f1)
    assert results["majority"].negative_recall == 0.0
    # Per class (precision, recall, F1 in LABELS order), pooled as the headline figures are:
    # the lexicon's are its scores on all items, the negative recall is the headline one and
    # the class F1s average to the macro-F1.
    lexicon_classes = precision_recall_fscore_support(
        small.labels,
        [s.label for s in LexiconScorer().score_many(items)],
        labels=list(sentiment.LABELS),
        zero_division=0.0,
    )
    assert np.array(results["lexicon"].per_class) == pytest.approx(np.array(lexicon_classes[:3]).T)
    for r in results.values():
        assert len(r.per_class) == len(sentiment.LABELS)
        assert r.per_class[0][1] == pytest.approx(r.negative_recall)
        assert sum(f for _p, _r, f in r.per_class) / 3 == pytest.approx(r.macro_f1)
    assert all(0.0 <= r.macro_f1 <= 1.0 and r.macro_f1_std >= 0.0 for r in results.values())


def test_score_stream_one_line_per_input() -> None:
    lines = [
        '{"title": "Cháy lớn tại chợ", "lead": "3 người tử vong", "id": 7}',
        "",
        "not json",
        "[1, 2]",
        '{"title": 5}',
        '{"title": "", "lead": ""}',
        '{"title": "Khánh thành cầu mới"}',
    ]
    out = io.StringIO()
    assert score_stream(io.StringIO("\n".join(lines) + "\n"), out, "lexicon") == len(lines)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == len(lines)
    assert rows[0]["label"] == "negative" and rows[0]["id"] == 7 and "error" not in rows[0]
    assert [("error" in r) for r in rows] == [False, True, True, True, True, True, False]
    assert all("label" not in r for r in rows[1:6])
    assert rows[6]["label"] == "positive"


def test_score_cli_end_to_end() -> None:
    text = '{"title": "Sạt lở nghiêm trọng ở Quảng Nam"}\n\n{"title": "Khánh thành cầu"}\n'
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sentiment", "score"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode("utf-8").splitlines()
    assert len(out) == 3
    assert "Sạt lở" in out[0]  # ensure_ascii=False
    assert json.loads(out[0])["label"] == "negative"
    assert "error" in json.loads(out[1])


def test_choose_c_is_deterministic_and_picks_from_the_grid() -> None:
    """C is chosen by an inner CV on the training part only, the same way every time."""
    from scanner.sentiment import DEFAULT_SPEC, Featurizer, choose_c, load_training_data

    data = load_training_data()
    pairs = list(zip(data.titles, data.leads, strict=True))[:300]
    labels = data.labels[:300]
    docs = [Featurizer(DEFAULT_SPEC).analyse(t, lead) for t, lead in pairs]
    grid = (0.1, 1.0, 10.0)
    first = choose_c(docs, labels, grid=grid)
    assert first in grid
    assert choose_c(docs, labels, grid=grid) == first


def test_eval_command_prints_each_class(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`crisisdesk sentiment eval` prints, under the headline figures, one row per scorer with
    precision / recall / F1 of every class in LABELS order (read with ``--seeds``)."""
    import argparse

    from scanner.cli_commands import cmd_sentiment_eval

    seen: dict[str, object] = {}

    def fake(*, folds: int, seeds: list[int]) -> list[sentiment.EvalResult]:
        seen.update(folds=folds, seeds=seeds)
        per_class = ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), (0.7, 0.8, 0.9))
        return [sentiment.EvalResult("model", 0.6, 0.2, 0.01, 0.02, per_class)]

    monkeypatch.setattr(sentiment, "cross_validate", fake)
    assert cmd_sentiment_eval(argparse.Namespace(folds=4, seeds=[7, 8])) == 0
    assert seen == {"folds": 4, "seeds": [7, 8]}
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[1:] == list(sentiment.LABELS))
    assert lines[header + 1].split() == [
        "model",
        "0.100",
        "0.200",
        "0.300",
        "0.400",
        "0.500",
        "0.600",
        "0.700",
        "0.800",
        "0.900",
    ]
    assert lines[header - 3].split() == ["model", "0.600", "±", "0.010", "0.200", "±", "0.020"]
