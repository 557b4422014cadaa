"""Each strictness rule gives the PTB exception Telegram would give."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from emulator_fixtures import app_builder
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.sandbox.telegram_emulator import TelegramEmulator


def _seconds(value: int | dt.timedelta) -> float:
    """PTB 22 gives ``retry_after`` as int or timedelta depending on PTB_TIMEDELTA."""
    return value.total_seconds() if isinstance(value, dt.timedelta) else value


@pytest_asyncio.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    app = app_builder(emulator).build()
    async with app:
        yield app.bot


@pytest.fixture
def alice(emulator: TelegramEmulator) -> int:
    user = emulator.create_user("Alice")
    emulator.send_text(user.id, "/start")
    return user.id


async def test_text_length_after_entity_parsing(bot: Bot, alice: int) -> None:
    assert (await bot.send_message(alice, "x" * 4096)).text == "x" * 4096
    # 4096 characters once the tags are gone: accepted
    await bot.send_message(alice, f"<b>{'x' * 4096}</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(alice, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(alice, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(alice, "<b> </b>", parse_mode="HTML")


async def test_caption_length(bot: Bot, alice: int) -> None:
    await bot.send_document(alice, b"x", filename="a.txt", caption="c" * 1024)
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_document(alice, b"x", filename="a.txt", caption="c" * 1025)


@pytest.mark.parametrize("data", ["", "x" * 65, "đ" * 33])
async def test_callback_data_bytes(bot: Bot, alice: int, data: str) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data=data)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(alice, "pick", reply_markup=markup)


async def test_callback_data_at_limit(bot: Bot, alice: int) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="đ" * 32)]])
    await bot.send_message(alice, "pick", reply_markup=markup)


@pytest.mark.parametrize(
    ("html", "detail"),
    [
        ("<div>x</div>", 'Unsupported start tag "div"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("a &nbsp; b", 'Unsupported HTML entity "&nbsp;"'),
        ("AT&T", "Character '&'"),
        ("1 < 2", 'Unsupported start tag ""'),
        ('<span class="x">y</span>', 'must have class "tg-spoiler"'),
    ],
)
async def test_html_rejected(bot: Bot, alice: int, html: str, detail: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities") as caught:
        await bot.send_message(alice, html, parse_mode="HTML")
    assert detail.lower() in str(caught.value).lower()  # PTB capitalises descriptions


async def test_unknown_chat(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)Chat not found"):
        await bot.send_message(-1009999, "hi")


async def test_user_who_never_started(bot: Bot, emulator: TelegramEmulator) -> None:
    stranger = emulator.create_user("Stranger")
    with pytest.raises(Forbidden, match=r"(?i)bot can't initiate conversation with a user"):
        await bot.send_message(stranger.id, "hi")


async def test_blocked_bot(bot: Bot, emulator: TelegramEmulator, alice: int) -> None:
    emulator.block_bot(alice)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(alice, "hi")
    assert emulator.updates[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    emulator.send_text(alice, "/start")  # "Restart" unblocks
    await bot.send_message(alice, "welcome back")


async def test_edit_not_modified(bot: Bot, alice: int) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="b")]])
    sent = await bot.send_message(alice, "<b>same</b>", parse_mode="HTML", reply_markup=markup)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "<b>same</b>", alice, sent.message_id, parse_mode="HTML", reply_markup=markup
        )
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(alice, sent.message_id, reply_markup=markup)
    # different markup is a modification
    await bot.edit_message_text("<b>same</b>", alice, sent.message_id, parse_mode="HTML")


async def test_forum_methods_need_a_forum(bot: Bot, emulator: TelegramEmulator) -> None:
    group = emulator.create_supergroup("Plain")
    emulator.add_bot(group.id, rights={"can_manage_topics": True})
    with pytest.raises(BadRequest, match=r"(?i)the chat is not a forum"):
        await bot.create_forum_topic(group.id, "x")


async def test_closed_topic(bot: Bot, emulator: TelegramEmulator) -> None:
    forum = emulator.create_supergroup("Forum", forum=True)
    emulator.add_bot(forum.id, rights={"can_manage_topics": True})
    topic = await bot.create_forum_topic(forum.id, "Room")
    await bot.close_forum_topic(forum.id, topic.message_thread_id)
    with pytest.raises(BadRequest, match=r"(?i)TOPIC_CLOSED"):
        await bot.send_message(forum.id, "late", message_thread_id=topic.message_thread_id)


@pytest.mark.parametrize(
    ("call", "right"),
    [
        (lambda bot, chat, msg: bot.pin_chat_message(chat, msg), "pinned messages"),
        (lambda bot, chat, msg: bot.create_forum_topic(chat, "t"), "create a topic"),
        (lambda bot, chat, msg: bot.create_chat_invite_link(chat), "invite links"),
        (lambda bot, chat, msg: bot.set_chat_title(chat, "t"), "change chat title"),
        (lambda bot, chat, msg: bot.ban_chat_member(chat, msg), "restrict/unrestrict"),
        (lambda bot, chat, msg: bot.approve_chat_join_request(chat, msg), "join requests"),
    ],
)
async def test_missing_admin_rights(
    bot: Bot, emulator: TelegramEmulator, call: object, right: str
) -> None:
    owner = emulator.create_user("Owner")
    forum = emulator.create_supergroup("Forum", forum=True, owner_id=owner.id)
    emulator.add_bot(forum.id, rights={"can_manage_chat": True})
    member = emulator.create_user("Member")
    emulator.join(member.id, forum.id)
    sent = emulator.send_text(owner.id, "pin me", chat_id=forum.id)
    target = sent.message_id if "pinned" in right else member.id
    with pytest.raises(BadRequest, match=r"(?i)Not enough rights to") as caught:
        await call(bot, forum.id, target)  # type: ignore[operator]
    assert right in str(caught.value).lower()


async def test_bot_not_a_member(bot: Bot, emulator: TelegramEmulator) -> None:
    group = emulator.create_group("Elsewhere")
    with pytest.raises(Forbidden, match=r"(?i)bot is not a member of the group chat"):
        await bot.send_message(group.id, "hi")
    supergroup = emulator.create_supergroup("Kicked")
    emulator.add_bot(supergroup.id)
    emulator.remove_bot(supergroup.id)
    with pytest.raises(Forbidden, match=r"(?i)bot was kicked from the supergroup chat"):
        await bot.send_message(supergroup.id, "hi")


@pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")
async def test_flood_limit_per_chat_raises_retry_after(
    bot: Bot, emulator: TelegramEmulator, alice: int
) -> None:
    emulator.set_flood_limits(True)
    for _ in range(3):
        await bot.send_message(alice, "burst")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(alice, "one too many")
    assert _seconds(caught.value.retry_after) == 1


@pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")
async def test_injected_errors(bot: Bot, emulator: TelegramEmulator, alice: int) -> None:
    emulator.inject_error("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(alice, "x")
    assert _seconds(caught.value.retry_after) == 7
    emulator.inject_error("sendMessage", 403, times=2)
    for _ in range(2):
        with pytest.raises(Forbidden):
            await bot.send_message(alice, "x")
    await bot.send_message(alice, "through")
    assert [c.status for c in emulator.calls_to("sendMessage")] == [429, 403, 403, 200]


async def test_injected_faults_aimed_by_text(
    bot: Bot, emulator: TelegramEmulator, alice: int
) -> None:
    emulator.inject_delay("sendMessage", 0, times=1, text_contains="invite")
    emulator.inject_error("sendMessage", 502, delay=0.2, text_contains="invite")
    await bot.send_message(alice, "invite one")  # takes the pass-through
    await bot.send_message(alice, "reply")  # not aimed at: untouched
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NetworkError):
        await bot.send_message(alice, "invite two")
    assert loop.time() - started >= 0.2
    await bot.send_message(alice, "invite three")  # the faults are used up
    assert [c.status for c in emulator.calls_to("sendMessage")] == [200, 200, 502, 200]


async def test_faults_aimed_at_a_chat_and_held_calls_listed(
    bot: Bot, emulator: TelegramEmulator, alice: int
) -> None:
    bob = emulator.create_user("Bob")
    emulator.send_text(bob.id, "hi")
    emulator.inject_delay("sendMessage", 0.5, chat_id=bob.id)
    await bot.send_message(alice, "to alice")  # not aimed at: untouched
    assert emulator.held == []
    held = asyncio.create_task(bot.send_message(bob.id, "to bob"))
    await emulator.wait_for(lambda: emulator.held)
    assert [(m, p["text"]) for m, p in emulator.held] == [("sendMessage", "to bob")]
    await held
    assert emulator.held == []
    assert [m.text for m in emulator.messages(bob.id, from_bot=True)] == ["to bob"]
