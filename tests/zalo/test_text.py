"""Fitting text into Zalo's 2,000-character messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.zalo import TEXT_LIMIT, MessageTooLong, check_text, split_text


def test_check_text_takes_exactly_the_limit_and_refuses_one_more() -> None:
    assert check_text("á" * TEXT_LIMIT) == "á" * TEXT_LIMIT
    with pytest.raises(MessageTooLong, match="2001 characters"):
        check_text("á" * (TEXT_LIMIT + 1))
    with pytest.raises(ValueError, match="empty"):
        check_text("  \n")


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    para = "Đoạn một. " * 150  # 1500 characters
    text = f"{para.strip()}\n\n{para.strip()}"
    assert split_text(text) == [para.strip(), para.strip()]
    words = " ".join(["cảnh-báo"] * 500)  # 4499 characters, no line breaks
    parts = split_text(words)
    assert all(len(p) <= TEXT_LIMIT for p in parts)
    assert all(not p.startswith(" ") and "cảnh-báo" in p for p in parts)
    assert " ".join(parts) == words


def test_a_word_longer_than_a_message_is_cut_inside() -> None:
    assert split_text("x" * 4500) == ["x" * 2000, "x" * 2000, "x" * 500]


@given(st.text(st.sampled_from(list("ab \n")), max_size=300), st.integers(5, 40))
def test_split_keeps_every_word_in_order(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(0 < len(p) <= limit and p.strip() for p in parts)
    assert "".join(text.split()) == "".join("".join(parts).split())
