"""The "what is it about" line and the crisis title: whole words and names as written."""

from __future__ import annotations

from bot.services.phrases import as_written
from bot.templating import Renderer

HEADLINES = [
    "Nghi ngộ độc thực phẩm, 34 học sinh Trường Tiểu học Sao Mai nhập viện. Sau bữa trưa bán "
    "trú, nhiều học sinh nhập viện cấp cứu.",
    "Vụ nghi ngộ độc thực phẩm ở trường Sao Mai: 52 học sinh nhập viện",
    "Phụ huynh bức xúc vụ nghi ngộ độc thực phẩm tại Trường Tiểu học Sao Mai",
    "Bộ Y tế chỉ đạo điều tra vụ nghi ngộ độc thực phẩm. Sở Y tế Hà Nội vào cuộc",
    "Học sinh nhập viện: gia đình bức xúc, tố cáo đơn vị cung cấp suất ăn",
]


def test_syllables_become_the_words_and_names_the_stories_use() -> None:
    """The terms the issue quoted: a school's full name, whole compounds, no lone syllables
    ("đình" is the word "gia đình" here; "hàng" is in no story and says nothing alone)."""
    terms = ["trường sao mai", "vụ nghi ngộ", "sinh nhập viện", "đình", "hàng"]
    assert as_written(terms, HEADLINES) == [
        "Trường Tiểu học Sao Mai",
        "vụ nghi ngộ độc thực phẩm",
        "học sinh nhập viện",
        "gia đình",
    ]


def test_a_syllable_seen_once_is_completed_from_general_news() -> None:
    """One story cannot show that "sinh" belongs to "học sinh"; general Vietnamese news can.
    Numbers and function words are never taken in."""
    once = ["Sáng nay 52 học sinh nhập viện tại Đồng Nai"]
    assert as_written(["sinh nhập viện"], once) == ["học sinh nhập viện"]
    assert as_written(["bộ y"], ["Bộ Y tế vào cuộc"]) == ["Bộ Y tế"]


def test_names_phrases_and_repeats() -> None:
    assert as_written(["sở y tế", "bộ y"], HEADLINES) == ["Sở Y tế Hà Nội", "Bộ Y tế"]
    # A phrase inside another shown phrase is not repeated; one not in the stories is kept.
    assert as_written(["ngộ độc thực phẩm", "vụ nghi ngộ", "vắc-xin"], HEADLINES) == [
        "vụ nghi ngộ độc thực phẩm",
        "vắc-xin",
    ]
    assert as_written(["bữa trưa"], HEADLINES) == ["bữa trưa"]  # never across "," or "."
    assert as_written(["ngộ độc"], []) == ["ngộ độc"]


def test_crisis_title_is_made_of_the_phrases() -> None:
    from types import SimpleNamespace

    f = SimpleNamespace(
        topic=SimpleNamespace(name="An toàn thực phẩm"),
        terms=as_written(["trường sao mai", "vụ nghi ngộ", "sinh nhập viện"], HEADLINES),
    )
    title = Renderer().render("alert_crisis_title", "vi", f=f)
    assert title == (
        "An toàn thực phẩm: Trường Tiểu học Sao Mai, vụ nghi ngộ độc thực phẩm, học sinh nhập viện"
    )


def test_a_function_word_inside_a_compound_is_taken_in() -> None:
    """ "dõi" never stands alone: the term "dõi sát" is shown as "theo dõi sát", and a modal verb
    at the edge ("phải") is trimmed like the other function words."""
    texts = [
        "Sở Y tế đang theo dõi sát vụ ngộ độc; ba em phải nhập viện",
        "Bộ Y tế theo dõi sát tình hình, ba em phải cấp cứu",
    ]
    assert as_written(["dõi sát", "ba em phải"], texts) == ["theo dõi sát", "ba em"]
    assert as_written(["khí ô nhiễm"], ["Hà Nội: không khí ô nhiễm nặng"]) == ["không khí ô nhiễm"]
    # Not a compound: "tại" stays outside.
    assert as_written(["hà nội"], ["Ngộ độc tại Hà Nội"]) == ["Hà Nội"]
