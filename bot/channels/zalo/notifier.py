"""Zalo as a ``Notifier``: what services send, as Zalo Bot Platform calls.

Zalo shows plain text of at most 2,000 characters, sends photos by a URL its servers fetch, and
has no buttons, edits, pins, documents or groups. ``CAPABILITIES`` declares that to the
conversation layer; the app wraps this notifier in ``DegradingNotifier`` (buttons become typed
commands, an edit a new message, a pin is skipped), so what reaches here is already within
Zalo's means, and anything that still is not is refused with ``Rejected`` rather than
quietly dropped. Zalo's errors become the channel-neutral ones of ``bot.channels.base``
(docs/zalo.md gives the mapping).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bot.channels.base import (
    ON_WIRE,
    Attachment,
    Buttons,
    DeliveryError,
    OutcomeUnknown,
    Rejected,
    SentMessage,
)
from bot.channels.refs import ChatRef, MessageRef
from handlers.conversation.surface import Capabilities

from .bot_api import ZaloBotClient, ZaloSent
from .chart_links import ChartLinks, check_name
from .errors import (
    MessageTooLong,
    ZaloBadRequest,
    ZaloError,
    ZaloNetworkError,
    ZaloServerError,
    ZaloTimeout,
    ZaloUnauthorized,
)
from .plain import to_plain
from .text import TEXT_LIMIT, split_text

if TYPE_CHECKING:
    from .oa.rooms import OaRooms

CHANNEL = "zalo"
CAPABILITIES = Capabilities(
    buttons=False, edit=False, pin=False, threads=False, join_requests=False, max_text=TEXT_LIMIT
)
#: How long a chart link stays valid: long enough for Zalo to fetch it (and for a person to
#: open it from the chat soon after), short enough that a leaked link soon stops working.
CHART_LINK_TTL = 24 * 3600.0


@asynccontextmanager
async def neutral_errors() -> AsyncIterator[None]:
    """Zalo's errors as the channel-neutral ones services react to."""
    try:
        yield
    except ZaloTimeout as error:
        raise OutcomeUnknown(str(error)) from error
    except ZaloBadRequest as error:
        raise error.as_refusal() from error
    except (MessageTooLong, ZaloUnauthorized) as error:
        raise Rejected(str(error)) from error
    except (ZaloNetworkError, ZaloServerError, ZaloError) as error:
        raise DeliveryError(str(error)) from error


async def _on_wire() -> None:
    hook = ON_WIRE.get()
    if hook is not None:
        await hook()


class ZaloNotifier:
    """Sends as one Zalo bot; charts are written to ``chart_dir`` and sent as signed links."""

    channel = CHANNEL

    def __init__(
        self,
        client: ZaloBotClient,
        links: ChartLinks,
        chart_dir: Path,
        oa_rooms: OaRooms | None = None,
    ) -> None:
        self.client = client
        self.links = links
        self.chart_dir = chart_dir
        # Crisis rooms that are OA groups: messages to them go through the OA, not the bot.
        self.oa_rooms = oa_rooms

    def _group_rooms(self, to: ChatRef) -> OaRooms | None:
        rooms = self.oa_rooms
        return rooms if rooms is not None and rooms.made_here(to) else None

    def link_to(self, chat: ChatRef) -> str | None:
        return None  # Zalo has no link that opens a chat with the bot for its members

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        if buttons:
            raise Rejected("Zalo has no buttons (wrap this notifier in DegradingNotifier)")
        if (rooms := self._group_rooms(to)) is not None:
            return await rooms.send_text(to, text)
        parts = split_text(to_plain(text), TEXT_LIMIT)
        if not parts:
            raise Rejected("Zalo refuses an empty message")
        sent: ZaloSent | None = None
        await _on_wire()
        async with neutral_errors():
            for part in parts:
                sent = await self.client.send_message(to.chat_id, part)
        assert sent is not None
        return SentMessage(to, sent.message_id)

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        """The chart by a signed link to the bot's own web server; a caption over Zalo's
        limit goes first as text, so the photo keeps the part that fits under it."""
        if buttons:
            raise Rejected("Zalo has no buttons (wrap this notifier in DegradingNotifier)")
        name = self._stored(photo)
        if (rooms := self._group_rooms(to)) is not None:  # an OA group gets the chart's link
            url = self.links.url(name, ttl_seconds=CHART_LINK_TTL)
            return await rooms.send_text(to, f"{caption}\n\n{url}" if caption else url)
        parts = split_text(to_plain(caption), TEXT_LIMIT)
        if len(parts) > 1:
            await self.send_text(to, "\n\n".join(parts[:-1]))
        url = self.links.url(name, ttl_seconds=CHART_LINK_TTL)
        await _on_wire()
        async with neutral_errors():
            sent = await self.client.send_photo(to.chat_id, url, parts[-1] if parts else "")
        return SentMessage(to, sent.message_id, file_id=name)

    def _stored(self, photo: Attachment) -> str:
        """The chart's file name under ``chart_dir``: named by its content, so a fan-out
        writes it once and later sends reuse it (``file_id`` is that name)."""
        if photo.file_id is not None and not photo.data:
            try:  # a chart still in use is not forgotten (see _forget_expired)
                os.utime(self.chart_dir / check_name(photo.file_id))
            except (OSError, ValueError):
                raise Rejected(f"no stored chart {photo.file_id!r}") from None
            return photo.file_id
        if not photo.data:
            raise Rejected("a photo needs its bytes or an earlier file_id")
        name = hashlib.sha256(photo.data).hexdigest()[:32] + ".png"
        path = self.chart_dir / name
        if not path.is_file():
            self.chart_dir.mkdir(parents=True, exist_ok=True)
            self._forget_expired()
            partial = path.with_suffix(".part")
            partial.write_bytes(photo.data)
            partial.replace(path)  # never serve half a file
        return name

    def _forget_expired(self) -> None:
        """Delete charts no link can reach any more (written over two link lifetimes ago)."""
        horizon = time.time() - 2 * CHART_LINK_TTL
        for old in self.chart_dir.glob("*.png"):
            with contextlib.suppress(FileNotFoundError):
                if old.stat().st_mtime < horizon:
                    old.unlink()

    async def send_document(
        self, to: ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        raise Rejected("Zalo's Bot Platform sends no documents")

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        raise Rejected("Zalo cannot edit (wrap this notifier in DegradingNotifier)")

    async def pin(self, message: MessageRef) -> None:
        raise Rejected("Zalo cannot pin (wrap this notifier in DegradingNotifier)")
