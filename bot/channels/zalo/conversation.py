"""Zalo as one channel of the conversation layer (``handlers.conversation``).

A text update becomes an ``Incoming`` event (Zalo sends commands as plain text; the layer's
``Incoming.typed`` reads ``/ack 12`` as on Telegram); ``ZaloSurface`` posts the layer's replies as
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
from bot.services import identity, linking
from handlers.conversation.dispatch import handle
from handlers.conversation.events import Incoming
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
    return Incoming.typed(
        PersonRef(CHANNEL, message.sender.id),
        ChatRef(CHANNEL, message.chat.id),
        (message.text or "").strip(),
        message.message_id,
    )


GROUP_TEXT = "user_send_group_text"  # the OA event of a member writing in a group
USER_TEXT = "user_send_text"  # the OA event of someone writing in the OA's own chat


def oa_sender(event: dict[str, Any]) -> str | None:
    """The OA-scoped id of whoever caused ``event`` (``sender.id``): the OA's own id for that
    person, not the one the Bot Platform gives them."""
    sender = event.get("sender")
    if not isinstance(sender, dict) or not sender.get("id"):
        return None
    return str(sender["id"])


def stranger_in_oa(app_id: str, oa_user_id: str) -> PersonRef:
    """The account of someone the OA knows by an id nobody linked: never a Bot Platform id
    (those never hold ``oa:``), so no person is taken for someone else."""
    return PersonRef(CHANNEL, f"oa:{app_id}:{oa_user_id}")


def group_incoming(app_id: str, event: dict[str, Any], who: PersonRef) -> Incoming | None:
    """The neutral event of a member's text in one of the OA's groups (a crisis room made by
    ``bot.channels.zalo.oa.rooms``), from ``who`` (the member's Zalo account, found from their
    OA-scoped id by the caller), else None."""
    if event.get("event_name") != GROUP_TEXT:
        return None
    group = group_of(event)
    message = event.get("message")
    if not group or not isinstance(message, dict):
        return None
    text = str(message.get("text") or "").strip()
    if not text:
        return None
    return Incoming.typed(who, group_chat(app_id, group), text, str(message.get("msg_id") or ""))


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

    async def on_oa_event(self, app_id: str, event: dict[str, Any]) -> None:
        """An event of the OA (signature already checked): a member's text in one of its
        groups, or a linking code typed into the OA's own chat; anything else is not ours."""
        sender = oa_sender(event)
        if sender is None:
            return
        name = event.get("event_name")
        if name == GROUP_TEXT:
            await self.on_group_event(app_id, sender, event)
        elif name == USER_TEXT:
            await self.on_oa_text(app_id, sender, event)

    async def on_group_event(self, app_id: str, sender: str, event: dict[str, Any]) -> None:
        """A member's text in an OA group: room commands (``/task``, ``/tasks``, ``/update``…)
        answered in the group through the OA; other chatter is left alone. The member is the
        person who linked the sender's OA-scoped id; an id nobody linked is a stranger."""
        with self.runtime.db.session() as session:
            account = identity.account_for_room_id(session, CHANNEL, app_id, sender)
        neutral = group_incoming(app_id, event, account or stranger_in_oa(app_id, sender))
        if neutral is None or neutral.command is None:
            return
        assert neutral.message is not None
        if not self._first_time(f"oa:{neutral.message.message_id}"):
            return
        await self._answer(neutral)

    async def on_oa_text(self, app_id: str, sender: str, event: dict[str, Any]) -> None:
        """Someone wrote in the OA's own chat. A linking code (from ``/lienket``) there binds
        the sender's OA-scoped id to the person whose code it is, so the OA's groups can take
        them; other messages are for the OA's staff, not the bot."""
        message = event.get("message")
        text = str(message.get("text") or "") if isinstance(message, dict) else ""
        code = linking.code_in(text)
        if code is None:
            return
        msg_id = str(message.get("msg_id") or "") if isinstance(message, dict) else ""
        if msg_id and not self._first_time(f"oa:{msg_id}"):
            return
        try:
            await linking.redeem_in_scope_now(self.runtime, CHANNEL, app_id, sender, code)
        except Exception:
            log.exception("zalo oa: could not take a linking code from %s", sender)

    async def _answer(self, event: Incoming) -> None:
        surface = ZaloSurface(self.notifier, event.where)
        try:
            if not await handle(self.runtime, event, surface):
                await surface.send(pointer(self.runtime, event, event.command is not None))
        except Exception:
            # One bad update must not stop the poller; the person may write again.
            log.exception("zalo: failed to answer an update from %s", event.who)
