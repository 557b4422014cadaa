"""The bundled news day: fourteen days of background headlines, then one day with a crisis.

``data/newsday.jsonl`` holds one item per line: ``id``, ``kind`` (``danes`` — a real headline from
the DANeS corpus, CC BY 4.0 — or ``written`` — a crisis item written for the sandbox), ``outlet``
(one of :data:`OUTLETS`), ``minute`` (minutes after local midnight of the news day; negative for
the history), ``title``, ``lead``, ``sentiment``; DANeS items keep their original ``url``, written
items have a ``slug`` (and ``tracking`` parameters on syndicated copies) and a ``story`` key.

Nothing here knows about Telegram or the web page: the feed server, the history seeding and the
tests all read the day through :class:`NewsDay`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

DATA_DIR = Path(__file__).parent / "data"
NEWSDAY_FILE = DATA_DIR / "newsday.jsonl"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY_STARTS_AT = time(6, 0)  # the simulated clock starts the news day at 06:00 local
FEED_SIZE = 40  # items per feed, like a real outlet's RSS


@dataclass(frozen=True)
class Outlet:
    slug: str
    name: str
    description: str


# Fictional outlets: the headlines are real (DANeS), the mastheads are not, so no real newspaper
# is credited with an item it never ran.
OUTLETS: tuple[Outlet, ...] = (
    Outlet("thoisu", "Thời Sự Hôm Nay", "Tin thời sự, xã hội, pháp luật"),
    Outlet("tinnhanh", "Tin Nhanh Việt", "Tin tổng hợp 24 giờ"),
    Outlet("yte", "Nhịp Sống Y Tế", "Sức khỏe, y tế, dịch bệnh"),
    Outlet("doisong", "Đời Sống Phố", "Đời sống, giải trí, cộng đồng"),
    Outlet("kinhte", "Kinh Tế & Thị Trường", "Kinh tế, tài chính, chứng khoán"),
)
OUTLET_BY_SLUG = {outlet.slug: outlet for outlet in OUTLETS}


@dataclass(frozen=True)
class NewsItem:
    id: str
    kind: str  # "danes" | "written"
    outlet: str
    minute: int
    title: str
    lead: str
    sentiment: str
    url: str | None = None
    slug: str | None = None
    tracking: str | None = None
    story: str | None = None

    def published_at(self, day: date) -> datetime:
        """Aware UTC publication time on the news day ``day`` (local calendar date)."""
        midnight = datetime.combine(day, time(0, 0), tzinfo=TZ)
        return (midnight + timedelta(minutes=self.minute)).astimezone(UTC)

    def link(self, base_url: str) -> str:
        """The item's link: the original article for DANeS items, the local page otherwise."""
        if self.url:
            return self.url
        link = f"{base_url}/news/{self.outlet}/{self.slug}"
        return f"{link}?{self.tracking}" if self.tracking else link


class NewsDay:
    """The items of the bundled day placed on a calendar date."""

    def __init__(self, items: Sequence[NewsItem], day: date) -> None:
        self.items = sorted(items, key=lambda item: (item.minute, item.id))
        self.day = day

    @classmethod
    def load(cls, day: date | None = None, path: Path = NEWSDAY_FILE) -> NewsDay:
        items = [NewsItem(**json.loads(line)) for line in _lines(path)]
        return cls(items, day or datetime.now(TZ).date())

    @property
    def start(self) -> datetime:
        """When the simulated clock starts: 06:00 local on the news day."""
        return datetime.combine(self.day, DAY_STARTS_AT, tzinfo=TZ).astimezone(UTC)

    @property
    def history_start(self) -> datetime:
        return min(self.published_at(item) for item in self.items)

    def published_at(self, item: NewsItem) -> datetime:
        return item.published_at(self.day)

    def history(self) -> list[NewsItem]:
        """Items published before the day starts (seeded into the database, not served)."""
        return [item for item in self.items if self.published_at(item) < self.start]

    def published_by(self, now: datetime, outlet: str | None = None) -> list[NewsItem]:
        """Items whose publication time is ≤ ``now`` (of one outlet), oldest first."""
        return [
            item
            for item in self.items
            if self.published_at(item) <= now and (outlet is None or item.outlet == outlet)
        ]

    def by_slug(self, outlet: str, slug: str) -> NewsItem | None:
        for item in self.items:
            if item.outlet == outlet and item.slug == slug:
                return item
        return None

    def crisis_items(self) -> list[NewsItem]:
        return [item for item in self.items if item.kind == "written"]

    def first_crisis_at(self) -> datetime:
        return min(self.published_at(item) for item in self.crisis_items())


def _lines(path: Path) -> Iterable[str]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield line


def rss(outlet: Outlet, items: Sequence[NewsItem], day: NewsDay, base_url: str) -> str:
    """An RSS 2.0 document with the newest :data:`FEED_SIZE` of ``items``, newest first."""
    from email.utils import format_datetime
    from xml.sax.saxutils import escape

    newest = sorted(items, key=lambda item: (item.minute, item.id), reverse=True)[:FEED_SIZE]
    build = format_datetime(day.published_at(newest[0])) if newest else None
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(outlet.name)}</title>",
        f"<link>{escape(base_url)}/news/{outlet.slug}</link>",
        f"<description>{escape(outlet.description)}</description>",
        "<language>vi</language>",
    ]
    if build:
        parts.append(f"<lastBuildDate>{build}</lastBuildDate>")
    for item in newest:
        link = escape(item.link(base_url))
        parts.append(
            "<item>"
            f"<title>{escape(item.title)}</title>"
            f"<link>{link}</link>"
            f'<guid isPermaLink="false">{escape(item.id)}</guid>'
            f"<description>{escape(item.lead)}</description>"
            f"<pubDate>{format_datetime(day.published_at(item))}</pubDate>"
            "</item>"
        )
    parts.append("</channel></rss>")
    return "\n".join(parts)
