"""Hostile input, generated: every parser a person or an outlet can reach answers with a result
or its own clear error, never another exception, and never hangs (issue 16, item 9).

The end-to-end side (the same kinds of text through the real bot, on SQLite and PostgreSQL) is in
``test_fuzz_bot.py``; here the parsers are driven directly, which lets hypothesis try many more
shapes in the same time.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import buttons
from bot.app import HANDLER_MODULES  # noqa: F401  (registers every button action)
from bot.services import press_templates as pt
from bot.services import registration as reg
from bot.services.taskforces import crises, opening, roles, tasks
from handlers.taskforce import parse_crisis_args
from scanner.parse import FeedError, parse_feed
from scanner.topics import QueryError, match, parse_query
from storage.db import Database
from storage.migrate import upgrade

# Text as people and outlets produce it, plus what they should not: NUL, lone surrogates,
# right-to-left marks, combining marks, huge numbers.
HOSTILE_CHARS = st.sampled_from(
    ["\x00", "\ud800", "\u202e", "\u0301", "\ufeff", "/", "@", "#", "\n", '"', "(", ")", "*"]
)
TEXT = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), HOSTILE_CHARS, st.sampled_from("ạđươ ")),
    max_size=300,
)
WORDS = st.lists(TEXT.filter(lambda w: w and " " not in w), max_size=8)
FAST = settings(max_examples=60, deadline=1000, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(TEXT)
def test_query_language(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as exc:
        assert str(exc)
        return
    assert match(query, text, text) >= 0


@FAST
@given(st.one_of(TEXT, st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_callback_data(data: str) -> None:
    try:
        action, ident = buttons.decode(data)
    except buttons.ForgedButton:
        return
    assert action.name and ident


@FAST
@given(WORDS)
def test_crisis_command_arguments(words: list[str]) -> None:
    agency, severity, _usernames, title = parse_crisis_args(words, {"BYT", "BTC"})
    assert agency in (None, "BYT", "BTC") and severity
    try:
        opening.clean_title(title)
    except crises.TaskForceError as exc:
        assert exc.code


@FAST
@given(TEXT)
def test_room_command_arguments(text: str) -> None:
    for parse in (tasks.parse_task, roles.parse_role):
        try:
            parse(text)
        except crises.TaskForceError as exc:
            assert exc.code


@FAST
@given(TEXT)
def test_registration_text(text: str) -> None:
    for clean in (reg.clean_name, reg.clean_reason, reg.clean_phone):
        try:
            clean(text)
        except reg.RegistrationError as exc:
            assert exc.code


@settings(max_examples=25, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.builds(
            lambda title, junk: (
                f'<?xml version="1.0"?><rss><channel><item><title>{title}</title>'
                f"<link>http://x/{junk}</link></item></channel></rss>"
            ).encode("utf-8", "surrogatepass"),
            TEXT,
            st.text(max_size=20),
        ),
    ),
    st.sampled_from(["", "text/xml; charset=utf-8", "text/xml; charset=windows-1258", "x/y"]),
)
def test_feed_bytes(body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        feed = parse_feed(body, fetched_at=datetime(2026, 11, 2, tzinfo=UTC), headers=headers)
    except FeedError as exc:
        assert str(exc)
        return
    for item in feed.items:
        assert isinstance(item.title, str)


@settings(max_examples=6, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["lead", "details", "actions", "contact"]), TEXT))
def test_template_fields(values: dict[str, str]) -> None:
    library = pt.PressLibrary()
    now = datetime(2026, 11, 2, 9, 30)
    for lang in pt.LANGUAGES:
        for kind in library.kinds(lang):
            template = library.get(kind, lang)
            filled = {f.name: values.get(f.name, f.sample) for f in template.fields}
            try:
                text = pt.render(template, filled, pt.template_globals(7, now, lang))
            except pt.PressTemplateError as exc:
                assert str(exc)
                continue
            assert isinstance(text, str)


def test_button_rules_with_forged_ids(tmp_path: Path) -> None:
    """Every registered action's rule, with every shape of id a client can send: yes, no or
    forged, never an exception (the dispatcher runs them before any callback)."""
    url = f"sqlite:///{tmp_path / 'rules.sqlite3'}"
    upgrade(url)
    db = Database.from_url(url)
    idents = ["0", "1", "999999999999999999", "1-1", "1-s", "a", "-", "1-", "-1", "x" * 28, "_"]
    from bot.services.permissions import Actor

    actor = Actor("tg:1", None)
    try:
        with db.session() as session:
            for name in sorted(buttons._REGISTRY):
                action = buttons.lookup(name)
                for ident in idents:
                    with contextlib.suppress(buttons.ForgedButton):
                        assert action.rule(session, actor, ident) in (True, False)
    finally:
        db.dispose()
