"""Alert fan-out end to end: chart + message with working buttons, acknowledgement edits for
everyone, permissions, blocked people, escalation after a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from alert_desk import Desk, run_job_now
from emulator_fixtures import running_app
from sqlmodel import select

from bot.sandbox.telegram_emulator import StoredMessage
from bot.services.alerts import plan_delivery
from storage.models import Alert, AlertStatus, AuditEvent, Delivery, Severity, User


def is_alert_text(message: StoredMessage) -> bool:
    return "An toàn thực phẩm" in message.data.get("text", "") and bool(message.buttons())


def plan(desk: Desk, alert_id: int) -> int:
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        return plan_delivery(s, alert, desk.clock.now(), escalate_after=timedelta(minutes=15))


async def test_alert_reaches_subscribers_and_acknowledgement_edits_everyone(desk: Desk) -> None:
    emulator = desk.emulator
    alert_id = desk.add_alert()
    assert plan(desk, alert_id) == 6  # 3 subscribers × (chart, text); not the supervisor
    assert plan(desk, alert_id) == 0  # idempotent
    app = desk.make_app()
    async with running_app(app):
        texts = {}
        for tg, _uid in desk.spokespeople:
            # The first chart of a process is rendered cold (matplotlib's first figure), which
            # took over 5 s once in the full suite on two busy cores: a bound, not a goal.
            photo = await emulator.wait_for_message(tg.id, lambda m: "photo" in m.data, timeout=30)
            assert "An toàn thực phẩm" in photo.data["caption"]
            text = await emulator.wait_for_message(tg.id, is_alert_text)
            texts[tg.id] = text
        lan, minh, anna = (tg for tg, _ in desk.spokespeople)
        assert "Tăng đột biến" in texts[lan.id].data["text"]
        assert "Volume burst" in texts[anna.id].data["text"]
        labels = [b["text"] for b in texts[lan.id].buttons()]
        assert labels == [
            "✓ Đã nắm",
            "👥 Lập tổ công tác",
            "📝 Soạn phản hồi",
            "✕ Bỏ qua",
            "🔕 Tắt 24 giờ",
        ]
        supervisor_got = emulator.messages(desk.supervisor[0].id, from_bot=True)
        assert not [m for m in supervisor_got if is_alert_text(m) or "photo" in m.data]

        answer = await emulator.press_button(
            lan.id, lan.id, texts[lan.id].message_id, text="✓ Đã nắm"
        )
        assert "Đã ghi nhận" in answer["text"]
        await emulator.wait_for(
            lambda: (
                "Đã được Lan xác nhận"
                in emulator.message(lan.id, texts[lan.id].message_id).data["text"]
            )
        )
        # Others are edited once, after the debounce, by the tick.
        assert "xác nhận" not in emulator.message(minh.id, texts[minh.id].message_id).data["text"]
        desk.clock.advance(timedelta(seconds=11))
        await emulator.wait_for(
            lambda: (
                "Acknowledged by Lan"
                in emulator.message(anna.id, texts[anna.id].message_id).data["text"]
            )
        )
        edited = emulator.message(minh.id, texts[minh.id].message_id)
        assert "Đã được Lan xác nhận" in edited.data["text"]
        assert "✓ Đã nắm" not in [b["text"] for b in edited.buttons()]
        # A second press by someone else changes nothing.
        answer = await emulator.press_button(
            minh.id, minh.id, texts[minh.id].message_id, data=f"alert.ack:{alert_id}"
        )
        assert "người khác" in answer["text"]
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == AlertStatus.ACKNOWLEDGED
        assert alert.acknowledged_by_id == desk.spokespeople[0][1]
        assert (
            len(s.exec(select(AuditEvent).where(AuditEvent.action == "alert.acknowledged")).all())
            == 1
        )


async def test_buttons_are_checked_on_the_server(desk: Desk) -> None:
    emulator = desk.emulator
    alert_id = desk.add_alert()
    outsider, _ = desk.outsider
    app = desk.make_app()
    async with running_app(app):
        emulator.send_text(outsider.id, "/alerts")
        own = await emulator.wait_for_message(outsider.id)
        for data in (
            f"alert.ack:{alert_id}",
            f"alert.dismissr:{alert_id}-fp",
            f"alert.mute:{alert_id}",
        ):
            answer = await emulator.press_button(
                outsider.id, outsider.id, own.message_id, data=data
            )
            assert answer["show_alert"] is True and "không có quyền" in answer["text"]
        answer = await emulator.press_button(
            outsider.id, outsider.id, own.message_id, data=f"alert.dismissr:{alert_id}-lol"
        )
        assert "không hợp lệ" in answer["text"]
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == AlertStatus.OPEN
        refused = s.exec(select(AuditEvent).where(AuditEvent.action == "button.refused")).all()
        assert len(refused) == 3


@asynccontextmanager
async def alert_on_screen(desk: Desk) -> AsyncIterator[tuple[int, StoredMessage]]:
    """A new alert planned, the app running, and the alert's text message in Lan's chat."""
    alert_id = desk.add_alert()
    plan(desk, alert_id)
    lan = desk.spokespeople[0][0]
    async with running_app(desk.make_app()):
        yield alert_id, await desk.emulator.wait_for_message(lan.id, is_alert_text)


async def test_dismiss_with_reason_and_mute(desk: Desk) -> None:
    emulator = desk.emulator
    lan, lan_id = desk.spokespeople[0]
    async with alert_on_screen(desk) as (alert_id, text):
        await emulator.press_button(lan.id, lan.id, text.message_id, text="✕ Bỏ qua")
        ask = await emulator.wait_for_message(lan.id, after=text.message_id)
        assert "Vì sao" in ask.data["text"]
        await emulator.press_button(lan.id, lan.id, ask.message_id, text="Báo động nhầm")
        await emulator.wait_for(
            lambda: "lý do: Báo động nhầm" in emulator.message(lan.id, ask.message_id).data["text"]
        )
        answer = await emulator.press_button(lan.id, lan.id, text.message_id, text="🔕 Tắt 24 giờ")
        assert "Đã tắt thông báo" in answer["text"]
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == AlertStatus.DISMISSED
        assert alert.details["dismissed"] == {"by": lan_id, "reason": "fp"}
    # Muted: a new alert of the topic skips Lan.
    second = desk.add_alert()
    assert plan(desk, second) == 4


async def test_blocked_person_is_marked_and_supervisor_told_once(desk: Desk) -> None:
    emulator = desk.emulator
    lan, lan_id = desk.spokespeople[0]
    emulator.block_bot(lan.id)
    first = desk.add_alert()
    plan(desk, first)
    app = desk.make_app()
    async with running_app(app):
        minh = desk.spokespeople[1][0]
        await emulator.wait_for_message(minh.id, is_alert_text)
        supervisor = desk.supervisor[0]
        told = await emulator.wait_for_message(
            supervisor.id, lambda m: "Lan" in m.data.get("text", "")
        )
        assert "chặn bot" in told.data["text"]
        second = desk.add_alert()
        assert plan(desk, second) == 4  # Lan is unreachable now: not planned at all
        await emulator.wait_for_message(minh.id, lambda m: m.message_id > told.message_id or True)
    with desk.db.session() as s:
        user = s.get(User, lan_id)
        assert user is not None and user.reachable is False
        rows = s.exec(select(Delivery).where(Delivery.user_id == lan_id)).all()
        assert {r.status for r in rows} == {"unreachable"}
    assert (
        len(
            [
                m
                for m in emulator.messages(desk.supervisor[0].id, from_bot=True)
                if "Lan" in m.data.get("text", "")
            ]
        )
        == 1
    )


async def test_critical_alert_escalates_after_a_restart(desk: Desk) -> None:
    emulator = desk.emulator
    alert_id = desk.add_alert(severity=Severity.CRITICAL)
    assert plan(desk, alert_id) == 8  # subscribers and, being critical, the supervisor
    supervisor = desk.supervisor[0]
    app = desk.make_app()
    async with running_app(app):
        await emulator.wait_for_message(supervisor.id, is_alert_text)
    # The first process stops; the escalation is a row, so a new one fires it when due.
    desk.clock.advance(timedelta(minutes=16))
    app = desk.make_app()
    async with running_app(app):
        escalation = await emulator.wait_for_message(
            supervisor.id, lambda m: "chuyển lên lãnh đạo" in m.data.get("text", "")
        )
    assert escalation is not None
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == AlertStatus.ESCALATED


@pytest.mark.parametrize("acknowledged", [True])
async def test_acknowledged_critical_alert_does_not_escalate(
    desk: Desk, acknowledged: bool
) -> None:
    alert_id = desk.add_alert(severity=Severity.CRITICAL)
    plan(desk, alert_id)
    lan, _ = desk.spokespeople[0]
    app = desk.make_app()
    async with running_app(app):
        text = await desk.emulator.wait_for_message(lan.id, is_alert_text)
        await desk.emulator.press_button(lan.id, lan.id, text.message_id, text="✓ Đã nắm")
        desk.clock.advance(timedelta(minutes=16))
        await run_job_now(app, "tick")
        await desk.emulator.wait_for_call("answerCallbackQuery")
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None and alert.status == AlertStatus.ACKNOWLEDGED
        escalations = s.exec(select(Delivery).where(Delivery.part == "text:escalation")).all()
        assert escalations == []


async def test_alert_says_what_it_is_about_in_whole_words(desk: Desk) -> None:
    """The "Nội dung nổi lên" line reads the stories' own words and names, not syllables."""
    from storage.models import Article, ArticleTopic

    now = desk.clock.now()
    headlines = [
        "Nghi ngộ độc thực phẩm, 34 học sinh Trường Tiểu học Sao Mai nhập viện",
        "Vụ nghi ngộ độc thực phẩm ở trường Sao Mai: 52 học sinh nhập viện",
        "Phụ huynh bức xúc vụ nghi ngộ độc thực phẩm tại Trường Tiểu học Sao Mai",
    ]
    with desk.db.session() as s:
        for n, title in enumerate(headlines):
            article = Article(
                canonical_url=f"https://bao{n}.vn/a",
                url=f"https://bao{n}.vn/a",
                outlet=f"Báo {n}",
                title=title,
                published_at=now - timedelta(minutes=5 + n),
                fetched_at=now,
            )
            s.add(article)
            s.flush()
            assert article.id is not None
            s.add(ArticleTopic(article_id=article.id, topic_id=desk.topic_id))
    alert_id = desk.add_alert()
    with desk.db.session() as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        terms = ["trường sao mai", "vụ nghi ngộ", "sinh nhập viện", "đình"]
        alert.details = {**alert.details, "terms": terms}  # what scanner.terms picked
    plan(desk, alert_id)
    async with running_app(desk.make_app()):
        lan = desk.spokespeople[0][0]
        # The first use reads the general-news corpus (the scanner has it loaded in a live bot).
        alert = await desk.emulator.wait_for_message(lan.id, is_alert_text, timeout=30)
        text = alert.data["text"]
    line = next(x for x in text.splitlines() if x.startswith("Nội dung nổi lên"))
    assert line == (
        "Nội dung nổi lên: Trường Tiểu học Sao Mai, vụ nghi ngộ độc thực phẩm, học sinh nhập viện"
    ), line
