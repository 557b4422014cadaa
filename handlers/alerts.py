"""Alert buttons and the alert commands: ``/alerts``, ``/scanstatus``; written once for every
channel (``handlers.conversation``).

Every press reloads the alert and re-checks the presser (``bot.services.alerts`` rules): anyone in
another agency, a suspended person or a forged id gets a clear refusal, never an action. On a
channel without buttons each press is a short command (``/ack 12``), checked the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from bot.buttons import ForgedButton, id_rule, int_id, register
from bot.channels.base import Button
from bot.services import alerts, status
from bot.services.alerts import DISMISS_REASONS, AlertActionError
from bot.services.delivery import alert_buttons, alert_text
from bot.services.permissions import Actor
from bot.services.taskforces import opening
from bot.services.taskforces.crises import TaskForceError
from handlers.conversation.dispatch import PressFlow, on_command, on_press
from handlers.conversation.turn import Turn
from storage.models import Role

_alert_rule = id_rule(alerts.can_handle)


def _dismiss_reason_rule(session: Any, actor: Actor, ident: str) -> bool:
    alert_id, _reason = _split_reason(ident)
    return alerts.can_handle(session, actor, alert_id)


ACK = register("alert.ack", _alert_rule, "acknowledge an alert")
OPEN_TF = register("alert.tf", _alert_rule, "open a task force from an alert")
DRAFT = register("alert.draft", _alert_rule, "draft a response to an alert")
DISMISS = register("alert.dismiss", _alert_rule, "ask why an alert is dismissed")
DISMISS_REASON = register("alert.dismissr", _dismiss_reason_rule, "dismiss with a reason")
MUTE = register("alert.mute", id_rule(alerts.can_mute), "mute the alert's topic for 24 h")


def refusing(flow: Callable[[Turn, str], Awaitable[None]]) -> PressFlow:
    """Answer an AlertActionError (a vanished alert, a bad reason) with its message."""

    @wraps(flow)
    async def wrapper(turn: Turn, ident: str) -> None:
        try:
            await flow(turn, ident)
        except AlertActionError as exc:
            await turn.replies.notice(turn.render(exc.template, **exc.context), alert=True)

    return wrapper


def _split_reason(ident: str) -> tuple[int, str]:
    alert_text_id, _, reason = ident.partition("-")
    if reason not in DISMISS_REASONS:
        raise ForgedButton(f"bad dismiss reason {reason!r}")
    return int_id(alert_text_id), reason


async def _show(turn: Turn, alert_id: int) -> None:
    """Re-render the pressed alert message at once for the presser (others are debounced).

    Only a pressed message is re-rendered: a typed ``/ack 12`` has none, and its answer says
    what happened."""
    if turn.event.message is None:
        return
    runtime = turn.runtime
    f = alerts.facts_of(runtime, alert_id)
    await turn.replies.replace(
        turn.event.message,
        alert_text(runtime.renderer, turn.lang, f),
        alert_buttons(runtime.renderer, turn.lang, f.alert),
    )


@on_press(ACK, command="ack")
@refusing
async def acknowledge(turn: Turn, ident: str) -> None:
    alert_id = int_id(ident)
    alert = alerts.acknowledge_now(turn.runtime, turn.actor, alert_id)
    mine = alert.acknowledged_by_id == turn.actor.user_id
    await turn.replies.notice(turn.render("alert_acknowledged", mine=mine))
    await _show(turn, alert_id)


async def crisis_for_alert(turn: Turn, alert_id: int) -> int | None:
    """The alert's crisis, opened now (the presser leads it) unless one exists already."""
    runtime = turn.runtime
    f = alerts.facts_of(runtime, alert_id)
    if f.crisis_id is not None:
        return f.crisis_id
    title = turn.render("alert_crisis_title", f=f)
    try:
        opened = await opening.open_crisis(
            runtime,
            turn.actor,
            title,
            f.alert.severity,
            agency_id=f.topic.agency_id,
            alert_id=alert_id,
            topic_id=f.topic.id,
        )
    except TaskForceError as exc:
        await turn.say("crisis_error", code=exc.code, d=exc.details)
        return None
    await turn.say("crisis_opened", o=opened)
    return opened.crisis_id


@on_press(OPEN_TF, command="tf")
@refusing
async def open_task_force(turn: Turn, ident: str) -> None:
    alert_id = int_id(ident)
    existing = alerts.facts_of(turn.runtime, alert_id).crisis_id
    if existing is not None:
        await turn.replies.notice()
        await turn.say("alert_crisis_exists", crisis_id=existing)
        return
    await turn.replies.notice(turn.render("alert_opening_crisis"))
    await crisis_for_alert(turn, alert_id)


@on_press(DISMISS, command="dismiss")
@refusing
async def ask_dismiss_reason(turn: Turn, ident: str) -> None:
    alert_id = int_id(ident)
    await turn.replies.notice()
    buttons = [
        [
            Button(
                turn.render("alert_dismiss_reason", reason=reason),
                DISMISS_REASON.name,
                f"{alert_id}-{reason}",
            )
        ]
        for reason in DISMISS_REASONS
    ]
    await turn.replies.say(turn.render("alert_dismiss_ask"), buttons)


@on_press(DISMISS_REASON)
@refusing
async def dismiss(turn: Turn, ident: str) -> None:
    alert_id, reason = _split_reason(ident)
    alerts.dismiss_now(turn.runtime, turn.actor, alert_id, reason)
    await turn.replies.notice()
    await turn.replies.replace(turn.event.message, turn.render("alert_dismissed", reason=reason))


@on_press(MUTE, command="mute")
@refusing
async def mute(turn: Turn, ident: str) -> None:
    topic, until = alerts.mute_topic_of(turn.runtime, turn.actor, int_id(ident), 24)
    await turn.replies.notice(turn.render("mute_done", topic=topic.name, until=until))


@on_command("alerts", Role.MEMBER)
async def alerts_command(turn: Turn) -> None:
    await turn.say("alerts_list", rows=alerts.recent_for(turn.runtime, turn.actor))


@on_command("scanstatus", Role.SPOKESPERSON)
async def scanstatus_command(turn: Turn) -> None:
    await turn.say("scan_status", s=status.last_scan_of(turn.runtime))
