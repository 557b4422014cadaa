"""A real PTB Application, polling the emulator over HTTP, runs a scripted bot."""

from __future__ import annotations

from emulator_fixtures import app_builder, running_app
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.ext import (
    CallbackQueryHandler,
    ChatJoinRequestHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.sandbox.telegram_emulator import TelegramEmulator

ADMIN = {
    "can_manage_chat": True,
    "can_pin_messages": True,
    "can_manage_topics": True,
    "can_invite_users": True,
    "can_restrict_members": True,
    "can_delete_messages": True,
    "can_change_info": True,
}


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    payload = " ".join(context.args or [])
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Duyệt", callback_data="dr:a:1")]])
    await update.effective_message.reply_html(
        f"Xin chào <b>{update.effective_user.first_name}</b>! payload={payload or '-'}",
        reply_markup=keyboard,
    )
    await update.effective_message.reply_text(
        "Share your phone",
        reply_markup=ReplyKeyboardMarkup(
            [[KeyboardButton("Send contact", request_contact=True)]], one_time_keyboard=True
        ),
    )


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Approved", show_alert=True)
    await query.edit_message_text(f"<i>approved</i> ({query.data})", parse_mode="HTML")


async def on_contact(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.contact is not None
    await message.reply_text(f"phone {message.contact.phone_number} of {message.contact.user_id}")


async def on_join_request(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    request = update.chat_join_request
    assert request is not None
    await request.approve()


async def test_private_conversation_over_polling(emulator: TelegramEmulator) -> None:
    app = app_builder(emulator).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_press))
    app.add_handler(MessageHandler(filters.CONTACT, on_contact))
    async with running_app(app):
        alice = emulator.create_user("Alice", username="alice")
        sent = emulator.send_text(alice.id, "/start invite-42")
        greeting = await emulator.wait_for_message(alice.id, after=sent.message_id)
        assert greeting.text == "Xin chào Alice! payload=invite-42"
        assert greeting.entities == [{"type": "bold", "offset": 9, "length": 5}]
        keyboard_message = await emulator.wait_for_message(alice.id, after=greeting.message_id)
        assert keyboard_message.reply_keyboard is not None
        assert keyboard_message.reply_keyboard["keyboard"][0][0]["request_contact"] is True
        assert "reply_markup" not in keyboard_message.data  # Telegram never echoes these

        answer = await emulator.press_button(alice.id, alice.id, greeting.message_id, text="Duyệt")
        assert answer == {"text": "Approved", "show_alert": True, "url": None, "cache_time": 0}
        edited = await emulator.wait_for(
            lambda: emulator.message(alice.id, greeting.message_id).edited
        )
        assert edited
        message = emulator.message(alice.id, greeting.message_id)
        assert message.text == "approved (dr:a:1)"
        assert message.reply_markup is None  # editing without markup drops the keyboard
        assert message.history[0]["text"].startswith("Xin chào")

        contact = emulator.send_contact(alice.id, "+84900000001")
        reply = await emulator.wait_for_message(alice.id, after=contact.message_id)
        assert reply.text == f"phone +84900000001 of {alice.id}"

    methods = [call.method for call in emulator.calls]
    assert methods[:2] == ["getMe", "deleteWebhook"]
    assert "answerCallbackQuery" in methods


async def test_update_ids_increase_and_start_payload_entities(emulator: TelegramEmulator) -> None:
    bob = emulator.create_user("Bob")
    emulator.send_text(bob.id, "/start abc")
    emulator.send_text(bob.id, "hello @someone #tag https://example.vn/x")
    ids = [update["update_id"] for update in emulator.updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first = emulator.updates[0]["message"]
    assert first["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    kinds = [e["type"] for e in emulator.updates[1]["message"]["entities"]]
    assert kinds == ["mention", "hashtag", "url"]


async def test_group_room_lifecycle(emulator: TelegramEmulator) -> None:
    """Pattern B: pooled supergroup, invite link with approval, pins, ban and unban."""
    lead = emulator.create_user("Lead")
    outsider = emulator.create_user("Outsider")
    room = emulator.create_supergroup("Pool 1", owner_id=lead.id)
    app = app_builder(emulator).build()
    app.add_handler(ChatJoinRequestHandler(on_join_request))
    seen: list[str] = []

    async def on_my_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.my_chat_member is not None
        seen.append(update.my_chat_member.new_chat_member.status)

    app.add_handler(ChatMemberHandler(on_my_member, ChatMemberHandler.MY_CHAT_MEMBER))
    async with running_app(app):
        emulator.add_bot(room.id, rights=ADMIN)
        await emulator.wait_for(lambda: seen == ["administrator"])
        bot = app.bot
        await bot.set_chat_title(room.id, "[KH-1] Flood rumour")
        await bot.set_chat_description(room.id, "Task force")
        link = await bot.create_chat_invite_link(
            room.id, name="KH-1", creates_join_request=True, expire_date=int(emulator.now()) + 3600
        )
        assert link.creates_join_request and not link.is_revoked
        emulator.request_join(outsider.id, link.invite_link)
        await emulator.wait_for(lambda: room.member(outsider.id).is_member)
        brief = await bot.send_message(room.id, "Brief")
        assert await bot.pin_chat_message(room.id, brief.message_id)
        assert emulator.message(room.id, brief.message_id).pinned
        chat = await bot.get_chat(room.id)
        assert chat.title == "[KH-1] Flood rumour" and chat.description == "Task force"
        assert chat.pinned_message is not None
        assert chat.pinned_message.message_id == brief.message_id
        assert await bot.get_chat_member_count(room.id) == 3
        admins = await bot.get_chat_administrators(room.id)
        assert {a.status for a in admins} == {"creator", "administrator"}
        member = await bot.get_chat_member(room.id, outsider.id)
        assert member.status == "member"
        assert await bot.unpin_chat_message(room.id)
        assert await bot.unpin_all_chat_messages(room.id)
        revoked = await bot.revoke_chat_invite_link(room.id, link.invite_link)
        assert revoked.is_revoked
        assert emulator.invite_links(room.id) == []
        primary = await bot.export_chat_invite_link(room.id)
        edited = await bot.edit_chat_invite_link(room.id, primary, name="main")
        assert edited.name == "main"
        assert await bot.ban_chat_member(room.id, outsider.id)
        assert (await bot.get_chat_member(room.id, outsider.id)).status == "kicked"
        assert await bot.unban_chat_member(room.id, outsider.id, only_if_banned=True)
        assert (await bot.get_chat_member(room.id, outsider.id)).status == "left"
        assert await bot.send_chat_action(room.id, "typing")
        assert await bot.leave_chat(room.id)
        await emulator.wait_for(lambda: seen[-1] == "left")
    texts = [
        (m.data.get("new_chat_title"), m.data.get("left_chat_member", {}).get("id"))
        for m in emulator.messages(room.id)
    ]
    assert ("[KH-1] Flood rumour", None) in texts
    assert (None, outsider.id) in texts


async def test_forum_topics(emulator: TelegramEmulator) -> None:
    hub = emulator.create_supergroup("Crisis Desk", forum=True)
    emulator.add_bot(hub.id, rights=ADMIN)
    app = app_builder(emulator).build()
    async with running_app(app, polling=False):
        bot = app.bot
        topic = await bot.create_forum_topic(hub.id, "[KH-2] Vaccine", icon_color=0x6FB9F0)
        thread = topic.message_thread_id
        sent = await bot.send_message(hub.id, "Brief", message_thread_id=thread)
        assert sent.message_thread_id == thread and sent.is_topic_message
        assert await bot.edit_forum_topic(hub.id, thread, name="[KH-2] Vaccine (edited)")
        assert await bot.close_forum_topic(hub.id, thread)
        assert emulator.topics(hub.id)[0].closed
        assert await bot.reopen_forum_topic(hub.id, thread)
        assert await bot.delete_forum_topic(hub.id, thread)
        assert emulator.topics(hub.id) == []
    in_topic = emulator.messages(hub.id, thread_id=thread)
    assert in_topic[0].data["forum_topic_created"]["name"] == "[KH-2] Vaccine"
    assert all(message.deleted for message in in_topic)


async def test_commands_files_edits_and_deletes(emulator: TelegramEmulator) -> None:
    from telegram import BotCommand, BotCommandScopeAllPrivateChats

    carol = emulator.create_user("Carol")
    emulator.send_text(carol.id, "/start")
    app = app_builder(emulator).build()
    async with running_app(app, polling=False):
        bot = app.bot
        me = await bot.get_me()
        assert me.id == emulator.bot.id and me.is_bot
        scope = BotCommandScopeAllPrivateChats()
        commands = [BotCommand("start", "Bắt đầu"), BotCommand("help", "Trợ giúp")]
        assert await bot.set_my_commands(commands, scope=scope, language_code="vi")
        assert await bot.get_my_commands(scope=scope, language_code="vi") == tuple(commands)
        assert await bot.get_my_commands() == ()
        assert await bot.delete_my_commands(scope=scope, language_code="vi")
        assert await bot.get_my_commands(scope=scope, language_code="vi") == ()

        photo = await bot.send_photo(
            carol.id, b"\x89PNG fake", caption="<b>chart</b>", parse_mode="HTML"
        )
        file_id = photo.photo[-1].file_id
        again = await bot.send_photo(carol.id, file_id)
        assert again.photo[-1].file_id == file_id
        document = await bot.send_document(
            carol.id, b"report body", filename="report.docx", caption="Report"
        )
        assert document.document is not None and document.document.file_name == "report.docx"
        downloaded = await (await bot.get_file(document.document.file_id)).download_as_bytearray()
        assert bytes(downloaded) == b"report body"

        edited = await bot.edit_message_caption(carol.id, photo.message_id, caption="new")
        assert not isinstance(edited, bool) and edited.caption == "new"
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x")]])
        text = await bot.send_message(carol.id, "hi", link_preview_options=None)
        await bot.edit_message_reply_markup(carol.id, text.message_id, reply_markup=markup)
        assert emulator.message(carol.id, text.message_id).buttons()[0]["callback_data"] == "x"
        assert await bot.delete_message(carol.id, text.message_id)
        assert emulator.message(carol.id, text.message_id).deleted
        reply = await bot.send_message(
            carol.id, "re", reply_parameters={"message_id": photo.message_id}
        )
        assert reply.reply_to_message is not None
        assert reply.reply_to_message.message_id == photo.message_id
