"""Headlines of one developing food-poisoning incident at a primary school, and quiet background
stories on the same topic: the feed data of the crash matrix (bench/crash_matrix.py) and of the
scan-to-phone test (tests/alerts/test_scan_to_phone.py), kept in one place.

The burst titles are distinct stories (different facts and wording), as a real developing crisis
produces them, so the scanner files them as many stories, not as copies of one.
"""

from __future__ import annotations

BACKGROUND = [
    "Hà Nội tăng cường kiểm tra an toàn thực phẩm dịp cuối năm",
    "Bộ Y tế hướng dẫn bảo đảm an toàn thực phẩm tại bếp ăn tập thể",
    "TP.HCM lấy mẫu kiểm nghiệm an toàn thực phẩm ở chợ đầu mối",
    "Đà Nẵng cấp giấy chứng nhận an toàn thực phẩm cho cơ sở nhỏ lẻ",
    "Cần Thơ tập huấn an toàn thực phẩm cho tiểu thương",
    "Hải Phòng công bố kết quả thanh tra an toàn thực phẩm quý III",
]
BURST = [
    "Hơn 40 học sinh Trường Tiểu học Sao Mai nhập viện sau bữa trưa bán trú",
    "Phụ huynh vây cổng trường đòi làm rõ vụ ngộ độc tập thể",
    "Sở Y tế lấy mẫu thức ăn tại bếp ăn Trường Sao Mai để xét nghiệm",
    "Bệnh viện Nhi tiếp nhận thêm 12 ca nghi ngộ độc thực phẩm",
    "Công ty cung cấp suất ăn cho trường bị đình chỉ hoạt động",
    "Chủ tịch quận chỉ đạo khẩn trương điều tra nguyên nhân ngộ độc",
    "Nhiều trường học khác tạm dừng dùng suất ăn của cùng nhà cung cấp",
    "Ba học sinh phải chuyển tuyến trên vì ngộ độc nặng",
    "Phụ huynh bức xúc vì nhà trường chậm thông tin về vụ ngộ độc",
    "Công an vào cuộc xác minh vụ ngộ độc thực phẩm ở trường tiểu học",
    "Chuyên gia cảnh báo nguy cơ ngộ độc thực phẩm tại bếp ăn bán trú",
    "Bộ Y tế cử đoàn công tác hỗ trợ điều trị các học sinh ngộ độc",
    "Kết quả xét nghiệm ban đầu phát hiện vi khuẩn trong mẫu cơm gà",
    "Hiệu trưởng xin lỗi phụ huynh sau vụ ngộ độc thực phẩm",
    "Quận rà soát toàn bộ bếp ăn trường học sau vụ ngộ độc",
]
