"""The Bot API methods: validate like Telegram, change :mod:`.state`, return Telegram's JSON.

Every method is a synchronous function of :class:`Params` (``getUpdates`` excepted, which
waits). Being synchronous makes a call atomic on the event loop: the flood check, the state
change and the flood charge cannot interleave with another request.

Posting into chats, member changes and update emission are shared with the control API
(people acting in chats), so they live here as public helpers of :class:`BotApi`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from .errors import ApiError, bad_request, forbidden
from .html_entities import detect_entities, parse_html
from .limits import COUNTED_METHODS, FloodLimiter
from .params import Params, Upload
from .state import (
    Chat,
    InviteLink,
    Member,
    StoredFile,
    StoredMessage,
    Topic,
    User,
    World,
    member_to_api,
)
from .updates import UpdateHub, Webhook

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
FORUM_ICON_COLORS = frozenset({7322096, 16766590, 13338331, 9367192, 16749490, 16478047})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
COMMAND_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_CHAT_KIND = {"group": "group", "supergroup": "supergroup", "channel": "channel"}
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
_LOOPBACK_HOSTS = frozenset({"localhost"})

Method = Callable[[Params], Any]


class BotApi:
    """One bot's view of the emulated Telegram."""

    def __init__(
        self,
        world: World,
        hub: UpdateHub,
        limiter: FloodLimiter,
        now: Callable[[], float],
        *,
        privacy_mode: bool = True,
    ) -> None:
        self.world = world
        self.hub = hub
        self.limiter = limiter
        self.now = now
        self.privacy_mode = privacy_mode
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.callbacks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._methods: dict[str, Method] = {
            name.removeprefix("m_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("m_")
        }

    @property
    def bot(self) -> User:
        return self.world.bot

    # ---- dispatch -------------------------------------------------------------------------

    def knows(self, method: str) -> bool:
        return method.lower() in self._methods or method.lower() == "getupdates"

    async def call(self, method: str, params: Params) -> Any:
        """Run one method (name case-insensitive) and return its ``result``."""
        name = method.lower()
        if name == "getupdates":
            return await self.get_updates(params)
        return self._methods[name](params)

    async def get_updates(self, p: Params) -> list[dict[str, Any]]:
        limit = p.opt_integer("limit") or 100
        if not 1 <= limit <= 100:
            limit = 100
        self.hub.set_allowed(p.structured("allowed_updates"))
        timeout = p.opt_integer("timeout") or 0
        return await self.hub.get_updates(p.opt_integer("offset"), limit, timeout)

    # ---- shared checks ------------------------------------------------------------------

    def writable_chat(self, p: Params) -> Chat:
        """The chat a method acts in, with the 400/403 Telegram gives when the bot can't."""
        chat_ref = p.chat_id()
        if isinstance(chat_ref, int) and chat_ref not in self.world.chats:
            user = self.world.users.get(chat_ref)
            if user is not None and not user.is_bot:
                raise forbidden("bot can't initiate conversation with a user")
        chat = self.world.chat(chat_ref)
        self.ensure_bot_present(chat)
        return chat

    def ensure_bot_present(self, chat: Chat) -> None:
        if chat.private_user is not None:
            if chat.private_user.blocked:
                raise forbidden("bot was blocked by the user")
            if not chat.private_user.started:
                raise forbidden("bot can't initiate conversation with a user")
            return
        status = chat.member(self.bot.id).status
        kind = _CHAT_KIND[chat.type]
        if status == "kicked":
            raise forbidden(f"bot was kicked from the {kind} chat")
        if status not in ("creator", "administrator", "member", "restricted"):
            raise forbidden(f"bot is not a member of the {kind} chat")

    def require_right(self, chat: Chat, right: str, action: str) -> None:
        if not chat.member(self.bot.id).can(right):
            raise bad_request(f"not enough rights to {action}")

    def group_chat(self, p: Params) -> Chat:
        chat = self.writable_chat(p)
        if chat.private_user is not None:
            raise bad_request("method is available only for supergroups and channel")
        return chat

    def forum(self, p: Params) -> Chat:
        chat = self.writable_chat(p)
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        return chat

    def topic(self, chat: Chat, thread_id: int) -> Topic:
        topic = chat.topics.get(thread_id)
        if topic is None or topic.deleted:
            raise bad_request("message thread not found")
        return topic

    def flood_check(self, method: str, chat: Chat) -> None:
        if method in COUNTED_METHODS:
            retry = self.limiter.retry_after(chat.id, chat.is_group)
            if retry is not None:
                raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)

    def flood_charge(self, method: str, chat: Chat) -> None:
        if method in COUNTED_METHODS:
            self.limiter.charge(chat.id, chat.is_group)

    # ---- formatting ---------------------------------------------------------------------

    def formatted(
        self,
        p: Params,
        field: str,
        entities_field: str,
        *,
        limit: int,
        what: str,
        allow_empty: bool,
    ) -> tuple[str, list[dict[str, Any]]]:
        """Text plus entities after parse_mode, with Telegram's empty/too-long checks."""
        raw = p.opt_text(field) or ""
        mode = (p.opt_text("parse_mode") or "").lower()
        if mode == "html":
            text, entities = parse_html(raw)
        elif mode:
            raise bad_request(f"unsupported parse_mode {mode!r} (the emulator speaks HTML only)")
        else:
            text, entities = raw.strip(), list(p.structured(entities_field) or [])
        if not text and not allow_empty:
            raise bad_request(f"{what} is empty")
        if len(text) > limit:
            # Telegram's wording: "message is too long" but "message caption is too long"
            raise bad_request(f"{what.removesuffix(' text')} is too long")
        return text, self.finish_entities(text, entities)

    def finish_entities(self, text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Resolve ``tg://user`` mentions to users and add auto-detected entities."""
        resolved = []
        for entity in entities:
            if entity.get("type") == "text_mention" and "user_id" in entity:
                user = self.world.users.get(entity["user_id"])
                entity = {k: v for k, v in entity.items() if k != "user_id"}
                if user is None:
                    raise bad_request("can't parse entities: user not found for tg://user link")
                entity["user"] = user.to_api()
            resolved.append(entity)
        return detect_entities(text, resolved)

    def markup(self, p: Params) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Validate ``reply_markup``; returns (inline keyboard, reply keyboard/removal)."""
        markup = p.structured("reply_markup")
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            return validate_inline_keyboard(markup), None
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request('field "keyboard" must be an Array of Arrays')
            for row in rows:
                for button in row:
                    label = button if isinstance(button, str) else button.get("text")
                    if not label:
                        raise bad_request("keyboard button text is empty")
            return None, markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return None, markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    # ---- posting messages (also used by the control API) --------------------------------

    def post(
        self,
        chat: Chat,
        sender: User | None,
        content: dict[str, Any],
        *,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
        inline_markup: dict[str, Any] | None = None,
        reply_keyboard: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Store a new message in ``chat`` (no validation, no update emission)."""
        message_id = chat.next_message_id()
        data: dict[str, Any] = {"message_id": message_id, "date": int(self.now())}
        if chat.type == "channel":
            data["sender_chat"] = chat.to_api()
        elif sender is not None:
            data["from"] = sender.to_api()
        data["chat"] = chat.to_api()
        if thread_id is not None:
            data["message_thread_id"] = thread_id
            data["is_topic_message"] = True
        if reply_to is not None:
            data["reply_to_message"] = {
                k: v for k, v in reply_to.data.items() if k != "reply_to_message"
            }
        data.update(content)
        if inline_markup is not None:
            data["reply_markup"] = inline_markup
        message = StoredMessage(
            message_id=message_id,
            chat_id=chat.id,
            sender_id=sender.id if sender is not None else None,
            thread_id=thread_id,
            data=data,
            reply_keyboard=reply_keyboard,
        )
        chat.messages[message_id] = message
        return message

    def deliver(self, chat: Chat, message: StoredMessage) -> None:
        """Emit a people's message to the bot, honouring group privacy mode."""
        if chat.type == "channel":
            self.hub.emit("channel_post", message.data)
        elif self.bot_sees(chat, message):
            self.hub.emit("message", message.data)

    def bot_sees(self, chat: Chat, message: StoredMessage) -> bool:
        """Privacy mode: in groups a non-admin bot only gets commands, replies and mentions."""
        if chat.private_user is not None or not self.privacy_mode:
            return True
        if chat.member(self.bot.id).status in ("creator", "administrator"):
            return True
        if not chat.member(self.bot.id).is_member:
            return False
        data = message.data
        if "text" not in data and "caption" not in data and "contact" not in data:
            return True  # service messages
        if (data.get("reply_to_message") or {}).get("from", {}).get("id") == self.bot.id:
            return True
        text = message.text or ""
        return text.startswith("/") or f"@{self.bot.username}".lower() in text.lower()

    def service(
        self, chat: Chat, actor: User, content: dict[str, Any], thread_id: int | None = None
    ) -> StoredMessage:
        """Post a service message (pin, title, members…); the bot sees it unless it acted."""
        message = self.post(chat, actor, content, thread_id=thread_id)
        if actor.id != self.bot.id and chat.member(self.bot.id).is_member:
            self.deliver(chat, message)
        return message

    def member_update(
        self,
        chat: Chat,
        actor: User,
        user: User,
        old: Member,
        new: Member,
        invite_link: InviteLink | None = None,
    ) -> None:
        """Emit ``my_chat_member`` (the bot changed) or ``chat_member`` (someone else did)."""
        kind = "my_chat_member" if user.id == self.bot.id else "chat_member"
        if kind == "chat_member" and chat.member(self.bot.id).status != "administrator":
            return  # only administrators receive chat_member updates
        payload: dict[str, Any] = {
            "chat": chat.to_api(),
            "from": actor.to_api(),
            "date": int(self.now()),
            "old_chat_member": member_to_api(old, user, chat),
            "new_chat_member": member_to_api(new, user, chat),
        }
        if invite_link is not None:
            payload["invite_link"] = invite_link.to_api(self.world.user(invite_link.creator_id))
        self.hub.emit(kind, payload)

    def set_member(
        self,
        chat: Chat,
        user: User,
        new: Member,
        actor: User,
        *,
        invite_link: InviteLink | None = None,
        announce: bool = True,
    ) -> None:
        """Change membership, emit the member update and the join/leave service message."""
        old = chat.member(user.id)
        chat.members[user.id] = new
        self.member_update(chat, actor, user, old, new, invite_link)
        if not announce or chat.type == "channel":
            return
        if new.is_member and not old.is_member:
            self.service(chat, actor, {"new_chat_members": [user.to_api()]})
        elif old.is_member and not new.is_member:
            self.service(chat, actor, {"left_chat_member": user.to_api()})

    def new_link(self, chat: Chat, **fields: Any) -> InviteLink:
        url = f"https://t.me/+{secrets.token_urlsafe(12)}"
        link = InviteLink(url, chat.id, self.bot.id, **fields)
        chat.invite_links[link.invite_link] = link
        return link

    # ---- getMe, webhooks, commands ---------------------------------------------------------

    def m_getme(self, p: Params) -> dict[str, Any]:
        return {
            **self.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def m_setwebhook(self, p: Params) -> bool:
        url = p.opt_text("url") or ""
        if not url:
            self.hub.delete_webhook()
            return True
        parts = urlsplit(url)
        local_http = parts.scheme == "http" and _is_loopback(parts.hostname)
        if parts.scheme != "https" and not local_http:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.opt_text("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)
        ):
            raise bad_request("bad webhook: secret token contains unallowed characters")
        if p.flag("drop_pending_updates"):
            self.hub.drop_pending()
        self.hub.set_allowed(p.structured("allowed_updates"))
        max_connections = p.opt_integer("max_connections") or 40
        self.hub.set_webhook(Webhook(url, secret, max_connections))
        return True

    def m_deletewebhook(self, p: Params) -> bool:
        self.hub.delete_webhook()
        if p.flag("drop_pending_updates"):
            self.hub.drop_pending()
        return True

    def m_getwebhookinfo(self, p: Params) -> dict[str, Any]:
        return self.hub.webhook_info()

    def _command_key(self, p: Params) -> tuple[str, str]:
        scope = p.structured("scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
            raise bad_request("can't parse BotCommandScope JSON object")
        if "chat_id" in scope:
            scope = {**scope, "chat_id": self.world.chat(scope["chat_id"]).id}
        language = p.opt_text("language_code") or ""
        if language and not (len(language) == 2 and language.isalpha()):
            raise bad_request("invalid language_code specified")
        key = ",".join(f"{k}={scope[k]}" for k in sorted(scope))
        return key, language

    def m_setmycommands(self, p: Params) -> bool:
        commands = p.structured("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        cleaned = []
        for command in commands:
            name = str(command.get("command", ""))
            description = str(command.get("description", ""))
            valid_chars = all(c.islower() or c.isdigit() or c == "_" for c in name)
            if not (1 <= len(name) <= 32 and valid_chars):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._command_key(p)
        if cleaned:
            self.commands[key] = cleaned
        else:
            self.commands.pop(key, None)
        return True

    def m_getmycommands(self, p: Params) -> list[dict[str, str]]:
        return list(self.commands.get(self._command_key(p), []))

    def m_deletemycommands(self, p: Params) -> bool:
        self.commands.pop(self._command_key(p), None)
        return True

    # ---- sending ---------------------------------------------------------------------------

    def _thread_id(self, chat: Chat, p: Params) -> int | None:
        thread_id = p.opt_integer("message_thread_id")
        if thread_id is None:
            return None
        if not chat.is_forum:
            raise bad_request("message thread not found")
        if self.topic(chat, thread_id).closed:
            raise bad_request("TOPIC_CLOSED")
        return thread_id

    def _reply_target(self, chat: Chat, p: Params) -> StoredMessage | None:
        params = p.structured("reply_parameters") or {}
        message_id = params.get("message_id") or p.opt_integer("reply_to_message_id")
        if message_id is None:
            return None
        if params.get("chat_id") not in (None, chat.id):
            chat = self.world.chat(params["chat_id"])
        target = chat.messages.get(int(message_id))
        if target is None or target.deleted:
            if params.get("allow_sending_without_reply") or p.flag("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return target

    def _send(
        self, method: str, p: Params, content: Callable[[Chat], dict[str, Any]]
    ) -> dict[str, Any]:
        chat = self.writable_chat(p)
        if chat.type == "channel":
            self.require_right(chat, "can_post_messages", "send messages in the channel")
        thread_id = self._thread_id(chat, p)
        inline_markup, reply_keyboard = self.markup(p)
        reply_to = self._reply_target(chat, p)
        body = content(chat)
        self.flood_check(method, chat)
        message = self.post(
            chat,
            self.bot,
            body,
            thread_id=thread_id,
            reply_to=reply_to,
            inline_markup=inline_markup,
            reply_keyboard=reply_keyboard,
        )
        self.flood_charge(method, chat)
        return message.data

    def m_sendmessage(self, p: Params) -> dict[str, Any]:
        def content(chat: Chat) -> dict[str, Any]:
            text, entities = self.formatted(
                p, "text", "entities", limit=MAX_TEXT, what="message text", allow_empty=False
            )
            body: dict[str, Any] = {"text": text}
            if entities:
                body["entities"] = entities
            options = p.structured("link_preview_options")
            if options:
                body["link_preview_options"] = options
            return body

        return self._send("sendmessage", p, content)

    def _caption(self, p: Params) -> dict[str, Any]:
        caption, entities = self.formatted(
            p,
            "caption",
            "caption_entities",
            limit=MAX_CAPTION,
            what="message caption",
            allow_empty=True,
        )
        body: dict[str, Any] = {}
        if caption:
            body["caption"] = caption
        if entities:
            body["caption_entities"] = entities
        return body

    def _stored_file(self, p: Params, field: str, kind: str, max_bytes: int) -> StoredFile:
        value = p.file(field)
        if isinstance(value, str):
            existing = self.world.files.get(value)
            if existing is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            if existing.kind != kind:
                raise bad_request(
                    f"can't use file of type {existing.kind.title()} as {kind.title()}"
                )
            return existing
        if not value.content:
            raise bad_request("file must be non-empty")
        if len(value.content) > max_bytes:
            raise ApiError(413, "Request Entity Too Large")
        return self._store(value, kind)

    def _store(self, upload: Upload, kind: str) -> StoredFile:
        file_id, unique_id, number = self.world.new_file_ids()
        name = upload.filename or ""
        extension = name.rpartition(".")[2] if "." in name else "bin"
        folder = "photos" if kind == "photo" else "documents"
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=unique_id,
            kind=kind,
            content=upload.content,
            file_name=upload.filename,
            mime_type=upload.content_type,
            file_path=f"{folder}/file_{number}.{extension}",
        )
        self.world.files[file_id] = stored
        self.world.files_by_path[stored.file_path] = stored
        return stored

    def m_sendphoto(self, p: Params) -> dict[str, Any]:
        def content(chat: Chat) -> dict[str, Any]:
            caption = self._caption(p)
            stored = self._stored_file(p, "photo", "photo", MAX_PHOTO_BYTES)
            size = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": 0,  # the emulator does not decode images
                "height": 0,
                "file_size": len(stored.content),
            }
            return {"photo": [size], **caption}

        return self._send("sendphoto", p, content)

    def m_senddocument(self, p: Params) -> dict[str, Any]:
        def content(chat: Chat) -> dict[str, Any]:
            caption = self._caption(p)
            stored = self._stored_file(p, "document", "document", MAX_DOCUMENT_BYTES)
            document: dict[str, Any] = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.content),
            }
            if stored.file_name:
                document["file_name"] = stored.file_name
            if stored.mime_type:
                document["mime_type"] = stored.mime_type
            return {"document": document, **caption}

        return self._send("senddocument", p, content)

    def m_getfile(self, p: Params) -> dict[str, Any]:
        stored = self.world.files.get(p.text("file_id"))
        if stored is None:
            raise bad_request("invalid file_id")
        return stored.to_api()

    def m_sendchataction(self, p: Params) -> bool:
        chat = self.writable_chat(p)
        action = p.text("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        chat.actions.append((self.now(), action, p.opt_integer("message_thread_id")))
        return True

    # ---- editing and deleting ------------------------------------------------------------

    def _own_message(self, p: Params, method: str) -> tuple[Chat, StoredMessage]:
        if "inline_message_id" in p:
            raise bad_request("the emulator does not support inline messages (inline_message_id)")
        chat = self.writable_chat(p)
        message = chat.messages.get(p.integer("message_id"))
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        channel_editor = chat.type == "channel" and chat.member(self.bot.id).can(
            "can_edit_messages"
        )
        if message.sender_id != self.bot.id and not channel_editor:
            raise bad_request("message can't be edited")
        self.flood_check(method, chat)
        return chat, message

    def _apply_edit(
        self,
        method: str,
        chat: Chat,
        message: StoredMessage,
        changes: dict[str, Any],
    ) -> dict[str, Any]:
        """Apply ``changes`` (``None`` removes a field) unless nothing would change."""
        if all(message.data.get(key) == value for key, value in changes.items()):
            raise bad_request(_NOT_MODIFIED)
        message.record_edit()
        for key, value in changes.items():
            if value is None:
                message.data.pop(key, None)
            else:
                message.data[key] = value
        message.data["edit_date"] = int(self.now())
        self.flood_charge(method, chat)
        return message.data

    def m_editmessagetext(self, p: Params) -> dict[str, Any]:
        chat, message = self._own_message(p, "editmessagetext")
        if "text" not in message.data:
            raise bad_request("there is no text in the message to edit")
        text, entities = self.formatted(
            p, "text", "entities", limit=MAX_TEXT, what="message text", allow_empty=False
        )
        inline_markup, _ = self.markup(p)
        # Without reply_markup Telegram removes the inline keyboard; so do we.
        changes = {"text": text, "entities": entities or None, "reply_markup": inline_markup}
        return self._apply_edit("editmessagetext", chat, message, changes)

    def m_editmessagecaption(self, p: Params) -> dict[str, Any]:
        chat, message = self._own_message(p, "editmessagecaption")
        if "photo" not in message.data and "document" not in message.data:
            raise bad_request("there is no caption in the message to edit")
        caption = self._caption(p)
        inline_markup, _ = self.markup(p)
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
            "reply_markup": inline_markup,
        }
        return self._apply_edit("editmessagecaption", chat, message, changes)

    def m_editmessagereplymarkup(self, p: Params) -> dict[str, Any]:
        chat, message = self._own_message(p, "editmessagereplymarkup")
        inline_markup, _ = self.markup(p)
        return self._apply_edit(
            "editmessagereplymarkup", chat, message, {"reply_markup": inline_markup}
        )

    def m_deletemessage(self, p: Params) -> bool:
        chat = self.writable_chat(p)
        message = chat.messages.get(p.integer("message_id"))
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        own = message.sender_id == self.bot.id
        may_delete = chat.private_user is not None or chat.member(self.bot.id).can(
            "can_delete_messages"
        )
        if not own and not may_delete:
            raise bad_request("message can't be deleted")
        self._delete(chat, message)
        return True

    def _delete(self, chat: Chat, message: StoredMessage) -> None:
        message.deleted = True
        message.pinned = False
        if message.message_id in chat.pinned:
            chat.pinned.remove(message.message_id)

    # ---- callback queries ------------------------------------------------------------------

    def m_answercallbackquery(self, p: Params) -> bool:
        future = self.callbacks.pop(p.text("callback_query_id"), None)
        if future is None or future.done():
            raise bad_request(_QUERY_TOO_OLD)
        text = p.opt_text("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        future.set_result(
            {
                "text": text,
                "show_alert": p.flag("show_alert"),
                "url": p.opt_text("url"),
                "cache_time": p.opt_integer("cache_time") or 0,
            }
        )
        return True

    # ---- pins ------------------------------------------------------------------------------

    def _pin_rights(self, chat: Chat) -> None:
        if chat.private_user is not None:
            return
        right = "can_edit_messages" if chat.type == "channel" else "can_pin_messages"
        self.require_right(chat, right, "manage pinned messages in the chat")

    def m_pinchatmessage(self, p: Params) -> bool:
        chat = self.writable_chat(p)
        self._pin_rights(chat)
        message = chat.messages.get(p.integer("message_id"))
        if message is None or message.deleted:
            raise bad_request("message to pin not found")
        if message.message_id in chat.pinned:
            chat.pinned.remove(message.message_id)
        chat.pinned.append(message.message_id)
        message.pinned = True
        pinned = {k: v for k, v in message.data.items() if k != "reply_to_message"}
        self.service(chat, self.bot, {"pinned_message": pinned}, thread_id=message.thread_id)
        return True

    def m_unpinchatmessage(self, p: Params) -> bool:
        chat = self.writable_chat(p)
        self._pin_rights(chat)
        message_id = p.opt_integer("message_id")
        if message_id is None:
            if not chat.pinned:
                return True
            message_id = chat.pinned[-1]
        if message_id not in chat.pinned:
            raise bad_request("message to unpin not found")
        chat.pinned.remove(message_id)
        chat.messages[message_id].pinned = False
        return True

    def m_unpinallchatmessages(self, p: Params) -> bool:
        chat = self.writable_chat(p)
        self._pin_rights(chat)
        for message_id in chat.pinned:
            chat.messages[message_id].pinned = False
        chat.pinned.clear()
        return True

    # ---- chats and members ---------------------------------------------------------------

    def m_getchat(self, p: Params) -> dict[str, Any]:
        return self.writable_chat(p).to_full_info()

    def _known_user(self, p: Params) -> User:
        user = self.world.users.get(p.integer("user_id"))
        if user is None:
            raise bad_request("PARTICIPANT_ID_INVALID")
        return user

    def m_getchatmember(self, p: Params) -> dict[str, Any]:
        chat = self.writable_chat(p)
        user = self._known_user(p)
        return member_to_api(chat.member(user.id), user, chat)

    def m_getchatmembercount(self, p: Params) -> int:
        chat = self.writable_chat(p)
        return sum(1 for member in chat.members.values() if member.is_member)

    def m_getchatadministrators(self, p: Params) -> list[dict[str, Any]]:
        chat = self.writable_chat(p)
        if chat.private_user is not None:
            raise bad_request("there are no administrators in the private chat")
        return [
            member_to_api(member, self.world.user(member.user_id), chat)
            for member in chat.members.values()
            if member.status in ("creator", "administrator")
        ]

    def m_setchattitle(self, p: Params) -> bool:
        chat = self.group_chat(p)
        self.require_right(chat, "can_change_info", "change chat title")
        title = (p.opt_text("title") or "").strip()
        if not title:
            raise bad_request("chat title is empty")
        if len(title) > 128:
            raise bad_request("chat title is too long")
        chat.title = title
        self.service(chat, self.bot, {"new_chat_title": title})
        return True

    def m_setchatdescription(self, p: Params) -> bool:
        chat = self.group_chat(p)
        self.require_right(chat, "can_change_info", "change chat description")
        description = p.opt_text("description") or ""
        if len(description) > 255:
            raise bad_request("chat description is too long")
        if description == (chat.description or ""):
            raise bad_request("chat description is not modified")
        chat.description = description or None
        return True

    def m_leavechat(self, p: Params) -> bool:
        chat = self.writable_chat(p)
        if chat.private_user is not None:
            raise bad_request("chat member status can't be changed in private chats")
        self.set_member(chat, self.bot, Member(self.bot.id, "left"), self.bot)
        return True

    def _restrictable(self, p: Params) -> tuple[Chat, User]:
        chat = self.group_chat(p)
        self.require_right(chat, "can_restrict_members", "restrict/unrestrict chat member")
        user = self._known_user(p)
        if user.id == self.bot.id:
            raise bad_request("can't restrict self")
        status = chat.member(user.id).status
        if status == "creator":
            raise bad_request("can't remove chat owner")
        if status == "administrator":
            raise bad_request("user is an administrator of the chat")
        return chat, user

    def m_banchatmember(self, p: Params) -> bool:
        chat, user = self._restrictable(p)
        until = p.opt_integer("until_date") or 0
        self.set_member(chat, user, Member(user.id, "kicked", until_date=until), self.bot)
        if p.flag("revoke_messages"):
            for message in chat.live_messages():
                if message.sender_id == user.id:
                    self._delete(chat, message)
        return True

    def m_unbanchatmember(self, p: Params) -> bool:
        chat, user = self._restrictable(p)
        member = chat.member(user.id)
        if member.status == "kicked" or (member.is_member and not p.flag("only_if_banned")):
            self.set_member(chat, user, Member(user.id, "left"), self.bot)
        return True

    # ---- forum topics ----------------------------------------------------------------------

    def _managed_topic(self, p: Params, action: str) -> tuple[Chat, Topic]:
        chat = self.forum(p)
        topic = self.topic(chat, p.integer("message_thread_id"))
        if topic.creator_id != self.bot.id:
            self.require_right(chat, "can_manage_topics", action)
        return chat, topic

    def m_createforumtopic(self, p: Params) -> dict[str, Any]:
        chat = self.forum(p)
        self.require_right(chat, "can_manage_topics", "create a topic")
        name = p.opt_text("name") or ""
        if not 1 <= len(name) <= 128:
            raise bad_request("TOPIC_TITLE_EMPTY" if not name else "TOPIC_TITLE_TOO_LONG")
        color = p.opt_integer("icon_color") or 7322096
        if color not in FORUM_ICON_COLORS:
            raise bad_request("TOPIC_ICON_COLOR_INVALID")
        emoji = p.opt_text("icon_custom_emoji_id")
        created: dict[str, Any] = {"name": name, "icon_color": color}
        if emoji:
            created["icon_custom_emoji_id"] = emoji
        # A topic's id is the id of its forum_topic_created service message, which lives in it.
        message = self.post(chat, self.bot, {"forum_topic_created": created})
        message.thread_id = message.message_id
        message.data.update(message_thread_id=message.message_id, is_topic_message=True)
        topic = Topic(message.message_id, name, color, emoji, creator_id=self.bot.id)
        chat.topics[topic.message_thread_id] = topic
        return topic.to_api()

    def m_editforumtopic(self, p: Params) -> bool:
        chat, topic = self._managed_topic(p, "edit a topic")
        edited: dict[str, Any] = {}
        name = p.opt_text("name")
        if name is not None and name != topic.name:
            if not 1 <= len(name) <= 128:
                raise bad_request("TOPIC_TITLE_EMPTY" if not name else "TOPIC_TITLE_TOO_LONG")
            topic.name = edited["name"] = name
        emoji = p.opt_text("icon_custom_emoji_id")
        if emoji is not None and emoji != (topic.icon_custom_emoji_id or ""):
            topic.icon_custom_emoji_id = emoji or None
            edited["icon_custom_emoji_id"] = emoji
        if not edited:
            raise bad_request("TOPIC_NOT_MODIFIED")
        self.service(
            chat, self.bot, {"forum_topic_edited": edited}, thread_id=topic.message_thread_id
        )
        return True

    def _set_closed(self, p: Params, closed: bool) -> bool:
        chat, topic = self._managed_topic(p, "close a topic" if closed else "reopen a topic")
        if topic.closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        event = "forum_topic_closed" if closed else "forum_topic_reopened"
        self.service(chat, self.bot, {event: {}}, thread_id=topic.message_thread_id)
        return True

    def m_closeforumtopic(self, p: Params) -> bool:
        return self._set_closed(p, True)

    def m_reopenforumtopic(self, p: Params) -> bool:
        return self._set_closed(p, False)

    def m_deleteforumtopic(self, p: Params) -> bool:
        chat = self.forum(p)
        topic = self.topic(chat, p.integer("message_thread_id"))
        self.require_right(chat, "can_delete_messages", "delete a topic")
        topic.deleted = True
        for message in chat.live_messages():
            if message.thread_id == topic.message_thread_id:
                self._delete(chat, message)
        return True

    # ---- invite links and join requests ----------------------------------------------------

    def _invite_chat(self, p: Params) -> Chat:
        chat = self.group_chat(p)
        self.require_right(chat, "can_invite_users", "manage chat invite links")
        return chat

    def _link_fields(self, p: Params) -> dict[str, Any]:
        name = p.opt_text("name")
        if name is not None and len(name) > 32:
            raise bad_request("invite link name is too long")
        member_limit = p.opt_integer("member_limit")
        if member_limit is not None and not 1 <= member_limit <= 99999:
            raise bad_request("USAGE_LIMIT_INVALID")
        creates_join_request = p.flag("creates_join_request")
        if member_limit is not None and creates_join_request:
            raise bad_request(
                "member limit can't be specified for links requiring administrator approval"
            )
        expire_date = p.opt_integer("expire_date")
        if expire_date is not None and expire_date <= self.now():
            raise bad_request("EXPIRE_DATE_INVALID")
        return {
            "name": name or None,
            "member_limit": member_limit,
            "creates_join_request": creates_join_request,
            "expire_date": expire_date,
        }

    def _existing_link(self, chat: Chat, p: Params) -> InviteLink:
        link = chat.invite_links.get(p.text("invite_link"))
        if link is None or link.is_revoked:
            raise bad_request("INVITE_HASH_EXPIRED")
        return link

    def m_createchatinvitelink(self, p: Params) -> dict[str, Any]:
        chat = self._invite_chat(p)
        return self.new_link(chat, **self._link_fields(p)).to_api(self.bot)

    def m_editchatinvitelink(self, p: Params) -> dict[str, Any]:
        chat = self._invite_chat(p)
        link = self._existing_link(chat, p)
        for key, value in self._link_fields(p).items():
            setattr(link, key, value)
        return link.to_api(self.world.user(link.creator_id))

    def m_revokechatinvitelink(self, p: Params) -> dict[str, Any]:
        chat = self._invite_chat(p)
        link = self._existing_link(chat, p)
        link.is_revoked = True
        if link.is_primary:
            link.is_primary = False
            self.new_link(chat, is_primary=True)
        return link.to_api(self.world.user(link.creator_id))

    def m_exportchatinvitelink(self, p: Params) -> str:
        chat = self._invite_chat(p)
        for link in chat.invite_links.values():
            if link.is_primary:
                link.is_primary = False
                link.is_revoked = True
        return self.new_link(chat, is_primary=True).invite_link

    def _join_request(self, p: Params) -> tuple[Chat, User, InviteLink]:
        chat = self.group_chat(p)
        self.require_right(chat, "can_invite_users", "manage join requests")
        user = self._known_user(p)
        for link in chat.invite_links.values():
            if user.id in link.pending:
                return chat, user, link
        raise bad_request("HIDE_REQUESTER_MISSING")

    def m_approvechatjoinrequest(self, p: Params) -> bool:
        chat, user, link = self._join_request(p)
        link.pending.discard(user.id)
        link.joined += 1
        self.set_member(chat, user, Member(user.id, "member"), self.bot, invite_link=link)
        return True

    def m_declinechatjoinrequest(self, p: Params) -> bool:
        _, user, link = self._join_request(p)
        link.pending.discard(user.id)
        return True


def validate_inline_keyboard(markup: dict[str, Any]) -> dict[str, Any]:
    """Check an ``InlineKeyboardMarkup`` the way Telegram does, including the 64-byte data cap."""
    rows = markup.get("inline_keyboard")
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("can't parse inline keyboard button: Text is empty")
            actions = [key for key in _INLINE_BUTTON_ACTIONS if key in button]
            if len(actions) != 1:
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                size = len(str(button["callback_data"]).encode("utf-8"))
                if not 1 <= size <= MAX_CALLBACK_DATA:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and not str(button["url"]).startswith(
                ("http://", "https://", "tg://")
            ):
                raise bad_request("BUTTON_URL_INVALID")
    return {"inline_keyboard": rows}


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
