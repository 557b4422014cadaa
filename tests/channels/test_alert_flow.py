"""The alert flows on a channel with no buttons, no edits and 2,000 characters.

A real alert is planned and fanned out by the delivery service, reaches people on the fake
channel as text with typed choices, and is acknowledged, refused and dismissed by typing: the
same services and the same flows as on Telegram (tests/alerts), nothing channel-specific added.
"""

from __future__ import annotations

from datetime import timedelta

from alert_desk import Desk
from channels.fake_channel import FakeChannel, account_of, enrol
from sqlmodel import select

import handlers.alert_draft  # the alert flows register with the conversation layer
import handlers.alerts  # noqa: F401
from bot.runtime import Runtime
from bot.services.alerts import plan_delivery
from bot.services.delivery import deliver_pending
from bot.services.due import fire_due
from bot.templating import Renderer
from storage.models import Alert, AlertStatus, AuditEvent


def fake_runtime(desk: Desk, channel: FakeChannel) -> Runtime:
    settings = desk.settings
    enrol(desk.db, desk.clock.now())
    return Runtime(
        settings=settings,
        db=desk.db,
        clock=desk.clock,
        renderer=Renderer(settings.timezone),
        notifier=channel.notifier(),
    )


async def deliver(desk: Desk, runtime: Runtime, alert_id: int) -> None:
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        plan_delivery(s, alert, desk.clock.now(), escalate_after=timedelta(minutes=15))
    report = await deliver_pending(runtime)
    assert report.sent == 6 and report.failed == 0  # 3 subscribers × (chart, text)


async def test_alert_is_acknowledged_by_a_typed_command(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    alert_id = desk.add_alert()
    await deliver(desk, runtime, alert_id)
    lan, minh, anna = (account_of(tg.id) for tg, _ in desk.spokespeople)

    [caption, text] = channel.inbox(lan)
    assert "An toàn thực phẩm" in caption
    assert "An toàn thực phẩm" in text and len(text) <= 2000
    assert f"✓ Đã nắm: /ack {alert_id}" in text
    assert f"/tf {alert_id}" in text and f"/dismiss {alert_id}" in text
    assert f"/mute {alert_id}" in text
    assert f"📝 Soạn phản hồi: /soan {alert_id}" in text
    assert f"✓ Acknowledge: /ack {alert_id}" in channel.inbox(anna)[1]  # her language

    answer = await channel.type(runtime, lan, f"/ack {alert_id}")
    assert answer == ["Đã ghi nhận bạn xác nhận cảnh báo."]
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == AlertStatus.ACKNOWLEDGED
        assert alert.acknowledged_by_id == desk.spokespeople[0][1]
    assert await channel.type(runtime, minh, f"/ack {alert_id}") == [
        "Cảnh báo đã được người khác xác nhận trước."
    ]

    # The debounced refresh of everyone's copy cannot edit here: each gets the new state anew.
    desk.clock.advance(timedelta(seconds=11))
    await fire_due(runtime)
    [_caption, _text, _answer, refreshed] = channel.inbox(minh)
    assert "Đã được Lan xác nhận" in refreshed and "/ack" not in refreshed
    assert "Acknowledged by Lan" in channel.inbox(anna)[2]
    with desk.db.session() as s:
        assert (
            len(s.exec(select(AuditEvent).where(AuditEvent.action == "alert.acknowledged")).all())
            == 1
        )


async def test_typed_presses_are_checked_like_buttons(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    alert_id = desk.add_alert()
    outsider = account_of(desk.outsider[0].id)

    assert await channel.type(runtime, outsider, f"/ack {alert_id}") == [
        "Bạn không có quyền thực hiện thao tác này."
    ]
    assert await channel.type(runtime, outsider, "/ack 12x") == [
        "Nút này không hợp lệ hoặc đã hết hạn. Vui lòng dùng tin nhắn mới nhất."
    ]
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == AlertStatus.OPEN
        refusals = s.exec(
            select(AuditEvent.action, AuditEvent.subject).where(
                AuditEvent.action.startswith("button.")  # type: ignore[attr-defined]
            )
        ).all()
    assert sorted(refusals) == [
        ("button.forged", "button:alert.ack:12x"),
        ("button.refused", f"button:alert.ack:{alert_id}"),
    ]


async def test_dismiss_by_numbered_choice(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    alert_id = desk.add_alert()
    lan = account_of(desk.spokespeople[0][0].id)

    [ask] = await channel.type(runtime, lan, f"/dismiss {alert_id}")
    assert ask.splitlines() == [
        "Vì sao bỏ qua cảnh báo này?",
        "",
        "1. Báo động nhầm",
        "2. Không thuộc thẩm quyền",
        "3. Đã xử lý",
        "4. Lý do khác",
    ]
    assert await channel.type(runtime, lan, "3") == ["✕ Đã bỏ qua cảnh báo — lý do: Đã xử lý."]
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == AlertStatus.DISMISSED

    listed = await channel.type(runtime, lan, "/alerts")
    assert len(listed) == 1 and "An toàn thực phẩm" in listed[0]
