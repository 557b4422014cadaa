"""``/set`` takes the part of a statement as a press officer reads it ("Cập nhật tiếp theo"),
in either language, with or without tones; the internal names keep working; a missing or
unknown part is answered with the choices in plain words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from drafts_flows import draft_in_room, fill
from emulator_fixtures import running_app
from sqlmodel import col, select

from bot.services import press_templates as pt
from scanner.textnorm import fold
from storage.models import Draft


def _holding(lang: str = "vi") -> pt.PressTemplate:
    return pt.PressLibrary().get("holding", lang)


@pytest.mark.parametrize(
    ("typed", "field", "value"),
    [
        ("Cập nhật tiếp theo: 17 giờ 00 hôm nay", "next_update", "17 giờ 00 hôm nay"),
        ("cập nhật tiếp theo 17 giờ 00", "next_update", "17 giờ 00"),
        ("CAP NHAT TIEP THEO 17:00", "next_update", "17:00"),
        ("Next update: 17:00 today", "next_update", "17:00 today"),
        ("next_update 17 giờ", "next_update", "17 giờ"),  # the internal name still works
        ("Số văn bản: 15", "doc_number", "15"),
        ("Điều đã xác minh 52 học sinh đã xuất viện", "facts", "52 học sinh đã xuất viện"),
        ("Người phát ngôn Lê Minh Châu", "spokesperson_name", "Lê Minh Châu"),
        ("Điện thoại: 0243 846 2195", "spokesperson_phone", "0243 846 2195"),
        ("Cập nhật tiếp theo", "next_update", ""),  # named, but no value
    ],
)
def test_a_part_is_found_by_what_people_call_it(typed: str, field: str, value: str) -> None:
    found = _holding().split_field(typed)
    assert found is not None
    assert (found[0].name, found[1]) == (field, value)


def test_words_that_name_no_part_are_not_guessed() -> None:
    assert _holding().split_field("Giờ họp 17:00") is None
    assert _holding().split_field("") is None


@pytest.mark.parametrize("lang", pt.LANGUAGES)
def test_every_built_in_part_has_a_distinct_plain_label(lang: str) -> None:
    """No label is a raw field name, and none shadows another (``/set`` could not tell them)."""
    library = pt.PressLibrary()
    for kind in library.kinds(lang):
        template = library.get(kind, lang)
        for ui in pt.LANGUAGES:
            labels = template.labels(ui)
            assert all("_" not in label for label in labels), (kind, labels)
            folded = [fold(label) for label in labels]
            assert len(set(folded)) == len(folded), (kind, ui, labels)


def test_a_template_without_labels_reads_its_prompts() -> None:
    spec = pt.FieldSpec(
        name="doc_number",
        required=False,
        prompt_vi="Số văn bản (nếu chưa có số thì bỏ qua)",
        prompt_en="Document number (if there is none yet, skip it)",
        sample="15",
    )
    assert (spec.label("vi"), spec.label("en")) == ("Số văn bản", "Document number")


async def test_set_in_plain_vietnamese_in_the_room(make_desk: Any) -> None:
    desk = make_desk("vi")
    app = desk.app()
    em = desk.emulator

    async def say(text: str) -> str:
        sent = em.send_text(desk["drafter"].tg, text, chat_id=desk.room, thread_id=desk.thread)
        answer = await em.wait_for_message(desk.room, thread_id=desk.thread, after=sent.message_id)
        return answer.text or ""

    async with running_app(app):
        await desk.open_topic(app)
        await fill(desk, "drafter", "holding", "vi")
        # No part named: the usage lists the parts in plain words, never internal names.
        usage = await say("/set")
        assert "Cập nhật tiếp theo" in usage and "Số văn bản" in usage, usage
        assert "next_update" not in usage and "doc_number" not in usage, usage
        # An unknown part: the same choices.
        unknown = await say("/set giờ họp 17:00")
        assert "không có mục «giờ»" in unknown and "Cập nhật tiếp theo" in unknown, unknown
        assert "_" not in unknown, unknown
        # A part named but no new text: the usage again, nothing changed.
        assert "Cú pháp: /set" in await say("/set Cập nhật tiếp theo:")
        # The plain label works, tones or none.
        sent = em.send_text(
            desk["drafter"].tg,
            "/set cap nhat tiep theo: 17 giờ 00 hôm nay",
            chat_id=desk.room,
            thread_id=desk.thread,
        )
        second = await draft_in_room(desk, sent.message_id)
        assert "bản 2" in (second.text or "") or any(
            "bản 2" in (m.text or "") for m in desk.room_messages()
        )
    with desk.db.session() as s:
        drafts = s.exec(select(Draft).order_by(col(Draft.version))).all()
    assert [d.version for d in drafts] == [1, 2]
    assert drafts[1].fields["next_update"] == "17 giờ 00 hôm nay"
    assert "17 giờ 00 hôm nay" in drafts[1].body


def test_two_parts_with_one_label_are_refused_when_the_template_is_read(tmp_path: Path) -> None:
    text = """+++
title = "Thông cáo"
[fields.time]
prompt_vi = "Thời gian"
prompt_en = "Time"
[fields.when]
prompt_vi = "Thời gian họp"
prompt_en = "When"
label_vi = "thoi gian"
+++
{{ time }} {{ when }}
"""
    with pytest.raises(pt.PressTemplateError, match="both called 'thoi gian'"):
        pt.parse(text, tmp_path / "vi" / "notice.j2", "vi")
