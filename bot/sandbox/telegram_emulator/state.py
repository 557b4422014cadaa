"""What the emulated Telegram knows: users, chats, members, messages, topics, links, files.

Plain dataclasses with ``to_api`` methods that produce the Bot API's JSON shapes. Nothing here
speaks HTTP or decides permissions; :mod:`.methods` does that. Messages keep their history:
every edit appends the previous version to :attr:`StoredMessage.history`, and deletion only
sets a flag, so tests can assert on what people saw and when.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import bad_request

ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_post_messages",
    "can_edit_messages",
    "can_pin_messages",
    "can_manage_topics",
)
"""Every ``ChatAdministratorRights`` flag the emulator tracks (PTB 22.8 requires most)."""

_CHANNEL_ONLY_RIGHTS = {"can_post_messages", "can_edit_messages"}
_SUPERGROUP_ONLY_RIGHTS = {"can_manage_topics", "can_pin_messages"}
_MEMBER_STATUSES = {"creator", "administrator", "member", "restricted"}


@dataclass
class User:
    """A Telegram account. ``started``/``blocked`` describe its private chat with the bot."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    started: bool = False
    blocked: bool = False

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class Member:
    """One user's standing in a chat; ``rights`` only matters for administrators."""

    user_id: int
    status: str
    rights: dict[str, bool] = field(default_factory=dict)
    until_date: int = 0

    @property
    def is_member(self) -> bool:
        return self.status in _MEMBER_STATUSES

    def can(self, right: str) -> bool:
        """Owners can do everything; administrators what their rights say; others nothing."""
        if self.status == "creator":
            return True
        return self.status == "administrator" and self.rights.get(right, False)


@dataclass
class Topic:
    """A forum topic; its id is the id of the ``forum_topic_created`` service message."""

    message_thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    deleted: bool = False
    creator_id: int = 0

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_thread_id": self.message_thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data


@dataclass
class InviteLink:
    """A chat invite link; ``pending`` holds users waiting for approval through it."""

    invite_link: str
    chat_id: int
    creator_id: int
    creates_join_request: bool = False
    is_primary: bool = False
    is_revoked: bool = False
    name: str | None = None
    expire_date: int | None = None
    member_limit: int | None = None
    joined: int = 0
    pending: set[int] = field(default_factory=set)

    def to_api(self, creator: User) -> dict[str, Any]:
        data: dict[str, Any] = {
            "invite_link": self.invite_link,
            "creator": creator.to_api(),
            "creates_join_request": self.creates_join_request,
            "is_primary": self.is_primary,
            "is_revoked": self.is_revoked,
        }
        for key in ("name", "expire_date", "member_limit"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.creates_join_request:
            data["pending_join_request_count"] = len(self.pending)
        return data


@dataclass
class StoredMessage:
    """A message as Telegram holds it, with every earlier version and its fate.

    ``data`` is the current Bot API ``Message`` JSON. ``reply_keyboard`` keeps a reply keyboard
    the bot attached (Telegram never echoes those back in ``Message.reply_markup``, but a test
    needs to see the buttons a person was offered).
    """

    message_id: int
    chat_id: int
    sender_id: int | None
    thread_id: int | None
    data: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    pinned: bool = False
    reply_keyboard: dict[str, Any] | None = None

    @property
    def text(self) -> str | None:
        """The text, or the caption for media messages."""
        value = self.data.get("text", self.data.get("caption"))
        return value if isinstance(value, str) else None

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.data.get("entities", self.data.get("caption_entities", [])))

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.data.get("reply_markup")

    @property
    def edited(self) -> bool:
        return bool(self.history)

    def buttons(self) -> list[dict[str, Any]]:
        """Inline buttons in reading order (empty when there is no inline keyboard)."""
        markup = self.reply_markup or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    def record_edit(self) -> None:
        """Push the current version to history before it changes."""
        self.history.append(copy.deepcopy(self.data))

    def to_dict(self) -> dict[str, Any]:
        """JSON for the control API: every field, ``data`` under the Bot API's name
        ``message`` (the emulators' other records give their fields as they are)."""
        fields = asdict(self)
        fields["message"] = fields.pop("data")
        return fields


@dataclass
class StoredFile:
    """Bytes the bot uploaded, addressable by ``file_id`` and downloadable by ``file_path``."""

    file_id: str
    file_unique_id: str
    kind: str  # "photo" or "document": Telegram refuses to send one as the other
    content: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str

    def to_api(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.content),
            "file_path": self.file_path,
        }


@dataclass
class Chat:
    """A private chat, group, supergroup (forum or not) or channel."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    description: str | None = None
    is_forum: bool = False
    private_user: User | None = None
    members: dict[int, Member] = field(default_factory=dict)
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    invite_links: dict[str, InviteLink] = field(default_factory=dict)
    pinned: list[int] = field(default_factory=list)
    actions: list[tuple[float, str, int | None]] = field(default_factory=list)
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def is_group(self) -> bool:
        """Groups, supergroups and channels share the 20-per-minute limit and membership rules."""
        return self.type != "private"

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def member(self, user_id: int) -> Member:
        return self.members.get(user_id) or Member(user_id, "left")

    def live_messages(self) -> list[StoredMessage]:
        return [m for m in self.messages.values() if not m.deleted]

    def to_api(self) -> dict[str, Any]:
        """The short ``Chat`` object embedded in messages and updates."""
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.private_user is not None:
            user = self.private_user.to_api()
            for key in ("first_name", "last_name", "username"):
                if key in user:
                    data[key] = user[key]
            return data
        data["title"] = self.title
        if self.username:
            data["username"] = self.username
        if self.is_forum:
            data["is_forum"] = True
        return data

    def to_full_info(self) -> dict[str, Any]:
        """``ChatFullInfo`` for ``getChat``, with the fields PTB 22.8 requires."""
        data = self.to_api()
        data.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        if self.description:
            data["description"] = self.description
        primary = next((link for link in self.invite_links.values() if link.is_primary), None)
        if primary is not None and not primary.is_revoked:
            data["invite_link"] = primary.invite_link
        if self.pinned and self.pinned[-1] in self.messages:
            data["pinned_message"] = self.messages[self.pinned[-1]].data
        return data


def member_to_api(
    member: Member, user: User, chat: Chat, *, editable: bool = False
) -> dict[str, Any]:
    """The ``ChatMember`` variant Telegram would return for this member."""
    data: dict[str, Any] = {"status": member.status, "user": user.to_api()}
    if member.status == "creator":
        data["is_anonymous"] = False
    elif member.status == "administrator":
        data.update(can_be_edited=editable, is_anonymous=False)
        for right in ADMIN_RIGHTS:
            if right in _CHANNEL_ONLY_RIGHTS and chat.type != "channel":
                continue
            if right in _SUPERGROUP_ONLY_RIGHTS and chat.type == "channel":
                continue
            data[right] = member.rights.get(right, False)
    elif member.status == "kicked":
        data["until_date"] = member.until_date
    elif member.status == "restricted":
        data.update(
            is_member=True,
            until_date=member.until_date,
            can_edit_tag=False,
            **dict.fromkeys(
                (
                    "can_change_info",
                    "can_invite_users",
                    "can_pin_messages",
                    "can_send_messages",
                    "can_send_polls",
                    "can_send_other_messages",
                    "can_add_web_page_previews",
                    "can_manage_topics",
                    "can_send_audios",
                    "can_send_documents",
                    "can_send_photos",
                    "can_send_videos",
                    "can_send_video_notes",
                    "can_send_voice_notes",
                ),
                False,
            ),
        )
    return data


def normalize_rights(rights: dict[str, bool] | None) -> dict[str, bool]:
    """Validate right names early: a typo in a test would otherwise silently deny a right."""
    rights = dict(rights or {})
    unknown = set(rights) - set(ADMIN_RIGHTS)
    if unknown:
        raise ValueError(f"unknown admin rights {sorted(unknown)}; known: {ADMIN_RIGHTS}")
    return {right: bool(rights.get(right, False)) for right in ADMIN_RIGHTS}


class World:
    """Every user, chat and file, with id allocation and lookups that raise Telegram's errors."""

    def __init__(self, bot: User) -> None:
        self.bot = bot
        self.users: dict[int, User] = {bot.id: bot}
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self._user_ids = itertools.count(100_001)
        self._group_ids = itertools.count(1001)
        self._file_ids = itertools.count(1)

    def new_user_id(self) -> int:
        while True:
            candidate = next(self._user_ids)
            if candidate not in self.users:
                return candidate

    def new_chat_id(self, kind: str) -> int:
        """Basic groups get ``-N``; supergroups and channels ``-100…``, as on Telegram."""
        while True:
            number = next(self._group_ids)
            candidate = -number if kind == "group" else -(1_000_000_000_000 + number)
            if candidate not in self.chats:
                return candidate

    def new_file_ids(self) -> tuple[str, str, int]:
        number = next(self._file_ids)
        return f"EMUFILE{number:08d}", f"EMUUNIQ{number:08d}", number

    def user(self, user_id: int) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise bad_request("user not found") from None

    def chat(self, chat_ref: int | str) -> Chat:
        """Resolve a ``chat_id`` parameter (numeric or ``@username``) or raise chat not found."""
        if isinstance(chat_ref, str) and chat_ref.startswith("@"):
            wanted = chat_ref[1:].lower()
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == wanted:
                    return chat
            raise bad_request("chat not found")
        try:
            return self.chats[int(chat_ref)]
        except (KeyError, ValueError):
            raise bad_request("chat not found") from None

    def private_chat(self, user: User) -> Chat:
        """The private chat between ``user`` and the bot, created on first contact."""
        chat = self.chats.get(user.id)
        if chat is None:
            chat = Chat(id=user.id, type="private", private_user=user)
            chat.members[user.id] = Member(user.id, "member")
            chat.members[self.bot.id] = Member(self.bot.id, "member")
            self.chats[user.id] = chat
        return chat
