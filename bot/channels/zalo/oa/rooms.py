"""Crisis rooms as group chats of an agency's Zalo Official Account (GMF).

A Zalo bot cannot be in a group, but an OA can create one, put people in it, post there and
disband it. An agency opts in by naming its OA app and GMF assets in the TOML
(``Agency.zalo_oa_app_id``, ``zalo_oa_assets``); the app's secrets come from the environment
(``ZALO_OA_APP_ID``, ``ZALO_OA_APP_SECRET``, ``ZALO_OA_SECRET_KEY``) and its tokens from the
``zalo_oa_token`` row (``crisisdesk zalo-oa seed``). :class:`OaRooms` is the channel's
``RoomMaker`` and ``RoomAdmin`` (``bot.channels.rooms``), and the path the Zalo notifier sends
group messages through.

A group is the chat ``("zalo", "oa:<app id>:<group id>")``: the app is in the id, so sending to
a stored room needs no look-up. People come as their Zalo accounts (the Bot Platform's ids), but
an OA knows a person by an id scoped to that OA; GMF calls are given that id, which the person
linked by typing a code from ``/lienket`` into the OA's chat (``bot.services.identity.room_ids``,
scope = the app id). Someone who has not is never invited under a wrong id: they are reported
(``MadeRoom.left_out``, ``MembersUnknown``) so that the services tell them how to link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from bot.channels.base import DeliveryError, Rejected, SentMessage
from bot.channels.refs import ChatRef, PersonRef
from bot.channels.rooms import MadeRoom, MembersUnknown
from bot.clock import Clock
from bot.config import Settings
from bot.services import identity
from storage.db import Database
from storage.models import Agency

from ..plain import to_plain
from ..text import TEXT_LIMIT, split_text
from .client import ZaloOaClient
from .errors import OaApiError, OaError, OaTransportError
from .tokens import OaTokenStore

log = logging.getLogger(__name__)

CHANNEL = "zalo"
_PREFIX = "oa:"
MEMBERS_PAGE = 50


def group_chat(app_id: str, group_id: str) -> ChatRef:
    return ChatRef(CHANNEL, f"{_PREFIX}{app_id}:{group_id}")


def group_of_chat(chat: ChatRef) -> tuple[str, str] | None:
    """``(app id, group id)`` of an OA group chat; None for any other chat."""
    if chat.channel != CHANNEL or not chat.chat_id.startswith(_PREFIX):
        return None
    app_id, _, group_id = chat.chat_id[len(_PREFIX) :].partition(":")
    return (app_id, group_id) if app_id and group_id else None


@asynccontextmanager
async def neutral_errors() -> AsyncIterator[None]:
    """OA failures as the channel-neutral ones services react to."""
    try:
        yield
    except OaTransportError as error:
        raise DeliveryError(str(error)) from error
    except OaApiError as error:
        raise error.as_refusal() from error
    except (OaError, ValueError) as error:  # refused grant, no token row, too long, no members
        raise Rejected(str(error)) from error


class OaRooms:
    """Implements ``RoomMaker`` and ``RoomAdmin`` over the configured OA app's GMF API."""

    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self._clients: dict[str, ZaloOaClient] = {}

    def client(self, app_id: str) -> ZaloOaClient:
        """The client of ``app_id``; only the app whose secrets are configured has one."""
        settings = self.settings
        secret = settings.zalo_oa_app_secret
        if app_id != settings.zalo_oa_app_id or secret is None:
            raise Rejected(f"no secrets configured for Zalo OA app {app_id} (ZALO_OA_APP_ID)")
        if app_id not in self._clients:
            self._clients[app_id] = ZaloOaClient(
                OaTokenStore(self.db, app_id, self.clock),
                secret.get_secret_value(),
                oauth_url=settings.zalo_oa_oauth_url,
                api_url=settings.zalo_oa_api_url,
                timeout=settings.send_timeout,
            )
        return self._clients[app_id]

    async def keep_alive(self, older_than: timedelta) -> bool:
        """Rotate the configured app's tokens if they were last rotated ``older_than`` ago.

        A refresh token dies after about three months unused, so an OA whose rooms sit idle
        would need its administrator again; rotating now and then keeps it alive. Returns
        whether a rotation was made (False: no app, never seeded, or rotated recently)."""
        app_id = self.settings.zalo_oa_app_id
        if app_id is None or self.settings.zalo_oa_app_secret is None:
            return False
        client = self.client(app_id)
        rotated = await asyncio.to_thread(client.store.rotated_at)
        if rotated is None or self.clock.now() - rotated < older_than:
            return False
        async with neutral_errors():
            await client.refresh_now()
        return True

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def _oa_ids(self, app_id: str, people: Sequence[PersonRef]) -> dict[PersonRef, str]:
        """The OA-scoped ids of those of ``people`` who linked one with this OA."""
        with self.db.session() as session:
            return identity.room_ids(session, people, app_id)

    def _oa_id(self, app_id: str, person: PersonRef) -> str | None:
        if person.channel != CHANNEL:
            raise Rejected(f"a {person.channel} person has no place in a Zalo group")
        return self._oa_ids(app_id, [person]).get(person)

    def _group(self, chat: ChatRef) -> tuple[ZaloOaClient, str]:
        found = group_of_chat(chat)
        if found is None:
            raise Rejected(f"{chat.chat_id} is not a Zalo OA group (Zalo bots have no groups)")
        app_id, group_id = found
        return self.client(app_id), group_id

    # ---- RoomMaker ---------------------------------------------------------------------

    async def make_room(
        self, agency_id: int, name: str, description: str, members: Sequence[PersonRef]
    ) -> MadeRoom | None:
        """A group of the agency's OA with ``members`` in it, on the first GMF asset Zalo
        accepts; None when the agency has no OA or none of its people is on Zalo."""
        with self.db.session() as session:
            agency = session.get(Agency, agency_id)
            app_id = agency.zalo_oa_app_id if agency else None
            assets = [a for a in (agency.zalo_oa_assets or "").split(",") if a] if agency else []
        people = [p for p in members if p.channel == CHANNEL]
        if app_id is None or not assets or not people:
            return None
        known = self._oa_ids(app_id, people)
        left_out = tuple(p for p in people if p not in known)
        user_ids = [known[p] for p in people if p in known]
        if not user_ids:  # Zalo creates no group without members
            raise MembersUnknown(left_out)
        client = self.client(app_id)
        refused: list[str] = []
        async with neutral_errors():
            for asset in assets:
                try:
                    group = await client.create_group(
                        name[:100], user_ids, asset_id=asset, description=description
                    )
                except OaApiError as error:  # this asset is spent or refused: try the next
                    refused.append(f"{asset}: {error.text} ({error.code})")
                    continue
                chat = group_chat(app_id, group.group_id)
                return MadeRoom(chat, group.group_link, left_out)
        raise Rejected(f"Zalo OA {app_id} created no group: " + "; ".join(refused))

    def made_here(self, chat: ChatRef) -> bool:
        return group_of_chat(chat) is not None

    async def add_members(self, chat: ChatRef, people: Sequence[PersonRef]) -> None:
        client, group_id = self._group(chat)
        wanted = [p for p in people if p.channel == CHANNEL]
        known = self._oa_ids(client.store.app_id, wanted)
        if known:
            async with neutral_errors():
                await client.invite(group_id, [known[p] for p in wanted if p in known])
        unknown = [p for p in wanted if p not in known]
        if unknown:
            raise MembersUnknown(unknown)

    async def close_room(self, chat: ChatRef) -> None:
        client, group_id = self._group(chat)
        async with neutral_errors():
            await client.close_group(group_id)

    # ---- sending (the Zalo notifier routes group chats here) ---------------------------

    async def send_text(self, to: ChatRef, text: str) -> SentMessage:
        client, group_id = self._group(to)
        parts = split_text(to_plain(text), TEXT_LIMIT)
        if not parts:
            raise Rejected("Zalo refuses an empty message")
        message_id = ""
        async with neutral_errors():
            for part in parts:
                message_id = await client.send_group_text(group_id, part)
        return SentMessage(to, message_id)

    # ---- RoomAdmin ---------------------------------------------------------------------

    async def remove_member(self, chat: ChatRef, person: PersonRef) -> None:
        client, group_id = self._group(chat)
        who = self._oa_id(client.store.app_id, person)
        if who is None:
            return  # no OA id: never put in by the bot, nothing to take out
        async with neutral_errors():
            await client.remove_members(group_id, [who])

    async def is_member(self, chat: ChatRef, person: PersonRef) -> bool:
        client, group_id = self._group(chat)
        who = self._oa_id(client.store.app_id, person)
        if who is None:
            return False
        offset = 0
        async with neutral_errors():
            while True:  # a page at a time (a group may hold up to ~200 people)
                page = await client.list_members(group_id, offset=offset, count=MEMBERS_PAGE)
                if who in page:
                    return True
                if len(page) < MEMBERS_PAGE:
                    return False
                offset += MEMBERS_PAGE

    async def unpin_all(self, chat: ChatRef) -> None:
        return None  # nothing is pinned in an OA group (the notifier never pins on Zalo)

    async def create_topic(self, chat: ChatRef, name: str) -> ChatRef:
        raise Rejected("Zalo groups have no topics")

    async def close_topic(self, topic: ChatRef) -> None:
        raise Rejected("Zalo groups have no topics")

    async def set_title(self, chat: ChatRef, title: str) -> None:
        raise Rejected("renaming a Zalo OA group is not supported")

    async def set_description(self, chat: ChatRef, description: str) -> None:
        raise Rejected("describing a Zalo OA group after creation is not supported")

    async def create_invite_link(
        self, chat: ChatRef, name: str, expire_at: datetime | None = None
    ) -> str:
        raise Rejected("Zalo OA groups have no join-request links (people are added directly)")

    async def revoke_invite_link(self, chat: ChatRef, link: str) -> None:
        return None  # the group's own link dies with the group (close_room)

    async def approve_join(self, chat: ChatRef, person: PersonRef) -> None:
        raise Rejected("Zalo OA groups have no join requests")

    async def decline_join(self, chat: ChatRef, person: PersonRef) -> None:
        raise Rejected("Zalo OA groups have no join requests")
