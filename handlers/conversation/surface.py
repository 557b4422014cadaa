"""The reply surface a channel offers a conversation, and the capabilities it declares.

A surface does only what its channel can: it is never asked to edit on a channel that cannot
edit, or to show buttons where there are none; ``handlers.conversation.degrade.Replies`` is what
flows talk to, and it reads ``capabilities`` to decide what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
    #: The channel can ask for the sender's phone number and vouch that it is theirs
    #: (Telegram's contact button); without it a typed number is taken (docs/architecture.md).
    contact_share: bool = False
    #: A person answers a given message by replying to it (quoting it). Without it a question
    #: is answered by the next plain text in the chat, or a typed short command.
    replies: bool = False


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


@runtime_checkable
class RichSurface(Surface, Protocol):
    """What some surfaces offer beyond ``Surface``; ``Replies`` uses it when present and does
    without otherwise, so a channel that lacks these implements nothing for them."""

    #: Where someone in a group is sent to talk to the bot privately, if the channel has a link.
    private_link: str | None

    async def ask_contact(self, text: str, label: str) -> None:
        """Post ``text`` with a button sharing the sender's own phone number (``label``)."""
        ...

    async def end_contact(self, text: str) -> None:
        """Post ``text`` and withdraw any phone-sharing button still shown."""
        ...

    async def clear_buttons(self, message: MessageRef) -> None:
        """Take the buttons off ``message``, leaving its text (it was answered)."""
        ...
