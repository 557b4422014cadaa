"""Incoming events as every channel can express them: who, where, and what they did.

An adapter builds one ``Incoming`` per update. Ids are the channel's own strings (see
``bot.channels.refs``); a flow never parses them, it hands ``who`` to the people service.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.channels.refs import ChatRef, MessageRef, PersonRef


@dataclass(frozen=True)
class Contact:
    """A phone number someone shared; ``owner`` is set when the channel vouches that the number
    is the sender's own (Telegram's contact button), None when it was typed in."""

    phone: str
    owner: PersonRef | None = None


@dataclass(frozen=True)
class Incoming:
    """One thing a person did in a chat.

    Exactly one of ``command``, ``press`` or plain ``text`` describes the act: ``command`` is the
    command word without slash or bot name (``args`` the words after it); ``press`` is the
    ``action:id`` data of a pressed button (``message`` the message that carried it).
    ``language`` is the client's language hint for people who never registered.
    """

    who: PersonRef
    where: ChatRef
    text: str = ""
    command: str | None = None
    args: tuple[str, ...] = ()
    press: str | None = None
    message: MessageRef | None = None
    reply_to: MessageRef | None = None
    # The replied-to message's text (or caption) and its author's name, for flows that quote it
    # (``/note`` in reply to a message of the room).
    reply_text: str = ""
    reply_author: str | None = None
    contact: Contact | None = None
    language: str | None = None
    name: str = ""  # the sender's display name on the channel, for people without a row
    username: str | None = None  # the sender's public handle, where the channel has one

    @classmethod
    def typed(cls, who: PersonRef, where: ChatRef, text: str, message_id: str) -> Incoming:
        """The message ``message_id`` typed in ``where``, its text read as a command where it is
        one: every channel builds typed messages here, so that ``/ack 12`` means the same
        whether the channel marks commands (Telegram) or sends them as plain text (Zalo)."""
        command, args = parse_command(text)
        return cls(
            who,
            where,
            text=text,
            command=command,
            args=args,
            message=MessageRef(where, message_id),
        )

    @property
    def private(self) -> bool:
        """Whether this happened in the one-to-one chat with the sender (every channel so far
        names that chat by the person's own id)."""
        return self.where.chat_id == self.who.external_id and self.where.thread_id is None


def parse_command(text: str) -> tuple[str | None, tuple[str, ...]]:
    """``/ack 12`` → ("ack", ("12",)); ``/ack@crisis_bot 12`` too; plain text → (None, ()).

    Channels without a command entity (Zalo sends plain text) parse commands here, so that
    ``/ack 12`` means the same on every channel.
    """
    if not text.startswith("/") or len(text) < 2:
        return None, ()
    word, *args = text[1:].split()
    command = word.split("@", 1)[0].lower()
    return (command or None), tuple(args)
