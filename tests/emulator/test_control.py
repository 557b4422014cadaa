"""Control-API behaviours: privacy mode, links, channels, member updates, waiting, clock."""

from __future__ import annotations

import pytest

from bot.sandbox.telegram_emulator import ControlError, TelegramEmulator


async def test_privacy_mode_hides_chatter_from_non_admin_bot(emulator: TelegramEmulator) -> None:
    owner = emulator.create_user("Owner")
    group = emulator.create_group("Chatty", owner_id=owner.id)
    emulator.add_bot(group.id)
    before = len(emulator.updates)
    emulator.send_text(owner.id, "just chatting", chat_id=group.id)
    emulator.send_text(owner.id, "/status", chat_id=group.id)
    emulator.send_text(owner.id, "hey @crisisdesk_test_bot", chat_id=group.id)
    texts = [u["message"]["text"] for u in emulator.updates[before:]]
    assert texts == ["/status", "hey @crisisdesk_test_bot"]
    emulator.add_bot(group.id, rights={"can_manage_chat": True})
    emulator.send_text(owner.id, "now visible", chat_id=group.id)
    assert emulator.updates[-1]["message"]["text"] == "now visible"


async def test_join_by_link_and_member_updates(emulator: TelegramEmulator) -> None:
    emulator.hub.set_allowed(["message", "chat_member", "my_chat_member"])
    room = emulator.create_supergroup("Room")
    emulator.add_bot(room.id, rights={"can_invite_users": True})
    link = emulator.api.new_link(room, member_limit=1)
    first, second = emulator.create_user("A"), emulator.create_user("B")
    emulator.join(first.id, invite_link=link.invite_link)
    update = emulator.updates[-2]["chat_member"]
    assert update["new_chat_member"]["status"] == "member"
    assert update["invite_link"]["invite_link"] == link.invite_link
    assert emulator.updates[-1]["message"]["new_chat_members"][0]["id"] == first.id
    with pytest.raises(ControlError, match="member limit"):
        emulator.join(second.id, invite_link=link.invite_link)
    with pytest.raises(ControlError, match="admits people directly"):
        emulator.request_join(second.id, link.invite_link)
    emulator.leave(first.id, room.id)
    assert emulator.messages(room.id)[-1].data["left_chat_member"]["id"] == first.id


async def test_channel_posts(emulator: TelegramEmulator) -> None:
    owner = emulator.create_user("Editor")
    channel = emulator.create_channel("News", owner_id=owner.id, username="byt_news")
    with pytest.raises(ControlError):
        emulator.add_bot(channel.id)  # bots join channels only as administrators
    emulator.add_bot(channel.id, rights={"can_post_messages": True})
    post = emulator.send_text(owner.id, "Official statement", chat_id=channel.id)
    assert "from" not in post.data and post.data["sender_chat"]["id"] == channel.id
    assert emulator.updates[-1]["channel_post"]["text"] == "Official statement"


async def test_wait_for_times_out_and_clock_hook() -> None:
    now = [1_800_000_000.0]
    async with TelegramEmulator(now=lambda: now[0]) as emu:
        user = emu.create_user("Clocked")
        assert emu.send_text(user.id, "hi").data["date"] == 1_800_000_000
        with pytest.raises(TimeoutError):
            await emu.wait_for_message(user.id, timeout=0.05)
        with pytest.raises(TimeoutError, match="did not answer"):
            message = emu.api.post(
                emu.chat(user.id),
                emu.bot,
                {"text": "x"},
                inline_markup={"inline_keyboard": [[{"text": "b", "callback_data": "b"}]]},
            )
            await emu.press_button(user.id, user.id, message.message_id, text="b", timeout=0.05)


async def test_control_misuse_is_a_control_error(emulator: TelegramEmulator) -> None:
    user = emulator.create_user("Lonely")
    group = emulator.create_group("Closed")
    with pytest.raises(ControlError, match="not in chat"):
        emulator.send_text(user.id, "let me in", chat_id=group.id)
    with pytest.raises(ControlError, match="no user"):
        emulator.send_text(424242, "ghost")
    with pytest.raises(ValueError, match="unknown admin rights"):
        emulator.add_bot(group.id, rights={"can_fly": True})
