"""A generated corpus of realistic Vietnamese news items for the scanner benches.

Headlines and leads are assembled from subjects, events and places seen in Vietnamese news, with
a share of syndicated copies (reworded headline, same lead) as outlets really produce.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from scanner.parse import FeedItem

SUBJECTS = [
    "Bộ Y tế",
    "UBND TP Hà Nội",
    "Sở GD-ĐT TP.HCM",
    "Công an tỉnh Nghệ An",
    "Bộ Công Thương",
    "Tổng cục Đường bộ",
    "Ngân hàng Nhà nước",
    "UBND tỉnh Quảng Nam",
    "Bộ NN-PTNT",
    "EVN",
]
EVENTS = [
    (
        "khẳng định vắc-xin sởi nhập khẩu an toàn",
        "lô vắc-xin đã được kiểm định chặt chẽ trước khi tiêm chủng",
    ),
    (
        "điều tra vụ ngộ độc thực phẩm tại trường học",
        "hàng chục học sinh phải nhập viện sau bữa trưa bán trú",
    ),
    (
        "khắc phục sự cố sạt lở trên quốc lộ",
        "mưa lớn kéo dài gây sạt lở nghiêm trọng, giao thông bị chia cắt",
    ),
    ("khánh thành cầu vượt giảm ùn tắc", "công trình hoàn thành vượt tiến độ, người dân phấn khởi"),
    (
        "xử phạt cơ sở kinh doanh xăng dầu vi phạm",
        "đoàn kiểm tra phát hiện nhiều sai phạm về chất lượng xăng",
    ),
    (
        "cảnh báo lừa đảo qua mạng xã hội",
        "nhiều người dân bị chiếm đoạt tiền qua các cuộc gọi giả mạo",
    ),
    (
        "tăng trưởng xuất khẩu nông sản khởi sắc",
        "kim ngạch xuất khẩu tăng mạnh so với cùng kỳ năm trước",
    ),
    (
        "chữa cháy kịp thời tại khu dân cư",
        "đám cháy bùng phát lúc rạng sáng, không có thiệt hại về người",
    ),
    (
        "công bố dịch sốt xuất huyết tại một số phường",
        "số ca mắc tăng gấp đôi, ngành y tế tăng cường phun thuốc",
    ),
    (
        "hỗ trợ người dân vùng lũ ổn định cuộc sống",
        "hàng nghìn suất quà được trao tặng cho các hộ bị thiệt hại",
    ),
]
PLACES = [
    "Hà Nội",
    "TP.HCM",
    "Đà Nẵng",
    "Quảng Nam",
    "Nghệ An",
    "Cần Thơ",
    "Lào Cai",
    "Huế",
    "Hải Phòng",
    "Gia Lai",
]
# Words for the per-story detail sentence, so that each original story is its own text (real
# news is not 1,000 recombinations of one template) while copies still share their lead.
DETAIL_WORDS = [
    "người",
    "dân",
    "chính",
    "quyền",
    "địa",
    "phương",
    "cơ",
    "quan",
    "chức",
    "năng",
    "lực",
    "lượng",
    "kiểm",
    "tra",
    "báo",
    "cáo",
    "kết",
    "quả",
    "ngày",
    "hôm",
    "qua",
    "sáng",
    "nay",
    "chiều",
    "tối",
    "tuần",
    "trước",
    "tháng",
    "này",
    "năm",
    "nay",
    "khu",
    "vực",
    "phường",
    "xã",
    "huyện",
    "tỉnh",
    "thành",
    "phố",
    "trung",
    "tâm",
    "bệnh",
    "viện",
    "trường",
    "học",
    "nhà",
    "máy",
    "công",
    "ty",
    "doanh",
    "nghiệp",
    "hộ",
    "gia",
    "đình",
    "cán",
    "bộ",
    "chiến",
    "sĩ",
    "bác",
    "sĩ",
    "giáo",
    "viên",
    "học",
    "sinh",
    "công",
    "nhân",
    "nông",
    "dân",
    "ngư",
    "dân",
    "tiểu",
    "thương",
    "tiếp",
    "nhận",
    "phối",
    "hợp",
    "triển",
    "khai",
    "yêu",
    "cầu",
    "đề",
    "nghị",
    "chỉ",
    "đạo",
    "hướng",
    "dẫn",
    "theo",
    "dõi",
    "giám",
    "sát",
    "xác",
    "minh",
    "đường",
    "dây",
    "nóng",
    "phản",
    "ánh",
    "thông",
    "tin",
    "chính",
    "thức",
    "số",
    "liệu",
    "ban",
    "đầu",
    "hiện",
    "trường",
    "nguyên",
    "nhân",
    "Hoàng",
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Vũ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
    "Minh",
    "Lan",
    "Hùng",
    "Dũng",
    "Tuấn",
    "Hương",
    "Phú",
    "Thọ",
    "Bình",
    "Dương",
    "Long",
    "An",
    "Tây",
    "Ninh",
    "Sóc",
    "Trăng",
    "Kon",
    "Tum",
    "Hà",
    "Giang",
    "Yên",
    "Bái",
    "Thái",
    "Bình",
    "Nam",
    "Định",
]
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


def generate(
    count: int, *, seed: int = 7, copies: float = 0.3, start: datetime | None = None
) -> list[tuple[FeedItem, str]]:
    """(item, outlet) pairs; about ``copies`` of them syndicate an earlier item."""
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 2, tzinfo=UTC)
    out: list[tuple[FeedItem, str]] = []
    for i in range(count):
        published = start + timedelta(seconds=20 * i)
        outlet = rng.choice(OUTLETS)
        if out and rng.random() < copies:
            original, _ = out[rng.randrange(max(0, len(out) - 200), len(out))]
            words = original.title.split()
            title = (
                " ".join(words[1:] + words[:1])
                if rng.random() < 0.5
                else original.title + " - " + outlet
            )
            out.append(
                (
                    FeedItem(
                        title,
                        f"https://{outlet.lower().replace(' ', '')}.vn/{i}",
                        original.summary,
                        published,
                    ),
                    outlet,
                )
            )
            continue
        subject, place = rng.choice(SUBJECTS), rng.choice(PLACES)
        event, lead = rng.choice(EVENTS)
        number = rng.randint(2, 300)
        title = (
            f"{subject} {event} ở {place}: {' '.join(rng.choice(DETAIL_WORDS) for _ in range(4))}"
        )
        detail = " ".join(rng.choice(DETAIL_WORDS) for _ in range(14))
        summary = (
            f"Ngày {rng.randint(1, 28)}/{rng.randint(1, 12)}, {subject.lower()} cho biết {lead} "
            f"tại {place}, với {number} trường hợp được ghi nhận; {detail}."
        )
        out.append(
            (
                FeedItem(
                    title,
                    f"https://{outlet.lower().replace(' ', '')}.vn/{i}?utm_source=rss",
                    summary,
                    published,
                ),
                outlet,
            )
        )
    return out


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
