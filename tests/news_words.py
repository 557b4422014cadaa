"""Short Vietnamese flood-news phrases for tests that need text that reads like news but
matches no topic of theirs, and is rare in general news."""

WORDS = [
    "Hà Giang cuốn trôi cầu treo",
    "Lào Cai sơ tán trăm hộ dân",
    "Yên Bái chia cắt quốc lộ",
    "Sơn La mất điện diện rộng",
    "Điện Biên trường học đóng cửa",
    "Lai Châu thiệt hại hoa màu",
    "Cao Bằng cứu hộ xuyên đêm",
    "Bắc Kạn cảnh báo khẩn",
    "Tuyên Quang hồ chứa xả lũ",
    "Hòa Bình tìm kiếm người mất tích",
    "Thái Nguyên đường sạt nghiêm trọng",
]
SYLLABLES = sorted({w for phrase in WORDS for w in phrase.split()})
