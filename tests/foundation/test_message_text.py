"""What a press officer reads: every line of every message template stays on its own line, and
every command has a real description in both languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

import handlers  # noqa: F401  (importing the handlers registers their commands)
from bot.services.commands import commands_for_role
from bot.templating import LANGUAGES, TEMPLATES_ROOT, Renderer
from storage.models import Role

# A block tag closing a line: with ``trim_blocks`` Jinja swallows the newline after it.
_LINE_END_TAG = re.compile(r"\{%-?(?P<body>[^%]*?)(?P<plus>\+?)%\}\s*$")
_TAGS = re.compile(r"\{%.*?%\}|\{#.*?#\}")


def _run_on_lines(path_text: str) -> list[int]:
    """Line numbers whose text ends in a block tag that would swallow the line break.

    ``trim_blocks`` removes the newline after ``{% ... %}``; a line that prints text and ends in
    such a tag therefore runs into the next line ("Đang xử lýCơ quan"). Such a line must end in
    ``+%}``, which keeps the newline.
    """
    lines = path_text.split("\n")
    bad = []
    for number, line in enumerate(lines[:-1], start=1):
        match = _LINE_END_TAG.search(line)
        if match is None or match["plus"] or match["body"].strip().startswith("set "):
            continue
        printed = _TAGS.sub("", line[: match.start()]).strip()
        rest = _TAGS.sub("", "\n".join(lines[number:])).strip()  # text still to come
        if printed and lines[number].strip() and rest:
            bad.append(number)
    return bad


def test_no_template_line_runs_into_the_next() -> None:
    bad = []
    for path in sorted(TEMPLATES_ROOT.glob("**/*.j2")):
        for number in _run_on_lines(path.read_text(encoding="utf-8")):
            bad.append(f"{path.relative_to(TEMPLATES_ROOT)}:{number}")
    assert not bad, bad


def test_the_checker_sees_a_swallowed_line_break() -> None:
    """The rule above matches what Jinja actually renders."""
    source = "{% if a %}Đang xử lý{% endif %}\nCơ quan: X"
    env = Renderer()._envs["vi"]
    assert env.from_string(source).render(a=True) == "Đang xử lýCơ quan: X"
    assert _run_on_lines(source) == [1]
    kept = source.replace("endif %}", "endif +%}")
    assert env.from_string(kept).render(a=True) == "Đang xử lý\nCơ quan: X"
    assert _run_on_lines(kept) == []


NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_rendered_messages_keep_their_lines(lang: str) -> None:
    """The three messages the issue quoted, rendered with sample data."""
    r = Renderer()
    topic = SimpleNamespace(name="Dịch bệnh")
    day = SimpleNamespace(topic=topic, stories=12, negative_share=0.0, alerts=0)
    digest = r.render("digest", lang, day=NOW, days=[day, day])
    assert [line.startswith("•") for line in digest.splitlines()[1:]] == [True, True], digest
    opened = SimpleNamespace(
        crisis_id=3,
        title="Ngộ độc",
        deadline_at=NOW,
        room_ready=True,
        invite_link="https://t.me/+abc",
        room_url="https://t.me/c/1/2",
        invited=2,
        room_error=None,
        unknown=["an"],
        missing_rights=[],
    )
    text = r.render("crisis_opened", lang, o=opened)
    lines = text.splitlines()
    assert any(line.endswith("</a>") for line in lines), text
    assert lines[-1].startswith(("Không tìm thấy", "Not found")), text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_command_has_a_description(lang: str) -> None:
    """/help and the command menu describe every command a role may use, /draft included."""
    r = Renderer()
    names = commands_for_role(Role.ADMIN)
    assert "draft" in names
    for name in names:
        text = r.render("help_command", lang, key=name)
        assert text != name and len(text) > 8, (name, text)
