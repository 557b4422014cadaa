"""Channel-neutral references: a person, a chat (room) and a message on some messenger.

Every id is the channel's own, kept as a string: Telegram's are numbers, Zalo's are not, and a
service must never do arithmetic on them or guess their shape. Only a channel adapter turns them
into what its API wants. These are what services hold, store and pass to a ``Notifier``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Short tags of ``str(PersonRef)``: audit rows and conversation states written before these
# references existed name people "tg:123", and must keep matching.
_TAGS = {"telegram": "tg"}


@dataclass(frozen=True)
class PersonRef:
    """One person's account on one channel (``ChannelIdentity`` in storage)."""

    channel: str
    external_id: str

    def direct_chat(self) -> ChatRef:
        """The one-to-one chat with this person.

        Telegram and Zalo both address a private chat by the person's own id; a channel where
        that does not hold maps the id in its adapter.
        """
        return ChatRef(self.channel, self.external_id)

    def __str__(self) -> str:
        """How audit rows and conversation states name someone who may have no ``User`` row."""
        return f"{_TAGS.get(self.channel, self.channel)}:{self.external_id}"

    @classmethod
    def from_label(cls, label: str) -> PersonRef:
        """The account ``str(ref)`` named (conversation states keep only that label)."""
        tag, _, external_id = label.partition(":")
        channels = {short: channel for channel, short in _TAGS.items()}
        return cls(channels.get(tag, tag), external_id)


@dataclass(frozen=True)
class ChatRef:
    """Where a message goes: a chat on a channel, optionally a thread (forum topic) inside it."""

    channel: str
    chat_id: str
    thread_id: str | None = None


@dataclass(frozen=True)
class MessageRef:
    """A message a channel accepted: enough to edit or pin it later."""

    chat: ChatRef
    message_id: str


#: The ``channel`` of a notifier that speaks on several messengers (``bot.channels.routing``):
#: services pass it on as they pass any channel, and ``bot.services.identity`` reads it as "the
#: person's account on whichever messenger reaches them, their chosen alert channel first".
ANY_CHANNEL = "any"
