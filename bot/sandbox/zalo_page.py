"""The page's Zalo personas: their one chat with the bot, in the shapes the page already draws.

A Zalo persona's id on the page is ``zalo:<account id>`` (Telegram personas have numbers). Zalo
has one private chat per person and nothing else: plain text (no formatting, no buttons, no
reply keyboard, no replies, no edits), photos by URL, and commands the person types
(``/ack 12``, ``/duyet 45``, the number of a choice). So the chat list has one entry, messages
are escaped text, and the only action is sending text.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.sandbox.newsday import TZ
from bot.sandbox.personas import ZALO_PERSONA_BY_PAGE_ID, ZALO_PERSONAS, ZaloPersona
from bot.sandbox.zalo_emulator import ControlError, StoredMessage

if TYPE_CHECKING:
    from bot.sandbox.runner import Sandbox

PREFIX = "zalo:"


def is_zalo(page_id: object) -> bool:
    return str(page_id).startswith(PREFIX)


def persona(page_id: object) -> ZaloPersona:
    found = ZALO_PERSONA_BY_PAGE_ID.get(str(page_id))
    if found is None:
        raise ControlError(f"no Zalo persona {page_id}")
    return found


def persona_list(strings: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.page_id,
            "key": p.key,
            "name": p.full_name,
            "role": strings[f"persona_{p.key}"],
            "messenger": "zalo",
        }
        for p in ZALO_PERSONAS
    ]


def _messages(sandbox: Sandbox, who: ZaloPersona) -> list[StoredMessage]:
    if who.zalo_id not in sandbox.zalo_emulator.bot_platform.people:
        return []  # never wrote to the bot: an empty chat, as in the Zalo app
    return sandbox.zalo_emulator.messages(who.zalo_id)


def _time(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, TZ).strftime("%H:%M")


def chat_entries(sandbox: Sandbox, page_id: str, strings: dict[str, str]) -> list[dict[str, Any]]:
    messages = _messages(sandbox, persona(page_id))
    last = messages[-1] if messages else None
    preview = ""
    if last is not None:
        preview = last.text or last.caption or (strings["photo"] if last.photo_url else "")
    return [
        {
            "key": f"{page_id}:",
            "chat_id": page_id,
            "thread_id": None,
            "title": strings["zalo_bot_chat"],
            "kind": "bot",
            "messenger": "zalo",
            "preview": preview[:90],
            "last_date": last.date // 1000 if last else None,
            "time": _time(last.date) if last else "",
            "count": len(messages),
            "closed": False,
            "forum": False,
        }
    ]


def chat_json(sandbox: Sandbox, page_id: str, strings: dict[str, str]) -> dict[str, Any]:
    return {
        "chat_id": page_id,
        "thread_id": None,
        "title": strings["zalo_bot_chat"],
        "kind": "bot",
        "messenger": "zalo",
        "members": 0,
        "messages": [_message(m) for m in _messages(sandbox, persona(page_id))],
        "pinned": None,
        "reply_keyboard": None,
        "force_reply": None,
        "closed": False,
        "can_write": True,
    }


def _message(message: StoredMessage) -> dict[str, Any]:
    text = message.text if message.text is not None else message.caption or ""
    out: dict[str, Any] = {
        "id": message.message_id,
        "mine": not message.from_bot,
        "from_bot": message.from_bot,
        "sender": "",
        "time": _time(message.date),
        "edited": False,
        "pinned": False,
        "html": html.escape(text).replace("\n", "<br>"),  # Zalo shows plain text only
        "service": "",
        "buttons": [],
    }
    if message.photo_url:
        out["photo"] = message.photo_url
    return out


def send(sandbox: Sandbox, page_id: str, text: str) -> str:
    """The persona types ``text`` to the bot; returns the message's id."""
    who = persona(page_id)
    return sandbox.zalo_emulator.send_text(who.zalo_id, text, display_name=who.full_name).message_id
