"""Routing a neutral event to the flow written for it, with the checks every flow relies on.

A press (a button, or on channels without buttons the short command or numbered choice standing
for one) is decoded, refused if forged, refused if the sender is suspended or fails the action's
rule (``bot.buttons``), and only then handed to its flow. Commands are gated by role. Refusals are
audited and answered. Flows register here with ``on_press`` and ``on_command``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.buttons import ButtonAction, ForgedButton, decode
from bot.runtime import Runtime
from bot.services import audit, people
from bot.services.commands import register_command
from bot.services.permissions import Actor
from handlers.conversation.degrade import Replies, press_for, typed_press
from handlers.conversation.events import Incoming
from handlers.conversation.surface import Surface
from handlers.conversation.turn import Turn, language
from storage.models import Role

log = logging.getLogger(__name__)

PressFlow = Callable[[Turn, str], Awaitable[None]]
CommandFlow = Callable[[Turn], Awaitable[None]]
# Plain text or a shared contact; True if the flow took it (the person was in its conversation).
MessageFlow = Callable[[Turn], Awaitable[bool]]

_PRESSES: dict[str, PressFlow] = {}
_COMMANDS: dict[str, tuple[Role | None, CommandFlow]] = {}
_MESSAGES: list[MessageFlow] = []


def on_press(
    action: ButtonAction,
    command: str | None = None,
    free_text: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[[PressFlow], PressFlow]:
    """Route presses of ``action`` to the decorated flow; where a channel has no buttons the
    press is typed: ``/<command> <id>`` (``/ack 12``), or a numbered choice without one;
    ``free_text``: words may follow the id (``/tuchoi 45 <lý do>``), ``aliases``: other words
    for the command (see ``typed_press``)."""

    def decorate(flow: PressFlow) -> PressFlow:
        _PRESSES[action.name] = flow
        typed_press(action.name, command, free_text, aliases)
        return flow

    return decorate


def on_command(
    name: str, minimum: Role | None, listed: bool = True
) -> Callable[[CommandFlow], CommandFlow]:
    """Route ``/name`` to the decorated flow for people holding at least ``minimum`` (None:
    everyone, registered or not); ``listed=False`` keeps it out of the command menus (a
    command only a message of the bot tells people to type)."""

    def decorate(flow: CommandFlow) -> CommandFlow:
        if listed:
            register_command(name, minimum)
        _COMMANDS[name] = (minimum, flow)
        return flow

    return decorate


def on_message(flow: MessageFlow) -> MessageFlow:
    """Offer plain text and shared contacts to the decorated flow (flows are asked in the
    order they registered; the first that takes the message answers it)."""
    _MESSAGES.append(flow)
    return flow


def commands() -> list[str]:
    """The commands written against this layer (adapters route them here)."""
    return sorted(_COMMANDS)


async def handle(
    runtime: Runtime, event: Incoming, surface: Surface, actor: Actor | None = None
) -> bool:
    """Answer ``event``; False if no flow of this layer is for it (the adapter's own turn).
    ``actor``: the sender as the adapter's gate (``handlers.start.admit``) just read them, so
    that an update reads its sender once; read here when the adapter has no gate."""
    replies = Replies(surface, event.where)
    if event.press is not None:
        await _press(runtime, event, replies, event.press, actor)
        return True
    routed = _COMMANDS.get(event.command or "")
    if routed is not None:
        minimum, flow = routed
        turn = Turn(runtime, event, actor or people.actor_of(runtime, event.who), replies)
        if minimum is None or await turn.gate(minimum):
            await flow(turn)
        return True
    if not surface.capabilities.buttons:
        data = press_for(event.where, event.command, event.args, event.text)
        if data is not None:
            await _press(runtime, event, replies, data, actor)
            return True
    if event.command is None and _MESSAGES:
        turn = Turn(runtime, event, actor or people.actor_of(runtime, event.who), replies)
        for message_flow in _MESSAGES:
            if await message_flow(turn):
                return True
    return False


async def _press(
    runtime: Runtime, event: Incoming, replies: Replies, data: str, actor: Actor | None
) -> None:
    actor = actor or people.actor_of(runtime, event.who)
    refusal = _Refusal(runtime, event, replies, actor, f"button:{data[:100]}")
    try:
        button, ident = decode(data)
        flow = _PRESSES.get(button.name)
        if flow is None:
            raise ForgedButton(f"no handler for {button.name!r}")
        # Rules parse the id too (int_id): a malformed id is forged, not an error.
        allowed = not actor.suspended and people.passes(runtime, button.rule, actor, ident)
    except ForgedButton as exc:
        log.warning("forged button from %s: %s", actor.channel_ref, exc)
        await refusal.tell("button.forged", str(exc), "button_invalid")
        return
    if not allowed:
        template = "suspended" if actor.suspended else "button_not_allowed"
        await refusal.tell("button.refused", button.name, template)
        return
    await flow(Turn(runtime, event, actor, replies), ident)
    await replies.notice()  # stops the button's spinner if the flow said nothing short


@dataclass(frozen=True)
class _Refusal:
    """A refused press: audited, and the presser told in an alert."""

    runtime: Runtime
    event: Incoming
    replies: Replies
    actor: Actor
    subject: str

    async def tell(self, action: str, reason: str, template: str) -> None:
        audit.refused(self.runtime, self.actor, action, self.subject, reason)
        text = self.runtime.renderer.render(template, language(self.actor, self.event.language))
        await self.replies.notice(text, alert=True)
