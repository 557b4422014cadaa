"""After-action reports: what happened in a crisis, who took part, what was said, how fast.

``build`` gathers the facts from rows (the timeline, members, published statements, approvals);
``render_markdown`` and ``render_docx`` turn them into files from the templates in
``templates/reports/<lang>/`` — ``after_action.md.j2`` (Markdown) and ``after_action.txt.j2``
(a plain outline, one block per line, that becomes the .docx: ``# `` headings, ``- `` bullets,
``| a | b |`` table rows, anything else a paragraph).

Key times are the ones a press office is judged on (Decision 25/2013/QĐ-TTg: first information
within a day of the event): detected → opened → convened (room ready) → first draft → approved →
published, each with the interval since the previous one and since detection.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.dates import format_datetime
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import Session, col, func, select

from bot.services import timeline
from bot.services.taskforces.crises import display_name
from bot.services.taskforces.queries import (
    RosterLine,
    TimelineLine,
    approvals_of,
    lines_of_timeline,
    roster,
)
from bot.templating import TEMPLATES_ROOT, normalise_language
from storage.models import Agency, Crisis, Draft, DraftStatus, Task, User

if TYPE_CHECKING:
    from bot.runtime import Runtime

KEY_TIMES = ("detected", "opened", "convened", "first_draft", "approved", "published")


@dataclass(frozen=True)
class KeyTime:
    key: str
    at: datetime | None
    since_previous: timedelta | None
    since_detected: timedelta | None


@dataclass
class ReportData:
    crisis: Crisis
    agency: Agency | None
    lead: str
    people: list[RosterLine]
    events: list[TimelineLine]
    statements: list[Draft]
    key_times: list[KeyTime]
    tasks_done: int
    tasks_open: int
    deadline_met: bool | None  # None: nothing published yet
    generated_at: datetime


def _key_times(session: Session, crisis: Crisis) -> list[KeyTime]:
    assert crisis.id is not None
    room = timeline.first(session, crisis.id, timeline.ROOM_READY)
    first_draft = session.exec(
        select(func.min(Draft.created_at)).where(Draft.crisis_id == crisis.id)
    ).one()
    approvals = approvals_of(session, crisis.id)
    approved: datetime | None = approvals[0].at if approvals else None
    if approved is None:
        event = timeline.first(session, crisis.id, "draft.approved")
        approved = event.at if event else None
    published = session.exec(
        select(func.min(Draft.published_at)).where(
            Draft.crisis_id == crisis.id, col(Draft.published_at).is_not(None)
        )
    ).one()
    moments: dict[str, datetime | None] = {
        "detected": crisis.detected_at,
        "opened": crisis.created_at,
        "convened": room.at if room else None,
        "first_draft": first_draft,
        "approved": approved,
        "published": published,
    }
    out: list[KeyTime] = []
    previous: datetime | None = None
    for key in KEY_TIMES:
        at = moments[key]
        out.append(
            KeyTime(
                key,
                at,
                at - previous if at is not None and previous is not None else None,
                at - crisis.detected_at if at is not None and key != "detected" else None,
            )
        )
        if at is not None:
            previous = at
    return out


def build(session: Session, crisis_id: int, now: datetime) -> ReportData:
    crisis = session.get(Crisis, crisis_id)
    if crisis is None:
        raise LookupError(f"no crisis {crisis_id}")
    events = lines_of_timeline(session, crisis_id)
    statements = list(
        session.exec(
            select(Draft)
            .where(Draft.crisis_id == crisis_id, Draft.status == DraftStatus.PUBLISHED)
            .order_by(col(Draft.published_at), col(Draft.id))
        )
    )
    tasks = session.exec(select(Task).where(Task.crisis_id == crisis_id)).all()
    done = sum(1 for t in tasks if t.done_at is not None)
    key_times = _key_times(session, crisis)
    published = key_times[-1].at
    lead = session.get(User, crisis.lead_id) if crisis.lead_id else None
    return ReportData(
        crisis=crisis,
        agency=session.get(Agency, crisis.agency_id),
        lead=display_name(lead),
        people=roster(session, crisis_id),
        events=events,
        statements=statements,
        key_times=key_times,
        tasks_done=done,
        tasks_open=len(tasks) - done,
        deadline_met=None if published is None else published <= crisis.deadline_at,
        generated_at=now,
    )


def _span(value: timedelta | None) -> dict[str, int] | None:
    """A duration split for templates: days, hours, minutes (rounded to the minute)."""
    if value is None:
        return None
    minutes = max(0, round(value.total_seconds() / 60))
    return {"d": minutes // 1440, "h": (minutes % 1440) // 60, "m": minutes % 60}


def _environment(runtime: Runtime, lang: str, root: Path = TEMPLATES_ROOT) -> Environment:
    tz = runtime.settings.tz
    env = Environment(
        loader=FileSystemLoader(root / "reports" / lang),
        autoescape=False,  # Markdown and plain text files, not chat HTML
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )

    def dt(value: datetime | None) -> str:
        if value is None:
            return "—"
        return format_datetime(value.astimezone(tz), "HH:mm dd/MM/yyyy", tzinfo=tz, locale=lang)

    env.filters["dt"] = dt
    env.globals["span"] = _span
    env.globals["tz"] = runtime.settings.timezone
    return env


def _render(runtime: Runtime, name: str, data: ReportData, lang: str) -> str:
    lang = normalise_language(lang)
    template = _environment(runtime, lang).get_template(name)
    return template.render(r=data)


def render_markdown(runtime: Runtime, data: ReportData, lang: str) -> str:
    return _render(runtime, "after_action.md.j2", data, lang)


def render_outline(runtime: Runtime, data: ReportData, lang: str) -> str:
    return _render(runtime, "after_action.txt.j2", data, lang)


def render_docx(runtime: Runtime, data: ReportData, lang: str) -> bytes:
    """The outline as a Word document (python-docx)."""
    from docx import Document  # imported lazily: only resolving needs it

    document: Any = Document()
    table: Any = None
    for raw in render_outline(runtime, data, lang).splitlines():
        line = raw.rstrip()
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if table is None:
                table = document.add_table(rows=0, cols=len(cells))
                table.style = "Table Grid"
            row = table.add_row().cells
            for i, text in enumerate(cells[: len(row)]):
                row[i].text = text
            continue
        table = None
        if not line:
            continue
        if line.startswith("## "):
            document.add_heading(line[3:], level=2)
        elif line.startswith("# "):
            document.add_heading(line[2:], level=1)
        elif line.startswith("- "):
            document.add_paragraph(line[2:], style="List Bullet")
        else:
            document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
