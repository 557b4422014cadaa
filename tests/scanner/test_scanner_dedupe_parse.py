"""Canonical URLs, near-duplicate stories (and their rebuild), and feed parsing edge cases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scanner_feeds import NOW, SYNDICATED_LEAD, SYNDICATED_TITLES, atom, rss
from sqlalchemy import select

from scanner.dedupe import StoryIndex, canonical_url
from scanner.parse import FeedError, html_to_text, parse_feed
from scanner.pipeline import Incoming, Processor
from scanner.sentiment import LexiconScorer
from storage.db import Database
from storage.models import Story


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://VnExpress.NET:443/a/b/?utm_source=fb&b=2&a=1&fbclid=x#top",
            "https://vnexpress.net/a/b?a=1&b=2",
        ),
        ("http://x.vn:80", "http://x.vn/"),
        ("http://x.vn:8080/p/?gclid=1", "http://x.vn:8080/p"),
        ("https://x.vn/p?utm_medium=a&utm_campaign=b", "https://x.vn/p"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_index_clusters_copies_and_keeps_distinct_stories_apart() -> None:
    index = StoryIndex()
    now = NOW
    index.add(1, index.fingerprint(SYNDICATED_TITLES[0], SYNDICATED_LEAD), now)
    for title in SYNDICATED_TITLES[1:]:
        assert index.find(index.fingerprint(title, SYNDICATED_LEAD.replace("Chiều", "Tối"))) == 1
    # Same boilerplate lead but a different headline and subject: not the same story.
    assert (
        index.find(index.fingerprint("Giá vàng tăng mạnh phiên sáng", "Thị trường vàng biến động"))
        is None
    )
    # Outside the window copies start a new story.
    assert index.prune(now + timedelta(hours=73)) == 1
    assert index.find(index.fingerprint(SYNDICATED_TITLES[1], SYNDICATED_LEAD)) is None


def test_story_index_is_rebuilt_from_the_database(db: Database) -> None:
    def item(n: int) -> Incoming:
        from scanner.parse import FeedItem

        return Incoming(
            FeedItem(SYNDICATED_TITLES[n % 5], f"https://o{n}.vn/x", SYNDICATED_LEAD, NOW),
            f"o{n}",
            None,
        )

    with db.session() as s:
        first = Processor.from_db(s, NOW, scorer=LexiconScorer()).process(
            s, [item(0), item(1)], NOW
        )
    assert len(first.new_stories) == 1
    # A "restart": a fresh processor rebuilt from rows joins later copies to the same story.
    later = NOW + timedelta(hours=2)
    with db.session() as s:
        processor = Processor.from_db(s, later, scorer=LexiconScorer())
        assert len(processor.index) == 2
        second = processor.process(s, [item(2), item(3)], later)
    assert second.new_stories == []
    with db.session() as s:
        story = s.execute(select(Story)).scalar_one()
    assert (story.article_count, story.outlet_count) == (4, 4)


def test_parse_rss_atom_and_html() -> None:
    feed = parse_feed(
        rss([("Tiêu đề <b>đậm</b>", "https://a.vn/1", "<p>Một</p><p>Hai &amp; ba</p>")]),
        fetched_at=NOW,
    )
    assert [(i.title, i.summary) for i in feed.items] == [("Tiêu đề đậm", "Một Hai & ba")]
    entries = parse_feed(atom([("Atom", "https://a.vn/2", "x")]), fetched_at=NOW).items
    assert entries[0].published_at == datetime(2026, 11, 2, 0, 15, tzinfo=UTC)


def test_missing_date_falls_back_to_fetch_time() -> None:
    body = b'<rss version="2.0"><channel><title>t</title><item><title>A</title><link>https://a.vn/a</link></item></channel></rss>'
    assert parse_feed(body, fetched_at=NOW).items[0].published_at == NOW


def test_broken_xml_without_entries_is_an_error() -> None:
    with pytest.raises(FeedError):
        parse_feed(b"<rss><channel><item><title>oops", fetched_at=NOW)
    with pytest.raises(FeedError):
        parse_feed(b"Service Unavailable", fetched_at=NOW)


def test_rss_090_and_100() -> None:
    rdf = (
        b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        b'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><title>t</title></channel>'
        b'<item rdf:about="https://a.vn/r"><title>RSS 1.0</title><link>https://a.vn/r</link></item></rdf:RDF>'
    )
    assert [i.title for i in parse_feed(rdf, fetched_at=NOW).items] == ["RSS 1.0"]
    rss091 = b'<rss version="0.91"><channel><title>t</title><item><title>Old</title><link>https://a.vn/o</link></item></channel></rss>'
    assert [i.title for i in parse_feed(rss091, fetched_at=NOW).items] == ["Old"]


def test_html_to_text_drops_scripts() -> None:
    assert html_to_text("<div>a<script>evil()</script><br/>b</div>") == "a b"


def test_same_headline_with_a_tagged_cut_lead_is_one_story() -> None:
    """The title key: a copy under the same headline whose lead was tagged and cut still
    clusters; a lead rewritten into another one does not (issue 15: headlines alone never
    merge)."""
    index = StoryIndex()
    title = "Ngành đường sắt dự kiến mở lại nhiều tuyến tàu khách từ ngày 7/10"
    first = index.fingerprint(title, "Tổng công ty Đường sắt Việt Nam cho biết sẽ chạy lại tàu.")
    index.add(1, first, NOW)
    copy = index.fingerprint(title.upper(), "(Dân trí) - Tổng công ty Đường sắt Việt Nam cho biết")
    assert copy.title_key == first.title_key != ""
    assert index.find(copy) == 1
    rewritten = index.fingerprint(
        title, "(Dân trí) - Sau thời gian dài tạm dừng vì dịch bệnh, các đoàn tàu Bắc Nam"
    )
    assert index.find(rewritten) is None
    other = index.fingerprint("Ngành hàng không mở lại đường bay nội địa từ ngày 10/10", "Khác")
    assert index.find(other) is None
    short = index.fingerprint("Video", "Clip")  # too short to be a title key: no false merges
    assert short.title_key == ""


def test_bench_corpus_clusters_copies_and_keeps_stories_apart(db: Database) -> None:
    """On the bench corpus (real DANeS headlines, syndicated copies edited as outlets do),
    copies cluster and different stories stay apart: pairwise precision and recall."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.scanner_corpus import cluster_quality, generate_with_truth

    corpus = generate_with_truth(1500, seed=11)
    truth = {item.url: story for item, _o, story in corpus}
    with db.session() as s:
        processor = Processor([], scorer=LexiconScorer())
        result = processor.process(s, [Incoming(item, outlet) for item, outlet, _ in corpus], NOW)
    predicted = [a.story_id or 0 for a in result.articles]
    precision, recall = cluster_quality(predicted, [truth[a.url] for a in result.articles])
    assert precision >= 0.9 and recall >= 0.95, (precision, recall)


@pytest.mark.parametrize(
    "text",
    [
        "Vắc-xin COVID-19 ĐỒNG NAI…“x”",
        "A\u0301o  x\u0300-y",  # combining marks (not NFC)
        "\u0301abc",
        "a\u3000b\u00a0c\u2009d\x1ce",  # exotic whitespace
        "",
        "Hà Nội: 3 người tử vong, 12 người bị thương (Dân trí) - ",
    ],
)
def test_tokens_equal_syllables_and_fold(text: str) -> None:
    from scanner.textnorm import fold, syllables, tokens

    for _ in range(2):  # second round from the per-word cache
        exact_tokens, folded_tokens = tokens(text)
        assert exact_tokens == syllables(text, folded=False)
        assert folded_tokens == syllables(text)
        assert " ".join(folded_tokens) == fold(text)


@pytest.mark.parametrize(
    "query", ["", "a", "a=", "=b", "&&a=1&", "a=1=2", "x;y=1", "a&b", "q=a+b", "q=%C3%A1&b=1"]
)
def test_query_pairs_equal_parse_qsl(query: str) -> None:
    from urllib.parse import parse_qsl

    from scanner.dedupe import _query_pairs

    assert _query_pairs(query) == parse_qsl(query, keep_blank_values=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text("abđạz|9😀", min_size=1, max_size=4), max_size=12))
def test_pair_hashes_are_the_joined_pairs_crc32(tokens: list[str]) -> None:
    """A pair's CRC32 continued from its first syllable's is the CRC32 of the pair joined by
    a space and encoded, first seen or remembered; the shingles' hashes are the distinct
    pairs' (single syllables too under 4 of them), repeats aside."""
    import itertools
    import zlib

    from scanner.dedupe import _pair_hashes

    joined = [zlib.crc32(f"{a} {b}".encode()) for a, b in itertools.pairwise(tokens)]
    for _ in range(2):  # then from the remembered syllables
        assert _pair_hashes(tokens) == joined
    middle = len(tokens) // 2
    content, lead = tokens[:middle], tokens[middle:]
    marked = [*content, "|", *lead]
    shingles = {" ".join(pair) for pair in itertools.pairwise(marked)}
    if len(shingles) < 4:
        shingles |= {t for t in marked if t != "|"}
    expected = {zlib.crc32(s.encode()) for s in shingles or ["-"]}
    assert set(StoryIndex()._shingles(["-"], content, lead)) == expected


def test_copies_in_one_call_share_one_fingerprint() -> None:
    """Items of the same headline and lead get one fingerprint, made once; every item's is
    the one it gets alone."""
    import numpy as np

    from scanner.textnorm import syllables

    texts = [
        (
            "Cháy xưởng gỗ ở KCN Tân Uyên, 3 người thoát nạn",
            "(Dân trí) - Sáng 4/10, một xưởng gỗ cháy.",
        ),
        (
            "Hà Nội: mưa lớn gây ngập nhiều tuyến phố",
            "Mưa lớn từ 6h sáng làm ngập phố Nguyễn Trãi.",
        ),
    ]
    items = [(t, s, syllables(t), syllables(s)) for t, s in [texts[0], texts[1], texts[0]]]
    index = StoryIndex()
    made = index.syllable_fingerprints(items)
    assert made[0] is made[2] and made[0] is not made[1]
    for item, fp in zip(items, made, strict=True):
        alone = index.syllable_fingerprints([item])[0]
        assert np.array_equal(alone.signature, fp.signature) and alone.bands == fp.bands


def test_mersenne_reduction_equals_numpy_modulo() -> None:
    """The MinHash permutation's shift-and-add modulo agrees with ``%`` on every uint64,
    including the values where one subtraction of the prime is needed."""
    import numpy as np

    from scanner.dedupe import _MERSENNE, _mod_mersenne

    prime = (1 << 61) - 1
    edges = [0, 1, prime - 1, prime, prime + 1, 2 * prime, 2 * prime + 6, (1 << 64) - 1]
    edges += [k * (1 << 61) + prime - d for k in range(8) for d in range(9)]
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            np.array(edges, dtype=np.uint64),
            rng.integers(0, 1 << 64, size=100_000, dtype=np.uint64, endpoint=False),
        ]
    )
    reduced = _mod_mersenne(values.copy(), out=np.empty_like(values))
    assert np.array_equal(reduced, values % _MERSENNE)


_URL_CHARS = "aZ09.-_~/?#@:[]%+=&; \t\nÁđ\u00a0\u2100ｆ"
_URL_PIECES = st.sampled_from(
    [
        *("http", "HTTPS", "ftp", "x+y.z", "://", ":", "//", "/", "?", "#", "@", ":8080"),
        *(":99999", "[::1]", "%41", "báo.vn", "Dân-Trí.VN.", "\u2100b", "ｅｘ.vn", "a=1&b="),
        *("utm_x=1", " "),
    ]
)


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(_URL_PIECES | st.text(_URL_CHARS, max_size=4), max_size=10).map("".join)
    | st.text(_URL_CHARS, max_size=30)
)
def test_plain_url_split_equals_urlsplit(url: str) -> None:
    """The regex fast path of canonical_url returns exactly urlsplit's parts, or steps aside."""
    from scanner.dedupe import _split, _split_urllib

    try:
        expected = _split_urllib(url)
    except ValueError as exc:  # urlsplit refuses it: so must the fast path (by deferring)
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            _split(url)
        return
    assert _split(url) == expected


def test_plain_url_split_is_taken_for_feed_links() -> None:
    from scanner.dedupe import _PLAIN_URL

    for url in ("https://vnexpress.net/a-1.html?x=1#c", "https://báodântrí.vn/tin/0.html"):
        assert _PLAIN_URL.match(url) is not None
