"""The reply surface a channel offers a conversation, and the capabilities it declares.

A surface does only what its channel can: it is never asked to edit on a channel that cannot
edit, or to show buttons where there are none; ``handlers.conversation.degrade.Replies`` is what
flows talk to, and it reads ``capabilities`` to decide what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.channels.base import Buttons
from bot.channels.refs import MessageRef


@dataclass(frozen=True)
class Capabilities:
    """What a channel can show. ``max_text`` is in characters, as the channel counts them."""

    buttons: bool
    edit: bool
    pin: bool
    threads: bool
    join_requests: bool
    max_text: int


class Surface(Protocol):
    """Where the answers to one incoming event go (its chat, and thread if any)."""

    capabilities: Capabilities

    async def send(self, text: str, buttons: Buttons | None = None) -> MessageRef | None:
        """Post ``text`` (at most ``max_text``; ``buttons`` only if the channel has them)."""
        ...

    async def edit(self, message: MessageRef, text: str, buttons: Buttons | None = None) -> None:
        """Replace ``message`` in place (only called when ``capabilities.edit``)."""
        ...

    async def notice(self, text: str, alert: bool = False) -> None:
        """Answer a button press briefly (a toast; ``alert``: one the person must dismiss).

        Called at most once per press, with ``""`` to only stop the button's spinner. Channels
        without buttons never get presses from a button, so they may post ``text`` instead.
        """
        ...
