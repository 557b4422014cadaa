"""The guided drill: what to do next, step by step, checked against the database and the emulator.

Each :class:`Step` names the persona who acts, the words shown on the page (from the page's
strings, ``drill_<key>``) and a condition. The panel shows every step; the first step whose
condition is not met is the current one. A step whose feature is not wired into the bot
(``bot.app.HANDLER_MODULES``, ``FLOW_MODULES``) is shown as unavailable and skipped, so the drill
grows as the features land. Conditions read rows (users, alerts, crises, drafts, approvals) and
the emulator's chats: nothing is inferred from which buttons someone pressed on the page.

The Zalo track (the steps of :data:`STEPS` with ``track="zalo"``) is the same drill from Zalo,
beside it: a spokesperson on Zalo registers by typing, the admin accepts her on Zalo, she follows
the topic by typing its number, receives the alert with its chart, acknowledges it with
``/ack``, and the admin approves the statement on Zalo with ``/duyet``. Its steps have their own
"current" one.

A new drill starts with the news day paused and runs once the trainee follows the topic (or says
they are ready), so the alert can never go out before there is someone to receive it; who
follows late is handed the open alert by the bot itself. The page can start it over.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.channels.refs import PersonRef
from bot.channels.telegram.notifier import person_ref
from bot.sandbox.personas import PERSONA_BY_KEY, ZALO_PERSONA_BY_KEY
from bot.sandbox.zalo_emulator import StoredMessage
from bot.services import identity
from storage.models import (
    Alert,
    Approval,
    Crisis,
    CrisisStatus,
    Decision,
    Draft,
    DraftStatus,
    Subscription,
    Topic,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from bot.sandbox.runner import Sandbox

CRISIS_TOPIC = "An toàn thực phẩm"
# The news day of a drill holds still until this step is done (or the trainee presses start).
READY_STEPS = ("subscribe", "zalo_subscribe")


@dataclass(frozen=True)
class Step:
    key: str
    persona: str  # who acts (a PERSONAS key)
    feature: str | None  # the handlers module the step needs, e.g. "handlers.registration"
    done: Callable[[Sandbox, Session], bool]
    track: str = "telegram"  # or "zalo": the same drill from Zalo, beside it


def _spokesperson(session: Session) -> User | None:
    return identity.person_for(session, person_ref(PERSONA_BY_KEY["spokesperson"].user_id))


def _on_zalo(key: str) -> PersonRef:
    return PersonRef("zalo", ZALO_PERSONA_BY_KEY[key].zalo_id)


def _zalo_spokesperson(session: Session) -> User | None:
    return identity.person_for(session, _on_zalo("zalo_spokesperson"))


def _registered(sandbox: Sandbox, session: Session) -> bool:
    return _has_registered(_spokesperson(session))


def _has_registered(user: User | None) -> bool:
    return user is not None and user.status in (UserStatus.PENDING, UserStatus.ACTIVE)


def _approved(sandbox: Sandbox, session: Session) -> bool:
    return _is_active(_spokesperson(session))


def _is_active(user: User | None) -> bool:
    return user is not None and user.status == UserStatus.ACTIVE


def _subscribed(sandbox: Sandbox, session: Session) -> bool:
    return _follows(session, _spokesperson(session))


def _follows(session: Session, user: User | None) -> bool:
    topic = session.exec(select(Topic).where(Topic.name == CRISIS_TOPIC)).first()
    if user is None or topic is None:
        return False
    found = session.exec(
        select(Subscription.id).where(
            Subscription.user_id == user.id, Subscription.topic_id == topic.id
        )
    ).first()
    return found is not None


def _alert_received(sandbox: Sandbox, session: Session) -> bool:
    topic = session.exec(select(Topic).where(Topic.name == CRISIS_TOPIC)).first()
    if topic is None:
        return False
    alert = session.exec(select(Alert).where(Alert.topic_id == topic.id)).first()
    if alert is None:
        return False
    chat_id = PERSONA_BY_KEY["spokesperson"].user_id
    chat = sandbox.emulator.world.chats.get(chat_id)
    bot_id = sandbox.emulator.bot.id
    return chat is not None and any(
        m.sender_id == bot_id and "photo" in m.data for m in chat.live_messages()
    )


def _zalo_registered(sandbox: Sandbox, session: Session) -> bool:
    return _has_registered(_zalo_spokesperson(session))


def _zalo_accepted(sandbox: Sandbox, session: Session) -> bool:
    return _is_active(_zalo_spokesperson(session))


def _zalo_subscribed(sandbox: Sandbox, session: Session) -> bool:
    return _follows(session, _zalo_spokesperson(session))


def _zalo_texts(sandbox: Sandbox, key: str, *, from_bot: bool) -> list[StoredMessage]:
    account = ZALO_PERSONA_BY_KEY[key].zalo_id
    if account not in sandbox.zalo_emulator.bot_platform.people:
        return []
    return sandbox.zalo_emulator.messages(account, from_bot=from_bot)


def _zalo_alert(sandbox: Sandbox, session: Session) -> bool:
    return any(m.photo_url for m in _zalo_texts(sandbox, "zalo_spokesperson", from_bot=True))


def _zalo_acknowledged(sandbox: Sandbox, session: Session) -> bool:
    user = _zalo_spokesperson(session)
    return (
        user is not None
        and session.exec(select(Alert.id).where(Alert.acknowledged_by_id == user.id)).first()
        is not None
    )


def _zalo_approved_draft(sandbox: Sandbox, session: Session) -> bool:
    """The admin approved a statement, and did it on Zalo (he typed /duyet there)."""
    admin = identity.person_for(session, _on_zalo("zalo_admin"))
    typed = any(
        (m.text or "").startswith("/duyet")
        for m in _zalo_texts(sandbox, "zalo_admin", from_bot=False)
    )
    return (
        admin is not None
        and typed
        and session.exec(
            select(Approval.id).where(
                Approval.approver_id == admin.id, Approval.decision == Decision.APPROVE
            )
        ).first()
        is not None
    )


def _crisis_opened(sandbox: Sandbox, session: Session) -> bool:
    return session.exec(select(Crisis.id).limit(1)).first() is not None


def _draft_submitted(sandbox: Sandbox, session: Session) -> bool:
    submitted = [s.value for s in DraftStatus if s not in (DraftStatus.DRAFTING,)]
    return (
        session.exec(select(Draft.id).where(sa.column("status").in_(submitted)).limit(1)).first()
        is not None
    )


def _changes_requested(sandbox: Sandbox, session: Session) -> bool:
    found = session.exec(
        select(Approval.id).where(Approval.decision == Decision.REQUEST_CHANGES).limit(1)
    ).first()
    return found is not None


def _approved_draft(sandbox: Sandbox, session: Session) -> bool:
    statuses = (DraftStatus.APPROVED.value, DraftStatus.PUBLISHED.value)
    return (
        session.exec(select(Draft.id).where(sa.column("status").in_(statuses)).limit(1)).first()
        is not None
    )


def _published(sandbox: Sandbox, session: Session) -> bool:
    return (
        session.exec(select(Draft.id).where(Draft.status == DraftStatus.PUBLISHED).limit(1)).first()
        is not None
    )


def _resolved(sandbox: Sandbox, session: Session) -> bool:
    return (
        session.exec(
            select(Crisis.id).where(Crisis.status == CrisisStatus.RESOLVED).limit(1)
        ).first()
        is not None
    )


STEPS: tuple[Step, ...] = (
    Step("register", "spokesperson", "handlers.registration", _registered),
    Step("approve", "admin", "handlers.registration", _approved),
    Step("subscribe", "spokesperson", "handlers.topics", _subscribed),
    Step("alert", "spokesperson", "handlers.alerts", _alert_received),
    Step("crisis", "spokesperson", "handlers.taskforce", _crisis_opened),
    Step("draft", "spokesperson", "handlers.drafts", _draft_submitted),
    Step("changes", "supervisor", "handlers.approvals", _changes_requested),
    Step("approve_draft", "supervisor", "handlers.approvals", _approved_draft),
    Step("publish", "spokesperson", "handlers.drafts", _published),
    Step("resolve", "spokesperson", "handlers.taskforce", _resolved),
    # On Zalo: everything typed.
    Step("zalo_register", "zalo_spokesperson", "handlers.registration", _zalo_registered, "zalo"),
    Step("zalo_accept", "zalo_admin", "handlers.registration", _zalo_accepted, "zalo"),
    Step("zalo_subscribe", "zalo_spokesperson", "handlers.topics", _zalo_subscribed, "zalo"),
    Step("zalo_alert", "zalo_spokesperson", "handlers.alerts", _zalo_alert, "zalo"),
    Step("zalo_ack", "zalo_spokesperson", "handlers.alerts", _zalo_acknowledged, "zalo"),
    Step("zalo_approve_draft", "zalo_admin", "handlers.approvals", _zalo_approved_draft, "zalo"),
)


def wired_features() -> set[str]:
    """Handler and flow modules the running bot has (``bot.app.HANDLER_MODULES`` and
    ``FLOW_MODULES``, the flows on the conversation layer)."""
    app = importlib.import_module("bot.app")
    wired = (*getattr(app, "HANDLER_MODULES", ()), *getattr(app, "FLOW_MODULES", ()))
    return {module.__name__ for module in wired}


def drill_state(sandbox: Sandbox, strings: dict[str, str]) -> dict[str, Any]:
    """The panel: every step with its status (done | current | todo | unavailable), worded with
    the page's ``strings`` of the reader's language."""
    done_keys = sandbox.drill_done
    with sandbox.db.session() as session:
        for step in STEPS:
            if step.key not in done_keys and step.done(sandbox, session):
                done_keys.add(step.key)  # once met, a step stays done
    if done_keys.intersection(READY_STEPS):
        sandbox.drill_go()  # following the topic is being ready: the news day runs
    steps, finished = _track("telegram", done_keys, strings)
    zalo_steps, zalo_finished = _track("zalo", done_keys, strings)
    return {
        "steps": steps,
        "finished": finished,
        "zalo_steps": zalo_steps,
        "zalo_finished": zalo_finished,
        "waiting": sandbox.drill_waiting,
    }


def _who(key: str) -> tuple[int | str, str]:
    """The acting persona's page id and name (a Telegram persona or a Zalo one)."""
    if key in PERSONA_BY_KEY:
        persona = PERSONA_BY_KEY[key]
        return persona.user_id, persona.full_name
    zalo = ZALO_PERSONA_BY_KEY[key]
    return zalo.page_id, f"{zalo.full_name} (Zalo)"


def _track(
    track: str, done_keys: set[str], strings: dict[str, str]
) -> tuple[list[dict[str, Any]], bool]:
    """One track's steps with their status, and whether none is left to do."""
    wired = wired_features()
    steps = []
    current_found = False
    for number, step in enumerate((s for s in STEPS if s.track == track), 1):
        persona_id, persona_name = _who(step.persona)
        if step.key in done_keys:
            status = "done"
        elif step.feature is not None and step.feature not in wired:
            status = "unavailable"
        elif not current_found:
            status = "current"
            current_found = True
        else:
            status = "todo"
        steps.append(
            {
                "number": number,
                "key": step.key,
                "status": status,
                "persona_id": persona_id,
                "persona": persona_name,
                "text": strings[f"drill_{step.key}"],
            }
        )
    return steps, not current_found
