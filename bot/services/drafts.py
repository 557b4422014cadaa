"""Press-response drafts: from a template to a versioned statement, with a full record.

A *statement* is identified by (crisis, number); each edit is a new ``Draft`` row with
``version + 1`` and the SHA-256 of its exact text, so an approval can be bound to one version.
Filling a template is a conversation kept in a ``ConversationState`` row (flow ``draft_fill``),
written before the bot asks the next question, so a restart resumes where the drafter was.

Every version, submission, decision and publication is an ``AuditEvent`` with the subject
``statement:<crisis>:<number>`` (``/history`` reads them back) and a ``TimelineEvent`` of the
crisis. This module names no messenger: it returns what to say, and the posting flows talk to
people through the ``Notifier`` protocol.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.channels.base import Attachment, DeliveryError, SentMessage
from bot.channels.limits import max_text
from bot.channels.refs import ChatRef, MessageRef, PersonRef
from bot.services import audit, states, stored_refs, timeline
from bot.services import press_templates as pt
from bot.services.approval_reminders import cancel_reminders
from bot.services.permissions import Actor, is_admin
from bot.services.taskforces.brief import touch_brief
from bot.services.textsplit import html_pieces
from storage.models import (
    Agency,
    Approval,
    Article,
    ArticleTopic,
    ConversationState,
    Crisis,
    CrisisMember,
    Decision,
    Delivery,
    Draft,
    DraftStatus,
    Role,
    Story,
    Topic,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.channels.base import Button
    from bot.runtime import Runtime

FLOW_FILL = "draft_fill"
SKIP = "-"
MANUAL_KEY = "__manual__"
OPEN_STATUSES = (DraftStatus.DRAFTING, DraftStatus.SUBMITTED, DraftStatus.CHANGES_REQUESTED)
TERMINAL = (DraftStatus.REJECTED, DraftStatus.DISCARDED)
DELIVERY_ROOM = "draft_room"
_GONE_MEMBER_STATES = ("declined", "removed")
_DRAFT_KINDS_IN_TIMELINE = "draft."
# What a part of a long statement keeps free under the channel's limit for its header line
# ("Dự thảo #3 · v2 · (2/3)") and the markup around the text.
HEADER_ROOM = 296


class DraftError(Exception):
    """A refused drafting or approval step; ``code`` names the message template branch."""

    def __init__(self, code: str, **context: Any) -> None:
        super().__init__(code)
        self.code = code
        self.context = context


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def subject(crisis_id: int, number: int) -> str:
    return f"statement:{crisis_id}:{number}"


# --------------------------------------------------------------------------- lookups


def library(runtime_or_dir: Any = None) -> pt.PressLibrary:
    """The press templates in force (``settings.templates_dir`` overrides the built-ins)."""
    override = getattr(getattr(runtime_or_dir, "settings", None), "templates_dir", runtime_or_dir)
    return pt.PressLibrary(override if override is not None else None)


def crisis_for_room(session: Session, chat: ChatRef) -> Crisis | None:
    """The crisis whose room is this chat (and forum topic); the newest if several match."""
    query = select(Crisis).where(
        Crisis.room_channel == chat.channel, Crisis.room_chat_id == chat.chat_id
    )
    query = query.where(
        col(Crisis.room_thread_id).is_(None)
        if chat.thread_id is None
        else Crisis.room_thread_id == chat.thread_id
    )
    return session.exec(query.order_by(col(Crisis.id).desc())).first()


def can_work_on(session: Session, actor: Actor, crisis: Crisis) -> bool:
    """Draft, edit, submit or discard: admins, the agency's people, the crisis's members."""
    if not actor.active:
        return False
    if is_admin(actor):
        return True
    if actor.user is None:
        return False
    if actor.agency_id == crisis.agency_id:
        return True
    member = session.exec(
        select(CrisisMember).where(
            CrisisMember.crisis_id == crisis.id, CrisisMember.user_id == actor.user.id
        )
    ).first()
    return member is not None and member.state not in _GONE_MEMBER_STATES


def latest(session: Session, crisis_id: int, number: int) -> Draft | None:
    return session.exec(
        select(Draft)
        .where(Draft.crisis_id == crisis_id, Draft.number == number)
        .order_by(col(Draft.version).desc())
    ).first()


def is_latest(session: Session, draft: Draft) -> bool:
    newest = latest(session, draft.crisis_id, draft.number)
    return newest is not None and newest.id == draft.id


def current_for_room(session: Session, crisis_id: int) -> Draft | None:
    """The most recently changed open statement of a crisis (for ``/set`` without a reply)."""
    rows = session.exec(
        select(Draft).where(Draft.crisis_id == crisis_id).order_by(col(Draft.id).desc())
    )
    for row in rows:
        if is_latest(session, row):
            return row if row.status in OPEN_STATUSES else None
    return None


def draft_for_message(session: Session, message: MessageRef) -> Draft | None:
    """The draft version a room message showed (the message a drafter replies to)."""
    delivery = session.exec(
        select(Delivery).where(
            Delivery.kind == DELIVERY_ROOM,
            Delivery.channel == message.chat.channel,
            Delivery.chat_id == message.chat.chat_id,
            Delivery.message_id == message.message_id,
        )
    ).first()
    return session.get(Draft, delivery.ref_id) if delivery is not None else None


def version(session: Session, draft_id: int) -> Draft:
    """A version a checked press or a stored message names (the button rule found it)."""
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise DraftError("draft_no_draft")
    return draft


def room_target(
    session: Session, chat: ChatRef, replied: MessageRef | None
) -> tuple[Crisis | None, Draft | None]:
    """The crisis whose room ``chat`` is, and the statement ``/set`` changes there: the version
    the person replied to, else the room's most recently changed open statement."""
    crisis = crisis_for_room(session, chat)
    if crisis is None:
        return None, None
    found = draft_for_message(session, replied) if replied is not None else None
    return crisis, found or current_for_room(session, crisis.id or 0)


def editable_parts(
    session: Session, draft_id: int, templates: pt.PressLibrary, lang: str
) -> tuple[int, list[str]]:
    """The statement's number and the parts ``/set`` changes, as ``lang`` names them (a draft
    whose template is gone: its stored field names)."""
    draft = version(session, draft_id)
    try:
        fields = templates.get(draft.template, draft.language).labels(lang)
    except pt.PressTemplateError:
        fields = sorted(k for k in draft.fields if not k.startswith("_"))
    return draft.number, fields


def room_of(session: Session, draft: Draft) -> ChatRef | None:
    """The room of the draft's crisis, where its versions and notices are posted."""
    crisis = session.get(Crisis, draft.crisis_id)
    return stored_refs.crisis_room(crisis) if crisis is not None else None


@dataclass(frozen=True)
class StatementHistory:
    """``/history <n>`` in a room: a refusal code, or the statement's title and steps."""

    problem: str = ""
    title: str = ""
    entries: list[HistoryEntry] = field(default_factory=list)


def room_history(
    session: Session,
    actor: Actor,
    chat: ChatRef,
    number: int | None,
    templates: pt.PressLibrary,
    limit: int = 40,
) -> StatementHistory:
    """The last ``limit`` steps of statement ``number`` of the crisis whose room ``chat`` is,
    if ``actor`` may work on it."""
    crisis = crisis_for_room(session, chat)
    if crisis is None:
        return StatementHistory("draft_not_room")
    if number is None:
        return StatementHistory("history_usage")
    if not can_work_on(session, actor, crisis):
        return StatementHistory("draft_not_allowed")
    newest = latest(session, crisis.id or 0, number)
    if newest is None:
        return StatementHistory("history_not_found")
    entries = history(session, crisis.id or 0, number)[-limit:]
    return StatementHistory("", template_title(templates, newest), entries)


# --------------------------------------------------------------------------- crisis context


def _spokesperson(session: Session, crisis: Crisis) -> User | None:
    person = session.exec(
        select(User)
        .where(
            User.agency_id == crisis.agency_id,
            User.role == Role.SPOKESPERSON,
            User.status == UserStatus.ACTIVE,
        )
        .order_by(col(User.id))
    ).first()
    if person is None and crisis.lead_id is not None:
        person = session.get(User, crisis.lead_id)
    return person


def _top_stories(session: Session, crisis: Crisis, lang: str, limit: int = 5) -> str:
    if crisis.topic_id is None:
        return ""
    since = crisis.detected_at - timedelta(days=2)
    stories = session.exec(
        select(Story)
        .join(Article, col(Article.story_id) == col(Story.id))
        .join(ArticleTopic, col(ArticleTopic.article_id) == col(Article.id))
        .where(ArticleTopic.topic_id == crisis.topic_id, Story.last_seen_at >= since)
        .distinct()
        .order_by(col(Story.outlet_count).desc(), col(Story.article_count).desc())
        .limit(limit)
    ).all()
    word = "outlets" if lang == "en" else "cơ quan báo chí"
    return "\n".join(f"- {s.title} ({s.outlet_count} {word})" for s in stories)


def _timeline_text(session: Session, crisis: Crisis, tz: ZoneInfo, limit: int = 8) -> str:
    events = [
        e
        for e in timeline.events(session, crisis.id or 0)
        if not e.kind.startswith(_DRAFT_KINDS_IN_TIMELINE) and e.text.strip()
    ][-limit:]
    return "\n".join(f"- {e.at.astimezone(tz):%H:%M %d/%m/%Y}: {e.text.strip()}" for e in events)


def crisis_context(session: Session, crisis: Crisis, lang: str, tz: ZoneInfo) -> dict[str, str]:
    """What a template's ``auto`` fields can take from the crisis (empty strings are unknown)."""
    agency = session.get(Agency, crisis.agency_id)
    topic = session.get(Topic, crisis.topic_id) if crisis.topic_id else None
    speaker = _spokesperson(session, crisis)
    return {
        "agency_name": agency.name if agency else "",
        "agency_code": agency.code if agency else "",
        "crisis_title": crisis.title,
        "topic": topic.name if topic else "",
        "detected_at": f"{crisis.detected_at.astimezone(tz):%H:%M %d/%m/%Y}",
        "spokesperson_name": speaker.full_name if speaker else "",
        "spokesperson_phone": (speaker.phone or "") if speaker else "",
        "top_stories": _top_stories(session, crisis, lang),
        "timeline": _timeline_text(session, crisis, tz),
    }


def _prefill(template: pt.PressTemplate, context: dict[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for spec in template.fields:
        if spec.auto and context.get(spec.auto, "").strip():
            values[spec.name] = context[spec.auto]
        elif spec.default is not None:
            values[spec.name] = spec.default
    return values


# --------------------------------------------------------------------------- filling


@dataclass
class Prompt:
    """The next question: which field, its prompt in the drafter's language, position."""

    state_id: int
    field: str
    text: str
    required: bool
    index: int
    total: int
    kind_title: str


@dataclass
class Started:
    """What ``start_draft``/``answer`` produced: a question to ask, or a new draft."""

    prompt: Prompt | None = None
    draft: Draft | None = None
    prefilled: list[tuple[str, str]] = field(default_factory=list)  # (question, value) pairs


def fill_state(session: Session, chat_ref: str, user_ref: str) -> ConversationState | None:
    return states.find(session, chat_ref, user_ref, FLOW_FILL)


def start_draft(
    session: Session,
    *,
    crisis: Crisis,
    actor: Actor,
    kind: str,
    lang: str,
    ui_lang: str,
    chat_ref: str,
    user_ref: str,
    at: datetime,
    tz: ZoneInfo,
    templates: pt.PressLibrary,
) -> Started:
    """Begin a statement for ``crisis``: prefill from the crisis, then ask for what is missing.

    This is also the entry point for the alerts' "Draft response" button (``chat_ref`` is then
    the room's, so the drafter answers in the room). A half-filled draft of the same person in
    the same chat is replaced.
    """
    if not can_work_on(session, actor, crisis):
        raise DraftError("draft_not_allowed")
    try:
        template = templates.get(kind, lang)
    except pt.UnknownTemplate:
        words = [pt.kind_word(k, ui_lang) for k in templates.kinds(lang)]
        raise DraftError("draft_unknown_kind", kind=kind, kinds=words) from None
    except pt.PressTemplateError as exc:
        raise DraftError("draft_template_broken", kind=kind, detail=str(exc)) from None
    values = _prefill(template, crisis_context(session, crisis, lang, tz))
    pending = [f.name for f in template.fields if f.name not in values]
    state = states.find(session, chat_ref, user_ref, FLOW_FILL)
    if state is None:
        state = ConversationState(
            channel=PersonRef.from_label(user_ref).channel,
            chat_ref=chat_ref,
            user_ref=user_ref,
            flow=FLOW_FILL,
            step="",
        )
    state.data = {
        "crisis_id": crisis.id,
        "kind": kind,
        "lang": lang,
        "ui_lang": ui_lang,
        "author_id": actor.user_id,
        "values": values,
        "pending": pending,
        "asked": 0,
        "prompt_message_id": None,
        "tz": tz.key,
    }
    state.updated_at = at
    session.add(state)
    session.flush()
    result = _advance(session, state, template, at)
    # Shown as the questions the drafter would have been asked, never as internal field names.
    result.prefilled = [
        (f.prompt(ui_lang), values[f.name]) for f in template.fields if f.name in values
    ]
    return result


def _advance(
    session: Session, state: ConversationState, template: pt.PressTemplate, at: datetime
) -> Started:
    data = dict(state.data)
    pending: list[str] = list(data["pending"])
    if pending:
        spec = template.field(pending[0])
        assert spec is not None
        state.step = spec.name
        state.updated_at = at
        state.data = data
        session.add(state)
        total = data["asked"] + len(pending)
        return Started(
            prompt=Prompt(
                state_id=state.id or 0,
                field=spec.name,
                text=spec.prompt(data["ui_lang"]),
                required=spec.required,
                index=data["asked"] + 1,
                total=total,
                kind_title=template.title,
            )
        )
    crisis = session.get(Crisis, data["crisis_id"])
    if crisis is None:
        session.delete(state)
        raise DraftError("draft_crisis_gone")
    draft = create_first_version(
        session,
        crisis=crisis,
        template=template,
        values=data["values"],
        author_id=data["author_id"],
        at=at,
        tz=ZoneInfo(data["tz"]),
    )
    session.delete(state)
    return Started(draft=draft)


def answer(
    session: Session,
    state: ConversationState,
    text: str,
    *,
    at: datetime,
    templates: pt.PressLibrary,
) -> Started:
    """Record the drafter's answer to the current question and move on."""
    data = dict(state.data)
    try:
        template = templates.get(data["kind"], data["lang"])
    except pt.PressTemplateError as exc:
        session.delete(state)
        raise DraftError("draft_template_broken", kind=data["kind"], detail=str(exc)) from None
    pending: list[str] = list(data["pending"])
    if not pending:
        return _advance(session, state, template, at)
    spec = template.field(pending[0])
    value = text.strip()
    if spec is None:
        pending.pop(0)
    elif value == SKIP or not value:
        if spec.required:
            raise DraftError("draft_field_required", field=spec.label(data["ui_lang"]))
        pending.pop(0)
        data["asked"] += 1
    else:
        if len(value) > pt.MAX_FIELD_CHARS:
            raise DraftError("draft_field_too_long", limit=pt.MAX_FIELD_CHARS)
        data["values"] = {**data["values"], spec.name: value}
        pending.pop(0)
        data["asked"] += 1
    data["pending"] = pending
    data["prompt_message_id"] = None
    state.data = data
    return _advance(session, state, template, at)


def remember_prompt(session: Session, state_id: int, message_id: str) -> None:
    """Store which bot message asked the current question (replies are matched to it)."""
    state = session.get(ConversationState, state_id)
    if state is not None:
        state.data = {**state.data, "prompt_message_id": message_id}


def cancel_fill(session: Session, chat_ref: str, user_ref: str) -> bool:
    state = states.find(session, chat_ref, user_ref, FLOW_FILL)
    if state is None:
        return False
    session.delete(state)
    return True


def chat_key(chat: ChatRef) -> str:
    """The ``ConversationState.chat_ref`` of a chat and forum topic (``0``: none)."""
    return f"{chat.chat_id}:{chat.thread_id or 0}"


def awaited(
    session: Session, chat: ChatRef, user_ref: str, replied: MessageRef | None
) -> tuple[Draft | None, ConversationState | None]:
    """What a person's text in a room answers: the version they replied to (a new full text),
    else their half-filled template's question in this room, else nothing."""
    edited = draft_for_message(session, replied) if replied is not None else None
    if edited is not None:
        return edited, None
    return None, fill_state(session, chat_key(chat), user_ref)


def answer_fill(
    session: Session, state_id: int | None, text: str, *, at: datetime, templates: pt.PressLibrary
) -> Started | None:
    """:func:`answer` for the state read earlier; None if it went meanwhile (cancelled)."""
    state = session.get(ConversationState, state_id)
    return answer(session, state, text, at=at, templates=templates) if state else None


def start_in_room(
    session: Session,
    *,
    crisis_id: int,
    actor: Actor,
    kind: str,
    lang: str,
    ui_lang: str,
    user_ref: str,
    at: datetime,
    tz: ZoneInfo,
    templates: pt.PressLibrary,
) -> tuple[Started, ChatRef]:
    """Start a statement for ``crisis_id`` whose questions are asked in the crisis room (the
    alerts' "Draft response" is pressed elsewhere); returns what to ask and the room."""
    crisis = session.get(Crisis, crisis_id)
    room = stored_refs.crisis_room(crisis) if crisis is not None else None
    if crisis is None or room is None:
        raise DraftError("draft_not_room")
    started = start_draft(
        session,
        crisis=crisis,
        actor=actor,
        kind=kind,
        lang=lang,
        ui_lang=ui_lang,
        chat_ref=chat_key(room),
        user_ref=user_ref,
        at=at,
        tz=tz,
        templates=templates,
    )
    return started, room


# --------------------------------------------------------------------------- versions


def _next_number(session: Session, crisis_id: int) -> int:
    current = session.exec(select(func.max(Draft.number)).where(Draft.crisis_id == crisis_id)).one()
    return int(current or 0) + 1


def _render(
    template: pt.PressTemplate, values: dict[str, str], number: int, at: datetime, tz: ZoneInfo
) -> str:
    local = at.astimezone(tz)
    try:
        return pt.render(template, values, pt.template_globals(number, local, template.lang))
    except pt.MissingFields as exc:
        raise DraftError(
            "draft_missing_fields", fields=template.labels(template.lang, exc.names)
        ) from None
    except pt.PressTemplateError as exc:
        raise DraftError("draft_template_broken", kind=template.kind, detail=str(exc)) from None


def create_first_version(
    session: Session,
    *,
    crisis: Crisis,
    template: pt.PressTemplate,
    values: dict[str, str],
    author_id: int | None,
    at: datetime,
    tz: ZoneInfo,
) -> Draft:
    assert crisis.id is not None
    number = _next_number(session, crisis.id)
    body = _render(template, values, number, at, tz)
    draft = Draft(
        crisis_id=crisis.id,
        number=number,
        template=template.kind,
        language=template.lang,
        version=1,
        fields=dict(values),
        body=body,
        body_sha256=sha256(body),
        status=DraftStatus.DRAFTING,
        author_id=author_id,
        created_at=at,
    )
    session.add(draft)
    session.flush()
    record_step(
        session,
        draft,
        "draft.created",
        author_id,
        at,
        text=f"#{number} v1 {template.title}",
        extra={"template": template.kind, "language": template.lang},
    )
    return draft


@dataclass(frozen=True)
class DiffSummary:
    added: int
    removed: int
    excerpt: str

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "excerpt": self.excerpt}


def diff_summary(old: str, new: str) -> DiffSummary:
    """Lines added and removed, and the first changed line, for the version's note."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    added = removed = 0
    excerpt = ""
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        added += j2 - j1
        removed += i2 - i1
        if not excerpt:
            changed = new_lines[j1:j2] or old_lines[i1:i2]
            first = next((line.strip() for line in changed if line.strip()), "")
            excerpt = first if len(first) <= 80 else first[:79] + "…"
    return DiffSummary(added, removed, excerpt)


def _editable(session: Session, draft: Draft, actor: Actor) -> Crisis:
    crisis = session.get(Crisis, draft.crisis_id)
    if crisis is None:
        raise DraftError("draft_crisis_gone")
    if not can_work_on(session, actor, crisis):
        raise DraftError("draft_not_allowed")
    newest = latest(session, draft.crisis_id, draft.number)
    assert newest is not None
    if newest.status in TERMINAL:
        raise DraftError("draft_closed", number=draft.number, status=newest.status)
    return crisis


def new_version(
    session: Session,
    draft: Draft,
    actor: Actor,
    *,
    body: str | None = None,
    set_text: str | None = None,
    ui_lang: str = "vi",
    at: datetime,
    tz: ZoneInfo,
    templates: pt.PressLibrary,
) -> tuple[Draft, Draft, DiffSummary]:
    """A new version from a full new text (``body``) or one changed field (``set_text``: what
    followed ``/set``, the field as a person names it and then the value).

    Returns (new, previous, diff). The previous version's approvals stop counting: approvals
    are bound to a version's hash, so any edit needs approval again.
    """
    _editable(session, draft, actor)
    previous = latest(session, draft.crisis_id, draft.number)
    assert previous is not None
    values = dict(previous.fields)
    manual = bool(values.pop(MANUAL_KEY, False))
    if body is not None:
        text = body.strip()
        if not text:
            raise DraftError("draft_empty")
        manual = True
    else:
        assert set_text is not None
        if manual:
            raise DraftError("draft_set_manual")
        try:
            template = templates.get(previous.template, previous.language)
        except pt.PressTemplateError as exc:
            raise DraftError(
                "draft_template_broken", kind=previous.template, detail=str(exc)
            ) from None
        found = template.split_field(set_text)
        if found is None or not found[1]:
            choices = template.labels(ui_lang)
            if found is None and set_text.strip():
                raise DraftError("draft_unknown_field", field=set_text.split()[0], fields=choices)
            raise DraftError("draft_set_usage", fields=choices)
        spec, value = found
        if len(value) > pt.MAX_FIELD_CHARS:
            raise DraftError("draft_field_too_long", limit=pt.MAX_FIELD_CHARS)
        values[spec.name] = value
        text = _render(template, values, previous.number, at, tz)
    if text == previous.body:
        raise DraftError("draft_unchanged", version=previous.version)
    if manual:
        values[MANUAL_KEY] = True
    diff = diff_summary(previous.body, text)
    if previous.status == DraftStatus.SUBMITTED or previous.status == DraftStatus.DRAFTING:
        _supersede(session, previous, at)
    elif previous.status == DraftStatus.CHANGES_REQUESTED:
        pass  # keeps its decision in the record; the new version answers it
    fresh = Draft(
        crisis_id=previous.crisis_id,
        number=previous.number,
        template=previous.template,
        language=previous.language,
        version=previous.version + 1,
        fields=values,
        body=text,
        body_sha256=sha256(text),
        status=DraftStatus.DRAFTING,
        author_id=previous.author_id,
        created_at=at,
    )
    session.add(fresh)
    session.flush()
    record_step(
        session,
        fresh,
        "draft.edited",
        actor.user_id,
        at,
        text=f"#{fresh.number} v{fresh.version}: +{diff.added} −{diff.removed}",
        extra={
            "diff": diff.as_dict(),
            "previous_sha256": previous.body_sha256,
            "how": "text" if body is not None else f"set {spec.name}",
        },
    )
    return fresh, previous, diff


def _supersede(session: Session, draft: Draft, at: datetime) -> None:
    was_submitted = draft.status == DraftStatus.SUBMITTED
    draft.status = DraftStatus.SUPERSEDED
    session.add(draft)
    if was_submitted:
        cancel_reminders(session, draft, at)


def discard(session: Session, draft: Draft, actor: Actor, at: datetime) -> Draft:
    _editable(session, draft, actor)
    newest = latest(session, draft.crisis_id, draft.number)
    assert newest is not None
    if newest.status in (DraftStatus.APPROVED, DraftStatus.PUBLISHED):
        raise DraftError("draft_closed", number=draft.number, status=newest.status)
    if newest.status == DraftStatus.SUBMITTED:
        cancel_reminders(session, newest, at)
    newest.status = DraftStatus.DISCARDED
    session.add(newest)
    record_step(session, newest, "draft.discarded", actor.user_id, at, text=f"#{newest.number}")
    return newest


def record_step(
    session: Session,
    draft: Draft,
    action: str,
    actor_id: int | None,
    at: datetime,
    *,
    text: str = "",
    extra: dict[str, Any] | None = None,
) -> None:
    """One audit event and one timeline event for a step of a statement; the crisis brief is
    edited soon after (it counts the statements published)."""
    data = {
        "draft_id": draft.id,
        "number": draft.number,
        "version": draft.version,
        "sha256": draft.body_sha256,
        "status": str(draft.status),
        **(extra or {}),
    }
    audit.record(
        session,
        action=action,
        actor_id=actor_id,
        subject=subject(draft.crisis_id, draft.number),
        after=data,
        at=at,
    )
    timeline.add(session, draft.crisis_id, action, actor_id, text, data, at=at)
    touch_brief(session, draft.crisis_id, at)  # statements published show in the pinned brief


# --------------------------------------------------------------------------- presentation


def template_title(templates: pt.PressLibrary, draft: Draft) -> str:
    try:
        return templates.get(draft.template, draft.language).title
    except pt.PressTemplateError:
        return draft.template


def attachments(draft: Draft, title: str) -> list[Attachment]:
    """The full text as .docx (Times New Roman 13, as Decree 30/2020 asks) and as .txt."""
    base = f"statement-{draft.crisis_id}-{draft.number}-v{draft.version}"
    return [
        Attachment(f"{base}.docx", docx_bytes(draft.body, title)),
        Attachment(f"{base}.txt", draft.body.encode("utf-8")),
    ]


def docx_bytes(body: str, title: str) -> bytes:
    from docx import Document
    from docx.shared import Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(13)
    document.core_properties.title = title
    for line in body.split("\n"):
        document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_text(data: bytes) -> str:
    """The text of a .docx made by :func:`docx_bytes` (tests and the record use it)."""
    from docx import Document

    return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)


def long_pieces(header: str, body: str, max_text: int) -> list[str]:
    """Header + body as HTML messages of at most ``max_text`` characters each (the channel's
    limit, ``bot.channels.limits``).

    The header is HTML from a message template; the body is plain text, split first and escaped
    piece by piece, so no tag or entity is ever cut.
    """
    limit = max(500, max_text - HEADER_ROOM - len(header))
    pieces = [p for p in html_pieces(body, limit) if p.strip()] or [""]
    texts: list[str] = []
    for index, piece in enumerate(pieces):
        part = f" ({index + 1}/{len(pieces)})" if len(pieces) > 1 else ""
        if index > 0:
            texts.append(f"<i>({index + 1}/{len(pieces)})</i>\n{piece}")
        elif header:
            texts.append(f"{header}{part}\n\n{piece}")
        else:
            texts.append(piece)
    return texts


async def send_long(
    runtime: Runtime,
    to: ChatRef,
    header: str,
    body: str,
    buttons: list[list[Button]] | None = None,
) -> list[SentMessage]:
    """:func:`long_pieces` sent in order; buttons on the last part."""
    texts = long_pieces(header, body, max_text(runtime.notifier.channel))
    sent: list[SentMessage] = []
    for index, text in enumerate(texts):
        last = index == len(texts) - 1
        sent.append(await runtime.notifier.send_text(to, text, buttons if last else None))
    return sent


def remember_room_messages(
    session: Session, draft: Draft, messages: list[SentMessage], at: datetime
) -> None:
    """Ledger of the room messages showing a version, so a reply to any of them edits it."""
    author = draft.author_id
    if author is None:
        return
    for index, message in enumerate(messages):
        session.add(
            stored_refs.sent_delivery(
                message,
                kind=DELIVERY_ROOM,
                ref_id=draft.id or 0,
                user_id=author,
                part=f"room{index}",
                at=at,
            )
        )


async def post_version(
    runtime: Runtime,
    draft_id: int,
    *,
    header: str,
    buttons: list[list[Button]],
    with_files: bool | None = None,
) -> list[SentMessage]:
    """Show a version in its crisis room: text (split when long), buttons, and files if long."""
    with runtime.db.session() as session:
        draft = session.get(Draft, draft_id)
        crisis = session.get(Crisis, draft.crisis_id) if draft else None
        if draft is None or crisis is None:
            return []
        room = stored_refs.crisis_room(crisis)
        title = template_title(library(runtime), draft)
    if room is None:
        return []
    sent = await send_long(runtime, room, header, draft.body, buttons)
    long_text = len(sent) > 1
    if with_files or (with_files is None and long_text):
        for attachment in attachments(draft, title):
            # The text went out; a missing file is not worth failing the edit for.
            with contextlib.suppress(DeliveryError):
                await runtime.notifier.send_document(room, attachment)
    with runtime.db.session() as session:
        fresh = session.get(Draft, draft_id)
        if fresh is not None:
            remember_room_messages(session, fresh, sent, runtime.clock.now())
    return sent


# --------------------------------------------------------------------------- record


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    action: str
    actor: str
    version: int | None
    detail: dict[str, Any]


def history(session: Session, crisis_id: int, number: int) -> list[HistoryEntry]:
    """Every step of one statement, oldest first, with who did it."""
    events = audit.history(session, subject(crisis_id, number), limit=1000)
    names: dict[int, str] = {}
    out: list[HistoryEntry] = []
    for event in events:
        who = ""
        if event.actor_id is not None:
            if event.actor_id not in names:
                person = session.get(User, event.actor_id)
                names[event.actor_id] = person.full_name if person else f"#{event.actor_id}"
            who = names[event.actor_id]
        after = event.after or {}
        out.append(HistoryEntry(event.at, event.action, who, after.get("version"), after))
    return out


@dataclass(frozen=True)
class IssuedStatement:
    """A published statement, for the after-action report."""

    number: int
    version: int
    kind: str
    title: str
    language: str
    published_at: datetime
    sha256: str
    approvers: list[str]
    text: str


def statements_issued(
    session: Session, crisis_id: int, templates: pt.PressLibrary | None = None
) -> list[IssuedStatement]:
    """Every published version of the crisis's statements, in publication order."""
    templates = templates or pt.PressLibrary()
    rows = session.exec(
        select(Draft)
        .where(Draft.crisis_id == crisis_id, col(Draft.published_at).is_not(None))
        .order_by(col(Draft.published_at), col(Draft.id))
    ).all()
    out = []
    for draft in rows:
        assert draft.published_at is not None
        approvers = session.exec(
            select(User.full_name)
            .join(Approval, col(Approval.approver_id) == col(User.id))
            .where(Approval.draft_id == draft.id, Approval.decision == Decision.APPROVE)
            .order_by(col(Approval.at))
        ).all()
        out.append(
            IssuedStatement(
                number=draft.number,
                version=draft.version,
                kind=draft.template,
                title=template_title(templates, draft),
                language=draft.language,
                published_at=draft.published_at,
                sha256=draft.body_sha256,
                approvers=list(approvers),
                text=draft.body,
            )
        )
    return out


def time_to_first_statement(session: Session, crisis_id: int) -> timedelta | None:
    """Detection → first publication of any of the crisis's statements; None before that."""
    crisis = session.get(Crisis, crisis_id)
    first = session.exec(
        select(Draft)
        .where(Draft.crisis_id == crisis_id, col(Draft.published_at).is_not(None))
        .order_by(col(Draft.published_at))
        .limit(1)
    ).first()
    if crisis is None or first is None or first.published_at is None:
        return None
    return first.published_at - crisis.detected_at


__all__ = [
    "DraftError",
    "IssuedStatement",
    "crisis_for_room",
    "history",
    "start_draft",
    "statements_issued",
    "time_to_first_statement",
]


# --------------------------------------------------------------------------- units of work
# What the chat flows call (``handlers.drafts``): each opens and commits its own transaction at
# the runtime's clock, so a question is stored before it is asked and a version before it is
# shown; a ``DraftError`` leaves nothing written.


def _made_under(runtime: Runtime) -> dict[str, Any]:
    """What a new version is made under: the time now, the desk's time zone and the press
    templates in force (``at``, ``tz``, ``templates``)."""
    return {"at": runtime.clock.now(), "tz": runtime.settings.tz, "templates": library(runtime)}


def titled_version(runtime: Runtime, draft_id: int) -> tuple[Draft, str]:
    """A version and its template's title, for the header it is posted under."""
    with runtime.db.session() as session:
        draft = version(session, draft_id)
        return draft, template_title(library(runtime), draft)


def begin_in_room(
    runtime: Runtime, crisis_id: int, actor: Actor, kind: str, lang: str, ui_lang: str, who: str
) -> tuple[Started, ChatRef]:
    """``start_in_room`` for the person labelled ``who`` (``/draft``, the alerts' "Draft
    response")."""
    with runtime.db.session() as session:
        return start_in_room(
            session,
            crisis_id=crisis_id,
            actor=actor,
            kind=kind,
            lang=lang,
            ui_lang=ui_lang,
            user_ref=who,
            **_made_under(runtime),
        )


def note_prompt(runtime: Runtime, state_id: int | None, message_id: str) -> None:
    """``remember_prompt`` once the question is sent (a reply to it then finds its state)."""
    if state_id is None:
        return
    with runtime.db.session() as session:
        remember_prompt(session, state_id, message_id)


def cancel_own_fill(runtime: Runtime, chat_ref: str, user_ref: str) -> bool:
    """``/draft cancel``: whether a half-filled template was dropped."""
    with runtime.db.session() as session:
        return cancel_fill(session, chat_ref, user_ref)


def room_crisis_id(runtime: Runtime, chat: ChatRef) -> int | None:
    """The id of the crisis whose room ``chat`` is (``crisis_for_room``), or None."""
    with runtime.db.session() as session:
        crisis = crisis_for_room(session, chat)
        return crisis.id if crisis is not None else None


def edit_version(
    runtime: Runtime,
    draft_id: int,
    actor: Actor,
    ui_lang: str,
    body: str | None,
    set_text: str | None,
) -> tuple[Draft, Draft, DiffSummary]:
    """``new_version`` of the version ``draft_id`` (a full ``body`` or a ``/set`` text):
    (new, previous, diff)."""
    with runtime.db.session() as session:
        return new_version(
            session,
            version(session, draft_id),
            actor,
            body=body,
            set_text=set_text,
            ui_lang=ui_lang,
            **_made_under(runtime),
        )


def statement_to_set(
    runtime: Runtime, chat: ChatRef, replied: MessageRef | None
) -> tuple[Crisis | None, Draft | None]:
    """``room_target``: the room's crisis and the version ``/set`` changes."""
    with runtime.db.session() as session:
        return room_target(session, chat, replied)


def statement_history(
    runtime: Runtime, actor: Actor, chat: ChatRef, number: int | None
) -> StatementHistory:
    """``room_history`` under the press templates in force (``/history <n>``)."""
    with runtime.db.session() as session:
        return room_history(session, actor, chat, number, library(runtime))


def room_answer_target(
    runtime: Runtime, chat: ChatRef, user_ref: str, replied: MessageRef | None
) -> tuple[Draft | None, ConversationState | None]:
    """``awaited``: what a person's text in a room answers, if anything."""
    with runtime.db.session() as session:
        return awaited(session, chat, user_ref, replied)


def answer_question(runtime: Runtime, state_id: int | None, text: str) -> Started | None:
    """``answer_fill``: the next question or the first version, None if the fill went."""
    with runtime.db.session() as session:
        return answer_fill(
            session, state_id, text, at=runtime.clock.now(), templates=library(runtime)
        )


def parts_to_edit(runtime: Runtime, draft_id: int, lang: str) -> tuple[int, list[str]]:
    """``editable_parts`` under the press templates in force (the Edit button's help)."""
    with runtime.db.session() as session:
        return editable_parts(session, draft_id, library(runtime), lang)


def discard_version(runtime: Runtime, draft_id: int, actor: Actor) -> tuple[Draft, ChatRef | None]:
    """``discard`` the statement of version ``draft_id``: the discarded newest version and the
    room to tell."""
    with runtime.db.session() as session:
        discarded = discard(session, version(session, draft_id), actor, runtime.clock.now())
        return discarded, room_of(session, discarded)


def can_work_on_draft(session: Session, actor: Actor, draft_id: int) -> bool:
    """:func:`can_work_on` the crisis of a draft (Submit, Edit, Discard); False if it is gone."""
    draft = session.get(Draft, draft_id)
    crisis = session.get(Crisis, draft.crisis_id) if draft else None
    return crisis is not None and can_work_on(session, actor, crisis)
