"""Pure units: the HTML parser and the flood limiter, without HTTP."""

from __future__ import annotations

import pytest

from bot.sandbox.telegram_emulator.errors import ApiError
from bot.sandbox.telegram_emulator.html_entities import parse_html
from bot.sandbox.telegram_emulator.limits import FloodLimiter


def test_entities_use_utf16_offsets_and_all_tags() -> None:
    text, entities = parse_html(
        '😀 <b>đậm</b> <a href="https://x.vn/?a=1&amp;b=2">link</a> '
        '<tg-spoiler>s</tg-spoiler> <span class="tg-spoiler">t</span> '
        '<pre><code class="language-python">x</code></pre> <blockquote expandable>q</blockquote> '
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> <tg-time unix="1700000000" '
        'format="wDT">now</tg-time> &lt;&gt;&amp;&quot;&#39;&#x27;'
    )
    assert text.startswith("😀 đậm link s t x q 👍 now <>&\"''")
    by_type = {e["type"]: e for e in entities}
    assert by_type["bold"] == {"type": "bold", "offset": 3, "length": 3}  # 😀 is 2 UTF-16 units
    assert by_type["text_link"]["url"] == "https://x.vn/?a=1&b=2"
    assert by_type["pre"]["language"] == "python"
    assert "code" not in by_type
    assert by_type["expandable_blockquote"]["length"] == 1
    assert by_type["custom_emoji"]["custom_emoji_id"] == "5368324170671202286"
    assert by_type["date_time"] == {
        "type": "date_time",
        "unix_time": 1700000000,
        "date_time_format": "wDT",
        "offset": by_type["date_time"]["offset"],
        "length": 3,
    }


def test_trims_whitespace_and_shifts_entities() -> None:
    assert parse_html("  <i> a </i>  ") == ("a", [{"type": "italic", "offset": 0, "length": 1}])


@pytest.mark.parametrize(
    "source", ["<B>x</b>", "<STRONG>x</strong>", "<em>x</em>", "<ins>x</ins>", "<del>x</del>"]
)
def test_tag_names_are_case_insensitive_and_aliases_work(source: str) -> None:
    assert len(parse_html(source)[1]) == 1


@pytest.mark.parametrize(
    "source",
    ["<b>x</b", "x</b>", "<b x", "&#0;", "&copy;", "<img src=x>", "<tg-emoji>x</tg-emoji>"],
)
def test_rejections_are_400(source: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_html(source)
    assert caught.value.status == 400
    assert caught.value.description.startswith("Bad Request: can't parse entities: ")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_chat_bucket_allows_burst_of_three_then_one_per_second() -> None:
    clock = Clock()
    limiter = FloodLimiter(clock)
    for _ in range(3):
        assert limiter.retry_after(1, False) is None
        limiter.charge(1, False)
    assert limiter.retry_after(1, False) == 1
    clock.t += 1.0
    assert limiter.retry_after(1, False) is None
    limiter.charge(1, False)
    assert limiter.retry_after(1, False) == 1
    assert limiter.retry_after(2, False) is None  # other chats are unaffected


def test_global_thirty_per_second() -> None:
    clock = Clock()
    limiter = FloodLimiter(clock)
    for chat in range(30):
        assert limiter.retry_after(chat, False) is None
        limiter.charge(chat, False)
        clock.t += 0.01
    assert limiter.retry_after(99, False) == 1
    clock.t += 0.71
    assert limiter.retry_after(99, False) is None


def test_group_twenty_per_minute_with_ceiling_retry_after() -> None:
    clock = Clock()
    limiter = FloodLimiter(clock)
    for _ in range(20):
        assert limiter.retry_after(-5, True) is None
        limiter.charge(-5, True)
        clock.t += 1.5  # slower than the bucket's refill, so only the 60 s window bites
    assert limiter.retry_after(-5, True) == 30  # first send at t=1000, now t=1030
    clock.t += 29.5
    assert limiter.retry_after(-5, True) == 1  # 0.5 s rounds up
    clock.t += 0.5
    assert limiter.retry_after(-5, True) is None


def test_disabled_limiter_never_refuses() -> None:
    limiter = FloodLimiter(Clock(), enabled=False)
    for _ in range(100):
        limiter.charge(1, True)
        assert limiter.retry_after(1, True) is None
