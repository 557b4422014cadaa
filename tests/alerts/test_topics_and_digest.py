"""Subscriptions and topic management in chat, /scanstatus, /alerts, and the daily digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alert_desk import Desk
from emulator_fixtures import running_app
from sqlmodel import select

from bot.sandbox.telegram_emulator import StoredMessage
from bot.services.alerts import plan_delivery
from storage.models import (
    Alert,
    AlertStatus,
    Delivery,
    DeliveryStatus,
    Due,
    Setting,
    Subscription,
    Topic,
)


async def ask(desk: Desk, user_id: int, text: str) -> StoredMessage:
    sent = desk.emulator.send_text(user_id, text)
    return await desk.emulator.wait_for_message(user_id, after=sent.message_id)


async def test_follow_unfollow_and_mute(desk: Desk) -> None:
    lan, lan_id = desk.spokespeople[0]
    async with running_app(desk.make_app()):
        listing = await ask(desk, lan.id, "/topics")
        assert "✅ <b>" not in listing.data["text"]
        assert "✅ An toàn thực phẩm" in listing.data["text"]
        assert "Học đường" not in listing.data["text"]  # another agency's topic
        await desk.emulator.press_button(
            lan.id, lan.id, listing.message_id, text="Bỏ theo dõi: An toàn thực phẩm"
        )
        await desk.emulator.wait_for(
            lambda: (
                "▫️ An toàn thực phẩm"
                in desk.emulator.message(lan.id, listing.message_id).data["text"]
            )
        )
        with desk.db.session() as s:
            assert s.exec(select(Subscription).where(Subscription.user_id == lan_id)).all() == []
        await desk.emulator.press_button(
            lan.id, lan.id, listing.message_id, text="Theo dõi: An toàn thực phẩm"
        )
        await desk.emulator.wait_for(
            lambda: (
                "✅ An toàn thực phẩm"
                in desk.emulator.message(lan.id, listing.message_id).data["text"]
            )
        )
        reply = await ask(desk, lan.id, "/mute an toàn thực phẩm 12")
        expected = "Đã tắt thông báo chủ đề «An toàn thực phẩm» đến 20:00 02/11/2026"
        assert expected in reply.data["text"]
        reply = await ask(desk, lan.id, "/mute Không có 3")
        assert "Không tìm thấy chủ đề «Không có»" in reply.data["text"]
        reply = await ask(desk, lan.id, "/mute")
        assert reply.data["text"].startswith("Cú pháp: /mute")


async def test_supervisor_manages_topics_and_sources(desk: Desk) -> None:
    hung, _ = desk.supervisor
    lan, _ = desk.spokespeople[0]
    with desk.db.session() as s:
        s.add(Topic(agency_id=desk.agency_id, name="Vắc-xin", query="vắc-xin", owner="toml"))
    async with running_app(desk.make_app()):
        reply = await ask(desk, hung.id, '/addtopic Sữa bột | ("sữa bột" OR "sua bot" | high')
        assert "Truy vấn không hợp lệ" in reply.data["text"] and "position" in reply.data["text"]
        reply = await ask(desk, hung.id, '/addtopic Sữa bột | "sữa bột" AND NOT "quảng cáo" | high')
        assert "Đã thêm chủ đề Sữa bột" in reply.data["text"]
        reply = await ask(desk, hung.id, "/settopic Vắc-xin | vaccine")
        assert "tệp cấu hình" in reply.data["text"]
        reply = await ask(desk, lan.id, "/addtopic X | y")
        assert "không có quyền" in reply.data["text"]
        reply = await ask(desk, hung.id, "/addsource Sức khỏe | VnExpress | ftp://x")
        assert "không hợp lệ" in reply.data["text"]
        feed = "https://vnexpress.net/rss/suc-khoe.rss"
        reply = await ask(desk, hung.id, f"/addsource Sức khỏe | VnExpress | {feed}")
        assert "Đã thêm nguồn" in reply.data["text"]
        reply = await ask(desk, hung.id, "/sources")
        assert "vnexpress.net/rss/suc-khoe.rss" in reply.data["text"]
        reply = await ask(desk, hung.id, "/rmtopic Sữa bột")
        assert "Đã gỡ chủ đề" in reply.data["text"]
    with desk.db.session() as s:
        milk = s.exec(select(Topic).where(Topic.name == "Sữa bột")).one()
        assert milk.active is False and milk.sensitivity == "high" and milk.owner == "chat"


async def test_scanstatus_and_alerts_commands(desk: Desk) -> None:
    lan, _ = desk.spokespeople[0]
    desk.add_alert()
    with desk.db.session() as s:
        s.add(
            Setting(
                key="last_scan",
                value={
                    "started_at": "2026-11-02T00:55:00+00:00",
                    "finished_at": "2026-11-02T00:55:02+00:00",
                    "duration_s": 2.25,
                    "sources": 3,
                    "sources_ok": 2,
                    "sources_not_modified": 0,
                    "new_articles": 14,
                    "new_stories": 9,
                    "failing_sources": [
                        {
                            "id": 3,
                            "name": "Báo X",
                            "url": "https://x.vn/rss",
                            "error": "timeout after 20 s",
                        }
                    ],
                },
            )
        )
    async with running_app(desk.make_app()):
        status = await ask(desk, lan.id, "/scanstatus")
        assert "Bài mới: 14" in status.data["text"] and "timeout after 20 s" in status.data["text"]
        listing = await ask(desk, lan.id, "/alerts")
        assert "An toàn thực phẩm" in listing.data["text"]
        assert "Tăng đột biến" in listing.data["text"]


async def test_daily_digest_fires_at_local_time(desk: Desk) -> None:
    lan, _ = desk.spokespeople[0]
    desk.add_alert()
    async with running_app(desk.make_app()) as app:
        await desk.emulator.wait_for_call("getUpdates")
        with desk.db.session() as s:
            due = s.exec(select(Due).where(Due.kind == "digest")).one()
        # 07:30 in Hà Nội the next day (the clock starts at 08:00 local).
        assert due.due_at == datetime(2026, 11, 3, 0, 30, tzinfo=UTC)
        desk.clock.advance(due.due_at - desk.clock.now() + timedelta(seconds=1))
        digest = await desk.emulator.wait_for_message(
            lan.id, lambda m: "Tóm tắt" in m.data.get("text", ""), timeout=10
        )
        assert "An toàn thực phẩm" in digest.data["text"]
        assert app is not None
    with desk.db.session() as s:
        kinds = s.exec(select(Due).where(Due.kind == "digest")).all()
        assert len(kinds) == 2  # today's, done; tomorrow's, scheduled


async def test_who_follows_a_topic_late_gets_the_alert_already_out(desk: Desk) -> None:
    """Following a topic after its alert went out hands over that open alert (not a dismissed
    one), once; the people who had it already are not sent it again."""
    late, late_id = desk.add_person("Ngoc", "spokesperson")
    dismissed_id = desk.add_alert()
    with desk.db.session() as s:
        s.get(Alert, dismissed_id).dedupe_key = "earlier"  # type: ignore[union-attr]
    open_id = desk.add_alert()
    with desk.db.session() as s:
        for alert_id in (open_id, dismissed_id):
            alert = s.get(Alert, alert_id)
            assert alert is not None
            plan_delivery(s, alert, desk.clock.now(), escalate_after=timedelta(minutes=15))
        s.get(Alert, dismissed_id).status = AlertStatus.DISMISSED  # type: ignore[union-attr]
        for row in s.exec(select(Delivery)).all():
            row.status = DeliveryStatus.SENT  # the subscribers had it before the app starts
        before = len(s.exec(select(Delivery)).all())
    async with running_app(desk.make_app()):
        listing = await ask(desk, late.id, "/topics")
        await desk.emulator.press_button(
            late.id, late.id, listing.message_id, text="Theo dõi: An toàn thực phẩm"
        )
        await desk.emulator.wait_for_message(
            late.id, lambda m: "photo" in m.data, after=listing.message_id, timeout=15
        )
        # Unfollow and follow again: no second copy.
        await desk.emulator.press_button(
            late.id, late.id, listing.message_id, text="Bỏ theo dõi: An toàn thực phẩm"
        )
        await desk.emulator.wait_for(
            lambda: "▫️" in desk.emulator.message(late.id, listing.message_id).data["text"]
        )
        await desk.emulator.press_button(
            late.id, late.id, listing.message_id, text="Theo dõi: An toàn thực phẩm"
        )
        await desk.emulator.wait_for(
            lambda: "✅" in desk.emulator.message(late.id, listing.message_id).data["text"]
        )
    with desk.db.session() as s:
        rows = s.exec(select(Delivery)).all()
        mine = sorted((r.ref_id, r.part) for r in rows if r.user_id == late_id)
        assert mine == [(open_id, "photo:warning"), (open_id, "text:warning")]
        assert len(rows) == before + 2, "nobody else gets a second copy"
