"""The RoomAdmin protocol: the room operations a task force needs beyond sending messages.

The ``Notifier`` sends, edits and pins; a crisis room also needs forum topics, invite links, join
requests and member removal. Services ask :func:`room_admin_for` for the RoomAdmin that goes with
the runtime's notifier (each channel's factory is registered where the app is wired,
``bot.wiring``), so services stay free of ``telegram`` imports and a Zalo adapter can supply
its own.

Some channels can also *make* a room: a Zalo Official Account creates a group chat with the
people in it (``RoomMaker``). Bots on Telegram cannot, so that capability is separate and
optional: :func:`room_maker_for` answers None where the channel has none, and the services then
use a hub topic or a pooled group as before.

Chats and people are channel-neutral references (:mod:`bot.channels.refs`). Failures are the
channel-neutral exceptions of :mod:`bot.channels.base`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.channels.base import Rejected
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


@dataclass(frozen=True)
class MadeRoom:
    """A room the channel created: where it is, a link that opens it ("" if none), and the
    people asked for who could not be put in (:class:`MembersUnknown` says why)."""

    chat: ChatRef
    link: str
    left_out: tuple[PersonRef, ...] = ()


class MembersUnknown(Rejected):
    """The maker cannot put these people in its rooms yet: its rooms know people by ids of
    their own (a Zalo Official Account's user ids are scoped to the OA), and these people have
    not linked theirs. Each can fix it by typing a linking code into the provider's chat; the
    services tell them and the convener how."""

    def __init__(self, people: Sequence[PersonRef]) -> None:
        super().__init__(f"{len(people)} people unknown to the room's provider")
        self.people = tuple(people)


class RoomMaker(Protocol):
    """A channel that creates a room per crisis and puts people in it directly, no join links."""

    async def make_room(
        self, agency_id: int, name: str, description: str, members: Sequence[PersonRef]
    ) -> MadeRoom | None:
        """A new room with ``members`` in it (those it could not put in are ``left_out``), or
        None if this agency has no means to make one on the channel (the caller then uses a hub
        or a pooled group). Raises :class:`MembersUnknown` when it knows none of them."""
        ...

    def made_here(self, chat: ChatRef) -> bool:
        """Whether ``chat`` is a room this maker made (closed, not handed back, at the end)."""
        ...

    async def add_members(self, chat: ChatRef, people: Sequence[PersonRef]) -> None:
        """Put ``people`` in; :class:`MembersUnknown` names those it could not (the others are
        in)."""
        ...

    async def close_room(self, chat: ChatRef) -> None:
        """Disband the room: the crisis is over and nobody may write there any more."""
        ...


RoomAdminFactory = Callable[[Any], RoomAdmin | None]  # None: this notifier has none
RoomMakerFactory = Callable[[Any], RoomMaker | None]
_FACTORIES: list[tuple[type, RoomAdminFactory]] = []
_MAKERS: list[tuple[type, RoomMakerFactory]] = []


def _register(table: list[tuple[type, Any]], notifier_type: type, factory: Any) -> None:
    for i, (known, _) in enumerate(table):
        if known is notifier_type:
            table[i] = (notifier_type, factory)
            return
    table.append((notifier_type, factory))


def _lookup(table: list[tuple[type, Any]], notifier: Any) -> Any | None:
    """The factory's answer for ``notifier`` or for what it wraps (``inner``, as the
    conversation layer's ``DegradingNotifier`` does)."""
    while notifier is not None:
        for notifier_type, factory in table:
            if isinstance(notifier, notifier_type):
                return factory(notifier)
        notifier = getattr(notifier, "inner", None)
    return None


def register_room_admin(notifier_type: type, factory: RoomAdminFactory) -> None:
    """Declare how to get a RoomAdmin from a notifier of ``notifier_type`` (channel adapters)."""
    _register(_FACTORIES, notifier_type, factory)


def register_room_maker(notifier_type: type, factory: RoomMakerFactory) -> None:
    """Declare how a notifier of ``notifier_type`` makes rooms (None from ``factory``: it
    cannot, e.g. no Official Account configured)."""
    _register(_MAKERS, notifier_type, factory)


def room_admin_for(notifier: Any) -> RoomAdmin:
    """The RoomAdmin of the channel behind ``notifier``.

    A notifier that is itself a RoomAdmin (tests' fakes) is returned as is.
    """
    admin = _lookup(_FACTORIES, notifier)
    if admin is not None:
        return admin
    if all(hasattr(notifier, name) for name in ("create_topic", "create_invite_link")):
        return notifier
    raise LookupError(
        f"no RoomAdmin registered for {type(notifier).__name__}; wire its channel adapter "
        "(bot.wiring.wire) or pass rooms= explicitly"
    )


def room_maker_for(notifier: Any) -> RoomMaker | None:
    """The channel's RoomMaker behind ``notifier`` (or ``notifier`` itself, tests' fakes and
    a RoomAdmin passed in that also makes rooms), else None."""
    if all(hasattr(notifier, name) for name in ("make_room", "close_room")):
        return notifier
    return _lookup(_MAKERS, notifier)
