"""Telegram as one channel of the conversation layer (``handlers.conversation``).

An Update becomes an ``Incoming`` event; a ``TelegramSurface`` turns the layer's replies into
Bot API calls (HTML, inline keyboards, toasts for presses), its messages queued per chat
(``bot.channels.telegram.sends``) so that the handler goes on at once; ``handlers()`` gives PTB
the command handlers of every flow written against the layer, the one handler of every button
press, and the pointer onwards (``handlers.fallback``) for what a private chat sent outside any
flow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar, cast

from telegram import (
    ForceReply,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.channels.base import Buttons
from bot.channels.refs import ChatRef, MessageRef, PersonRef
from bot.channels.telegram.limits import TEXT_LIMIT
from bot.channels.telegram.notifier import call_unless_done, keyboard
from bot.channels.telegram.sends import ChatSends
from bot.runtime import Runtime
from bot.services.permissions import Actor
from handlers.conversation.dispatch import commands, handle
from handlers.conversation.events import Contact, Incoming
from handlers.conversation.surface import Capabilities
from handlers.fallback import pointer

T = TypeVar("T")
CHANNEL = "telegram"
SENDS_KEY = "sends"  # bot_data's ChatSends, beside the runtime (``bot.app``)
NOT_MODIFIED = "message is not modified"  # the Bot API's answer to an edit that changes nothing

CAPABILITIES = Capabilities(
    buttons=True,
    edit=True,
    pin=True,
    threads=True,
    join_requests=True,
    max_text=TEXT_LIMIT,
    contact_share=True,
    replies=True,
)


def runtime_of(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    """The app's ``Runtime``, kept in PTB's ``bot_data`` (``bot.app``)."""
    return cast(Runtime, context.bot_data["runtime"])


def surface_of(update: Update, context: ContextTypes.DEFAULT_TYPE) -> TelegramSurface:
    """The surface answering ``update``, its messages queued in the app's ``ChatSends``."""
    return TelegramSurface(update, cast(ChatSends | None, context.bot_data.get(SENDS_KEY)))


def _chat(chat_id: int, thread_id: int | None) -> ChatRef:
    return ChatRef(CHANNEL, str(chat_id), str(thread_id) if thread_id is not None else None)


def incoming(update: Update) -> Incoming | None:
    """The neutral event of an update, or None for updates no flow answers (no sender)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return None
    message = update.effective_message
    thread = message.message_thread_id if message and message.is_topic_message else None
    who = PersonRef(CHANNEL, str(user.id))
    where = _chat(chat.id, thread)
    lang = user.language_code
    query = update.callback_query
    if query is not None:
        # Only a text message can be replaced by text; a press on a photo gets a new message.
        pressed = (
            MessageRef(where, str(message.message_id))
            if message is not None and getattr(message, "text", None)
            else None
        )
        return Incoming(
            who,
            where,
            press=query.data or "",
            message=pressed,
            language=lang,
            name=user.full_name,
            username=user.username,
        )
    if message is None:
        return None
    replied = message.reply_to_message
    if replied is not None and replied.forum_topic_created is not None:
        replied = None  # in a forum topic every message "replies" to the topic's first message
    shared = message.contact
    return replace(
        Incoming.typed(who, where, message.text or "", str(message.message_id)),
        reply_to=MessageRef(where, str(replied.message_id)) if replied is not None else None,
        reply_text=(replied.text or replied.caption or "") if replied is not None else "",
        reply_author=(
            replied.from_user.full_name
            if replied is not None and replied.from_user is not None
            else None
        ),
        contact=(
            Contact(
                shared.phone_number,
                PersonRef(CHANNEL, str(shared.user_id)) if shared.user_id is not None else None,
            )
            if shared is not None
            else None
        ),
        language=lang,
        name=user.full_name,
        username=user.username,
    )


class TelegramSurface:
    """Replies to one update: in its chat and forum topic, as Telegram HTML (a
    ``RichSurface``: contact sharing, a private link, buttons taken off answered messages).

    With ``sends``, its messages and edits wait in their chat's queue, not in the handler: the
    handler goes on at once (``send`` then returns None); ``ask`` and ``clear_buttons``, whose
    callers need the outcome, wait for their turn. A press is answered at once either way (an
    answer is no chat message: Telegram's flood limits do not count it)."""

    capabilities = CAPABILITIES

    def __init__(self, update: Update, sends: ChatSends | None = None) -> None:
        self.update = update
        self.sends = sends

    async def _queued(self, chat: int, send: Callable[[], Awaitable[T]]) -> T:
        """``send``'s result, in its turn behind the chat's queued messages."""
        if self.sends is None:
            return await send()
        return await self.sends.send(chat, send)

    @property
    def private_link(self) -> str | None:
        username = self.update.get_bot().username
        return f"https://t.me/{username}?start" if username else None

    def start_link(self, payload: str) -> str | None:
        """A deep link starting the private chat with ``payload`` (invite codes)."""
        link = self.private_link
        return f"{link}={payload}" if link else None

    async def send(self, text: str, buttons: Buttons | None = None) -> MessageRef | None:
        return await self._post(text, keyboard(buttons))

    async def ask_contact(self, text: str, label: str) -> None:
        share = KeyboardButton(label, request_contact=True)
        markup = ReplyKeyboardMarkup([[share]], resize_keyboard=True, one_time_keyboard=True)
        await self._post(text, markup)

    async def end_contact(self, text: str) -> None:
        await self._post(text, ReplyKeyboardRemove())

    async def clear_buttons(self, message: MessageRef) -> None:
        """Raises ``DeliveryError`` like the notifier (an already bare message is success)."""
        bot = self.update.get_bot()
        chat, message_id = int(message.chat.chat_id), int(message.message_id)
        await self._queued(
            chat,
            lambda: call_unless_done(
                lambda: bot.edit_message_reply_markup(chat, message_id, reply_markup=None),
                "not modified",
            ),
        )

    async def _post(
        self, text: str, markup: Any, no_preview: bool | None = True
    ) -> MessageRef | None:
        """Reply in the event's chat (``no_preview`` None: Telegram's default link previews);
        queued, when there is a queue, and then None."""
        message = self.update.effective_message
        if message is None:
            return None

        async def reply() -> Message:
            return await message.reply_text(
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                do_quote=False,
                disable_web_page_preview=no_preview,
            )

        if self.sends is not None:
            self.sends.post(message.chat_id, reply, self.update)
            return None
        sent = await reply()
        thread = sent.message_thread_id if sent.is_topic_message else None
        return MessageRef(_chat(sent.chat_id, thread), str(sent.message_id))

    async def ask(self, text: str) -> MessageRef | None:
        """A question answered by replying: ForceReply opens the reply for the person (and works
        under privacy mode, where the bot sees only replies to its own messages). In a group it
        quotes the person's message: a selective ForceReply is for the quoted sender only."""
        message = self.update.effective_message
        if message is None:
            return None
        in_group = message.chat.type != ChatType.PRIVATE
        sent = await self._queued(
            message.chat_id,
            lambda: message.reply_text(
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=ForceReply(selective=True),
                do_quote=in_group and self.update.callback_query is None,
            ),
        )
        thread = sent.message_thread_id if sent.is_topic_message else None
        return MessageRef(_chat(sent.chat_id, thread), str(sent.message_id))

    async def edit(self, message: MessageRef, text: str, buttons: Buttons | None = None) -> None:
        """Replace ``message``; one already showing this (a refresh with nothing new, two
        presses at once) is left as it is. Queued, when there is a queue (module doc)."""
        bot = self.update.get_bot()
        chat, message_id = int(message.chat.chat_id), int(message.message_id)

        async def replace() -> None:
            try:
                await bot.edit_message_text(
                    text,
                    chat_id=chat,
                    message_id=message_id,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(buttons),
                    disable_web_page_preview=True,
                )
            except BadRequest as exc:
                if NOT_MODIFIED not in exc.message.lower():
                    raise

        if self.sends is not None:
            self.sends.edit(chat, message_id, replace, self.update)
        else:
            await replace()

    async def forget(self, message: MessageRef) -> None:
        """Delete a message the person sent (a PIN); one that is gone already stays gone."""
        with contextlib.suppress(TelegramError):
            await self.update.get_bot().delete_message(
                int(message.chat.chat_id), int(message.message_id)
            )

    async def notice(self, text: str, alert: bool = False) -> None:
        query = self.update.callback_query
        if query is not None:
            await query.answer(text or None, show_alert=alert)
        elif text:
            await self.send(text)


# Where the gate (``guards.gatekeeper``) leaves the sender it read on PTB's context, which every
# handler group of one update shares: the layer then does not read the person again.
_ADMITTED = "crisisdesk_sender"


def remember_sender(context: ContextTypes.DEFAULT_TYPE, actor: Actor) -> None:
    """Keep the gate's ``actor`` for the rest of this update's handlers."""
    setattr(context, _ADMITTED, actor)


async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Hand ``update`` to the conversation layer; False if no flow there is for it."""
    event = incoming(update)
    if event is None:
        return False
    actor = getattr(context, _ADMITTED, None)
    return await handle(runtime_of(context), event, surface_of(update, context), actor)


async def _to_layer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await on_update(update, context)


async def _unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _point_onwards(update, context, command=True)


async def _free_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _point_onwards(update, context, command=False)


async def _point_onwards(update: Update, context: ContextTypes.DEFAULT_TYPE, command: bool) -> None:
    """A private chat's command that no flow knows, or text that no flow took (PTB's filters
    tell which: a command is a message opening with a command entity)."""
    event = incoming(update)
    if event is not None:
        await surface_of(update, context).send(pointer(runtime_of(context), event, command))


class _ReplyToBot(filters.MessageFilter):
    """Text that replies to a message of a bot (ours: the only bot that sends our prompts)."""

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        return bool(replied and replied.from_user and replied.from_user.is_bot)


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    """PTB handlers for the commands of the flows written against the layer (registered by
    importing their modules, which the app does before it asks), for every button press, and
    for replies to the bot in groups: under privacy mode they are all the text a room's flows
    see (private text reaches the layer through ``guards.flow_message``). Last, the private
    chat's pointer onwards: an unknown command, or text no flow took."""
    replies = filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND & _ReplyToBot()
    private = filters.ChatType.PRIVATE
    return [
        *(CommandHandler(name, _to_layer) for name in commands()),
        MessageHandler(replies, _to_layer),
        CallbackQueryHandler(_to_layer),
        MessageHandler(private & filters.COMMAND, _unknown_command),
        MessageHandler(private & filters.TEXT & ~filters.COMMAND, _free_text),
    ]
