"""``/lienket`` and ``/nhantin`` on a channel with no buttons: the answers people read when a
code is asked for, typed where it was shown or by a stranger, and when alerts are pointed at a
channel they have or have not linked."""

from __future__ import annotations

import re

from alert_desk import Desk
from channels.fake_channel import FakeChannel, account_of
from channels.test_alert_flow import fake_runtime

import handlers.linking  # noqa: F401  (the linking flows register with the layer)

STRANGER = "zl-9001"  # an account on the fake channel only, with no person behind it


async def test_codes_and_alert_channels_by_typing(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)  # everyone has a Telegram and a fake account
    lan = account_of(desk.spokespeople[0][0].id)

    [current] = await channel.type(runtime, lan, "/nhantin")
    assert current.startswith("Cảnh báo đến anh/chị qua: fake, Telegram.")
    [unknown] = await channel.type(runtime, lan, "/nhantin viber")
    assert unknown.startswith("Không hiểu lựa chọn “viber”")
    [chosen] = await channel.type(runtime, lan, "/receive telegram")
    assert chosen.startswith("✅ Đã lưu. Cảnh báo đến anh/chị qua: Telegram.")
    [missing] = await channel.type(runtime, lan, "/nhantin zalo")
    assert missing.startswith("⛔ Anh/chị chưa liên kết tài khoản Zalo")

    [shown] = await channel.type(runtime, lan, "/lienket")
    found = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", shown)
    assert found is not None and "10 phút" in shown
    code = found.group()
    # Typed where it was shown, by someone else: refused, and the code stays Lan's.
    assert await channel.type(runtime, STRANGER, f"/lienket {code}") == [
        "Mã này phải được gõ trên ứng dụng nhắn tin còn lại, không phải nơi đã lấy mã."
    ]
    [how] = await channel.type(runtime, STRANGER, "/link")
    assert "/start" in how  # no profile here: how to link, or to register
    [wrong] = await channel.type(runtime, STRANGER, "/lienket ZZZZ-ZZZZ")
    assert wrong.startswith("Mã liên kết không đúng.")
