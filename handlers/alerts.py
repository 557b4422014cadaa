"""Alert buttons and the alert commands: ``/alerts``, ``/scanstatus``.

Every button reloads the alert and re-checks the presser (``bot.services.alerts`` rules): anyone in
another agency, a suspended person or a forged id gets a clear refusal, never an action.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot.buttons import Button, ForgedButton, int_id, register
from bot.channels.telegram import keyboard
from bot.services import alerts
from bot.services.alerts import DISMISS_REASONS, AlertActionError
from bot.services.commands import register_command
from bot.services.delivery import alert_buttons, alert_text
from bot.services.permissions import Actor
from bot.services.taskforces import opening
from bot.services.taskforces.crises import TaskForceError
from handlers.buttons import on_button
from handlers.common import gate, press_of, reply, runtime_of
from handlers.drafts import start_in_room
from storage.models import Role, Setting


def _alert_rule(session: Any, actor: Actor, ident: str) -> bool:
    return alerts.can_handle(session, actor, int_id(ident))


def _dismiss_reason_rule(session: Any, actor: Actor, ident: str) -> bool:
    alert_id, _reason = _split_reason(ident)
    return alerts.can_handle(session, actor, alert_id)


def _mute_rule(session: Any, actor: Actor, ident: str) -> bool:
    return alerts.can_mute(session, actor, int_id(ident))


ACK = register("alert.ack", _alert_rule, "acknowledge an alert")
OPEN_TF = register("alert.tf", _alert_rule, "open a task force from an alert")
DRAFT = register("alert.draft", _alert_rule, "draft a response to an alert")
DISMISS = register("alert.dismiss", _alert_rule, "ask why an alert is dismissed")
DISMISS_REASON = register("alert.dismissr", _dismiss_reason_rule, "dismiss with a reason")
MUTE = register("alert.mute", _mute_rule, "mute the alert's topic for 24 h")

register_command("alerts", Role.MEMBER)
register_command("scanstatus", Role.SPOKESPERSON)


def _refusing(callback: Any) -> Any:
    """Answer an AlertActionError (a vanished alert, a bad reason) with its message."""

    async def wrapper(
        update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
    ) -> None:
        try:
            await callback(update, context, actor, ident)
        except AlertActionError as exc:
            runtime, lang, query = press_of(update, context, actor)
            text = runtime.renderer.render(exc.template, lang, **exc.context)
            await query.answer(text, show_alert=True)

    return wrapper


def _split_reason(ident: str) -> tuple[int, str]:
    alert_text_id, _, reason = ident.partition("-")
    if reason not in DISMISS_REASONS:
        raise ForgedButton(f"bad dismiss reason {reason!r}")
    return int_id(alert_text_id), reason


async def _show(
    update: Update, context: ContextTypes.DEFAULT_TYPE, alert_id: int, lang: str
) -> None:
    """Re-render the pressed alert message at once for the presser (others are debounced)."""
    query = update.callback_query
    assert query is not None
    runtime = runtime_of(context)
    with runtime.db.session() as session:
        f = alerts.facts(session, alert_id)
    if query.message is not None and getattr(query.message, "text", None):
        await query.edit_message_text(
            alert_text(runtime.renderer, lang, f),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(alert_buttons(runtime.renderer, lang, f.alert)),
            disable_web_page_preview=True,
        )


@on_button(ACK.name)
@_refusing
async def acknowledge(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime, lang, query = press_of(update, context, actor)
    alert_id = int_id(ident)
    with runtime.db.session() as session:
        alert = alerts.acknowledge(session, actor, alert_id, runtime.clock.now())
        mine = alert.acknowledged_by_id == actor.user_id
    await query.answer(runtime.renderer.render("alert_acknowledged", lang, mine=mine))
    await _show(update, context, alert_id, lang)


async def _crisis_for_alert(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, alert_id: int, lang: str
) -> int | None:
    """The alert's crisis, opened now (the presser leads it) unless one exists already."""
    runtime = runtime_of(context)
    with runtime.db.session() as session:
        f = alerts.facts(session, alert_id)
    if f.crisis_id is not None:
        return f.crisis_id
    title = runtime.renderer.render("alert_crisis_title", lang, f=f)
    try:
        opened = await opening.open_crisis(
            runtime,
            actor,
            title,
            f.alert.severity,
            agency_id=f.topic.agency_id,
            alert_id=alert_id,
            topic_id=f.topic.id,
        )
    except TaskForceError as exc:
        await reply(
            update, runtime.renderer.render("crisis_error", lang, code=exc.code, d=exc.details)
        )
        return None
    await reply(update, runtime.renderer.render("crisis_opened", lang, o=opened))
    return opened.crisis_id


@on_button(OPEN_TF.name)
@_refusing
async def open_task_force(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime, lang, query = press_of(update, context, actor)
    alert_id = int_id(ident)
    with runtime.db.session() as session:
        existing = alerts.facts(session, alert_id).crisis_id
    if existing is not None:
        await query.answer()
        await reply(
            update, runtime.renderer.render("alert_crisis_exists", lang, crisis_id=existing)
        )
        return
    await query.answer(runtime.renderer.render("alert_opening_crisis", lang))
    await _crisis_for_alert(update, context, actor, alert_id, lang)


@on_button(DRAFT.name)
@_refusing
async def draft_response(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    """Open or reuse the alert's crisis, then start a holding statement in its room."""
    runtime, lang, query = press_of(update, context, actor)
    assert query.from_user is not None
    await query.answer(runtime.renderer.render("alert_starting_draft", lang))
    crisis_id = await _crisis_for_alert(update, context, actor, int_id(ident), lang)
    if crisis_id is None:
        return
    problem = await start_in_room(context, crisis_id, query.from_user.id, "holding", lang)
    await reply(
        update,
        problem or runtime.renderer.render("alert_draft_started", lang, crisis_id=crisis_id),
    )


@on_button(DISMISS.name)
@_refusing
async def ask_dismiss_reason(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime, lang, query = press_of(update, context, actor)
    alert_id = int_id(ident)
    await query.answer()
    buttons = [
        [
            Button(
                runtime.renderer.render("alert_dismiss_reason", lang, reason=reason),
                DISMISS_REASON.name,
                f"{alert_id}-{reason}",
            )
        ]
        for reason in DISMISS_REASONS
    ]
    await reply(update, runtime.renderer.render("alert_dismiss_ask", lang), buttons)


@on_button(DISMISS_REASON.name)
@_refusing
async def dismiss(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime, lang, query = press_of(update, context, actor)
    alert_id, reason = _split_reason(ident)
    with runtime.db.session() as session:
        alerts.dismiss(session, actor, alert_id, reason, runtime.clock.now())
    await query.answer()
    await query.edit_message_text(
        runtime.renderer.render("alert_dismissed", lang, reason=reason),
        parse_mode=ParseMode.HTML,
    )


@on_button(MUTE.name)
@_refusing
async def mute(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime, lang, query = press_of(update, context, actor)
    try:
        with runtime.db.session() as session:  # closed before any network call
            f = alerts.facts(session, int_id(ident))
            assert f.topic.id is not None
            until = alerts.mute(session, actor, f.topic.id, 24, runtime.clock.now())
    except AlertActionError as exc:
        await query.answer(
            runtime.renderer.render(exc.template, lang, **exc.context), show_alert=True
        )
        return
    await query.answer(runtime.renderer.render("mute_done", lang, topic=f.topic.name, until=until))


async def alerts_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    gated = await gate(update, context, Role.MEMBER)
    if gated is None:
        return
    runtime, actor, lang = gated
    with runtime.db.session() as session:
        rows = alerts.recent_alerts(session, actor)
    await reply(update, runtime.renderer.render("alerts_list", lang, rows=rows))


async def scanstatus_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    gated = await gate(update, context, Role.SPOKESPERSON)
    if gated is None:
        return
    runtime, _actor, lang = gated
    with runtime.db.session() as session:
        row = session.get(Setting, "last_scan")
        summary = dict(row.value) if row else None
    await reply(update, runtime.renderer.render("scan_status", lang, s=summary))


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("alerts", alerts_command),
        CommandHandler("scanstatus", scanstatus_command),
    ]
