"""Topics and sources in chat: follow, mute, and (admins, supervisors) manage them.

``/topics`` lists the agency's topics with a follow/unfollow button each (``/topics <name>``
shows one topic's query); ``/mute <topic> [hours]``;
``/addtopic name | query | sensitivity``, ``/settopic name | query [| sensitivity]``,
``/rmtopic name``; ``/sources``, ``/addsource name | outlet | url``, ``/rmsource id``.
Arguments are split on ``|`` because topic names and queries contain spaces.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot.buttons import Button, int_id, register
from bot.channels.telegram.notifier import keyboard
from bot.services import alerts, subscriptions
from bot.services.alerts import AlertActionError, mute
from bot.services.commands import register_command
from bot.services.permissions import Actor, has_role
from bot.services.subscriptions import TopicError
from handlers.buttons import on_button
from handlers.common import (
    actor_of,
    audited,
    gate,
    language_of,
    press_of,
    refuse,
    reply,
    runtime_of,
)
from storage.models import Role

FOLLOW = register(
    "topic.follow",
    lambda s, actor, ident: subscriptions.can_follow(s, actor, int_id(ident)),
    "follow a topic",
)
UNFOLLOW = register(
    "topic.unfollow",
    lambda s, actor, ident: subscriptions.can_follow(s, actor, int_id(ident)),
    "unfollow a topic",
)
for _name in ("topics", "mute"):
    register_command(_name, Role.MEMBER)
for _name in ("addtopic", "settopic", "rmtopic", "sources", "addsource", "rmsource"):
    register_command(_name, Role.SUPERVISOR)


def _parts(context: ContextTypes.DEFAULT_TYPE) -> list[str]:
    return [p.strip() for p in " ".join(context.args or []).split("|")]


def _topics_view(
    context: ContextTypes.DEFAULT_TYPE, actor: Actor, lang: str
) -> tuple[str, list[list[Button]]]:
    runtime = runtime_of(context)
    with runtime.db.session() as session:
        lines = subscriptions.visible_topics(session, actor, runtime.clock.now())
    text = runtime.renderer.render("topics_list", lang, lines=lines)
    buttons = [
        [
            Button(
                runtime.renderer.render("topics_button", lang, line=line),
                (UNFOLLOW if line.subscribed else FOLLOW).name,
                line.topic.id or 0,
            )
        ]
        for line in lines
    ]
    return text, buttons


async def topics_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    gated = await gate(update, context, Role.MEMBER)
    if gated is None:
        return
    runtime, actor, lang = gated
    wanted = " ".join(context.args or []).strip()
    if wanted:  # ``/topics <name>``: that topic's query, shown only on request
        with runtime.db.session() as session:
            lines = subscriptions.visible_topics(session, actor, runtime.clock.now())
        line = next((x for x in lines if x.topic.name.casefold() == wanted.casefold()), None)
        if line is None:
            await reply(update, runtime.renderer.render("topic_not_found", lang, name=wanted))
        else:
            await reply(update, runtime.renderer.render("topic_detail", lang, line=line))
        return
    text, buttons = _topics_view(context, actor, lang)
    await reply(update, text, buttons)


async def _toggle(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str, follow: bool
) -> None:
    runtime, lang, query = press_of(update, context, actor)
    now = runtime.clock.now()
    with runtime.db.session() as session:
        changed = subscriptions.set_subscription(session, actor, int_id(ident), follow, now)
        if changed and follow:  # arriving late: the alert already out is handed over too
            escalate_after = timedelta(minutes=runtime.settings.escalation_minutes)
            alerts.hand_over_open_alerts(session, int_id(ident), now, escalate_after=escalate_after)
    await query.answer(runtime.renderer.render("topics_toggled", lang, follow=follow))
    text, buttons = _topics_view(context, actor, lang)
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=keyboard(buttons))


@on_button(FOLLOW.name)
async def follow(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    await _toggle(update, context, actor, ident, True)


@on_button(UNFOLLOW.name)
async def unfollow(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    await _toggle(update, context, actor, ident, False)


async def mute_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/mute <topic> [hours]`` (default 24 h); the topic name may contain spaces."""
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    args = list(context.args or [])
    hours = 24.0
    if len(args) >= 2:
        try:
            hours = float(args[-1].replace(",", "."))
            args = args[:-1]
        except ValueError:
            pass
    if not has_role(actor, Role.MEMBER):
        await refuse(update, runtime, actor, lang, "needs member", "not_allowed")
        return
    if not args:
        await reply(update, runtime.renderer.render("mute_usage", lang))
        return
    try:
        with runtime.db.session() as session:
            topic = subscriptions.find_topic(session, actor, " ".join(args))
            assert topic.id is not None
            until = mute(session, actor, topic.id, hours, runtime.clock.now())
            name = topic.name
    except (TopicError, AlertActionError) as exc:
        text = runtime.renderer.render(exc.template, lang, **exc.context)
        await reply(update, audited(update, runtime, actor, exc.template, text))
        return
    await reply(update, runtime.renderer.render("mute_done", lang, topic=name, until=until))


async def _manage(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
    gated = await gate(update, context, Role.SUPERVISOR)
    if gated is None:
        return
    runtime, actor, lang = gated
    parts = _parts(context)
    now = runtime.clock.now()
    try:
        with runtime.db.session() as session:
            text = _apply(session, actor, action, parts, now, runtime, lang)
    except TopicError as exc:
        text = runtime.renderer.render(exc.template, lang, **exc.context)
        audited(update, runtime, actor, exc.template, text)
    await reply(update, text)


def _apply(
    session: Any, actor: Actor, action: str, parts: list[str], now: Any, runtime: Any, lang: str
) -> str:
    render = runtime.renderer.render
    if action == "addtopic":
        if len(parts) not in (2, 3) or not all(parts):
            return str(render("topic_usage", lang))
        sensitivity = parts[2].lower() if len(parts) == 3 else "medium"
        topic = subscriptions.add_topic(
            session,
            actor,
            agency_id=None,
            name=parts[0],
            query=parts[1],
            sensitivity=sensitivity,
            now=now,
        )
        return str(render("topic_saved", lang, topic=topic, created=True))
    if action == "settopic":
        if len(parts) not in (2, 3) or not parts[0]:
            return str(render("topic_usage", lang))
        topic = subscriptions.find_topic(session, actor, parts[0])
        topic = subscriptions.change_topic(
            session,
            actor,
            topic,
            query=parts[1] or None,
            sensitivity=parts[2].lower() if len(parts) == 3 and parts[2] else None,
            now=now,
        )
        return str(render("topic_saved", lang, topic=topic, created=False))
    if action == "rmtopic":
        if not parts[0]:
            return str(render("topic_usage", lang))
        topic = subscriptions.find_topic(session, actor, parts[0])
        subscriptions.remove_topic(session, actor, topic, now)
        return str(render("topic_removed", lang, name=topic.name))
    if action == "sources":
        return str(render("sources_list", lang, sources=subscriptions.list_sources(session)))
    if action == "addsource":
        if len(parts) != 3 or not all(parts):
            return str(render("source_usage", lang))
        source = subscriptions.add_source(
            session,
            actor,
            name=parts[0],
            outlet=parts[1],
            url=parts[2],
            now=now,
            allow_private=runtime.settings.allow_private_feeds,
        )
        return str(render("source_saved", lang, source=source))
    if action == "rmsource":
        if not parts[0].isdigit():
            return str(render("source_usage", lang))
        source = subscriptions.remove_source(session, actor, int(parts[0]), now)
        return str(render("source_removed", lang, source=source))
    raise AssertionError(action)


def _manager(action: str) -> Any:
    async def command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await _manage(update, context, action)

    return command


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    managed = ("addtopic", "settopic", "rmtopic", "sources", "addsource", "rmsource")
    return [
        CommandHandler("topics", topics_command),
        CommandHandler("mute", mute_command),
        *(CommandHandler(name, _manager(name)) for name in managed),
    ]
