"""Zalo as one channel of the conversation layer (``handlers.conversation``).

A text update becomes an ``Incoming`` event (Zalo sends commands as plain text; the layer's
``parse_command`` reads ``/ack 12`` as on Telegram); ``ZaloSurface`` posts the layer's replies as
plain text. What no flow of the layer takes gets the pointer onwards of every channel
(``handlers.fallback``): a stranger (a Zalo account with no person behind it) is told how the bot
can be used, never met with silence.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from bot.channels.base import Buttons
from bot.channels.refs import ChatRef, MessageRef, PersonRef
from bot.runtime import Runtime
from handlers.conversation.dispatch import handle
from handlers.conversation.events import Incoming, parse_command
from handlers.fallback import pointer

from .notifier import CAPABILITIES, CHANNEL, ZaloNotifier
from .oa.events import group_of
from .oa.rooms import group_chat
from .updates import ZaloUpdate

log = logging.getLogger(__name__)

#: Redeliveries (a webhook retried after a slow answer) come soon after the first delivery;
#: remembering this many recent message ids in the process is enough to drop them.
RECENT_UPDATES = 10_000


def incoming(update: ZaloUpdate) -> Incoming | None:
    """The neutral event of a text update in a private chat, else None (nothing to answer)."""
    message = update.message
    if not update.is_text or message is None or not message.chat.is_private:
        return None
    if message.sender.is_bot:
        return None
    text = (message.text or "").strip()
    command, args = parse_command(text)
    where = ChatRef(CHANNEL, message.chat.id)
    return Incoming(
        PersonRef(CHANNEL, message.sender.id),
        where,
        text=text,
        command=command,
        args=args,
        message=MessageRef(where, message.message_id),
    )


GROUP_TEXT = "user_send_group_text"  # the OA event of a member writing in a group


def group_incoming(app_id: str, event: dict[str, Any]) -> Incoming | None:
    """The neutral event of a member's text in one of the OA's groups (a crisis room made by
    ``bot.channels.zalo.oa.rooms``), else None.

    The sender is taken to be the person's Zalo account as the Bot Platform knows it (assumed,
    docs/zalo.md: the OA's user ids may be scoped to the app)."""
    if event.get("event_name") != GROUP_TEXT:
        return None
    group = group_of(event)
    sender = event.get("sender")
    message = event.get("message")
    if not group or not isinstance(sender, dict) or not isinstance(message, dict):
        return None
    text = str(message.get("text") or "").strip()
    if not sender.get("id") or not text:
        return None
    command, args = parse_command(text)
    where = group_chat(app_id, group)
    return Incoming(
        PersonRef(CHANNEL, str(sender["id"])),
        where,
        text=text,
        command=command,
        args=args,
        message=MessageRef(where, str(message.get("msg_id") or "")),
    )


class ZaloSurface:
    """Replies to one Zalo event, in its chat, through the notifier (plain text, split)."""

    capabilities = CAPABILITIES

    def __init__(self, notifier: ZaloNotifier, chat: ChatRef) -> None:
        self.notifier = notifier
        self.chat = chat

    async def send(self, text: str, buttons: Buttons | None = None) -> MessageRef | None:
        return await self.notifier.send_text(self.chat, text)

    async def edit(self, message: MessageRef, text: str, buttons: Buttons | None = None) -> None:
        await self.send(text)  # never called: CAPABILITIES.edit is False

    async def notice(self, text: str, alert: bool = False) -> None:
        if text:
            await self.send(text)


class ZaloConversation:
    """Answers Zalo updates one at a time, in the order they came (one poller or webhook)."""

    def __init__(self, runtime: Runtime, notifier: ZaloNotifier) -> None:
        self.runtime = runtime
        self.notifier = notifier
        self._seen: OrderedDict[str, None] = OrderedDict()

    def _first_time(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > RECENT_UPDATES:
            self._seen.popitem(last=False)
        return True

    async def on_update(self, update: ZaloUpdate) -> None:
        event = incoming(update)
        if event is None or not self._first_time(update.dedupe_key):
            return
        await self._answer(event)

    async def on_group_event(self, app_id: str, event: dict[str, Any]) -> None:
        """A member's text in an OA group: room commands (``/task``, ``/tasks``, ``/update``…)
        answered in the group through the OA; other chatter is left alone."""
        neutral = group_incoming(app_id, event)
        if neutral is None or neutral.command is None:
            return
        assert neutral.message is not None
        if not self._first_time(f"oa:{neutral.message.message_id}"):
            return
        await self._answer(neutral)

    async def _answer(self, event: Incoming) -> None:
        surface = ZaloSurface(self.notifier, event.where)
        try:
            if not await handle(self.runtime, event, surface):
                await surface.send(pointer(self.runtime, event, event.command is not None))
        except Exception:
            # One bad update must not stop the poller; the person may write again.
            log.exception("zalo: failed to answer an update from %s", event.who)
