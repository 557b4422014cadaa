"""What the conversation layer does where the fake channel lacks a capability."""

from __future__ import annotations

from channels.fake_channel import CHANNEL, FakeChannel, FakeSurface

from bot.channels.base import Button
from bot.channels.refs import ChatRef, MessageRef
from handlers.conversation.degrade import Replies, press_for, typed_press

CHAT = ChatRef(CHANNEL, "501")
typed_press("test.pick")  # a numbered choice
typed_press("test.go", "go")  # a short command


async def test_long_text_is_cut_under_the_limit_at_line_breaks() -> None:
    channel = FakeChannel()
    lines = [f"dòng {i}: " + "chữ " * 40 for i in range(60)]  # about 10,000 characters
    await Replies(FakeSurface(channel, CHAT), CHAT).say("\n".join(lines))
    posts = channel.inbox("501")
    assert len(posts) == 6 and all(len(p) <= 2000 for p in posts)
    # Cut only at line breaks: joined again, the same lines come back.
    assert [line.strip() for line in "\n".join(posts).split("\n")] == [
        line.strip() for line in lines
    ]


async def test_buttons_become_commands_and_numbered_choices() -> None:
    channel = FakeChannel()
    buttons = [[Button("Đi", "test.go", "7-a"), Button("Chọn", "test.pick", 3)]]
    buttons.append([Button("Không dùng được", "test.untyped", 1)])
    await Replies(FakeSurface(channel, CHAT), CHAT).say("Hỏi", buttons)
    assert channel.inbox("501") == ["Hỏi\n\nĐi: /go 7 a\n1. Chọn"]
    assert press_for(CHAT, "go", ("7", "a"), "/go 7 a") == "test.go:7-a"
    assert press_for(CHAT, None, (), " 1 ") == "test.pick:3"
    assert press_for(CHAT, None, (), "2") is None
    assert press_for(CHAT, "go", (), "/go") is None
    assert press_for(ChatRef(CHANNEL, "502"), None, (), "1") is None  # offered elsewhere


async def test_an_edit_is_posted_anew_and_a_pin_is_skipped() -> None:
    channel = FakeChannel()
    replies = Replies(FakeSurface(channel, CHAT), CHAT)
    await replies.replace(MessageRef(CHAT, "1"), "mới")
    notifier = channel.notifier()
    await notifier.edit_text(MessageRef(CHAT, "1"), "mới nữa", [[Button("Đi", "test.go", 8)]])
    await notifier.pin(MessageRef(CHAT, "1"))  # the fake channel would refuse a pin
    sent = await notifier.send_text(CHAT, "x" * 4500)
    assert channel.inbox("501")[:2] == ["mới", "mới nữa\n\nĐi: /go 8"]
    assert [len(p) for p in channel.inbox("501")[2:]] == [2000, 2000, 500]
    assert sent.message_id == "5"
