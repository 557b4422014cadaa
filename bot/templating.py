"""Message templates: Jinja2 per language, escaped for Telegram HTML, Babel for numbers and dates.

Every word a person reads comes from ``templates/messages/<lang>/<name>.j2``. Autoescape is on
for all of them, so a name typed by a user can never inject markup; Telegram accepts only a few
tags and four named entities, and ``markupsafe`` escaping produces exactly those (plus numeric
entities, which Telegram accepts). Undefined variables raise instead of leaving a silent hole.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
TEMPLATES_ROOT = Path(str(files("templates")))


class MissingTemplate(LookupError):
    pass


def normalise_language(code: str | None) -> str:
    """Map a Telegram language code ("en-US", "vi") to a supported language."""
    if code:
        base = code.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


class Renderer:
    """Renders message templates in a person's language and time zone."""

    def __init__(self, timezone: str = "Asia/Ho_Chi_Minh", root: Path = TEMPLATES_ROOT) -> None:
        self.tz = ZoneInfo(timezone)
        self._envs = {lang: self._environment(root / "messages" / lang, lang) for lang in LANGUAGES}

    def _environment(self, folder: Path, lang: str) -> Environment:
        env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        env.filters["datetime"] = lambda value, fmt="short": self._datetime(value, lang, fmt)
        env.filters["number"] = lambda value, digits=0: format_decimal(
            value, format=f"#,##0{'.' + '0' * digits if digits else ''}", locale=lang
        )
        env.filters["percent"] = lambda value: format_percent(value, locale=lang)
        env.filters["duration"] = lambda value: format_timedelta(
            value if isinstance(value, timedelta) else timedelta(seconds=float(value)),
            locale=lang,
            threshold=1.1,
        )
        env.globals["lang"] = lang
        return env

    def _datetime(self, value: datetime | str | None, lang: str, fmt: str) -> str:
        """Local time; ISO strings (from JSON settings such as the last scan) are accepted."""
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:  # the database hands back naive UTC on SQLite
            value = value.replace(tzinfo=UTC)
        pattern = {"short": "HH:mm dd/MM/yyyy", "time": "HH:mm", "date": "dd/MM/yyyy"}.get(fmt, fmt)
        return format_datetime(value.astimezone(self.tz), pattern, tzinfo=self.tz, locale=lang)

    def render(self, template_name: str, lang: str | None = None, /, **context: Any) -> str:
        """Render ``messages/<lang>/<template_name>.j2``; surrounding whitespace is trimmed.

        The name and language are positional-only so that templates may use any variable name
        (``name``, ``lang``…) in ``context``.
        """
        env = self._envs[normalise_language(lang)]
        try:
            template = env.get_template(f"{template_name}.j2")
        except TemplateNotFound:
            raise MissingTemplate(
                f"no message template {template_name!r} for language {lang!r}"
            ) from None
        return template.render(**context).strip()

    def names(self, lang: str) -> set[str]:
        """Template names available in ``lang`` (tests check both languages have the same set)."""
        loader = self._envs[lang].loader
        assert loader is not None
        return {n.removesuffix(".j2") for n in loader.list_templates() if n.endswith(".j2")}
