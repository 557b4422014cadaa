"""Headline frames with slots: the third stream family of bench/streams.py (``frames``).

Vietnamese news repeats frames — "Cháy xưởng <loại> ở <khu công nghiệp>, <N> người thoát nạn",
"<Mã CK>: Báo cáo tài chính quý <q> năm <năm>" — across provinces, schools, companies, people,
numbers and dates, each time a different story. Every frame below is written for this
benchmark (no copied text); a story fills one frame's slots, so many distinct stories share a
frame and differ only by a place, a name, a number or a date. Its syndicated copies are edited
the way copy desks do: a tag before the headline ("NÓNG:", "[Ảnh]", the province), an outlet
name after it, capitals, a dropped word, or another headline for the same facts (re-titled); an
outlet tag before the lead, or its last sentence cut. One outlet sends the same masthead line as
the lead of each of its own items (boilerplate).
"""

from __future__ import annotations

import random

PLACES = [
    "Hà Nội", "TP.HCM", "Đà Nẵng", "Hải Phòng", "Cần Thơ", "Quảng Ninh", "Nghệ An", "Thanh Hóa",
    "Thừa Thiên Huế", "Khánh Hòa", "Lâm Đồng", "Đắk Lắk", "Bình Dương", "Đồng Nai", "Quảng Nam",
    "Bắc Ninh", "Hà Tĩnh", "Quảng Bình", "Quảng Trị", "Bình Định", "Phú Yên", "Gia Lai",
    "Kon Tum", "Long An", "Tiền Giang", "An Giang", "Kiên Giang", "Cà Mau", "Sóc Trăng",
    "Thái Nguyên", "Lào Cai", "Yên Bái", "Sơn La", "Hòa Bình", "Nam Định", "Thái Bình",
]  # fmt: skip
DISTRICTS = [
    "Tân Uyên", "Phú Giáo", "Long Thành", "Nhơn Trạch", "Điện Bàn", "Duy Xuyên", "Hương Thủy",
    "Phong Điền", "Cam Lâm", "Diên Khánh", "Bảo Lộc", "Đức Trọng", "Krông Pắc", "Ea Kar",
    "Yên Bình", "Lục Yên", "Văn Chấn", "Mù Cang Chải", "Sa Pa", "Bát Xát", "Mộc Châu",
    "Thuận Châu", "Kỳ Anh", "Hương Khê", "Quỳnh Lưu", "Diễn Châu", "Tĩnh Gia", "Hoằng Hóa",
]  # fmt: skip
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô"]
MIDDLE = ["Văn", "Minh", "Quang", "Thanh", "Đức", "Ngọc", "Hữu"]
GIVEN = [
    "An", "Bình", "Cường", "Dũng", "Giang", "Hải", "Hùng", "Khoa", "Lan", "Long", "Mai",
    "Nam", "Phong", "Quân", "Sơn", "Tâm", "Thảo", "Trung", "Tuấn", "Việt", "Yến", "Hạnh",
]  # fmt: skip
SCHOOL_KINDS = ["Tiểu học", "THCS", "THPT", "Mầm non"]
COMPANY_NAMES = [
    "Minh Long", "Tân Phát", "An Khang", "Đại Việt", "Hưng Thịnh", "Phú Gia", "Sao Mai",
    "Hoàng Long", "Thành Công", "Bảo Tín", "Nam Sơn", "Kim Ngân", "Trường Hải", "Việt Úc",
]  # fmt: skip
KINDS = ["gỗ", "nhựa", "may mặc", "giấy", "bao bì", "nệm mút", "sơn", "linh kiện"]
PASSES = ["Hải Vân", "Khánh Lê", "Prenn", "Cù Mông", "Lò Xo", "Mang Yang", "Bảo Lộc", "Ô Quy Hồ"]

# (headline variants, lead): {kw} is the topic's keyword; the other names are slots.
TOPIC_FRAMES: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "negative": [
        (
            (
                "{place}: {n} người nhập viện, dân bức xúc vì {kw}",
                "Bức xúc vì {kw}, {n} người ở {place} phải nhập viện",
            ),
            "Ngày {date}, UBND huyện {district} ({place}) cho biết đã ghi nhận {n} trường hợp "
            "phải nhập viện liên quan đến {kw}. Người dân phản ánh tình trạng kéo dài nhiều ngày "
            "nhưng chưa được xử lý dứt điểm.",
        ),
        (
            (
                "Phát hiện sai phạm về {kw} tại Công ty {company} ở {place}",
                "Công ty {company} bị phạt {money} triệu đồng vì sai phạm {kw}",
            ),
            "Đoàn kiểm tra liên ngành tỉnh {place} vừa xử phạt Công ty {company} {money} triệu "
            "đồng do vi phạm nghiêm trọng quy định về {kw}. Lãnh đạo doanh nghiệp chưa đưa ra "
            "lời giải thích về những sai phạm này.",
        ),
        (
            (
                "Phụ huynh Trường {school} ở {place} bức xúc chuyện {kw}",
                "Hàng trăm phụ huynh lo lắng vì {kw} tại Trường {school} ({place})",
            ),
            "Sáng {date}, hơn {n} phụ huynh Trường {school}, huyện {district}, tỉnh {place} đến "
            "phản ánh những bất cập kéo dài liên quan đến {kw}. Nhà trường cho biết đang báo "
            "cáo sự việc lên cấp trên.",
        ),
        (
            (
                "Khởi tố {person} gây thất thoát {money} tỷ đồng liên quan {kw}",
                "Bắt {person} trong vụ án {kw} ở {place}",
            ),
            "Ngày {date}, Công an tỉnh {place} khởi tố bị can đối với {person}, nguyên giám đốc "
            "Công ty {company}, về hành vi vi phạm quy định gây thất thoát {money} tỷ đồng liên "
            "quan đến {kw}. Vụ án đang được mở rộng điều tra.",
        ),
        (
            (
                "Huyện {district} ({place}): {n} hộ dân khốn đốn vì {kw}",
                "{n} hộ dân huyện {district} kêu cứu vì {kw}",
            ),
            "Nhiều ngày qua, {n} hộ dân ở huyện {district}, tỉnh {place} rơi vào cảnh khó khăn, "
            "thiệt hại nặng do {kw}. Chính quyền địa phương thừa nhận chưa có giải pháp khắc "
            "phục.",
        ),
        (
            (
                "Cảnh báo nguy hiểm từ {kw} ở {place}, {n} người nguy kịch",
                "{n} người nguy kịch, {place} cảnh báo khẩn về {kw}",
            ),
            "Tối {date}, Sở Y tế tỉnh {place} phát đi cảnh báo sau khi {n} người ở huyện "
            "{district} rơi vào tình trạng nguy kịch do {kw}. Nhiều gia đình hoang mang, lo sợ.",
        ),
    ],
    "neutral": [
        (
            (
                "{place} họp bàn giải pháp về {kw} trong tháng {month}",
                "UBND tỉnh {place} chỉ đạo rà soát {kw}",
            ),
            "Chiều {date}, {person}, Phó Chủ tịch UBND tỉnh {place}, chủ trì cuộc họp với "
            "các sở, ngành về tình hình {kw}. Các đơn vị báo cáo kết quả trước ngày {date2}.",
        ),
        (
            (
                "{code}: Công bố thông tin về {kw} năm {year}",
                "Công ty {company} công bố kế hoạch liên quan đến {kw} năm {year}",
            ),
            "Công ty {company} (mã chứng khoán {code}) vừa công bố tài liệu gửi cổ đông, trong "
            "đó nêu kế hoạch thực hiện các nội dung về {kw} trong năm {year} tại {place}.",
        ),
        (
            (
                "Trường {school} ({place}) trao đổi với phụ huynh về {kw}",
                "Phụ huynh Trường {school} được thông tin về {kw}",
            ),
            "Tối {date}, Trường {school} ở huyện {district}, tỉnh {place} tổ chức buổi gặp mặt "
            "{n} phụ huynh để trao đổi về {kw} trong năm học mới.",
        ),
        (
            (
                "Sở Y tế {place} thông tin về {kw} ngày {date}",
                "Cập nhật tình hình {kw} tại {place} ngày {date}",
            ),
            "Theo báo cáo của Sở Y tế tỉnh {place}, tính đến {hour}h ngày {date}, địa phương ghi "
            "nhận {n} trường hợp liên quan đến {kw}, tập trung ở huyện {district}.",
        ),
        (
            (
                "Huyện {district} ({place}) lấy ý kiến người dân về {kw}",
                "Người dân huyện {district} góp ý về {kw}",
            ),
            "Từ ngày {date}, UBND huyện {district}, tỉnh {place} lấy ý kiến người dân về phương "
            "án liên quan đến {kw}. Thời gian lấy ý kiến kéo dài {n} ngày.",
        ),
    ],
    "positive": [
        (
            (
                "{place} hỗ trợ {n} hộ dân khắc phục {kw}",
                "{n} hộ dân {place} được hỗ trợ kịp thời về {kw}",
            ),
            "Ngày {date}, UBND huyện {district} ({place}) trao {money} triệu đồng hỗ trợ {n} hộ "
            "dân bị ảnh hưởng bởi {kw}. Người dân phấn khởi, cảm ơn sự quan tâm kịp thời của "
            "chính quyền.",
        ),
        (
            (
                "Công ty {company} được khen thưởng vì làm tốt công tác {kw}",
                "Khen thưởng Công ty {company} ở {place} về {kw}",
            ),
            "UBND tỉnh {place} vừa tặng bằng khen cho Công ty {company} vì thành tích xuất sắc "
            "trong công tác {kw} năm {year}, góp phần ổn định đời sống người dân.",
        ),
        (
            (
                "Trường {school} ({place}) thành công với mô hình về {kw}",
                "Mô hình hay về {kw} của Trường {school}",
            ),
            "Sau {n} tháng triển khai, mô hình về {kw} của Trường {school}, huyện {district}, "
            "tỉnh {place} mang lại hiệu quả rõ rệt, được phụ huynh đánh giá cao.",
        ),
        (
            (
                "{person} được vinh danh vì đóng góp cho công tác {kw}",
                "Vinh danh {person} ở {place} về {kw}",
            ),
            "Ngày {date}, {person}, cán bộ huyện {district}, tỉnh {place}, được trao danh hiệu "
            "điển hình tiên tiến nhờ nhiều sáng kiến hiệu quả trong công tác {kw}.",
        ),
        (
            (
                "{place} kiểm soát tốt {kw}, {n} bệnh nhân khỏi bệnh",
                "Tin vui: {n} bệnh nhân ở {place} khỏi bệnh, {kw} được kiểm soát",
            ),
            "Sở Y tế tỉnh {place} cho biết đến ngày {date} đã có thêm {n} bệnh nhân khỏi bệnh, "
            "tình hình {kw} tại huyện {district} được kiểm soát tốt.",
        ),
    ],
}
# Everything else the feeds carry (no topic keyword): the frames of a day's news.
OTHER_FRAMES: list[tuple[tuple[str, ...], str]] = [
    (
        (
            "Cháy xưởng {kind} ở huyện {district}, {n} công nhân thoát nạn",
            "{place}: Cháy lớn tại xưởng {kind}, {n} người kịp thoát ra",
        ),
        "Khoảng {hour}h ngày {date}, một xưởng sản xuất {kind} của Công ty {company} ở huyện "
        "{district}, tỉnh {place} bốc cháy dữ dội. {n} công nhân đang làm việc đã kịp thoát ra "
        "ngoài an toàn.",
    ),
    (
        (
            "Xe khách lật trên đèo {pass}, {n} người bị thương",
            "Lật xe khách ở đèo {pass}, {n} hành khách nhập viện",
        ),
        "Rạng sáng {date}, xe khách chở {n2} hành khách lưu thông qua đèo {pass} (tỉnh {place}) "
        "bất ngờ lật nghiêng, khiến {n} người bị thương, được đưa đi cấp cứu.",
    ),
    (
        (
            "{code}: Báo cáo tài chính quý {q} năm {year}",
            "Công ty {company} báo lãi {money} tỷ đồng trong quý {q}",
        ),
        "Công ty {company} (mã {code}) công bố báo cáo tài chính quý {q} năm {year} với doanh "
        "thu {money} tỷ đồng, tăng {n} % so với cùng kỳ.",
    ),
    (
        (
            "Kết quả xổ số {place} ngày {date}",
            "Xổ số {place} {date}: giải đặc biệt {ticket}",
        ),
        "Kết quả xổ số kiến thiết {place} mở thưởng ngày {date}: giải đặc biệt {ticket}, giải "
        "nhất {ticket2}.",
    ),
    (
        (
            "Huyện {district} ({place}) khánh thành cầu dân sinh trị giá {money} tỷ đồng",
            "Khánh thành cầu {money} tỷ đồng ở huyện {district}",
        ),
        "Sáng {date}, UBND huyện {district}, tỉnh {place} khánh thành cây cầu dân sinh có tổng "
        "vốn đầu tư {money} tỷ đồng, giúp {n} hộ dân đi lại thuận tiện.",
    ),
    (
        (
            "Trường {school} ({place}) khai giảng năm học mới với {n} học sinh",
            "{n} học sinh Trường {school} vui ngày khai giảng",
        ),
        "Sáng {date}, Trường {school} ở huyện {district}, tỉnh {place} tổ chức lễ khai giảng "
        "năm học mới, đón {n} học sinh.",
    ),
    (
        (
            "{person} nhận chức Giám đốc Sở Tài chính {place}",
            "Bổ nhiệm {person} làm Giám đốc Sở Tài chính tỉnh {place}",
        ),
        "Chiều {date}, UBND tỉnh {place} công bố quyết định bổ nhiệm {person}, nguyên Phó Giám "
        "đốc, giữ chức Giám đốc Sở Tài chính từ ngày {date2}.",
    ),
    (
        (
            "Tai nạn trên quốc lộ {road} qua {place}, {n} người tử vong",
            "{place}: Xe tải tông xe máy trên quốc lộ {road}, {n} người chết",
        ),
        "Khoảng {hour}h ngày {date}, trên quốc lộ {road} đoạn qua huyện {district}, tỉnh {place} "
        "xảy ra vụ va chạm giữa xe tải và xe máy khiến {n} người tử vong tại chỗ.",
    ),
]
TITLE_TAGS = ["NÓNG: ", "[Ảnh] ", "Video: ", "Clip: ", "TRỰC TIẾP: "]
MASTHEAD = "Tin tức mới nhất trong ngày, cập nhật liên tục 24/7, đọc nhanh trên mọi thiết bị."


def _person(rng: random.Random) -> str:
    """ "ông Nguyễn Văn Hùng" or "bà Trần Thị Lan"."""
    if rng.random() < 0.5:
        return f"bà {rng.choice(SURNAMES)} Thị {rng.choice(GIVEN)}"
    return f"ông {rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def slots(rng: random.Random) -> dict[str, str]:
    """One story's slot values."""
    day, month = rng.randrange(1, 29), rng.randrange(1, 13)
    letters = "ABCDEGHKLMNPQSTV"
    return {
        "place": rng.choice(PLACES),
        "district": rng.choice(DISTRICTS),
        "school": f"{rng.choice(SCHOOL_KINDS)} {rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
        "company": rng.choice(COMPANY_NAMES),
        "code": "".join(rng.choice(letters) for _ in range(3)),
        "person": _person(rng),
        "n": str(rng.randrange(2, 60)),
        "n2": str(rng.randrange(20, 50)),
        "money": str(rng.randrange(10, 900)),
        "date": f"{day}/{month}",
        "date2": f"{rng.randrange(1, 29)}/{rng.randrange(1, 13)}",
        "month": str(month),
        "year": str(rng.choice([2025, 2026, 2027])),
        "hour": str(rng.randrange(5, 23)),
        "q": str(rng.randrange(1, 5)),
        "kind": rng.choice(KINDS),
        "pass": rng.choice(PASSES),
        "road": str(rng.choice([1, 14, 19, 20, 27, 32, 279])) + rng.choice(["", "A", "B", "C"]),
        "ticket": str(rng.randrange(100000, 999999)),
        "ticket2": str(rng.randrange(10000, 99999)),
    }


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class FrameMaker:
    """Stories from frames (the ``frames`` family); the interface of ``streams._Maker``."""

    def __init__(self, rng: random.Random, masthead_outlet: str) -> None:
        self.rng = rng
        self.masthead_outlet = masthead_outlet
        self.n = 0
        self._variants: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {}

    def story(self, keyword: str, label: str, extra: str = "") -> tuple[str, str]:
        frames = TOPIC_FRAMES[label] if keyword else OTHER_FRAMES
        titles, lead = self.rng.choice(frames)
        values = slots(self.rng) | {"kw": keyword}
        self.n += 1
        title = _capital(titles[0].format(**values))
        if extra:
            title = f"{title}: {extra}"
        text = lead.format(**values)
        self._variants[title] = (titles, values | {"extra": extra})
        return title, text

    def first_lead(self, outlet: str, lead: str) -> str:
        """The lead the first outlet prints: its masthead line if it uses one."""
        return MASTHEAD if outlet == self.masthead_outlet else lead

    def copy(self, title: str, lead: str, outlet: str) -> tuple[str, str]:
        """A syndicated copy: headline decorated, re-titled or cut; lead tagged or cut."""
        rng = self.rng
        titles, values = self._variants[title]
        choice = rng.random()
        new = title
        if choice < 0.25 and len(titles) > 1:
            new = _capital(titles[1].format(**values))  # re-titled, same facts
            if values["extra"]:
                new = f"{new}: {values['extra']}"
        elif choice < 0.45:
            new = rng.choice(TITLE_TAGS) + title
        elif choice < 0.55:
            new = f"{values['place']}: {title}"
        elif choice < 0.65:
            new = title.upper()
        elif choice < 0.8:
            words = title.split()
            if len(words) > 7:
                del words[rng.randrange(2, len(words) - 1)]
            new = " ".join(words)
        if rng.random() < 0.3:
            new += f" - {outlet}"
        r = rng.random()
        if r < 0.35:
            lead = f"({outlet}) - {lead}"
        elif r < 0.65:
            sentences = lead.split(". ")
            if len(sentences) > 1:
                lead = ". ".join(sentences[:-1]) + "."
            else:
                words = lead.split()
                lead = " ".join(words[: max(12, len(words) * 2 // 3)])
        return new, lead
