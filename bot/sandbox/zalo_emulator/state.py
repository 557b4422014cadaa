"""What the Zalo emulator remembers: people, messages, calls, and the OA's groups."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Person:
    """A Zalo user who has written to the bot (Zalo lets a bot answer only such people)."""

    user_id: str
    display_name: str


@dataclass
class StoredMessage:
    """A message in a private chat: the person's or the bot's."""

    message_id: str
    chat_id: str
    from_bot: bool
    date: int  # milliseconds, as Zalo sends them
    text: str | None = None
    photo_url: str | None = None
    caption: str | None = None
    photo_bytes: int | None = None  # what the emulator fetched from photo_url

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Call:
    """One request to the emulator and how it was answered."""

    api: str  # "bot" or "oa"
    method: str
    params: dict[str, Any]
    time: float
    error_code: int = 0
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.error_code == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class Group:
    """A group chat created by the Official Account through GMF."""

    group_id: str
    name: str
    description: str
    asset_id: str
    members: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    @property
    def link(self) -> str:
        return f"https://zalo.me/g/{self.group_id}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "link": self.link}
