"""Press templates: snapshots as a press officer reads them, missing fields, the sandbox, the
admin's override folder, ``crisisdesk templates check`` and the HTML-safe splitter."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli import main
from bot.services import drafts as dr
from bot.services import press_templates as pt
from bot.services.textsplit import html_pieces, split_plain
from storage.db import Database
from storage.models import (
    Agency,
    Article,
    ArticleTopic,
    Crisis,
    Story,
    Topic,
    User,
)

SNAPSHOTS = Path(__file__).parent / "snapshots"
KINDS = ["holding", "release", "correction", "qa", "conference"]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _crisis(db: Database) -> int:
    """A realistic crisis: the Ministry of Health, a food-poisoning story, two top stories."""
    at = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
    with db.session() as s:
        agency = Agency(code="BYT", name="Bộ Y tế")
        s.add(agency)
        s.flush()
        topic = Topic(agency_id=agency.id or 0, name="An toàn thực phẩm", query="ngộ độc")
        speaker = User(
            full_name="Nguyễn Văn An",
            agency_id=agency.id,
            role="spokesperson",
            status="active",
            phone="0243 846 2195",
        )
        s.add(topic)
        s.add(speaker)
        s.flush()
        for n, (title, outlets) in enumerate(
            [
                ("47 học sinh nhập viện sau bữa trưa bán trú", 12),
                ("Phụ huynh bức xúc về chất lượng suất ăn", 5),
            ]
        ):
            story = Story(
                title=title,
                first_seen_at=at,
                last_seen_at=at + timedelta(hours=2),
                outlet_count=outlets,
                article_count=outlets,
            )
            s.add(story)
            s.flush()
            article = Article(
                canonical_url=f"https://example.vn/{n}",
                url=f"https://example.vn/{n}",
                title=title,
                published_at=at,
                fetched_at=at,
                story_id=story.id,
            )
            s.add(article)
            s.flush()
            s.add(ArticleTopic(article_id=article.id or 0, topic_id=topic.id or 0))
        crisis = Crisis(
            agency_id=agency.id or 0,
            topic_id=topic.id,
            title="Ngộ độc thực phẩm tại Trường Tiểu học Tân Phong, TP Biên Hòa",
            detected_at=at,
            deadline_at=at + timedelta(hours=24),
        )
        s.add(crisis)
        s.flush()
        from bot.services import timeline

        timeline.add(
            s,
            crisis.id or 0,
            "status.update",
            None,
            "47 học sinh được đưa đến Bệnh viện Đa khoa Đồng Nai",
            at=at + timedelta(minutes=30),
        )
        return crisis.id or 0


def _render_for_crisis(db: Database, kind: str, lang: str) -> str:
    """What the drafting flow produces: crisis context first, the drafter's answers for the rest."""
    template = pt.PressLibrary().get(kind, lang)
    with db.session() as s:
        crisis = s.get(Crisis, _crisis(db))
        assert crisis is not None
        context = dr.crisis_context(s, crisis, lang, TZ)
        values = dr._prefill(template, context)
        for spec in template.fields:
            if spec.name not in values and spec.name != "doc_number":
                values[spec.name] = spec.sample
        draft = dr.create_first_version(
            s,
            crisis=crisis,
            template=template,
            values=values,
            author_id=None,
            at=datetime(2026, 11, 2, 3, 0, tzinfo=UTC),
            tz=TZ,
        )
        return draft.body


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_snapshot(sqlite_db: Database, kind: str, lang: str) -> None:
    body = _render_for_crisis(sqlite_db, kind, lang)
    path = SNAPSHOTS / f"{kind}.{lang}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(body + "\n", encoding="utf-8")
    assert body + "\n" == path.read_text(encoding="utf-8")


def test_crisis_context_fills_agency_topic_stories_and_timeline(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        crisis = s.get(Crisis, _crisis(sqlite_db))
        assert crisis is not None
        context = dr.crisis_context(s, crisis, "vi", TZ)
    assert context["agency_name"] == "Bộ Y tế" and context["topic"] == "An toàn thực phẩm"
    assert context["spokesperson_name"] == "Nguyễn Văn An"
    assert context["top_stories"].splitlines() == [
        "- 47 học sinh nhập viện sau bữa trưa bán trú (12 cơ quan báo chí)",
        "- Phụ huynh bức xúc về chất lượng suất ăn (5 cơ quan báo chí)",
    ]
    assert (
        context["timeline"]
        == "- 12:30 01/11/2026: 47 học sinh được đưa đến Bệnh viện Đa khoa Đồng Nai"
    )


def test_missing_fields_are_listed_not_left_as_holes() -> None:
    template = pt.PressLibrary().get("release", "vi")
    with pytest.raises(pt.MissingFields) as info:
        pt.render(template, {"lead": "x"}, pt.template_globals(1, datetime(2026, 1, 5), "vi"))
    assert info.value.names == [
        "agency_name",
        "agency_code",
        "subject",
        "place",
        "details",
        "measures",
        "spokesperson_name",
        "spokesperson_title",
    ]


def test_dates_follow_decree_30() -> None:
    assert pt.vn_day_month(datetime(2026, 1, 5)) == ("05", "01")
    assert pt.vn_day_month(datetime(2026, 3, 15)) == ("15", "3")
    assert pt.template_globals(1, datetime(2026, 11, 2), "en")["date_en"] == "2 November 2026"


def _write(root: Path, lang: str, kind: str, front: str, body: str) -> Path:
    path = root / lang / f"{kind}.j2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"+++\n{front}\n+++\n{body}\n", encoding="utf-8")
    return path


FIELD = '[fields.who]\nrequired = true\nprompt_vi = "Ai"\nprompt_en = "Who"\nsample = "Bộ Y tế"'


def test_undefined_name_and_python_internals_are_refused(tmp_path: Path) -> None:
    undefined = _write(
        tmp_path, "vi", "undef", f'title = "T"\n{FIELD}', "{{ who }} {{ undefined_thing }}"
    )
    escape = _write(
        tmp_path, "vi", "escape", f'title = "T"\n{FIELD}', "{{ who }} {{ ''.__class__.__mro__ }}"
    )
    sneaky = _write(
        tmp_path, "vi", "sneaky", f'title = "T"\n{FIELD}', "{{ who|attr('__cla' ~ 'ss__') }}"
    )
    report = pt.check_directory(tmp_path, require_both_languages=False)
    lines = [str(p) for p in report.problems]
    assert (
        f"{undefined}: uses undeclared name(s): undefined_thing (declare them as fields)" in lines
    )
    assert any(
        line.startswith(f"{escape}:") and "sandbox" in line and "__class__" in line
        for line in lines
    )
    assert any(line.startswith(str(sneaky)) and "sandbox refused" in line for line in lines)
    # In use, the broken template is a clear error, never a traceback or a silent hole.
    library = pt.PressLibrary(tmp_path)
    for kind in ("undef", "escape"):
        with pytest.raises(pt.PressTemplateError):
            library.get(kind, "vi")
    template = pt.parse(sneaky.read_text(), sneaky, "vi")
    with pytest.raises(pt.PressTemplateError, match="sandbox refused"):
        pt.render(template, {"who": "x"}, pt.template_globals(1, datetime(2026, 1, 5), "vi"))


def test_override_folder_replaces_and_adds_kinds(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "vi",
        "holding",
        f'title = "Thông tin nhanh"\n{FIELD}',
        "THÔNG TIN NHANH của {{ who }}",
    )
    _write(tmp_path, "vi", "broken", 'title = "X"', "{% if %}")
    library = pt.PressLibrary(tmp_path)
    assert library.get("holding", "vi").title == "Thông tin nhanh"
    assert library.get("holding", "en").title.startswith("Initial information")  # built-in
    assert "broken" not in library.kinds("vi") and "release" in library.kinds("vi")


def test_templates_check_cli(tmp_path: Path, capsys: Any) -> None:
    assert main(["templates", "check", str(pt.BUILTIN_ROOT)]) == 0
    assert capsys.readouterr().out.strip() == "10 template(s) OK"
    _write(tmp_path, "vi", "bad", 'title = "X"\nunknown = 1', "x")
    _write(tmp_path, "vi", "syntax", f'title = "X"\n{FIELD}', "{{ who }}\n{% for %}")
    _write(tmp_path, "en", "nofront", "", "x")
    (tmp_path / "en" / "nofront.j2").write_text("no front matter\n", encoding="utf-8")
    assert main(["templates", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "6 problem(s) in 3 template(s)"
    assert f"{tmp_path / 'vi' / 'bad.j2'}: front matter: unknown key(s) unknown" in err
    assert (
        f"{tmp_path / 'vi' / 'syntax.j2'}:10: template syntax error: "
        "Expected an expression, got 'end of statement block'" in err
    )
    assert f"{tmp_path / 'en' / 'nofront.j2'}:1: front matter must start with a '+++' line" in err
    assert sum("missing:" in line for line in err) == 3


def test_split_keeps_tags_whole_and_text_intact() -> None:
    text = ("Bộ Y tế & Sở Y tế <Đồng Nai>. " * 400).strip()
    pieces = split_plain(text, 1000)
    assert "".join(pieces) == text and all(len(p) <= 1000 for p in pieces)
    assert all(p.endswith(". ") for p in pieces[:-1])  # cut at a sentence end
    for piece in html_pieces(text, 1000):
        assert "<" not in piece.replace("&lt;", "") and piece.count("&") == piece.count(";")


@given(st.text(alphabet=st.sampled_from(list("ab <>&\n.đ ")), max_size=3000), st.integers(50, 700))
def test_split_round_trips(text: str, limit: int) -> None:
    pieces = split_plain(text, limit)
    assert "".join(pieces) == text
    assert all(len(p) <= limit for p in pieces)


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_blank_document_number_leaves_no_stray_number_line(
    sqlite_db: Database, kind: str, lang: str
) -> None:
    """A skipped number must not publish as "Số: /TCBC-BYT" ("/TCBC" turns into a command
    link in Telegram); a given one is printed in full."""
    body = _render_for_crisis(sqlite_db, kind, lang)
    assert not re.search(r"(?m)^(Số|No\.):", body), body[:200]
    assert not re.search(r"(?:^|\s)/[A-Z]", body), "nothing that Telegram would link as a command"
    template = pt.PressLibrary().get(kind, lang)
    if template.field("doc_number") is not None:
        values = {**pt.sample_values(template), "doc_number": "15"}
        numbered = pt.render(template, values, pt.template_globals(1, datetime.now(TZ), lang))
        assert re.search(r"(?m)^(Số|No\.): 15/[A-Z]+-", numbered), numbered[:200]
