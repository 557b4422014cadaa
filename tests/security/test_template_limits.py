"""Press templates an admin writes cannot hang or exhaust the renderer (issue 16, item 7)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.services import press_templates as pt
from bot.services.template_limits import RenderLimitExceeded, render_limited

FRONT = """+++
title = "Bad"
[fields.lead]
required = true
prompt_vi = "Tóm tắt"
prompt_en = "Summary"
sample = "x"
+++
"""

HOSTILE = {
    "huge_repeat": "{{ lead }}{{ 'a' * 10**8 }}",
    "huge_power": "{{ lead }}{{ 7 ** (10 ** 7) }}",
    "huge_range": "{{ lead }}{% for i in range(10**6) %}{% endfor %}",
    "nested_loops": (
        "{{ lead }}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "loops_over_field": (
        "{% for a in lead * 2000 %}{% for b in lead * 2000 %}{% endfor %}{% endfor %}"
    ),
    "huge_center": "{{ lead|center(10**8) }}",
    "huge_format": "{{ '%0100000000d' % 1 }}{{ lead }}",
    "huge_replace": "{{ (lead * 10000)|replace('', lead * 10000) }}",
    "doubling_joins": "{% set v0 = lead %}"
    + "".join(f"{{% set v{i} = v{i - 1} ~ v{i - 1} %}}" for i in range(1, 40))
    + "{{ v39|length }}",
    "recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(lead) }}",
    "zero_division": "{{ lead }}{{ 1 // 0 }}",
    "type_error": "{{ lead - 1 }}",
}


def _template(tmp_path: Path, kind: str, body: str) -> pt.PressTemplate:
    path = tmp_path / "vi" / f"{kind}.j2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FRONT + body, encoding="utf-8")
    return pt.parse(path.read_text(encoding="utf-8"), path, "vi")


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_template_fails_fast_with_its_name(tmp_path: Path, kind: str) -> None:
    template = _template(tmp_path, kind, HOSTILE[kind])
    started = time.monotonic()
    with pytest.raises(pt.PressTemplateError) as caught:
        pt.render(template, {"lead": "Sự việc"}, {})
    assert time.monotonic() - started < 2.5
    assert f"vi/{kind}.j2" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_deadline_stops_work_that_prints_nothing() -> None:
    # Exponential macro recursion: no loop, no output, only calls.
    source = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    )
    started = time.monotonic()
    with pytest.raises(RenderLimitExceeded, match=r"longer than 0\.2 s"):
        render_limited(pt.environment(), source, {}, seconds=0.2)
    assert time.monotonic() - started < 1.0


def test_output_cap_counts_what_the_generator_yields() -> None:
    source = "{% for i in range(3000) %}{{ x }}{% endfor %}"
    with pytest.raises(RenderLimitExceeded, match="over 1000 characters"):
        render_limited(pt.environment(), source, {"x": "abc"}, max_output=1000)


def test_ordinary_templates_still_render() -> None:
    source = (
        "{{ x|length }} {% for c in 'abc' %}{{ loop.index }}{{ c }}{% endfor %} "
        "{{ [1, 2]|join(',') }} {{ '%05d'|format(3) }} {{ 'ab' ~ x }} {{ 2 ** 10 }}"
        " {{ x|replace('y', 'z')|truncate(6, leeway=0) }} {{ x.upper()[:3] }}"
    )
    out = render_limited(pt.environment(), source, {"x": "yyyyyyyyyy"})
    assert out == "10 1a2b3c 1,2 00003 abyyyyyyyyyy 1024 zzz... YYY"


def test_templates_check_names_the_hostile_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for lang in ("vi", "en"):
        path = tmp_path / lang / "release.j2"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FRONT + HOSTILE["huge_range"], encoding="utf-8")
    assert main(["templates", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "vi/release.j2" in err and "stopped" in err and "Traceback" not in err
