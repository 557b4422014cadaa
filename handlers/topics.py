"""Topics and sources in chat: follow, mute, and (admins, supervisors) manage them; written once
for every channel (``handlers.conversation``).

``/topics`` lists the agency's topics with a follow/unfollow button each (``/topics <name>``
shows one topic's query); on a channel without buttons each is a numbered choice, answered by
typing its number. ``/mute <topic> [hours]``; ``/addtopic name | query | sensitivity``,
``/settopic name | query [| sensitivity]``, ``/rmtopic name``; ``/sources``,
``/addsource name | outlet | url``, ``/rmsource id``. Arguments are split on ``|`` because
topic names and queries contain spaces.
"""

from __future__ import annotations

from dataclasses import replace

from bot.buttons import id_rule, int_id, register
from bot.channels.base import Button
from bot.services import subscriptions
from bot.services.alerts import AlertActionError
from bot.services.permissions import Role
from bot.services.subscriptions import TopicError
from handlers.conversation.degrade import press_for
from handlers.conversation.dispatch import handle, on_command, on_press
from handlers.conversation.turn import Turn

FOLLOW = register("topic.follow", id_rule(subscriptions.can_follow), "follow a topic")
UNFOLLOW = register("topic.unfollow", id_rule(subscriptions.can_follow), "unfollow a topic")
MUTE_HOURS = 24.0


def _words(turn: Turn) -> str:
    return " ".join(turn.event.args).strip()


def _parts(turn: Turn) -> list[str]:
    return [p.strip() for p in _words(turn).split("|")]


def _topics_view(turn: Turn) -> tuple[str, list[list[Button]]]:
    lines = subscriptions.topics_for(turn.runtime, turn.actor)
    buttons = [
        [
            Button(
                turn.render("topics_button", line=line),
                (UNFOLLOW if line.subscribed else FOLLOW).name,
                line.topic.id or 0,
            )
        ]
        for line in lines
    ]
    return turn.render("topics_list", lines=lines), buttons


@on_command("topics", Role.MEMBER)
async def topics_command(turn: Turn) -> None:
    wanted = _words(turn)
    if wanted:  # ``/topics <name>``: that topic's query, shown only on request
        line = subscriptions.topic_named(turn.runtime, turn.actor, wanted)
        if line is None:
            await turn.say("topic_not_found", name=wanted)
        else:
            await turn.say("topic_detail", line=line)
        return
    await turn.replies.say(*_topics_view(turn))


async def _toggle(turn: Turn, ident: str, follow: bool) -> None:
    subscriptions.follow_topic(turn.runtime, turn.actor, int_id(ident), follow)
    await turn.replies.notice(turn.render("topics_toggled", follow=follow))
    await turn.replies.replace(turn.event.message, *_topics_view(turn))


@on_press(FOLLOW)
async def follow(turn: Turn, ident: str) -> None:
    await _toggle(turn, ident, True)


@on_press(UNFOLLOW)
async def unfollow(turn: Turn, ident: str) -> None:
    await _toggle(turn, ident, False)


def _hours(args: list[str]) -> tuple[list[str], float]:
    """The topic's words and the hours after them (``/mute Ngộ độc 6``; default 24)."""
    if len(args) >= 2:
        try:
            return args[:-1], float(args[-1].replace(",", "."))
        except ValueError:
            pass
    return args, MUTE_HOURS


@on_command("mute", Role.MEMBER)
async def mute_command(turn: Turn) -> None:
    """``/mute <topic> [hours]`` (default 24 h); the topic name may contain spaces.

    Where there are no buttons an alert offers its Mute as ``/mute <alert id>``: a single
    number is that typed press, checked by the layer like any other."""
    event = turn.event
    if not turn.replies.capabilities.buttons and len(event.args) == 1 and event.args[0].isdigit():
        press = press_for(event.where, event.command, event.args, event.text)
        if press is not None:
            await handle(turn.runtime, replace(event, press=press), turn.replies.surface)
            return
    args, hours = _hours(list(event.args))
    if not args:
        await turn.say("mute_usage")
        return
    try:
        topic, until = subscriptions.mute_topic(turn.runtime, turn.actor, " ".join(args), hours)
    except (TopicError, AlertActionError) as exc:
        await turn.replies.say(turn.audited(exc.template, turn.render(exc.template, **exc.context)))
        return
    await turn.say("mute_done", topic=topic.name, until=until)


def _manager(action: str) -> None:
    """Route ``/<action>`` (supervisors and up) to ``_apply``."""

    async def command(turn: Turn) -> None:
        try:
            text = _apply(turn, action, _parts(turn))
        except TopicError as exc:
            text = turn.audited(exc.template, turn.render(exc.template, **exc.context))
        await turn.replies.say(text)

    on_command(action, Role.SUPERVISOR)(command)


def _apply(turn: Turn, action: str, parts: list[str]) -> str:
    runtime, actor = turn.runtime, turn.actor
    if action == "addtopic":
        if len(parts) not in (2, 3) or not all(parts):
            return turn.render("topic_usage")
        sensitivity = parts[2].lower() if len(parts) == 3 else "medium"
        topic = subscriptions.add_topic_now(runtime, actor, parts[0], parts[1], sensitivity)
        return turn.render("topic_saved", topic=topic, created=True)
    if action == "settopic":
        if len(parts) not in (2, 3) or not parts[0]:
            return turn.render("topic_usage")
        wanted = parts[2].lower() if len(parts) == 3 and parts[2] else None
        topic = subscriptions.change_topic_named(runtime, actor, parts[0], parts[1] or None, wanted)
        return turn.render("topic_saved", topic=topic, created=False)
    if action == "rmtopic":
        if not parts[0]:
            return turn.render("topic_usage")
        topic = subscriptions.remove_topic_named(runtime, actor, parts[0])
        return turn.render("topic_removed", name=topic.name)
    if action == "sources":
        return turn.render("sources_list", sources=subscriptions.all_sources(runtime))
    if action == "addsource":
        if len(parts) != 3 or not all(parts):
            return turn.render("source_usage")
        source = subscriptions.add_source_now(runtime, actor, parts[0], parts[1], parts[2])
        return turn.render("source_saved", source=source)
    if action == "rmsource":
        if not parts[0].isdigit():
            return turn.render("source_usage")
        source = subscriptions.remove_source_now(runtime, actor, int(parts[0]))
        return turn.render("source_removed", source=source)
    raise AssertionError(action)


for _action in ("addtopic", "settopic", "rmtopic", "sources", "addsource", "rmsource"):
    _manager(_action)
