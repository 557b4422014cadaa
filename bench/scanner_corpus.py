"""A generated corpus of realistic Vietnamese news items for the scanner benches.

Originals are real headlines and leads: the DANeS items bundled in ``scanner/data`` (CC BY 4.0,
DATASET JSC and AIV Group), 1,206 different stories. Beyond those, further originals are drawn
from a syllable bigram chain trained on the same headlines and leads, so they read like
Vietnamese news (vocabulary, lengths, frequent word pairs) without repeating any one story.
A share of items are syndicated copies of a recent original, edited the way Vietnamese outlets
edit: an outlet tag before the lead ("(Dân trí) - "), a place or "NÓNG:" before the headline,
a headline in capitals or without tones, clauses swapped around a colon or a comma, a trailing
sentence of the lead dropped, a word replaced, or a reworded headline over the copied lead.

:func:`generate_with_truth` also returns each item's true story, so the benches measure
clustering precision and recall (:func:`cluster_quality`).
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib.resources import files

from sqlmodel import Session

from scanner.parse import FeedItem
from scanner.textnorm import fold
from storage.models import Agency, Topic

OUTLETS = [
    f"Báo {n}"
    for n in (
        "Tuổi Trẻ",
        "Thanh Niên",
        "VnExpress",
        "Dân Trí",
        "Lao Động",
        "VietNamNet",
        "Người Lao Động",
        "Tiền Phong",
        "Zing",
        "SGGP",
        "Nhân Dân",
        "VTC",
    )
]
TOPICS = [
    ("Vắc-xin", '("vắc-xin" OR vaccine) AND NOT "thú y"'),
    ("Ngộ độc", '"ngộ độc" OR "ngộ độc thực phẩm"'),
    ("Sạt lở", '"sạt lở" OR "lũ quét" OR (mưa lớn AND "giao thông")'),
    ("Cháy nổ", "cháy OR nổ OR hỏa hoạn OR hoả hoạn"),
    ("Xăng dầu", '"xăng dầu" OR "giá xăng"'),
    ("Lừa đảo", '"lừa đảo" OR "chiếm đoạt" OR "giả mạo"'),
    ("Dịch bệnh", '"sốt xuất huyết" OR dịch OR "ổ dịch"'),
    ("Giao thông", '"ùn tắc" OR "cầu vượt" OR "quốc lộ"'),
    ("Nông sản", '"nông sản" AND (xuất khẩu OR giá)'),
    ("Lũ lụt", '"vùng lũ" OR "lũ lụt" OR "ngập lụt"'),
]


def add_topics(session: Session) -> None:
    """The bench's agency and its ten topics, for a fresh database."""
    agency = Agency(code="BYT", name="Bộ Y tế")
    session.add(agency)
    session.flush()
    for name, query in TOPICS:
        session.add(Topic(agency_id=agency.id or 0, name=name, query=query))


@lru_cache(maxsize=1)
def danes() -> tuple[tuple[str, str], ...]:
    """(title, lead) of the bundled DANeS items, in file order."""
    raw = files("scanner.data").joinpath("danes-sentiment-train.jsonl").read_text("utf-8")
    rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    return tuple((r["title"].strip(), (r.get("lead") or "").strip()) for r in rows)


class _Chain:
    """A syllable bigram chain over real headlines or leads (cumulative weights per state)."""

    def __init__(self, texts: list[str]) -> None:
        pairs: dict[str, Counter[str]] = defaultdict(Counter)
        self.lengths = sorted(len(t.split()) for t in texts if t)
        for text in texts:
            words = ["^", *text.split(), "$"]
            for a, b in itertools.pairwise(words):
                pairs[a][b] += 1
        self.table = {
            a: (list(c), list(itertools.accumulate(c.values()))) for a, c in pairs.items()
        }

    def sample(self, rng: random.Random) -> str:
        target = self.lengths[rng.randrange(len(self.lengths))]
        words: list[str] = []
        state = "^"
        while len(words) < target * 2:
            choices, cumulative = self.table[state]
            state = choices[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
            if state == "$":
                if len(words) >= max(4, target // 2):
                    break
                state = "^"
                continue
            words.append(state)
        return " ".join(words)


_SEEN_SPAN = 5


@lru_cache(maxsize=1)
def _real_spans() -> frozenset[tuple[str, ...]]:
    """Every run of five syllables of a real headline (folded)."""
    spans = set()
    for title, _lead in danes():
        words = fold(title).split()
        spans.update(tuple(words[i : i + _SEEN_SPAN]) for i in range(len(words) - _SEEN_SPAN + 1))
    return frozenset(spans)


def _fresh_title(chain: _Chain, rng: random.Random) -> str:
    """A chain headline that copies no five-syllable run of a real one: on rare words the
    chain has one path and would otherwise reproduce a real headline — a false "copy"."""
    seen = _real_spans()
    title = chain.sample(rng)
    for _ in range(30):
        words = fold(title).split()
        runs = {tuple(words[i : i + _SEEN_SPAN]) for i in range(len(words) - _SEEN_SPAN + 1)}
        if seen.isdisjoint(runs):
            break
        title = chain.sample(rng)
    return title[:1].upper() + title[1:]


@lru_cache(maxsize=1)
def _chains() -> tuple[_Chain, _Chain]:
    items = danes()
    return _Chain([t for t, _l in items]), _Chain([ld for _t, ld in items if ld])


_LEAD_TAGS = ["(Dân trí) - ", "(PLO)- ", "(NLĐO) - ", "TTO - ", "(Chinhphu.vn) - ", "VOV.VN - "]
_TITLE_TAGS = ["NÓNG: ", "Hà Nội: ", "TP.HCM: ", "Clip: ", "Video: ", "[Ảnh] "]
_SYNONYMS = {
    "Bắt": "Bắt giữ",
    "bắt": "bắt giữ",
    "tăng": "tăng mạnh",
    "giảm": "giảm sâu",
    "Hà Nội": "Thủ đô",
    "TP.HCM": "TP Hồ Chí Minh",
    "người": "người dân",
}


def _edit_copy(title: str, lead: str, rng: random.Random, outlet: str) -> tuple[str, str]:
    """One outlet's copy of (title, lead), with the small edits syndication brings."""
    roll = rng.random()
    if roll < 0.15:
        title = rng.choice(_TITLE_TAGS) + title
    elif roll < 0.25:
        title = title.upper()
    elif roll < 0.30:
        title = fold(title).capitalize()  # some aggregators drop the tones
    elif roll < 0.45:
        for sep in (": ", ", "):
            if sep in title:
                a, b = title.split(sep, 1)
                title = f"{b[:1].upper()}{b[1:]}{sep}{a[:1].lower()}{a[1:]}"
                break
    elif roll < 0.60:
        for word, other in _SYNONYMS.items():
            if f" {word} " in f" {title} ":
                title = f" {title} ".replace(f" {word} ", f" {other} ", 1).strip()
                break
    elif roll < 0.70:
        title = f"{title} - {outlet}"
    # else (30 %): the headline kept as is
    lead_roll = rng.random()
    if lead_roll < 0.35:
        lead = rng.choice(_LEAD_TAGS) + lead
    elif lead_roll < 0.55 and ". " in lead:
        lead = lead.rsplit(". ", 1)[0] + "."
    return title, lead


def generate_with_truth(
    count: int, *, seed: int = 7, copies: float = 0.3, start: datetime | None = None
) -> list[tuple[FeedItem, str, int]]:
    """(item, outlet, true story number) triples; about ``copies`` of them are syndicated copies.

    Originals come from DANeS first (in a seeded random order), then from the bigram chains.
    A copy copies one of the last 200 originals. (A copy whose outlet and text happen to equal
    an earlier item's is an exact duplicate that the pipeline drops; compare by URL.)
    """
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 2, tzinfo=UTC)
    real = list(danes())
    rng.shuffle(real)
    title_chain, lead_chain = _chains()
    originals: list[tuple[str, str, int]] = []  # (title, lead, story)
    out: list[tuple[FeedItem, str, int]] = []
    for i in range(count):
        published = start + timedelta(seconds=20 * i)
        outlet = rng.choice(OUTLETS)
        slug = outlet.lower().replace(" ", "")
        if originals and rng.random() < copies:
            title, lead, story = originals[
                rng.randrange(max(0, len(originals) - 200), len(originals))
            ]
            title, lead = _edit_copy(title, lead, rng, outlet)
            url = f"https://{slug}.vn/tin/{i}.html"
        else:
            story = len(originals)
            if story < len(real):
                title, lead = real[story]
            else:
                title = _fresh_title(title_chain, rng)
                lead = lead_chain.sample(rng) if rng.random() < 0.9 else ""
            originals.append((title, lead, story))
            url = f"https://{slug}.vn/tin/{i}.html?utm_source=rss&utm_medium=feed"
        out.append((FeedItem(title, url, lead, published), outlet, story))
    return out


def generate(
    count: int, *, seed: int = 7, copies: float = 0.3, start: datetime | None = None
) -> list[tuple[FeedItem, str]]:
    """(item, outlet) pairs; about ``copies`` of them syndicate an earlier item."""
    return [
        (item, outlet)
        for item, outlet, _story in generate_with_truth(
            count, seed=seed, copies=copies, start=start
        )
    ]


def cluster_quality(predicted: list[int], truth: list[int]) -> tuple[float, float]:
    """Pairwise precision and recall of a clustering against the true stories.

    Precision: of the pairs of articles put in one story, the share that are copies of one
    story; recall: of the pairs that are copies of one story, the share put together.
    """

    def pairs(counter: Counter[object]) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    together = pairs(Counter(predicted))
    same = pairs(Counter(truth))
    both = pairs(Counter(zip(predicted, truth, strict=True)))
    precision = both / together if together else 1.0
    recall = both / same if same else 1.0
    return precision, recall


def rss_document(items: list[FeedItem]) -> bytes:
    from email.utils import format_datetime
    from xml.sax.saxutils import escape

    body = "".join(
        f"<item><title>{escape(i.title)}</title><link>{escape(i.url)}</link>"
        f"<description>{escape('<p>' + i.summary + '</p>')}</description>"
        f"<pubDate>{format_datetime(i.published_at)}</pubDate><guid>{escape(i.url)}</guid></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Tin</title>'
        f"<link>https://x.vn</link><description>d</description>{body}</channel></rss>"
    ).encode()
