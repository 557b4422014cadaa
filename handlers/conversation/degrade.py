"""The one place where a flow's wish meets a channel that cannot grant it.

Flows (and services, through ``DegradingNotifier``) always ask for the full experience: buttons,
an edit in place, a pin, text of any length. Here each wish is granted or replaced:

* buttons → a line per button: ``label: /ack 12`` for actions with a short command
  (``typed_press``), else a numbered choice ``1. label`` that the person answers with ``1``;
* an edit → a new message with the new text;
* a pin → nothing more (the message was just sent; pinning only kept it in view);
* a reply to a question → the next plain text in the chat answers it (``answers_question``);
* text over the limit → consecutive messages cut at paragraph, line or word boundaries.

Numbered choices are remembered per chat in this process (the last offer wins, a bounded
number of chats): enough for a person answering the list they were just sent; a restart
forgets them and the person asks again, which is why short commands are preferred.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from bot.channels import base
from bot.channels.base import Attachment, Button, Buttons, Notifier, SentMessage
from bot.channels.refs import ChatRef, MessageRef
from bot.services.textsplit import split_plain
from handlers.conversation.events import Incoming
from handlers.conversation.surface import Capabilities, RichSurface, Surface

_TYPED: dict[str, str | None] = {}  # button action → its short command (None: numbered)
_ACTIONS: dict[str, str] = {}  # short command → button action
_WORDY: set[str] = set()  # short commands whose words after the id are free text
_OFFERS: OrderedDict[tuple[str, str | None], tuple[Button, ...]] = OrderedDict()
MAX_OFFERS = 10_000

AnyChat = ChatRef | base.ChatRef


def _key(chat: AnyChat) -> tuple[str, str | None]:
    """Offers made by services (``Notifier`` chats) and answered in conversations (neutral
    chats) must meet: both are keyed by the chat's ids as text."""
    thread = chat.thread_id
    return str(chat.chat_id), str(thread) if thread is not None else None


def typed_press(
    action: str, command: str | None = None, free_text: bool = False, aliases: Sequence[str] = ()
) -> None:
    """Let people without buttons press ``action`` by typing: ``/<command> <id>``, or the
    number of the choice when ``command`` is None.

    The id's ``-`` separators become spaces (``12-noise`` is typed ``12 noise``), so commands
    read as words. With ``free_text`` the id is the first word only and the rest is what the
    person wrote (``/tuchoi 45 <lý do>``), which the flow reads from the event: it does not
    fit in button data. ``aliases`` are further words for the same command (English ones
    beside the Vietnamese shown on the choices). Buttons of actions not declared here have no
    flow that runs without buttons yet, so they are left out where there are none.
    """
    words = [command, *aliases] if command is not None else []
    taken = any(_ACTIONS.get(word, action) != action for word in words)
    if taken or _TYPED.get(action, command) != command:
        raise ValueError(f"action {action!r} or short command /{command} is taken")
    _TYPED[action] = command
    for word in words:
        _ACTIONS[word] = action
        if free_text:
            _WORDY.add(word)


def typed_commands() -> set[str]:
    """The short commands that stand for presses on channels without buttons."""
    return set(_ACTIONS)


def press_for(chat: ChatRef, command: str | None, args: Sequence[str], text: str) -> str | None:
    """The ``action:id`` a typed message stands for on a channel without buttons, if any:
    a short command with its id, or the number of a choice offered in this chat."""
    if command is not None:
        action = _ACTIONS.get(command)
        if action is None or not args:
            return None
        return f"{action}:{args[0] if command in _WORDY else '-'.join(args)}"
    offered = _OFFERS.get(_key(chat))
    choice = text.strip()
    if offered and choice.isdigit() and 1 <= int(choice) <= len(offered):
        return offered[int(choice) - 1].data
    return None


def answers_question(caps: Capabilities, event: Incoming) -> bool:
    """Whether ``event`` may answer a question the bot asked in its chat: where people reply
    to messages only a reply does (other text there is not meant for the question), elsewhere
    any plain text does."""
    if event.command is not None or event.contact is not None or not event.text:
        return False
    return event.reply_to is not None or not caps.replies


def _choices(chat: AnyChat, buttons: Buttons) -> str:
    """Buttons as lines of text; numbered ones are remembered for ``press_for``."""
    lines: list[str] = []
    numbered: list[Button] = []
    for button in (b for row in buttons for b in row if b.action in _TYPED):
        command = _TYPED[button.action]
        if command is not None:
            lines.append(f"{button.label}: /{command} {str(button.id).replace('-', ' ')}")
        else:
            numbered.append(button)
            lines.append(f"{len(numbered)}. {button.label}")
    if numbered:
        _OFFERS[_key(chat)] = tuple(numbered)
        _OFFERS.move_to_end(_key(chat))
        while len(_OFFERS) > MAX_OFFERS:
            _OFFERS.popitem(last=False)
    return "\n".join(lines)


def fit(caps: Capabilities, chat: AnyChat, text: str, buttons: Buttons | None) -> list[str]:
    """The messages to post for ``text`` (and ``buttons`` if the channel has none) within
    ``caps.max_text``; the buttons' lines come last."""
    choices = _choices(chat, buttons) if buttons and not caps.buttons else ""
    if choices:
        text = f"{text}\n\n{choices}"
    if len(text) <= caps.max_text:
        return [text]
    # Cut at paragraph or line breaks first, which never fall inside a template's markup.
    return [piece for piece in (p.strip() for p in split_plain(text, caps.max_text)) if piece]


class Replies:
    """What a flow answers through: the surface of one event, with its channel's gaps filled."""

    def __init__(self, surface: Surface, chat: ChatRef) -> None:
        self.surface = surface
        self.chat = chat
        self.noticed = False

    @property
    def capabilities(self) -> Capabilities:
        return self.surface.capabilities

    async def say(self, text: str, buttons: Buttons | None = None) -> MessageRef | None:
        """Post ``text``; returns the last message posted (the one carrying any choices)."""
        caps = self.surface.capabilities
        keep = buttons if caps.buttons else None
        sent: MessageRef | None = None
        for part in fit(caps, self.chat, text, buttons):
            sent = await self.surface.send(part, keep)
        return sent

    async def ask(self, text: str) -> MessageRef | None:
        """Post a question the person answers by replying to it: the channel's own prompt for
        a reply where it has one (an optional ``ask`` on the surface, Telegram's ForceReply),
        else a plain message."""
        ask = getattr(self.surface, "ask", None)
        caps = self.surface.capabilities
        if ask is not None and len(text) <= caps.max_text:
            sent: MessageRef | None = await ask(text)
            return sent
        return await self.say(text)

    async def replace(
        self, message: MessageRef | None, text: str, buttons: Buttons | None = None
    ) -> None:
        """Show ``text`` instead of ``message``: edited in place, or posted anew."""
        caps = self.surface.capabilities
        if message is not None and caps.edit and len(text) <= caps.max_text:
            await self.surface.edit(message, text, buttons if caps.buttons else None)
        else:
            await self.say(text, buttons)

    async def forget(self, message: MessageRef | None) -> None:
        """Take a message the person sent (a PIN) off the screen where the channel lets the
        bot delete it (an optional ``forget`` on the surface); elsewhere it stays."""
        forget = getattr(self.surface, "forget", None)
        if forget is not None and message is not None:
            await forget(message)

    @property
    def private_link(self) -> str | None:
        """A link to a private chat with the bot, where the channel has one."""
        return self.surface.private_link if isinstance(self.surface, RichSurface) else None

    def start_link(self, payload: str) -> str | None:
        """A link that opens the private chat with the bot and starts it with ``payload`` (an
        invite code), where the channel has such links (an optional ``start_link`` on the
        surface); else None, and the person is told to type ``/start <payload>``."""
        make = getattr(self.surface, "start_link", None)
        return make(payload) if make is not None else None

    async def ask_contact(self, text: str, label: str) -> None:
        """Ask for the sender's phone: with a sharing button where the channel vouches for
        the number, else ``text`` alone (which must then ask for the number to be typed)."""
        if self.capabilities.contact_share and isinstance(self.surface, RichSurface):
            await self.surface.ask_contact(text, label)
        else:
            await self.say(text)

    async def end_contact(self, text: str) -> None:
        """Post ``text``, withdrawing a phone-sharing button where one may be shown."""
        if self.capabilities.contact_share and isinstance(self.surface, RichSurface):
            await self.surface.end_contact(text)
        else:
            await self.say(text)

    async def clear_buttons(self, message: MessageRef | None) -> None:
        """Take the buttons off an answered message; without edits it stays as it was."""
        caps = self.capabilities
        if message is not None and caps.edit and isinstance(self.surface, RichSurface):
            await self.surface.clear_buttons(message)

    async def notice(self, text: str = "", alert: bool = False) -> None:
        """The short answer to a press (once per press; later calls are posted as messages)."""
        if self.noticed:
            if text:
                await self.say(text)
            return
        self.noticed = True
        await self.surface.notice(text, alert)


class DegradingNotifier:
    """A channel's ``Notifier`` as services may use it whatever the channel lacks.

    Services send alerts with buttons, edit delivered copies and pin briefs without asking
    what the channel can do; wrapping the channel's notifier in this (where the app is wired)
    applies the same rules as ``Replies``. Without edits an edit is posted anew, so a person
    still sees the latest state, at the price of one more message.
    """

    def __init__(self, inner: Notifier, caps: Capabilities) -> None:
        self.inner = inner
        self.caps = caps
        self.channel = inner.channel

    def link_to(self, chat: ChatRef) -> str | None:
        return self.inner.link_to(chat)

    async def send_text(
        self, to: base.ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        keep = buttons if self.caps.buttons else None
        parts = fit(self.caps, to, text, buttons)
        for part in parts[:-1]:
            await self.inner.send_text(to, part)
        return await self.inner.send_text(to, parts[-1], keep)

    async def send_photo(
        self, to: base.ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        if self.caps.buttons:
            return await self.inner.send_photo(to, photo, caption, buttons)
        sent = await self.inner.send_photo(to, photo, caption)
        choices = _choices(to, buttons) if buttons else ""
        if choices:
            await self.send_text(to, choices)
        return sent

    async def send_document(
        self, to: base.ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        return await self.inner.send_document(to, document, caption)

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        if self.caps.edit:
            await self.inner.edit_text(message, text, buttons)
        else:
            await self.send_text(message.chat, text, buttons)

    async def pin(self, message: MessageRef) -> None:
        if self.caps.pin:
            await self.inner.pin(message)
