"""Unit tests of the shared interfaces: clock, button scheme, templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.buttons import ForgedButton, decode, int_id, register
from bot.channels.base import encode
from bot.clock import SimulatedClock, SystemClock
from bot.templating import LANGUAGES, Renderer, normalise_language

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def test_simulated_clock_is_frozen_until_advanced() -> None:
    clock = SimulatedClock(NOW)
    assert clock.now() == NOW
    assert clock.advance(timedelta(minutes=15)) == NOW + timedelta(minutes=15)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        SimulatedClock(datetime(2026, 1, 1))


def test_simulated_clock_runs_at_speed() -> None:
    clock = SimulatedClock(NOW, speed=3600)  # an hour per second
    first = clock.now()
    later = clock.now()
    assert later >= first
    clock.set_speed(0)
    assert clock.now() == clock.now()


def test_system_clock_is_aware() -> None:
    assert SystemClock().now().tzinfo is not None


register("test.ok", lambda _s, _a, _i: True, "test action")


def test_button_round_trip() -> None:
    data = encode("test.ok", 42)
    assert data == "test.ok:42"
    action, ident = decode(data)
    assert action.name == "test.ok" and int_id(ident) == 42


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "test.ok",
        "test.ok:1:2",
        "nope:1",
        "test.ok:",
        "TEST.OK:1",
        "test.ok:1 ",
        "test.ok:x" * 20,
        "test.ok:<b>",
        "test.ok:ắ",
    ],
)
def test_forged_callback_data_is_refused(data: str | None) -> None:
    with pytest.raises(ForgedButton):
        decode(data)


def test_non_numeric_row_id_is_forged() -> None:
    with pytest.raises(ForgedButton):
        int_id("12a")


@given(st.text(max_size=80))
def test_decode_never_crashes(data: str) -> None:
    try:
        action, ident = decode(data)
    except ForgedButton:
        return
    assert encode(action.name, ident) == data


def test_encode_refuses_what_telegram_would() -> None:
    with pytest.raises(ValueError):
        encode("test.ok", "x" * 60)
    with pytest.raises(ValueError):
        register("Bad Name", lambda _s, _a, _i: True, "x")


def test_every_template_exists_in_every_language() -> None:
    renderer = Renderer()
    names = {lang: renderer.names(lang) for lang in LANGUAGES}
    assert names["vi"] == names["en"], names["vi"] ^ names["en"]


def test_templates_escape_user_text_and_format_with_babel() -> None:
    renderer = Renderer("Asia/Ho_Chi_Minh")
    text = renderer.render("reminder", "vi", text='<script>&"x"</script>')
    assert "&lt;script&gt;&amp;&#34;x&#34;&lt;/script&gt;" in text
    env = renderer._envs["vi"]
    assert env.from_string("{{ 1234567.5|number(1) }}").render() == "1.234.567,5"
    assert renderer._envs["en"].from_string("{{ 1234567.5|number(1) }}").render() == "1,234,567.5"
    assert env.from_string("{{ d|datetime }}").render(d=NOW) == "08:00 02/11/2026"
    assert env.from_string("{{ 0.25|percent }}").render() == "25%"


def test_missing_variables_raise() -> None:
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        Renderer().render("reminder", "en")


def test_language_normalisation() -> None:
    assert normalise_language("en-US") == "en"
    assert normalise_language("fr") == "vi"
    assert normalise_language(None) == "vi"


def test_template_literals_are_valid_telegram_html() -> None:
    """The fixed text of every message template must parse as Telegram HTML (a bare "<id>" in a
    usage line is a 400 from Telegram). Jinja expressions are replaced by safe text first."""
    import re

    from bot.sandbox.telegram_emulator.errors import ApiError
    from bot.sandbox.telegram_emulator.html_entities import parse_html
    from bot.templating import TEMPLATES_ROOT

    bad = []
    for path in sorted((TEMPLATES_ROOT / "messages").glob("*/*.j2")):
        source = path.read_text(encoding="utf-8")
        literal = re.sub(r"\{\{.*?\}\}", "x", source, flags=re.S)
        literal = re.sub(r"\{[%#].*?[%#]\}", "", literal, flags=re.S)
        try:
            parse_html(literal)
        except ApiError as exc:
            bad.append(f"{path.relative_to(TEMPLATES_ROOT)}: {exc}")
    assert bad == []
