"""Press-statement templates: loading, validation and rendering.

A press template is a Jinja2 file ``<lang>/<kind>.j2`` with TOML front matter between ``+++``
lines that declares its title and its fields::

    +++
    title = "Thông cáo báo chí"
    public = true                     # published to the agency's public channel once approved
    doc_code = "TCBC"                 # the document-type code in "Số: …/TCBC-BYT"
    [fields.lead]
    required = true
    prompt_vi = "Tóm tắt sự việc (ai, cái gì, ở đâu, khi nào)"
    prompt_en = "Summary of the event (who, what, where, when)"
    sample = "Sáng 02/11/2026, …"
    auto = "crisis_title"            # optional: filled from the crisis when it has a value
    default = "Hà Nội"               # optional: used when nothing else is given
    label_vi = "Tóm tắt"              # optional: the short name people type after /set
    label_en = "Summary"             #   (default: the prompt up to its first ":", "(" or ";")
    +++
    …template text…

The built-in templates live in ``templates/press/<lang>/``; an admin may add or override kinds
in ``settings.templates_dir`` (same layout) without touching code. Templates render *plain
text* (the statement itself, as it goes to the .docx and to the public): escaping for the chat's
HTML happens when the text is shown in a chat (``bot.services.textsplit``), so nothing a person
typed can inject markup, and splitting never cuts a tag.

Rendering uses Jinja2's ``SandboxedEnvironment`` (a template cannot reach Python internals) and
``StrictUndefined``; before rendering, missing required fields and names the template uses but
never declares are reported as a list, never as a traceback or an empty hole.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

from bot.services.template_limits import LimitedEnvironment, RenderLimitExceeded, render_limited
from scanner.textnorm import fold

BUILTIN_ROOT = Path(str(files("templates"))) / "press"
LANGUAGES = ("vi", "en")
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
FIELD_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_FIELD_CHARS = 20_000

# Values a field may take from the crisis (``auto = "<key>"``); drafts.crisis_context fills them.
AUTO_KEYS = frozenset(
    {
        "agency_name",
        "agency_code",
        "crisis_title",
        "topic",
        "detected_at",
        "spokesperson_name",
        "spokesperson_phone",
        "top_stories",
        "timeline",
    }
)
# Names every template may use besides its fields (filled by ``template_globals``).
GLOBAL_NAMES = frozenset({"number", "day", "month", "year", "date_en", "lang"})
_FIELD_KEYS = frozenset(
    {"required", "prompt_vi", "prompt_en", "label_vi", "label_en", "sample", "auto", "default"}
)
_LABEL_END = re.compile(r"\s*[:(;]")
_TOP_KEYS = frozenset({"title", "description", "public", "doc_code", "fields"})
# The built-in kinds are named in English in code; a Vietnamese user types (and reads) these words
# after /draft instead. Both spellings are accepted in either language.
_VI_WORDS = {
    "holding": "bandau",
    "release": "thongcao",
    "qa": "hoidap",
    "correction": "dinhchinh",
    "conference": "hopbao",
}
_KIND_OF_WORD = {word: kind for kind, word in _VI_WORDS.items()}


def kind_word(kind: str, lang: str) -> str:
    """What a person of ``lang`` types after /draft for ``kind``."""
    return _VI_WORDS.get(kind, kind) if lang == "vi" else kind


def kind_from_word(word: str) -> str:
    """The template kind a typed word names ("thongcao" → "release"; unknown words unchanged)."""
    return _KIND_OF_WORD.get(word, word)


_MONTHS_EN = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _folded_words(text: str) -> str:
    """Tone-free, case-free, punctuation-free words: how a typed field name is compared."""
    return fold(text.replace("_", " "))


class PressTemplateError(Exception):
    """A template that cannot be used; the message says what to fix."""


class MissingFields(PressTemplateError):
    """Required fields have no value yet; ``names`` lists them in declaration order."""

    def __init__(self, names: list[str]) -> None:
        super().__init__("missing fields: " + ", ".join(names))
        self.names = names


class UnknownTemplate(PressTemplateError):
    pass


@dataclass(frozen=True)
class FieldSpec:
    name: str
    required: bool
    prompt_vi: str
    prompt_en: str
    sample: str
    auto: str | None = None
    default: str | None = None
    label_vi: str = ""
    label_en: str = ""

    def prompt(self, lang: str) -> str:
        return self.prompt_en if lang == "en" else self.prompt_vi

    def label(self, lang: str) -> str:
        """The field's plain name, what a person reads in lists and types after ``/set``.

        A template without labels still gets readable ones: its prompt up to the first
        ":", "(" or ";" ("Số văn bản (nếu chưa có số…)" → "Số văn bản").
        """
        explicit = self.label_en if lang == "en" else self.label_vi
        return explicit or _LABEL_END.split(self.prompt(lang), maxsplit=1)[0]


@dataclass(frozen=True)
class PressTemplate:
    kind: str
    lang: str
    title: str
    description: str
    public: bool
    doc_code: str
    fields: tuple[FieldSpec, ...]
    source: str  # the Jinja2 text after the front matter
    path: Path
    body_line: int  # line of the file where ``source`` starts (for error messages)

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def labels(self, lang: str, names: Iterable[str] | None = None) -> list[str]:
        """Plain names of ``names`` (default: every field), in declaration order."""
        wanted = set(self.field_names if names is None else names)
        return [f.label(lang) for f in self.fields if f.name in wanted]

    def split_field(self, text: str) -> tuple[FieldSpec, str] | None:
        """Which field ``/set`` names in ``text``, and the new value; None when none does.

        People type the field as they read it, in either language, with or without tones,
        optionally followed by ":" — "Cập nhật tiếp theo: 17 giờ", "cap nhat tiep theo 17 gio",
        "next update 17:00" — and the internal name keeps working ("next_update 17 giờ").
        The longest name that the text starts with wins, so "Số văn bản" is not read as a
        shorter label that happens to begin it.
        """
        names: dict[str, FieldSpec] = {}
        for spec in self.fields:
            for written in (spec.name, spec.label("vi"), spec.label("en")):
                names.setdefault(_folded_words(written), spec)
        head, colon, tail = text.partition(":")
        if colon and _folded_words(head) in names:
            return names[_folded_words(head)], tail.strip()
        words = text.split()
        for count in range(len(words), 0, -1):
            named = names.get(_folded_words(" ".join(words[:count])))
            if named is not None:
                return named, " ".join(words[count:]).lstrip(":").strip()
        return None


@dataclass
class Problem:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass
class CheckReport:
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)


def environment() -> LimitedEnvironment:
    """The one environment press templates render in: sandboxed, limited in time and size,
    strict, plain text."""
    return LimitedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,  # plain text; escaped for HTML when shown in a chat
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


_ENV = environment()


# --------------------------------------------------------------------------- parsing


def parse(text: str, path: Path, lang: str) -> PressTemplate:
    """Parse one template file; raise PressTemplateError naming the line and the fix."""
    kind = path.stem
    if not KIND_RE.match(kind):
        raise PressTemplateError(f"file name {path.name!r}: kind must match {KIND_RE.pattern}")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "+++":
        raise PressTemplateError("line 1: front matter must start with a '+++' line")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    except StopIteration:
        raise PressTemplateError("front matter is not closed with a '+++' line") from None
    try:
        front = tomllib.loads("\n".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        raise PressTemplateError(f"front matter is not valid TOML: {exc}") from None
    unknown = sorted(set(front) - _TOP_KEYS)
    if unknown:
        raise PressTemplateError(f"front matter: unknown key(s) {', '.join(unknown)}")
    title = front.get("title")
    if not isinstance(title, str) or not title.strip():
        raise PressTemplateError("front matter: 'title' (a non-empty string) is required")
    raw_fields = front.get("fields", {})
    if not isinstance(raw_fields, dict):
        raise PressTemplateError("front matter: 'fields' must be a table of [fields.<name>]")
    specs = [_field_spec(name, value) for name, value in raw_fields.items()]
    _check_labels(specs)
    source = "\n".join(lines[end + 1 :]).strip("\n")
    if not source.strip():
        raise PressTemplateError("the template has no text after the front matter")
    public = front.get("public", True)
    doc_code = front.get("doc_code", "")
    if not isinstance(public, bool) or not isinstance(doc_code, str):
        raise PressTemplateError("front matter: 'public' is true/false, 'doc_code' a string")
    return PressTemplate(
        kind=kind,
        lang=lang,
        title=title.strip(),
        description=str(front.get("description", "")),
        public=public,
        doc_code=doc_code,
        fields=tuple(specs),
        source=source,
        path=path,
        body_line=end + 2,
    )


def _check_labels(specs: list[FieldSpec]) -> None:
    """Two parts ``/set`` could not tell apart are a mistake in the template, not at run time."""
    owner: dict[str, str] = {}
    for spec in specs:
        for written in {spec.name, spec.label("vi"), spec.label("en")}:
            key = _folded_words(written)
            other = owner.setdefault(key, spec.name)
            if other != spec.name:
                raise PressTemplateError(
                    f"front matter: fields {other!r} and {spec.name!r} are both called "
                    f"{written!r}; give one a different label_vi/label_en"
                )


def _field_spec(name: str, value: Any) -> FieldSpec:
    where = f"front matter: field {name!r}"
    if not FIELD_RE.match(name):
        raise PressTemplateError(f"{where}: a field name must match {FIELD_RE.pattern}")
    if name in GLOBAL_NAMES:
        raise PressTemplateError(f"{where}: the name is reserved ({', '.join(GLOBAL_NAMES)})")
    if not isinstance(value, dict):
        raise PressTemplateError(f"{where}: must be a table")
    unknown = sorted(set(value) - _FIELD_KEYS)
    if unknown:
        raise PressTemplateError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("prompt_vi", "prompt_en"):
        if not isinstance(value.get(key), str) or not value[key].strip():
            raise PressTemplateError(f"{where}: '{key}' (a non-empty string) is required")
    required = value.get("required", False)
    if not isinstance(required, bool):
        raise PressTemplateError(f"{where}: 'required' must be true or false")
    auto = value.get("auto")
    if auto is not None and auto not in AUTO_KEYS:
        raise PressTemplateError(
            f"{where}: auto = {auto!r} is not one of {', '.join(sorted(AUTO_KEYS))}"
        )
    for key in ("sample", "default", "label_vi", "label_en"):
        if key in value and not isinstance(value[key], str):
            raise PressTemplateError(f"{where}: '{key}' must be a string")
    return FieldSpec(
        name=name,
        required=required,
        prompt_vi=value["prompt_vi"].strip(),
        prompt_en=value["prompt_en"].strip(),
        sample=value.get("sample", f"<{name}>"),
        auto=auto,
        default=value.get("default"),
        label_vi=value.get("label_vi", "").strip(),
        label_en=value.get("label_en", "").strip(),
    )


def _problems_in_source(template: PressTemplate) -> list[tuple[int | None, str]]:
    """Static checks: syntax, names that are not declared, reaches for Python internals."""
    try:
        tree = _ENV.parse(template.source)
    except TemplateSyntaxError as exc:
        line = template.body_line + (exc.lineno or 1) - 1
        return [(line, f"template syntax error: {exc.message}")]
    problems: list[tuple[int | None, str]] = []
    declared = set(template.field_names) | GLOBAL_NAMES
    undeclared = sorted(meta.find_undeclared_variables(tree) - declared)
    if undeclared:
        problems.append(
            (
                None,
                "uses undeclared name(s): " + ", ".join(undeclared) + " (declare them as fields)",
            )
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attr = str(node.arg.value)
        if attr is not None and attr.startswith("_"):
            problems.append(
                (
                    template.body_line + node.lineno - 1,
                    f"sandbox: access to {attr!r} is not allowed in a press template",
                )
            )
    return problems


# --------------------------------------------------------------------------- loading


class PressLibrary:
    """The templates in force: built-ins overlaid by the admin's folder (``templates_dir``)."""

    def __init__(self, override_dir: Path | None = None, builtin_dir: Path = BUILTIN_ROOT) -> None:
        self.builtin_dir = builtin_dir
        self.override_dir = override_dir

    def _candidates(self, lang: str) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in (self.builtin_dir, self.override_dir):
            if root is None:
                continue
            folder = root / lang
            if folder.is_dir():
                for path in sorted(folder.glob("*.j2")):
                    found[path.stem] = path
        return found

    def kinds(self, lang: str) -> list[str]:
        """Usable kinds in ``lang`` (a broken override falls back to the built-in)."""
        return sorted(k for k in self._candidates(lang) if self._try_get(k, lang) is not None)

    def _try_get(self, kind: str, lang: str) -> PressTemplate | None:
        try:
            return self.get(kind, lang)
        except PressTemplateError:
            return None

    def get(self, kind: str, lang: str) -> PressTemplate:
        """The template for ``kind`` in ``lang``; an override that fails its checks is skipped."""
        if lang not in LANGUAGES or not KIND_RE.match(kind):
            raise UnknownTemplate(f"no press template {kind!r} in {lang!r}")
        errors: list[str] = []
        for root in (self.override_dir, self.builtin_dir):
            if root is None:
                continue
            path = root / lang / f"{kind}.j2"
            if not path.is_file():
                continue
            try:
                template = parse(path.read_text(encoding="utf-8"), path, lang)
            except (OSError, UnicodeDecodeError, PressTemplateError) as exc:
                errors.append(f"{path}: {exc}")
                continue
            static = _problems_in_source(template)
            if static:
                errors.append(f"{path}: {static[0][1]}")
                continue
            return template
        if errors:
            raise PressTemplateError("; ".join(errors))
        raise UnknownTemplate(f"no press template {kind!r} in {lang!r}")


# --------------------------------------------------------------------------- rendering


def vn_day_month(moment: datetime) -> tuple[str, str]:
    """Day and month as Decree 30/2020 writes them: days 1-9 and months 1-2 with a leading 0."""
    day = f"{moment.day:02d}"
    month = f"{moment.month:02d}" if moment.month < 3 else str(moment.month)
    return day, month


def template_globals(number: int, local_now: datetime, lang: str) -> dict[str, Any]:
    day, month = vn_day_month(local_now)
    return {
        "number": number,
        "day": day,
        "month": month,
        "year": str(local_now.year),
        "date_en": f"{local_now.day} {_MONTHS_EN[local_now.month - 1]} {local_now.year}",
        "lang": lang,
    }


def missing_fields(template: PressTemplate, values: Mapping[str, str]) -> list[str]:
    return [
        f.name for f in template.fields if f.required and not str(values.get(f.name, "")).strip()
    ]


def render(template: PressTemplate, values: Mapping[str, str], globals_: Mapping[str, Any]) -> str:
    """The statement's plain text; raises MissingFields or PressTemplateError, never leaks."""
    missing = missing_fields(template, values)
    if missing:
        raise MissingFields(missing)
    static = _problems_in_source(template)
    if static:
        raise PressTemplateError("; ".join(message for _line, message in static))
    context: dict[str, Any] = {
        f.name: str(values.get(f.name) or f.default or "").strip() for f in template.fields
    }
    context.update(globals_)
    name = f"template {template.lang}/{template.kind}.j2"
    try:
        text = render_limited(_ENV, template.source, context)
    except RenderLimitExceeded as exc:
        raise PressTemplateError(f"{name} stopped: {exc}") from None
    except SecurityError as exc:
        raise PressTemplateError(f"{name}: sandbox refused: {exc}") from None
    except UndefinedError as exc:
        raise PressTemplateError(f"{name}: undefined value: {exc.message}") from None
    except TemplateError as exc:
        raise PressTemplateError(f"{name}: template error: {exc}") from None
    except RecursionError:
        raise PressTemplateError(f"{name} stopped: calls nest too deep") from None
    except Exception as exc:  # an admin's template is code: 1/0, 'a' - 1, …
        raise PressTemplateError(f"{name}: {type(exc).__name__}: {exc}") from None
    return _tidy(text)


def _tidy(text: str) -> str:
    """Strip trailing spaces and collapse runs of blank lines left by skipped optional parts."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


# --------------------------------------------------------------------------- checking


def sample_values(template: PressTemplate) -> dict[str, str]:
    return {f.name: f.sample for f in template.fields}


def check_template(path: Path, lang: str) -> list[Problem]:
    """Every problem of one file: front matter, syntax, names, sandbox, a render with samples."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(path, None, f"cannot read: {exc}")]
    try:
        template = parse(text, path, lang)
    except PressTemplateError as exc:
        match = re.match(r"line (\d+): (.*)", str(exc))
        if match:
            return [Problem(path, int(match.group(1)), match.group(2))]
        return [Problem(path, None, str(exc))]
    problems = [Problem(path, line, message) for line, message in _problems_in_source(template)]
    if problems:
        return problems
    sample_now = datetime(2026, 11, 2, 9, 30)
    try:
        rendered = render(template, sample_values(template), template_globals(1, sample_now, lang))
    except PressTemplateError as exc:
        return [Problem(path, None, str(exc))]
    if not rendered.strip():
        problems.append(Problem(path, None, "renders to empty text with the sample values"))
    used = meta.find_undeclared_variables(_ENV.parse(template.source))
    for spec in template.fields:
        if spec.name not in used:
            problems.append(Problem(path, None, f"field {spec.name!r} is declared but never used"))
    return problems


def check_directory(root: Path, *, require_both_languages: bool = True) -> CheckReport:
    """Check every ``<lang>/*.j2`` under ``root``; unknown folders and files are problems too."""
    report = CheckReport()
    if not root.is_dir():
        report.problems.append(Problem(root, None, "not a directory"))
        return report
    per_lang: dict[str, set[str]] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if not entry.is_dir() or entry.name not in LANGUAGES:
            report.problems.append(
                Problem(entry, None, f"expected only the folders {', '.join(LANGUAGES)}")
            )
            continue
        for path in sorted(entry.iterdir()):
            if path.suffix != ".j2":
                if not path.name.startswith("."):
                    report.problems.append(Problem(path, None, "not a .j2 template; ignored"))
                continue
            report.checked += 1
            per_lang.setdefault(entry.name, set()).add(path.stem)
            report.problems.extend(check_template(path, entry.name))
    if require_both_languages and per_lang:
        for lang in LANGUAGES:
            for other in LANGUAGES:
                for kind in sorted(per_lang.get(other, set()) - per_lang.get(lang, set())):
                    report.problems.append(
                        Problem(root / lang / f"{kind}.j2", None, f"missing: {other} has {kind!r}")
                    )
    return report


def check_roots(roots: Iterable[tuple[Path, bool]]) -> CheckReport:
    total = CheckReport()
    for root, both in roots:
        report = check_directory(root, require_both_languages=both)
        total.checked += report.checked
        total.problems.extend(report.problems)
    return total


def run_check(directory: str | None, templates_dir: Path | None) -> tuple[int, list[str]]:
    """``crisisdesk templates check [DIR]``: exit code and the lines to print.

    Without DIR the built-ins and ``settings.templates_dir`` (if set) are checked; an override
    folder may hold one language only, since the built-in covers the other.
    """
    if directory is not None:
        roots = [(Path(directory), True)]
    else:
        roots = [(BUILTIN_ROOT, True)]
        if templates_dir is not None:
            roots.append((templates_dir, False))
    report = check_roots(roots)
    lines = [str(p) for p in report.problems]
    if report.problems:
        lines.append(f"{len(report.problems)} problem(s) in {report.checked} template(s)")
        return 1, lines
    return 0, [f"{report.checked} template(s) OK"]
