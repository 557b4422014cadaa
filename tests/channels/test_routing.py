"""One process on two messengers: the router sends each message through its chat's channel, and
services' "the person's account on the notifier's channel" becomes the account that reaches
them (their chosen alert channel first) when the notifier is the router."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.channels.base import Attachment, Buttons, SentMessage
from bot.channels.limits import max_text
from bot.channels.refs import ANY_CHANNEL, ChatRef, MessageRef, PersonRef
from bot.channels.rooms import room_admin_for
from bot.channels.routing import RoutingNotifier
from bot.config import Settings
from bot.services import identity, rooms
from bot.wiring import wire
from storage.db import Database
from storage.models import User, UserStatus


class Recorder:
    """A notifier that records what it was asked to send (and, with menus, set)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[tuple[ChatRef, str]] = []

    def link_to(self, chat: ChatRef) -> str | None:
        return f"{self.channel}:{chat.chat_id}"

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        self.sent.append((to, text))
        return SentMessage(to, str(len(self.sent)))

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        return await self.send_text(to, caption)

    async def send_document(
        self, to: ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        return await self.send_text(to, caption)

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        self.sent.append((message.chat, f"edit:{text}"))

    async def pin(self, message: MessageRef) -> None:
        self.sent.append((message.chat, "pin"))


class WithMenus(Recorder):
    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.menus: list[ChatRef | None] = []

    async def set_default_commands(
        self, commands: Sequence[tuple[str, str]], language: str | None = None
    ) -> None:
        self.menus.append(None)

    async def set_chat_commands(self, commands: Sequence[tuple[str, str]], to: ChatRef) -> None:
        self.menus.append(to)

    async def clear_commands(self, to: ChatRef) -> None:
        self.menus.append(to)

    async def create_topic(self, chat: ChatRef, name: str) -> ChatRef:
        return chat

    async def create_invite_link(self, chat: ChatRef) -> str:
        return "link"


async def test_each_message_goes_through_its_chats_channel() -> None:
    telegram, zalo = WithMenus("telegram"), Recorder("zalo")
    router = RoutingNotifier({"telegram": telegram, "zalo": zalo})
    assert router.channel == ANY_CHANNEL
    await router.send_text(ChatRef("zalo", "z1"), "a")
    await router.send_text(ChatRef("telegram", "1"), "b")
    await router.edit_text(MessageRef(ChatRef("zalo", "z1"), "1"), "c")
    await router.send_text(ChatRef(ANY_CHANNEL, "@kenh"), "public")  # a channel by its name
    assert zalo.sent == [(ChatRef("zalo", "z1"), "a"), (ChatRef("zalo", "z1"), "edit:c")]
    assert telegram.sent == [
        (ChatRef("telegram", "1"), "b"),
        (ChatRef("telegram", "@kenh"), "public"),
    ]
    assert router.link_to(ChatRef("zalo", "z1")) == "zalo:z1"

    await router.set_default_commands([("help", "Help")])  # where there are menus
    await router.set_chat_commands([("help", "Help")], ChatRef("zalo", "z1"))  # Zalo has none
    await router.clear_commands(ChatRef("zalo", "z1"))
    await router.set_chat_commands([("help", "Help")], ChatRef("telegram", "1"))
    assert telegram.menus == [None, ChatRef("telegram", "1")]


def test_rooms_stay_on_the_first_channel() -> None:
    wire()
    telegram = WithMenus("telegram")
    router = RoutingNotifier({"telegram": telegram, "zalo": Recorder("zalo")})
    assert room_admin_for(router) is telegram
    assert max_text(ANY_CHANNEL) == min(max_text("telegram"), max_text("zalo"))


def test_a_person_is_reached_on_their_chosen_channel_first(db: Database) -> None:
    now = datetime.now(UTC)
    with db.session() as s:
        both = identity.add_person(
            s, PersonRef("telegram", "1"), User(full_name="Lan", status=UserStatus.ACTIVE)
        )
        assert both.id is not None
        identity.link(s, both, PersonRef("zalo", "z1"), now)
        only_zalo = identity.add_person(
            s, PersonRef("zalo", "z2"), User(full_name="Bình", status=UserStatus.ACTIVE)
        )
        s.flush()
        ids = (both.id, only_zalo.id or 0)
        assert identity.direct_chat(s, ids[0], ANY_CHANNEL) == ChatRef("telegram", "1")
        assert identity.direct_chat(s, ids[1], ANY_CHANNEL) == ChatRef("zalo", "z2")
        both.alert_channel = "zalo"
        s.flush()
        assert identity.accounts_on(s, ids, ANY_CHANNEL) == {
            ids[0]: PersonRef("zalo", "z1"),
            ids[1]: PersonRef("zalo", "z2"),
        }
        assert identity.direct_chat(s, ids[0], "telegram") == ChatRef("telegram", "1")


def test_every_admin_and_any_hub_count_on_any_channel() -> None:
    settings = Settings(admin_ids="1,zalo:z9", hub_chat_id="-1001234567890")  # type: ignore[call-arg]
    assert identity.global_admins(settings, ANY_CHANNEL) == (
        PersonRef("telegram", "1"),
        PersonRef("zalo", "z9"),
    )
    assert identity.global_admins(settings, "zalo") == (PersonRef("zalo", "z9"),)
    assert rooms.hub_for(None, settings, ANY_CHANNEL) == settings.hub_chat_id
    assert rooms.hub_for(None, settings, "zalo") is None
