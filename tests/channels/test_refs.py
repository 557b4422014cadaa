"""Channel-neutral references: labels that older rows used keep matching, ids stay strings."""

from __future__ import annotations

from bot.channels.refs import ChatRef, PersonRef
from bot.channels.telegram.notifier import chat_id, chat_ref, person_ref, thread_id


def test_person_labels_round_trip_and_keep_the_old_telegram_form() -> None:
    tg = person_ref(7_123_456_789)
    assert str(tg) == "tg:7123456789"  # audit rows and conversation states written before
    assert PersonRef.from_label(str(tg)) == tg
    zalo = PersonRef("zalo", "8a1f:b2")  # a colon inside the id survives
    assert PersonRef.from_label(str(zalo)) == zalo
    assert tg.direct_chat() == ChatRef("telegram", "7123456789")


def test_the_telegram_adapter_maps_ids_both_ways() -> None:
    topic = chat_ref(-1001234, 7)
    assert topic == ChatRef("telegram", "-1001234", "7")
    assert (chat_id(topic), thread_id(topic)) == (-1001234, 7)
    assert chat_id(ChatRef("telegram", "@byt_news")) == "@byt_news"  # a public channel's name
    assert thread_id(chat_ref(-1001234)) is None
