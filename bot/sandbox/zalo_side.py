"""The sandbox's Zalo: the Zalo emulator and the bot answering on it, beside the Telegram bot.

The same database, clock and settings as the sandbox's Telegram bot, with a second
:class:`~bot.runtime.Runtime` whose notifier speaks Zalo: updates are long-polled from the
emulator and answered by :class:`~bot.channels.zalo.conversation.ZaloConversation` (the
conversation layer, as ``crisisdesk run`` on Zalo does), and the alert rows owed on Zalo are
sent by ``bot.jobs.deliver`` every second. The tick and the scan stay the Telegram bot's (one
scheduler of due work and one scanner per database, as one leader would have).

Each bot's notifier reaches the other messenger's chats (:class:`CrossChannel`,
:class:`TelegramReachingZalo`): a decision typed on Zalo is announced in the Telegram room, and
a copy on Zalo that the Telegram bot edits (a registration request decided there) is answered
there. Services still find a person's account on the bot's own channel, so a person gets direct
messages on the messenger where the event happened; the sandbox's admin has an account on both
(``personas.ZALO_PERSONAS``). One thing a single bot on both messengers would do is done here
by hand: a statement submitted on Telegram is also sent, for approval, to the approvers who have
a Zalo account (:func:`ask_zalo_approvers`), so it can be approved there by ``/duyet``; that
copy is not in the request ledger (one row per person and draft), so a later decision does not
close it.

Charts reach Zalo as signed links to a small server of the sandbox's own, as in production.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from sqlmodel import select

from bot import jobs
from bot.channels.base import Attachment, Buttons, DeliveryError, Notifier, SentMessage
from bot.channels.refs import ChatRef, MessageRef
from bot.channels.telegram.notifier import TelegramNotifier
from bot.channels.zalo.bot_api import ZaloBotClient, poll_updates
from bot.channels.zalo.chart_links import ChartLinks, chart_route
from bot.channels.zalo.conversation import ZaloConversation
from bot.channels.zalo.notifier import CAPABILITIES, CHANNEL, ZaloNotifier
from bot.runtime import Runtime
from bot.sandbox.serving import serve
from bot.sandbox.zalo_emulator import ZaloEmulator
from bot.services import approvals, identity
from bot.services import drafts as dr
from bot.services.delivery import Charts
from handlers.conversation.degrade import DegradingNotifier
from storage.models import Agency, Crisis, Draft, DraftStatus, User

if TYPE_CHECKING:
    from bot.sandbox.runner import Sandbox

log = logging.getLogger(__name__)

ZALO_TOKEN = "8800000000000000001:SANDBOXZALO"
DELIVER_SECONDS = 1.0


class CrossChannel:
    """A notifier that sends on its own channel and hands other channels' chats to theirs."""

    def __init__(self, own: Notifier, others: dict[str, Notifier]) -> None:
        self.own = own
        self.others = others
        self.channel = own.channel

    def _for(self, chat: ChatRef) -> Notifier:
        return self.own if chat.channel == self.channel else self.others.get(chat.channel, self.own)

    def link_to(self, chat: ChatRef) -> str | None:
        return self._for(chat).link_to(chat)

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        return await self._for(to).send_text(to, text, buttons)

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        return await self._for(to).send_photo(to, photo, caption, buttons)

    async def send_document(
        self, to: ChatRef, document: Attachment, caption: str = ""
    ) -> SentMessage:
        return await self._for(to).send_document(to, document, caption)

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        await self._for(message.chat).edit_text(message, text, buttons)

    async def pin(self, message: MessageRef) -> None:
        await self._for(message.chat).pin(message)


class TelegramReachingZalo(TelegramNotifier):
    """The sandbox's Telegram notifier: a Zalo chat (a request copy to close) goes to Zalo.

    A subclass, not a wrapper: the Telegram room admin and command menus are found by type."""

    zalo: Notifier | None = None

    async def send_text(
        self, to: ChatRef, text: str, buttons: Buttons | None = None
    ) -> SentMessage:
        if to.channel == CHANNEL and self.zalo is not None:
            return await self.zalo.send_text(to, text, buttons)
        return await super().send_text(to, text, buttons)

    async def send_photo(
        self, to: ChatRef, photo: Attachment, caption: str = "", buttons: Buttons | None = None
    ) -> SentMessage:
        if to.channel == CHANNEL and self.zalo is not None:
            return await self.zalo.send_photo(to, photo, caption, buttons)
        return await super().send_photo(to, photo, caption, buttons)

    async def edit_text(
        self, message: MessageRef, text: str, buttons: Buttons | None = None
    ) -> None:
        if message.chat.channel == CHANNEL and self.zalo is not None:
            await self.zalo.edit_text(message, text, buttons)
            return
        await super().edit_text(message, text, buttons)


@dataclass
class ZaloSide:
    """Started and stopped with the sandbox's world (``Sandbox._start_world``)."""

    sandbox: Sandbox
    emulator: ZaloEmulator = field(init=False)
    runtime: Runtime = field(init=False)
    charts_url: str = ""
    _runner: web.AppRunner | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopped: bool = False

    async def start(self) -> None:
        sandbox = self.sandbox
        self.emulator = ZaloEmulator(
            ZALO_TOKEN, now=lambda: sandbox.clock.now().timestamp(), host=sandbox.options.host
        )
        await self.emulator.start()
        chart_dir = sandbox.data_dir / "zalo-charts"
        links = ChartLinks(secrets.token_bytes(32), "http://placeholder")
        app = web.Application()
        app.router.add_routes([chart_route(chart_dir, links)])
        self._runner, port = await serve(app, sandbox.options.host, 0)
        self.charts_url = f"http://{sandbox.options.host}:{port}"
        links.base_url = self.charts_url
        client = ZaloBotClient(
            ZALO_TOKEN, base_url=self.emulator.bot_api_url, timeout=sandbox.settings.send_timeout
        )
        raw = ZaloNotifier(client, links, chart_dir)
        zalo = DegradingNotifier(raw, CAPABILITIES)
        telegram_runtime: Runtime = sandbox.application.bot_data["runtime"]
        telegram = telegram_runtime.notifier
        if isinstance(telegram, TelegramReachingZalo):
            telegram.zalo = zalo
        self.runtime = Runtime(
            settings=sandbox.settings,
            db=sandbox.db,
            clock=sandbox.clock,
            renderer=telegram_runtime.renderer,
            notifier=CrossChannel(zalo, {telegram.channel: telegram}),
        )
        conversation = ZaloConversation(self.runtime, raw)
        self._tasks = [
            asyncio.create_task(self._poll(client, conversation)),
            asyncio.create_task(self._deliver()),
            asyncio.create_task(self._ask_approvers()),
        ]
        self._client = client

    async def stop(self) -> None:
        """Stop every part (a second call does nothing)."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if hasattr(self, "_client"):
            await self._client.close()
        await self.emulator.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _poll(self, client: ZaloBotClient, conversation: ZaloConversation) -> None:
        async for update in poll_updates(client, wait_seconds=10, backoff=1.0):
            await conversation.on_update(update)

    async def _deliver(self) -> None:
        """The alert rows owed on Zalo, every second (the Telegram bot sends its own)."""
        charts = Charts()
        while True:
            try:
                await jobs.deliver(self.runtime, charts)
            except Exception:  # the sandbox keeps going; the next round tries again
                log.exception("sandbox: Zalo delivery failed")
            await asyncio.sleep(DELIVER_SECONDS)

    async def _ask_approvers(self) -> None:
        asked: set[tuple[int, int]] = set()
        while True:
            try:
                await ask_zalo_approvers(self.runtime, asked)
            except Exception:  # the sandbox keeps going; the next round tries again
                log.exception("sandbox: approval requests on Zalo failed")
            await asyncio.sleep(DELIVER_SECONDS)


async def ask_zalo_approvers(runtime: Runtime, asked: set[tuple[int, int]]) -> None:
    """Send each submitted statement's request, on Zalo, to its approvers with a Zalo account
    not ``asked`` yet (``(draft id, person id)``, kept by the caller).

    No ledger row is written: the request ledger holds one row per person and draft, the one
    their own bot's request wrote (a person on both messengers has it from Telegram), so this
    Zalo copy is not closed by a later decision; the decision itself is still told."""
    waiting: list[tuple[Draft, Crisis, int, User, ChatRef]] = []
    with runtime.db.session() as session:
        for draft in session.exec(select(Draft).where(Draft.status == DraftStatus.SUBMITTED)):
            crisis = session.get(Crisis, draft.crisis_id)
            agency = session.get(Agency, crisis.agency_id) if crisis else None
            if crisis is None or agency is None:
                continue
            for person in approvals.approvers_for(session, crisis):
                to = identity.direct_chat(session, person.id, CHANNEL)
                if (draft.id, person.id) in asked or person.id == draft.author_id or to is None:
                    continue
                waiting.append((draft, crisis, agency.approvals_required, person, to))
        authors = {
            d.id: (session.get(User, d.author_id) if d.author_id else None) for d, *_ in waiting
        }
        titles = {d.id: dr.template_title(dr.library(runtime), d) for d, *_ in waiting}
    for draft, crisis, required, person, to in waiting:
        author = authors[draft.id]
        header = runtime.renderer.render(
            "approval_request",
            person.language,
            draft=draft,
            title=titles[draft.id],
            crisis=crisis,
            author=author.full_name if author else "",
            required=required,
            short_hash=draft.body_sha256[:12],
        )
        buttons = approvals.approval_buttons(runtime, person.language, draft.id or 0)
        asked.add((draft.id or 0, person.id or 0))  # once, whatever the outcome, as the bot does
        try:
            await dr.send_long(runtime, to, header, draft.body, buttons)
        except DeliveryError as exc:
            log.info("sandbox: approval request to %s on Zalo failed: %s", person.id, exc)
