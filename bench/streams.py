"""Seeded generator of labelled news streams for the trend benchmark.

A stream is 14 days of items over a few topics, in the JSON-lines format of ``trends replay``,
with ground truth on every line (``story``, ``topics``, ``sentiment``) and a list of labelled
events. Headlines are spliced from real Vietnamese headlines (DANeS, CC BY 4.0, read from
``scanner/data`` or ``../shared/data``; nothing is copied into the stream file's repository):
the first half of one headline and the second half of another with the same sentiment label, with
the topic's keyword in between, so thousands of distinct stories can be made from 1,200 headlines
without the scanner's dedupe merging them.

What is in a stream:

* background: per topic, Poisson stories per bucket following a local office-day profile
  (quiet nights, morning peak, slower weekends) with day-to-day gamma noise; some stories are
  syndicated to 1-3 other outlets within the hour; a topic-specific negative/positive mix;
* events that must alert: ``spike`` (many stories in 1-2 buckets), ``step`` (rate jumps for hours),
  ``ramp`` (rate rises linearly for hours), ``negative_turn`` / ``positive_turn`` (the share turns
  at unchanged volume, for at least 6 h and until the topic is expected to have published
  ``TURN_MIN_STORIES`` stories, at most 24 h; a topic-day too quiet for that gets a volume event
  instead), ``negative_burst`` (the negative side of a step or ramp whose extra stories are
  mostly negative: the same window is labelled as a volume event and a negative event). The
  extra stories of every other burst follow the topic's own sentiment mix;
* noise that must not: ``syndicated`` (one story re-published by 10+ outlets with small edits and
  tracking parameters), ``night_flood`` (one outlet posting 10-25 stories at night), ``quiet``
  (hours without stories).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.frames import FrameMaker

BUCKET = timedelta(minutes=15)
LOCAL = timezone(timedelta(hours=7))
START = datetime(2026, 3, 2, 0, 0, tzinfo=LOCAL)  # a Monday, local midnight

TOPICS: list[tuple[str, str, str, float]] = [
    # name, query, keyword injected, peak stories per bucket
    ("Ngộ độc thực phẩm", '"ngộ độc thực phẩm"', "ngộ độc thực phẩm", 1.2),
    ("Sốt xuất huyết", '"sốt xuất huyết"', "sốt xuất huyết", 0.8),
    ("Cấp nước", '"cấp nước"', "cấp nước", 0.6),
    ("Học phí", '"học phí"', "học phí", 1.5),
    ("Sạt lở", '"sạt lở"', "sạt lở", 0.5),
    ("Giá xăng", '"giá xăng"', "giá xăng", 2.0),
]
OUTLETS = [
    "VnExpress",
    "Tuổi Trẻ",
    "Thanh Niên",
    "Dân trí",
    "Vietnamnet",
    "Zing",
    "Lao Động",
    "Người Lao Động",
    "Tiền Phong",
    "Sài Gòn Giải Phóng",
    "Nhân Dân",
    "VTV",
    "VOV",
    "Pháp Luật TP.HCM",
    "Kênh14",
    "Soha",
    "24h",
    "Báo Mới",
    "Vietnamplus",
    "Công an nhân dân",
]
PROVINCES = [
    "Hà Nội",
    "TP.HCM",
    "Đà Nẵng",
    "Hải Phòng",
    "Cần Thơ",
    "Quảng Ninh",
    "Nghệ An",
    "Thanh Hóa",
    "Huế",
    "Khánh Hòa",
    "Lâm Đồng",
    "Đắk Lắk",
    "Bình Dương",
    "Đồng Nai",
    "Quảng Nam",
    "Bắc Ninh",
]
EVENT_WORDS = [
    "khẩn cấp",
    "bất thường",
    "điều tra",
    "nghi vấn",
    "lô hàng",
    "sự cố",
    "cảnh báo",
    "phong tỏa",
]
# stories per bucket relative to the peak, by local hour (0-23)
HOUR_PROFILE = [
    0.08,
    0.05,
    0.04,
    0.04,
    0.06,
    0.15,
    0.4,
    0.8,
    1.0,
    1.0,
    0.95,
    0.85,
    0.6,
    0.7,
    0.85,
    0.9,
    0.85,
    0.7,
    0.5,
    0.45,
    0.4,
    0.3,
    0.2,
    0.12,
]
WEEKEND = 0.55


@dataclass(frozen=True)
class Style:
    """How a family of streams is built.

    ``office`` is the benchmark's own family (everything above). ``evening`` is built
    differently — two daily peaks with the larger in the evening, livelier nights and
    weekends, noisier days, more syndication, and bursts whose extra stories carry their event
    word only sometimes — to check that the detectors generalise; no detector setting is chosen
    on it. ``frames`` has the office day but builds every story from a headline frame with
    slots (bench/frames.py), so many distinct stories share a frame and differ by a place, a
    name, a number or a date, as Vietnamese news does; its copies are decorated, cut and
    re-titled. It checks that story clustering keeps such stories apart.
    """

    hour_profile: tuple[float, ...]
    weekend: float
    daily_shape: float  # gamma shape of the day-to-day level (CV = 1 / sqrt(shape))
    copy_share: float  # share of stories syndicated to 1-3 other outlets
    event_word_share: float  # share of a burst's extra stories that carry its event word
    #: Stories from headline frames with slots (bench/frames.py) instead of spliced headlines.
    frames: bool = False


EVENING_PROFILE = (
    0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.35, 0.5, 0.65, 0.75, 0.8, 0.9,
    0.85, 0.7, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0, 0.95, 0.7, 0.45, 0.25,
)  # fmt: skip
STYLES: dict[str, Style] = {
    "office": Style(tuple(HOUR_PROFILE), WEEKEND, 8.0, 0.3, 1.0),
    "evening": Style(EVENING_PROFILE, 0.8, 4.0, 0.45, 0.6),
    "frames": Style(tuple(HOUR_PROFILE), WEEKEND, 6.0, 0.45, 1.0, frames=True),
}
#: The outlet of the frames family that prints one masthead line as the lead of its own items.
MASTHEAD_OUTLET = "Báo Mới"
# A sentiment turn is planned only where the topic is expected to publish at least this many
# stories over the turn (else the slot gets a volume event): see docs/trends.md, "Benchmark".
TURN_MIN_STORIES = 24.0
# Share of step and ramp bursts whose extra stories are mostly negative (labelled as a volume
# event and a ``negative_burst`` event); other bursts follow the topic's sentiment norm.
NEGATIVE_BURST_SHARE = 0.4


@dataclass(frozen=True)
class Event:
    topic: str
    # spike | step | ramp | negative_turn | positive_turn | negative_burst (the negative side
    # of a step or ramp whose stories are mostly negative) | syndicated | night_flood | quiet
    kind: str
    start: str  # ISO-8601
    end: str

    @property
    def family(self) -> str:
        return {
            "negative_turn": "negative",
            "negative_burst": "negative",
            "positive_turn": "positive",
        }.get(self.kind, "volume")

    @property
    def must_alert(self) -> bool:
        return self.kind not in ("syndicated", "night_flood", "quiet")


def load_headlines(keep: Callable[[str], bool] | None = None) -> dict[str, list[tuple[str, str]]]:
    """(title, lead) pairs of the bundled DANeS items by sentiment label (a missing lead is the
    title again); with ``keep``, only the items whose title it accepts."""
    from scanner.sentiment import load_training_data

    data = load_training_data()
    out: dict[str, list[tuple[str, str]]] = {"negative": [], "neutral": [], "positive": []}
    for title, lead, label in zip(data.titles, data.leads, data.labels, strict=True):
        if keep is None or keep(title):
            out[label].append((title, lead or title))
    return out


class _Maker:
    def __init__(
        self, rng: random.Random, pool: dict[str, list[tuple[str, str]]] | None = None
    ) -> None:
        self.rng = rng
        self.pool = pool or load_headlines()
        self.n = 0

    def _half(self, text: str, first: bool) -> str:
        words = text.split()
        cut = max(1, len(words) // 2)
        return " ".join(words[:cut] if first else words[cut:])

    def story(self, keyword: str, label: str, extra: str = "") -> tuple[str, str]:
        a, b = self.rng.choice(self.pool[label]), self.rng.choice(self.pool[label])
        c = self.rng.choice(self.pool[label])
        place = self.rng.choice(PROVINCES)
        self.n += 1
        title = f"{self._half(a[0], True)} {keyword} {extra} {self._half(b[0], False)} ({place})"
        lead = f"{self._half(a[1], True)} {self._half(c[1], False)}"
        return " ".join(title.split()), " ".join(lead.split())

    def first_lead(self, outlet: str, lead: str) -> str:
        """The lead the story's first outlet prints (spliced stories: the lead itself)."""
        return lead

    def copy(self, title: str, lead: str, outlet: str) -> tuple[str, str]:
        """A syndicated copy: the headline edited, the lead as it was."""
        return self.edit(title, outlet), lead

    def edit(self, title: str, outlet: str) -> str:
        """A syndicated copy: small edits a copy desk makes."""
        words = title.split()
        choice = self.rng.random()
        if choice < 0.3 and len(words) > 6:
            del words[self.rng.randrange(1, len(words) - 1)]
        elif choice < 0.6:
            words = [w.rstrip(",.:") for w in words]
        text = " ".join(words)
        return text + (f" - {outlet}" if self.rng.random() < 0.3 else "")


def _slug(n: int, outlet: str, rng: random.Random, tracking: bool = False) -> str:
    host = outlet.lower().replace(" ", "").replace(".", "")
    url = f"https://{host}.example.vn/tin-{n}-{rng.randrange(10**6)}.html"
    if tracking:
        url += rng.choice(
            ["?utm_source=facebook&utm_medium=social", "?fbclid=IwAR0x", "?zarsrc=30", "#comments"]
        )
    return url


def generate(
    seed: int = 1,
    days: int = 14,
    scale: float = 1.0,
    other_per_bucket: float = 11.0,
    style: str = "office",
    headlines: dict[str, list[tuple[str, str]]] | None = None,
) -> tuple[list[dict[str, Any]], list[Event], list[tuple[str, str, str, float]]]:
    """Items (sorted), events (incl. noise), and the topics used: (name, query, keyword, peak).

    ``headlines``: the (title, lead) pools by label to splice from (default: all of DANeS)."""
    look = STYLES[style]
    rng = random.Random(seed)
    maker: _Maker | FrameMaker = (
        FrameMaker(rng, MASTHEAD_OUTLET) if look.frames else _Maker(rng, headlines)
    )
    items: list[dict[str, Any]] = []
    events: list[Event] = []
    n_buckets = int(timedelta(days=days) / BUCKET)
    topics = [(n, q, k, p * scale) for n, q, k, p in TOPICS]

    def add(
        at: datetime,
        outlet: str,
        title: str,
        lead: str,
        story: str,
        topic: str | None,
        label: str,
        tracking: bool = False,
    ) -> None:
        items.append(
            {
                "published_at": at.isoformat(),
                "outlet": outlet,
                "url": _slug(len(items), outlet, rng, tracking),
                "title": title,
                "lead": lead,
                "story": story,
                "topics": [topic] if topic else [],
                "sentiment": label,
            }
        )

    def publish(
        at: datetime,
        topic: str,
        keyword: str,
        label: str,
        extra: str = "",
        outlet: str | None = None,
        copies: int | None = None,
    ) -> None:
        title, lead = maker.story(keyword, label, extra)
        sid = f"s{maker.n}"
        first = outlet or rng.choice(OUTLETS)
        add(at, first, title, maker.first_lead(first, lead), sid, topic, label)
        n_copies = (
            copies
            if copies is not None
            else (rng.choice([1, 1, 2, 3]) if rng.random() < look.copy_share else 0)
        )
        for other in rng.sample([o for o in OUTLETS if o != first], n_copies):
            when = at + timedelta(minutes=rng.uniform(5, 60))
            copy_title, copy_lead = maker.copy(title, lead, other)
            add(
                when,
                other,
                copy_title,
                copy_lead,
                sid,
                topic,
                label,
                tracking=rng.random() < 0.5,
            )

    def label_for(neg: float, pos: float) -> str:
        r = rng.random()
        return "negative" if r < neg else "positive" if r < neg + pos else "neutral"

    # Per-topic norms and day-to-day level, drawn first: the plan needs the expected volume.
    norms = {name: (rng.uniform(0.1, 0.25), rng.uniform(0.15, 0.3)) for name, *_ in topics}
    shape = look.daily_shape
    daily = {
        name: [rng.gammavariate(shape, 1 / shape) for _ in range(days + 1)] for name, *_ in topics
    }
    peaks = {name: peak for name, _q, _k, peak in topics}

    def base_rate(name: str, b: int) -> float:
        at = START + BUCKET * b
        weekend = look.weekend if at.weekday() >= 5 else 1.0
        return peaks[name] * look.hour_profile[at.hour] * weekend * daily[name][b // 96]

    # Plan the events: per topic, alternate must-alert events and noise, 14-30 h apart, after day 2.
    plan: dict[str, list[tuple[str, int, int, float]]] = {}
    kinds = [
        "spike",
        "step",
        "ramp",
        "negative_turn",
        "positive_turn",
        "syndicated",
        "night_flood",
        "quiet",
    ]
    for name, *_ in topics:
        t = int(timedelta(days=2, hours=rng.uniform(0, 12)) / BUCKET)
        plan[name] = []
        while True:
            kind = rng.choice(kinds)
            day_start = (t // 96) * 96
            tone = 0.0  # negative share of a burst's extra stories (0: the topic's norm)
            if kind in ("negative_turn", "positive_turn"):
                # A turn is a change in how a running story is covered. It starts in the working
                # day (07:00-11:00), lasts at least 6 h, and goes on until the topic is expected
                # to have published TURN_MIN_STORIES stories (at most 24 h): on a quiet topic a
                # turn takes the day to show. A topic-day too quiet even for that cannot carry a
                # detectable turn (nor, for a press office, a meaningful one): the slot gets a
                # volume event instead.
                t = day_start + 96 + rng.randrange(28, 44)
                length, expected = 0, 0.0
                while (
                    length < 96
                    and t + length < n_buckets
                    and (length < 24 or expected < TURN_MIN_STORIES)
                ):
                    expected += base_rate(name, t + length)
                    length += 1
                if expected < TURN_MIN_STORIES:
                    kind = rng.choice(["spike", "step", "ramp"])
            if kind == "night_flood":
                t = day_start + 96 + rng.randrange(4, 14)  # 01:00-03:30 the next night
                length = rng.randrange(2, 5)
            elif kind in ("negative_turn", "positive_turn"):
                pass
            elif kind == "step":
                t = day_start + 96 + rng.randrange(32, 44)  # 08:00-11:00
                length = rng.randrange(16, 32)
            elif kind == "ramp":
                t = day_start + 96 + rng.randrange(28, 48)
                length = rng.randrange(12, 24)
            elif kind == "quiet":
                t = day_start + 96 + rng.randrange(36, 56)
                length = rng.randrange(16, 40)
            elif kind == "syndicated":
                t = day_start + 96 + rng.randrange(24, 80)
                length = 4
            else:  # spike
                t = day_start + 96 + rng.randrange(0, 92)
                length = rng.randrange(1, 3)
            if kind in ("step", "ramp") and rng.random() < NEGATIVE_BURST_SHARE:
                tone = rng.uniform(0.6, 0.85)  # a crisis breaking: mostly negative coverage
            if t + length >= n_buckets - 4:
                break
            plan[name].append((kind, t, length, tone))
            start, end = START + BUCKET * t, START + BUCKET * (t + length)
            t += length + rng.randrange(8, 40)
            events.append(Event(name, kind, start.isoformat(), end.isoformat()))
            if tone:
                # The burst's stories are mostly negative, so the topic's negative share does
                # rise: the truth says so (a volume event and a negative event, same window).
                events.append(Event(name, "negative_burst", start.isoformat(), end.isoformat()))

    for name, _query, keyword, _peak in topics:
        neg0, pos0 = norms[name]
        turn_share = {t0: rng.uniform(0.55, 0.8) for _k, t0, _l, _t in plan[name]}
        for b in range(n_buckets):
            at = START + BUCKET * b
            rate = base_rate(name, b)
            neg, pos = neg0, pos0
            extra_rate, extra_word = 0.0, ""
            extra_neg = neg0
            extra_outlets = OUTLETS
            for kind, t0, length, tone in plan[name]:
                if not t0 <= b < t0 + length:
                    continue
                k = b - t0
                word = EVENT_WORDS[t0 % len(EVENT_WORDS)]
                if tone:
                    extra_neg = tone
                if kind == "quiet":
                    rate = 0.0
                elif kind == "negative_turn":
                    neg, pos = turn_share[t0], 0.05
                elif kind == "positive_turn":
                    pos, neg = turn_share[t0] + 0.05, 0.03
                elif kind == "spike":
                    extra_rate, extra_word = rng.uniform(6, 12) / length, word
                elif kind == "step":
                    extra_rate, extra_word = 2.5 + (t0 % 5) * 0.4, word
                elif kind == "ramp":
                    extra_rate, extra_word = 0.4 + 4.0 * (k + 1) / length, word
                elif kind == "syndicated" and k == 0:
                    publish(
                        at + timedelta(minutes=2),
                        name,
                        keyword,
                        label_for(neg, pos),
                        copies=rng.randrange(10, 15),
                    )
                elif kind == "night_flood":
                    flooder = OUTLETS[t0 % len(OUTLETS)]
                    for _ in range(rng.randrange(4, 9)):
                        publish(
                            at + timedelta(minutes=rng.uniform(0, 15)),
                            name,
                            keyword,
                            label_for(neg, pos),
                            outlet=flooder,
                            copies=0,
                        )
            for _ in range(_poisson(rng, rate)):
                publish(
                    at + timedelta(minutes=rng.uniform(0, 15)), name, keyword, label_for(neg, pos)
                )
            for _ in range(_poisson(rng, extra_rate)):
                outlet = rng.choice(extra_outlets)
                publish(
                    at + timedelta(minutes=rng.uniform(0, 15)),
                    name,
                    keyword,
                    label_for(extra_neg, pos0 * (1.0 - extra_neg) / (1.0 - neg0)),
                    extra=extra_word
                    if look.event_word_share >= 1.0 or rng.random() < look.event_word_share
                    else "",
                    outlet=outlet,
                )
    # Everything else the feeds carry: real headlines that match no topic.
    for b in range(n_buckets):
        at = START + BUCKET * b
        for _ in range(_poisson(rng, other_per_bucket * (look.hour_profile[at.hour] + 0.2))):
            label = rng.choice(["negative", "neutral", "neutral", "positive"])
            title, lead = maker.story("", label)
            when = at + timedelta(minutes=rng.uniform(0, 15))
            outlet = rng.choice(OUTLETS)
            add(
                when,
                outlet,
                title,
                maker.first_lead(outlet, lead),
                f"o{len(items)}",
                None,
                label,
            )
    end = START + BUCKET * n_buckets
    items = [it for it in items if datetime.fromisoformat(it["published_at"]) < end]
    items.sort(key=lambda it: it["published_at"])
    return items, events, topics


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def config_toml(topics: list[tuple[str, str, str, float]]) -> str:
    """A config naming the stream's topics (one agency, medium sensitivity)."""
    lines = ["[[agencies]]", 'code = "BENCH"', 'name = "Benchmark"', ""]
    for name, query, _k, _p in topics:
        lines += [
            "[[topics]]",
            'agency = "BENCH"',
            f"name = {json.dumps(name, ensure_ascii=False)}",
            f"query = '{query}'",
            "",
        ]
    return "\n".join(lines)


def write_stream(path: Path, items: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps(it, ensure_ascii=False) + "\n")


def events_json(events: list[Event]) -> list[dict[str, Any]]:
    return [asdict(e) | {"family": e.family, "must_alert": e.must_alert} for e in events]
