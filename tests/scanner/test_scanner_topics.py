"""The topic query language: parsing, errors with positions, diacritics-insensitive matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.textnorm import STOPWORDS, char_ngrams, exact, fold, syllables, word_ngrams
from scanner.topics import (
    SUMMARY_WEIGHT,
    TITLE_WEIGHT,
    MatchDoc,
    QueryError,
    TopicMatcher,
    match,
    parse_query,
)


def test_fold_and_exact_forms() -> None:
    assert fold("Vắc-xin COVID-19 ĐỒNG NAI") == "vac xin covid 19 dong nai"
    assert fold("Vắc-xin") == fold("vac xin") == "vac xin"
    assert fold("vă\u0301c xin") == "vac xin"  # combining marks (non-NFC input)
    assert exact("Bão số 3 – “rất mạnh”") == "bão số 3 rất mạnh"
    assert syllables("Sốt xuất-huyết!") == ["sot", "xuat", "huyet"]
    assert list(word_ngrams(["a", "b", "c"], 1, 2)) == ["a", "b", "c", "a b", "b c"]
    assert list(char_ngrams("ab", 2, 3)) == [" a", "ab", "b ", " ab", "ab "]
    assert "của" in STOPWORDS and "bão" not in STOPWORDS


@pytest.mark.parametrize(
    ("query", "title", "summary", "expected"),
    [
        ('"vắc-xin"', "Tiêm vac xin cho trẻ", "", TITLE_WEIGHT),
        ('"vắc-xin"', "Tiêm vacxin cho trẻ", "", TITLE_WEIGHT),
        ("vắc-xin", "VẮC XIN mới", "", TITLE_WEIGHT),
        ("vacxin", "Tiêm vắc-xin", "", TITLE_WEIGHT),
        ("vac xin", "x", "Bộ Y tế nói về vắc xin", 2 * SUMMARY_WEIGHT),  # two terms
        ('"vac xin"', "x", "Bộ Y tế nói về vắc xin", SUMMARY_WEIGHT),
        ('"vắc-xin" AND NOT "thú y"', "Vắc-xin thú y", "", 0.0),
        ('("vắc-xin" OR vaccine) AND NOT "thú y"', "Vaccine mới", "", TITLE_WEIGHT),
        (
            "bão AND miền Trung",
            "Bão số 3",
            "Mưa lớn ở miền Trung",
            TITLE_WEIGHT + 2 * SUMMARY_WEIGHT,
        ),
        ("xin", "Tiêm vacxin", "", 0.0),  # whole syllables only
        ("covid19", "Ca Covid-19 tăng", "", TITLE_WEIGHT),
        ("sốt xuất huyết", "Sốt xuất huyết", "", 3 * TITLE_WEIGHT),
        ('"sốt xuất huyết"', "xuất huyết và sốt", "", 0.0),  # phrase = consecutive syllables
        ("cháy or nổ", "Vụ nổ lớn", "", TITLE_WEIGHT),  # lower-case operators
        ('"or"', "Trump or Biden", "", TITLE_WEIGHT),
    ],
)
def test_matching(query: str, title: str, summary: str, expected: float) -> None:
    assert match(query, title, summary) == expected


@pytest.mark.parametrize(
    ("query", "position", "fragment"),
    [
        ("", 1, "empty query"),
        ("   ", 4, "empty query"),
        ("bão AND", 8, "expected a term after AND"),
        ("(bão OR lũ", 11, "expected ')' after 'lũ'"),
        ("bão)", 4, "unbalanced ')'"),
        ("OR bão", 1, "expected a term"),
        ("bão AND OR lũ", 9, "after AND but found 'OR'"),
        ('"vắc-xin', 1, "unterminated"),
        ("()", 2, "empty parentheses"),
        ("NOT bão", 1, "matches every article"),
        ("!!!", 1, "no letters"),
    ],
)
def test_errors_have_positions(query: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(query)
    assert info.value.position == position
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"position {position}: ")


_TOKENS = st.sampled_from(
    [
        "bão",
        "lũ",
        "vắc-xin",
        '"thú y"',
        "AND",
        "OR",
        "NOT",
        "and",
        "(",
        ")",
        '"',
        "Đà Nẵng",
        "!!",
        "x",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=12).map(" ".join) | st.text(max_size=40))
def test_random_queries_parse_or_fail_with_a_position(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as exc:
        assert 1 <= exc.position <= len(text) + 1
        assert str(exc).startswith(f"position {exc.position}: ")
    else:
        assert query.terms
        assert query.match("", "") == 0.0


_VIET_WORDS = st.sampled_from(
    [
        "bão",
        "lũ lụt",
        "vắc-xin",
        "Đà Nẵng",
        "sạt lở",
        "ngộ độc",
        "cháy",
        "tử vong",
        "học sinh",
        "giá xăng",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_VIET_WORDS, min_size=1, max_size=6), st.integers(min_value=0, max_value=5))
def test_matching_is_diacritics_and_case_insensitive(words: list[str], pick: int) -> None:
    title = " ".join(words)
    term = words[pick % len(words)]
    query = parse_query(f'"{term}"')
    weight = query.match(title)
    assert weight == TITLE_WEIGHT
    assert query.match(fold(title)) == weight
    assert query.match(title.upper()) == weight
    assert parse_query(f'"{fold(term)}"').match(title) == weight


_DOC_WORDS = st.sampled_from(
    [
        "bão",
        "báo",
        "lũ",
        "vắc-xin",
        "vacxin",
        "vac",
        "xin",
        "thú y",
        "Đà Nẵng",
        "danang",
        "ô tô",
        "oto",
        "o",
        "to",
        "cháy",
        "nổ",
        "ngộ độc",
        "và",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_TOKENS, min_size=1, max_size=8).map(" ".join), min_size=1, max_size=6),
    st.lists(_DOC_WORDS, max_size=10).map(" ".join),
    st.lists(_DOC_WORDS, max_size=14).map(" ".join),
)
def test_topic_matcher_prefilter_never_changes_the_result(
    texts: list[str], title: str, summary: str
) -> None:
    """The inverted index only skips queries that cannot match: same answers as running all."""
    queries = []
    for text in texts:
        try:
            queries.append(parse_query(text))
        except QueryError:
            continue
    topics = list(enumerate(queries, start=1))
    doc = MatchDoc(title, summary)
    expected = [(i, w) for i, q in topics if (w := q.match_doc(MatchDoc(title, summary))) > 0]
    matcher = TopicMatcher(topics)
    assert matcher.match(doc) == expected  # few terms: substring scan
    matcher._joined = None  # the inverted-index path taken beyond _SCAN_LIMIT distinct terms
    assert matcher.match(doc) == expected


def test_written_apart_splits_equal_the_pair_and_triple_set() -> None:
    """`_splits` substring search gives the same answer as `_concat_set` membership."""
    import random

    from scanner.topics import _concat_set, _splits

    rng = random.Random(1)
    for _ in range(3000):
        syllables = [
            "".join(rng.choice("abn") for _ in range(rng.randint(1, 3)))
            for _ in range(rng.randint(0, 7))
        ]
        text = " " + " ".join(syllables) + " "
        pairs_and_triples = _concat_set(text)
        words = {"".join(rng.choice("abn") for _ in range(rng.randint(1, 7))) for _ in range(8)}
        for word in words | set(pairs_and_triples):
            assert (word in pairs_and_triples) == any(s in text for s in _splits(word))


def test_without_subject_drops_the_topics_own_terms_in_any_spelling() -> None:
    from scanner.textnorm import tokens

    q = parse_query('("vắc-xin" OR vaccine) AND NOT "thú y"')
    exact, folded = tokens("Vắc-xin mới: tiêm VACXIN và vac xin cho thú y, vaccine an toàn")
    kept_x, kept_f = q.without_subject(exact, folded)
    assert kept_x == ["mới", "tiêm", "và", "cho", "thú", "y", "an", "toàn"]  # NOT terms stay
    assert kept_f == [fold(w) for w in kept_x]
    assert q.without_subject(["xin", "chào"], ["xin", "chao"]) == (["xin", "chào"], ["xin", "chao"])


def _without_subject_by_brute_force(
    spells: set[str], longest: int, exact: list[str], folded: list[str]
) -> tuple[list[str], list[str]]:
    """The rule stated plainly: at each syllable, remove the longest run (up to ``longest``
    syllables) whose letters spell a term, else keep the syllable."""
    kept_x: list[str] = []
    kept_f: list[str] = []
    i = 0
    while i < len(folded):
        size = next(
            (
                k
                for k in range(min(longest, len(folded) - i), 0, -1)
                if "".join(folded[i : i + k]) in spells
            ),
            0,
        )
        if size:
            i += size
        else:
            kept_x.append(exact[i])
            kept_f.append(folded[i])
            i += 1
    return kept_x, kept_f


@settings(max_examples=300, deadline=None)
@given(
    query=st.sampled_from(['"vac xin"', 'vacxin OR "sat lo"', '"a b c" OR ab', "a AND NOT b"]),
    folded=st.lists(
        st.sampled_from(
            ["vac", "xin", "vacxin", "va", "cxin", "sat", "lo", "a", "b", "ab", "c", "bc", "x"]
        ),
        max_size=14,
    ),
)
def test_without_subject_removes_exactly_the_runs_that_spell_a_term(
    query: str, folded: list[str]
) -> None:
    q = parse_query(query)
    exact = [s.upper() for s in folded]
    spells = {t.joined for t in q.positive}
    longest = max(len(t.syllables) for t in q.positive) + 2
    assert q.without_subject(exact, folded) == _without_subject_by_brute_force(
        spells, longest, exact, folded
    )
