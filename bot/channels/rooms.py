"""The RoomAdmin protocol: the room operations a task force needs beyond sending messages.

The ``Notifier`` sends, edits and pins; a crisis room also needs forum topics, invite links, join
requests and member removal. Services ask :func:`room_admin_for` for the RoomAdmin that goes with
the runtime's notifier (each channel's factory is registered where the app is wired,
``bot.wiring``), so services stay free of ``telegram`` imports and a Zalo adapter can supply
its own.

Chats and people are channel-neutral references (:mod:`bot.channels.refs`). Failures are the
channel-neutral exceptions of :mod:`bot.channels.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from bot.channels.refs import ChatRef, PersonRef


class RoomAdmin(Protocol):
    async def create_topic(self, chat: ChatRef, name: str) -> ChatRef:
        """Create a forum topic in ``chat``; returns the topic (the chat with its thread)."""
        ...

    async def close_topic(self, topic: ChatRef) -> None: ...

    async def set_title(self, chat: ChatRef, title: str) -> None: ...

    async def set_description(self, chat: ChatRef, description: str) -> None:
        """Setting the description it already has is not an error."""
        ...

    async def create_invite_link(
        self, chat: ChatRef, name: str, expire_at: datetime | None = None
    ) -> str:
        """A link that only *requests* to join (each request is approved or declined)."""
        ...

    async def revoke_invite_link(self, chat: ChatRef, link: str) -> None: ...

    async def approve_join(self, chat: ChatRef, person: PersonRef) -> None: ...

    async def decline_join(self, chat: ChatRef, person: PersonRef) -> None: ...

    async def remove_member(self, chat: ChatRef, person: PersonRef) -> None:
        """Remove someone without banning them for good (they may be invited again)."""
        ...

    async def is_member(self, chat: ChatRef, person: PersonRef) -> bool: ...

    async def unpin_all(self, chat: ChatRef) -> None: ...


RoomAdminFactory = Callable[[Any], RoomAdmin]
_FACTORIES: list[tuple[type, RoomAdminFactory]] = []


def register_room_admin(notifier_type: type, factory: RoomAdminFactory) -> None:
    """Declare how to get a RoomAdmin from a notifier of ``notifier_type`` (channel adapters)."""
    for i, (known, _) in enumerate(_FACTORIES):
        if known is notifier_type:
            _FACTORIES[i] = (notifier_type, factory)
            return
    _FACTORIES.append((notifier_type, factory))


def room_admin_for(notifier: Any) -> RoomAdmin:
    """The RoomAdmin of the channel behind ``notifier``.

    A notifier that is itself a RoomAdmin (tests' fakes) is returned as is.
    """
    for notifier_type, factory in _FACTORIES:
        if isinstance(notifier, notifier_type):
            return factory(notifier)
    if all(hasattr(notifier, name) for name in ("create_topic", "create_invite_link")):
        return notifier
    raise LookupError(
        f"no RoomAdmin registered for {type(notifier).__name__}; wire its channel adapter "
        "(bot.wiring.wire) or pass rooms= explicitly"
    )
