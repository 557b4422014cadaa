"""Tone per topic: a disaster topic's everyday vocabulary does not read as negative."""

from __future__ import annotations

from datetime import timedelta

import pytest
from scanner_feeds import NOW

from scanner.parse import FeedItem
from scanner.pipeline import Incoming, Processor, load_topics
from scanner.sentiment import LexiconScorer, Scorer, default_scorer
from scanner.tone import everyday_terms, mask
from storage.db import Database
from storage.models import Agency, Topic

PLACES = ["Huế", "Quảng Nam", "Quảng Ngãi", "Hà Tĩnh", "Nghệ An", "Quảng Bình", "Phú Yên"]
WHO = [
    "Học sinh tiểu học",
    "Tiểu thương chợ đầu mối",
    "Công nhân điện lực",
    "Tài xế xe buýt",
    "Nông dân trồng lúa",
    "Bộ đội biên phòng",
    "Đoàn thanh niên",
]
DOING = [
    "nghỉ học, chờ lịch học bù",
    "dời sạp hàng sang khu chợ tạm",
    "kiểm tra trạm biến áp suốt đêm",
    "đổi lộ trình qua đường vành đai",
    "gặt sớm lúa hè thu",
    "giúp dân chuyển đồ đạc lên gác",
    "nấu cơm hộp gửi các hộ vùng trũng",
]
LEADS = [
    "Chính quyền bố trí lực lượng hướng dẫn người dân đi lại an toàn trong mùa lũ lụt.",
    "Ngành giáo dục thông báo lịch học bù sau đợt lũ lụt.",
    "Các tổ công tác trực ở trạm bơm tiêu úng suốt đợt lũ lụt.",
    "Hành khách được nhắn tin báo lộ trình mới trong những ngày lũ lụt.",
    "Hợp tác xã huy động máy gặt đập để kịp trước lũ lụt.",
    "Bản tin cập nhật mỗi ba giờ trong mùa lũ lụt.",
]


def _item(n: int, title: str, lead: str, at: object) -> FeedItem:
    return FeedItem(title, f"https://o{n % 5}.vn/{n}", lead, at)  # type: ignore[arg-type]


def _history(db: Database, processor: Processor) -> None:
    """A week of ordinary flood stories, six distinct ones a day: every one carries "mưa
    lớn" and "ngập"."""
    n = 0
    for day in range(7, 0, -1):
        items = []
        for j, who in enumerate(WHO[:6]):
            place = PLACES[(j + day) % len(PLACES)]
            title = f"{who} {place} {DOING[(j + day) % len(DOING)]} vì mưa lớn, ngập"
            lead = f"{LEADS[(j + 2 * day) % len(LEADS)]} ({place}, {day}/11)"
            items.append(Incoming(_item(n, title, lead, NOW - timedelta(days=day)), f"o{n % 5}"))
            n += 1
        with db.session() as s:
            processor.process(s, items, NOW - timedelta(days=day) + timedelta(minutes=5))


@pytest.mark.parametrize("scorer", [LexiconScorer(), None], ids=["lexicon", "model"])
def test_a_flood_topics_everyday_words_do_not_make_its_stories_negative(
    db: Database, scorer: Scorer | None
) -> None:
    """With the week's flood stories stored, "mưa lớn" and "ngập" (on every one) are the
    topic's everyday vocabulary: an ordinary flood story reads neutral for the topic, while
    deaths still read negative. Before, only "lũ lụt" was removed and both read negative."""
    with db.session() as s:
        agency = Agency(code="BNN", name="Bộ Nông nghiệp")
        s.add(agency)
        s.flush()
        s.add(Topic(agency_id=agency.id or 0, name="Lũ lụt", query='"lũ lụt"'))
    with db.session() as s:
        processor = Processor(load_topics(s), scorer=scorer or default_scorer())
    flood = next(t.id for t in processor.topics if t.name == "Lũ lụt")
    _history(db, processor)
    ordinary = _item(
        900,
        "Lũ lụt ở Phú Yên: mưa lớn, nhiều tuyến phố ngập",
        "Mưa lớn khiến nhiều tuyến phố ngập, xe buýt đổi lộ trình qua các tuyến đường cao hơn.",
        NOW,
    )
    deadly = _item(
        901,
        "Lũ lụt ở Quảng Trị: mưa lớn, 3 người thiệt mạng, 2 người mất tích",
        "Mưa lớn khiến nhiều xã ngập sâu, lực lượng cứu hộ tìm kiếm người mất tích.",
        NOW,
    )
    with db.session() as s:
        result = processor.process(s, [Incoming(ordinary, "o1"), Incoming(deadly, "o2")], NOW)
    assert {"mưa lớn", "ngập"} <= processor.vocabulary.of(flood)
    tone = [link["sentiment_label"] for link in result.link_rows if link["topic_id"] == flood]
    assert tone == ["neutral", "negative"]


def test_everyday_terms_are_frequent_in_the_topic_and_rare_in_general_news() -> None:
    stories = [f"Mưa lớn ở xã {i}, {'người dân' if i % 2 else 'xe'} ngập số {i}" for i in range(40)]
    found = everyday_terms(stories)
    assert {"mưa lớn", "ngập", "người dân"} <= found
    assert "người" not in found  # in half the stories, but in a fifth of all news
    assert everyday_terms(stories[:10]) == frozenset()  # too few stories for a norm
    exact = ["mưa", "lớn", "làm", "3", "người", "thiệt", "mạng", "ngập"]
    kept, folded = mask(exact, [w.upper() for w in exact], found)
    assert kept == ["làm", "3", "người", "thiệt", "mạng"] and folded[0] == "LÀM"
