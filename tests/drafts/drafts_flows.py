"""Helpers that act as people in the emulator: fill a template, submit, decide."""

from __future__ import annotations

import re
from typing import Any

from bot.sandbox.telegram_emulator.errors import ControlError
from bot.sandbox.telegram_emulator.state import StoredMessage
from bot.services import press_templates as pt

PROMPT_RE = re.compile(r"— (?:câu hỏi|question) \d+/\d+$", re.M)


def field_asked(template: pt.PressTemplate, text: str) -> str | None:
    """The field a prompt asks for, known from its question (the line under the heading)."""
    match = PROMPT_RE.search(text)
    if match is None:
        return None
    question = text[match.end() :].lstrip("\n").split("\n", 1)[0]
    names = [f.name for f in template.fields if question in (f.prompt_vi, f.prompt_en)]
    assert len(names) == 1, (question, names)
    return names[0]


def data_of(message: StoredMessage, prefix: str) -> str | None:
    for button in message.buttons():
        data = button.get("callback_data", "")
        if data.startswith(prefix):
            return str(data)
    return None


def draft_id_of(message: StoredMessage) -> int:
    data = data_of(message, "draft.submit:")
    assert data is not None, message.text
    return int(data.split(":")[1])


async def fill(
    desk: Any, who: str, kind: str, lang: str, overrides: dict[str, str] | None = None
) -> tuple[StoredMessage, list[str]]:
    """``/draft kind lang`` in the room, answer every question; return the draft's last message."""
    em = desk.emulator
    person = desk[who]
    template = pt.PressLibrary(desk.settings.templates_dir).get(kind, lang)
    sent = em.send_text(
        person.tg, f"/draft {kind} {lang}", chat_id=desk.room, thread_id=desk.thread
    )
    last = sent.message_id
    asked: list[str] = []
    while True:
        message = await em.wait_for_message(desk.room, thread_id=desk.thread, after=last)
        last = message.message_id
        if data_of(message, "draft.submit:"):
            return message, asked
        name = field_asked(template, message.text or "")
        if name is None:
            continue
        asked.append(name)
        spec = template.field(name)
        assert spec is not None
        answer = (overrides or {}).get(name, spec.sample)
        reply = em.send_text(
            person.tg, answer, chat_id=desk.room, thread_id=desk.thread, reply_to=message.message_id
        )
        last = max(last, reply.message_id)


async def wait_private(
    desk: Any,
    tg: int,
    predicate: Any = None,
    *,
    after: int = 0,
    timeout: float = 5.0,  # noqa: ASYNC109
) -> StoredMessage:
    """Like ``wait_for_message`` for a private chat that may not exist yet."""
    em = desk.emulator

    def match() -> StoredMessage | None:
        try:
            messages = em.messages(tg, from_bot=True)
        except ControlError:
            return None
        for message in messages:
            if message.message_id > after and (predicate is None or predicate(message)):
                return message
        return None

    return await em.wait_for(match, timeout)  # type: ignore[no-any-return]


async def request_for(desk: Any, who: str, draft_id: int) -> StoredMessage:
    """The approval request carrying the buttons for ``draft_id`` in ``who``'s private chat."""
    return await wait_private(
        desk, desk[who].tg, lambda m: data_of(m, f"appr.ok:{draft_id}") is not None
    )


async def press(desk: Any, who: str, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
    return await desk.emulator.press_button(desk[who].tg, chat_id, message_id, data=data)


async def submit(desk: Any, who: str, draft_message: StoredMessage) -> dict[str, Any]:
    draft_id = draft_id_of(draft_message)
    return await press(desk, who, desk.room, draft_message.message_id, f"draft.submit:{draft_id}")


async def fill_and_submit(desk: Any, who: str, kind: str, lang: str) -> tuple[StoredMessage, int]:
    """``who`` drafts a ``kind`` statement in ``lang`` with the sample answers and submits it
    for approval; the draft's message in the room and the draft's id."""
    message, _ = await fill(desk, who, kind, lang)
    draft_id = draft_id_of(message)
    await submit(desk, who, message)
    return message, draft_id


async def approve(desk: Any, who: str, draft_id: int) -> dict[str, Any]:
    request = await request_for(desk, who, draft_id)
    return await press(desk, who, desk[who].tg, request.message_id, f"appr.ok:{draft_id}")


async def give_reason(desk: Any, who: str, draft_id: int, action: str, reason: str) -> None:
    """Press Request changes / Reject, then reply to the private prompt with ``reason``."""
    em = desk.emulator
    tg = desk[who].tg
    request = await request_for(desk, who, draft_id)
    await press(desk, who, tg, request.message_id, f"{action}:{draft_id}")
    prompt = await wait_private(desk, tg, after=request.message_id)
    em.send_text(tg, reason, reply_to=prompt.message_id)
    await wait_private(desk, tg, after=prompt.message_id + 1)


async def draft_in_room(desk: Any, after: int) -> StoredMessage:
    """The next version posted in the room (the message with Submit) after message ``after``."""
    return await desk.emulator.wait_for_message(
        desk.room,
        lambda m: data_of(m, "draft.submit:") is not None,
        thread_id=desk.thread,
        after=after,
    )


async def published_in_room(desk: Any, after: int = 0) -> StoredMessage:
    return await desk.emulator.wait_for_message(
        desk.room,
        lambda m: "📢" in (m.text or ""),
        thread_id=desk.thread,
        after=after,
    )
