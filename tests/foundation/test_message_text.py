"""What a press officer reads: every line of every message template stays on its own line, and
every command has a real description in both languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from message_samples import BUTTONS, CAPTIONS, SAMPLES
from telegram.ext import BaseHandler, CommandHandler, ConversationHandler

import bot.app  # importing the handler modules registers their commands
from bot.services import press_templates as pt
from bot.services.commands import commands_for_role
from bot.templating import LANGUAGES, TEMPLATES_ROOT, Renderer
from handlers.conversation.degrade import typed_commands
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


# --------------------------------------------------------------------------- every template


MESSAGE_ROOT = TEMPLATES_ROOT / "messages"
#: Telegram's limits, counted after its HTML is parsed (tags out, entities as one character).
TEXT_LIMIT, CAPTION_LIMIT, BUTTON_LIMIT = 4096, 1024, 64
#: Tags Telegram's HTML accepts (https://core.telegram.org/bots/api#html-style).
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
TELEGRAM_TAGS |= {"tg-spoiler", "span", "blockquote", "tg-emoji"}
#: Marks of a blank value: a label with nothing after it, empty brackets or quotes, doubled or
#: dangling separators, a bare @ or #, a space before a full stop or comma.
STRAY = [
    (re.compile(r"\(\s*\)|\[\s*\]|«\s*»|“\s*”|\"\s*\""), "empty brackets or quotes"),
    (re.compile(r"[:,·—]\s*[.,;)](?=\s|$)"), "separator before punctuation"),
    (re.compile(r"[,·]\s*$|^\s*[,;·]", re.M), "dangling separator"),
    (re.compile(r"·\s*·|,\s*,|:\s*:"), "doubled separator"),
    (re.compile(r"(?<![\w.])@(?!\w)|(?<![\w&])#(?!\w)"), "bare @ or #"),
    (re.compile(r"\w \.(?:\s|$)|\w ,"), "space before punctuation"),
    (re.compile(r"\bNone\b|\bnull\b|\{\{|\}\}|\{%|%\}"), "leaked value or markup"),
]
#: Templates that speak both languages on purpose (the very first question).
BILINGUAL = {"reg_choose_language"}
#: Words that give English away inside a Vietnamese message.
ENGLISH = re.compile(
    r"\b(?:the|and|with|your|you|[Pp]lease|fields?|[Uu]sage|[Ee]rror|not|has|been|will|[Pp]ress)\b"
)


def _commands() -> set[str]:
    """Every command the bot answers: what its handlers listen for, not what /help lists, and
    the short commands standing for buttons on channels without them (``/tuchoi 45``)."""

    def walk(handler: BaseHandler[Any, Any, Any]) -> set[str]:
        if isinstance(handler, CommandHandler):
            return set(handler.commands)
        if isinstance(handler, ConversationHandler):
            inner = [*handler.entry_points, *handler.fallbacks]
            inner += [h for hs in handler.states.values() for h in hs]
            return {c for h in inner for c in walk(h)}
        return set()

    handled = {c for m in bot.app.HANDLER_MODULES for h in m.handlers() for c in walk(h)}
    return handled | typed_commands()


def _strings(value: Any) -> list[str]:
    """Every text in a sample context (the data, not the template's own words)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _strings(v)]
    if isinstance(value, list | tuple | set):
        return [t for v in value for t in _strings(v)]
    if isinstance(value, SimpleNamespace):
        return _strings(vars(value))
    return []


def _visible(html: str) -> str:
    """The text as Telegram shows it: tags removed, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", "", html))


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"<{tag}> is not Telegram HTML")
        if tag == "a":
            href = dict(attrs).get("href") or ""
            if not href.startswith(("https://", "http://", "tg://")):
                self.problems.append(f"link without an address: {href!r}")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"</{tag}> does not close the open tag")


def _line_starts(source: str) -> list[str]:
    """The words each source line starts with, when the line starts with words.

    Leading block tags (``{% if … %}``) are skipped; a line starting with ``{{`` starts with a
    value and is not checked. Rendered, these words must begin a line somewhere: if they only
    appear in the middle of one, the line break before them was eaten.
    """
    starts = []
    for line in source.split("\n"):
        rest = re.sub(r"^\s*(?:\{%-?.*?-?%\}\s*)*", "", line)
        words = _words_first(_visible(re.split(r"\{\{|\{%|\{#", rest, maxsplit=1)[0]))
        if len(words) >= 4 and not rest.startswith("{{"):
            starts.append(words)
    return starts


def _words_first(text: str) -> str:
    """``text`` from its first letter or digit on (bullets, emoji and marks dropped)."""
    return re.sub(r"^[\W_]+", "", text).rstrip()


def _branch_values(source: str, context: dict[str, Any]) -> dict[str, set[str]]:
    """For each sample variable compared with literals (``code == 'pin_saved'``), the literals."""
    found: dict[str, set[str]] = {}
    for name, value in re.findall(r"\b(\w+) == '([\w.]+)'", source):
        if name in context:
            found.setdefault(name, set()).add(value)
    return found


def _cases(name: str) -> list[dict[str, Any]]:
    cases = list(SAMPLES[name])
    source = (MESSAGE_ROOT / "vi" / f"{name}.j2").read_text(encoding="utf-8")
    for variable, values in _branch_values(source, cases[0]).items():
        seen = {case.get(variable) for case in cases}
        cases += [{**cases[0], variable: v} for v in sorted(values - seen)]
    return cases


def _template_names() -> list[str]:
    return sorted(p.stem for p in (MESSAGE_ROOT / "vi").glob("*.j2"))


def test_both_languages_have_every_template_and_every_template_has_samples() -> None:
    vi = set(_template_names())
    en = {p.stem for p in (MESSAGE_ROOT / "en").glob("*.j2")}
    assert vi == en, ("only vi:", vi - en, "only en:", en - vi)
    assert not vi - set(SAMPLES), f"add sample data for {sorted(vi - set(SAMPLES))}"
    assert not set(SAMPLES) - vi, f"samples of no template: {sorted(set(SAMPLES) - vi)}"


def _problems(
    name: str, lang: str, source: str, html: str, context: dict[str, Any], commands: set[str]
) -> list[str]:
    """What a press officer would trip over in one rendered message (empty: nothing)."""
    text = _visible(html)
    if not text.strip():
        return ["renders empty"]
    problems = []
    checker = _TagChecker()
    checker.feed(html)
    checker.close()
    problems += checker.problems + [f"<{tag}> is never closed" for tag in checker.stack]
    limit = CAPTION_LIMIT if name in CAPTIONS else TEXT_LIMIT
    limit = BUTTON_LIMIT if name in BUTTONS else limit
    if len(text) > limit:
        problems.append(f"{len(text)} characters, over Telegram's {limit}")
    if "\n\n\n" in text:
        problems.append("two blank lines in a row")
    for pattern, what in STRAY:
        match = pattern.search(text)
        if match is not None:
            problems.append(f"{what}: {match.group()!r}")
    # Telegram links every /word: each must be a command the bot answers.
    for command in re.findall(r"(?<![\w/.:<])/([A-Za-z]\w*)", re.sub(r"https?://\S+", "", text)):
        if command not in commands:
            problems.append(f"/{command} is not a command")
    lines = [_words_first(line) for line in text.split("\n")]
    for words in _line_starts(source):
        if words in text and not any(line.startswith(words) for line in lines):
            problems.append(f"«{words}» runs on from the line before")
    if lang == "vi" and name not in BILINGUAL:
        own = text
        for value in sorted(_strings(context), key=len, reverse=True):
            own = own.replace(value, " ")
        english = ENGLISH.findall(re.sub(r"\([A-Z_]+\)|https?://\S+", "", own))
        if english:
            problems.append(f"English in the Vietnamese text: {english}")
    return problems


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", _template_names())
def test_every_message_renders_as_a_press_officer_reads_it(name: str, lang: str) -> None:
    renderer = Renderer()
    source = (MESSAGE_ROOT / lang / f"{name}.j2").read_text(encoding="utf-8")
    commands = _commands()
    for number, context in enumerate(_cases(name)):
        html = renderer.render(name, lang, **context)
        problems = _problems(name, lang, source, html, context, commands)
        assert not problems, f"{lang}/{name}.j2 case {number}: {problems}\n{_visible(html)}"


@pytest.mark.parametrize(
    ("source", "context", "problem"),
    [
        ("{% if a %}Đang xử lý{% endif %}\nCơ quan: {{ a }}", {"a": "BYT"}, "runs on"),
        ("Điện thoại: {{ phone }}.\nCơ quan: Bộ Y tế", {"phone": ""}, "separator before"),
        ("Họ tên: {{ name }} (@{{ username }})", {"name": "Hà", "username": ""}, "bare @"),
        ("Người soạn: {{ who }}, {{ other }}", {"who": "Hà", "other": ""}, "dangling"),
        ("Số: {{ number }}/TCBC-BYT", {"number": ""}, "/TCBC is not a command"),
        ("Trạng thái: {{ s }}", {"s": None}, "leaked value"),
        ("<b>Vụ việc {{ id }}", {"id": 3}, "<b> is never closed"),
        ("Vụ việc {{ id }} has been opened", {"id": 3}, "English"),
        ("{{ text }}", {"text": "x" * 4097}, "over Telegram's 4096"),
    ],
)
def test_the_checks_catch_what_they_look_for(
    source: str, context: dict[str, Any], problem: str
) -> None:
    """Each check sees the mistake it exists for (so a passing run means something)."""
    html = Renderer()._envs["vi"].from_string(source).render(**context)
    found = _problems("sample", "vi", source, html, context, _commands())
    assert any(problem in p for p in found), found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_press_statements_with_blank_optional_parts(lang: str) -> None:
    """Every optional part of every statement left blank: no stray punctuation, no bare
    "/TCBC" that Telegram would turn into a command link, no empty label."""
    library = pt.PressLibrary()
    local = NOW.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    commands = _commands()
    for kind in library.kinds(lang):
        template = library.get(kind, lang)
        full = pt.sample_values(template)
        blank = {f.name: v for f, v in zip(template.fields, full.values(), strict=True)}
        blank.update({f.name: "" for f in template.fields if not f.required})
        for values in (full, blank):
            text = pt.render(template, values, pt.template_globals(3, local, lang))
            where = f"press/{lang}/{kind}.j2 {'blank' if values is blank else 'full'}"
            assert "\n\n\n" not in text, (where, text)
            for pattern, what in STRAY[:4]:
                match = pattern.search(text)
                assert match is None, f"{where}: {what} at {match and match.group()!r}:\n{text}"
            for command in re.findall(r"(?<![\w/.:<])/([A-Za-z]\w*)", text):
                assert command in commands, f"{where}: /{command} becomes a command link"
            lines = text.split("\n")
            for line, after in zip(lines, [*lines[1:], ""], strict=True):
                label_only = re.fullmatch(r"[^:]{1,40}:\s*", line)
                assert not (label_only and not after.strip()), f"{where}: empty {line!r}"
