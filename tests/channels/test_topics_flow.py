"""Following topics and muting on a channel with no buttons, no edits and 2,000 characters.

``/topics`` offers each topic as a numbered choice, answered by typing its number; the list
comes back anew (no edit) with the new state. ``/mute <topic> [hours]`` mutes by name, and a
single number is the alert's own typed Mute (``/mute 12``), checked like the press.
"""

from __future__ import annotations

from alert_desk import Desk
from channels.fake_channel import FakeChannel, account_of
from channels.test_alert_flow import deliver, fake_runtime
from sqlmodel import select

import handlers.alerts  # the flows register with the conversation layer
import handlers.topics  # noqa: F401
from storage.models import AuditEvent, Delivery, Subscription


def following(desk: Desk, user_id: int) -> set[int]:
    with desk.db.session() as s:
        rows = s.exec(select(Subscription).where(Subscription.user_id == user_id)).all()
        return {row.topic_id for row in rows}


async def test_a_topic_is_followed_and_unfollowed_by_its_number(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    hung_tg, hung_id = desk.supervisor
    hung = account_of(hung_tg.id)
    alert_id = desk.add_alert()  # out already: Hung, following late, is handed it too

    [listed] = await channel.type(runtime, hung, "/topics")
    assert "▫️ <b>An toàn thực phẩm</b>" in listed
    assert listed.endswith("1. Theo dõi: An toàn thực phẩm")
    assert "Học đường" not in listed  # another agency's topic

    toast, relisted = await channel.type(runtime, hung, "1")
    assert toast == "Đã theo dõi."
    assert "✅ <b>An toàn thực phẩm</b>" in relisted
    assert relisted.endswith("1. Bỏ theo dõi: An toàn thực phẩm")
    assert following(desk, hung_id) == {desk.topic_id}
    with desk.db.session() as s:
        handed = s.exec(select(Delivery).where(Delivery.user_id == hung_id)).all()
    assert {row.ref_id for row in handed} == {alert_id}

    toast, relisted = await channel.type(runtime, hung, "1")
    assert toast == "Đã bỏ theo dõi."
    assert relisted.endswith("1. Theo dõi: An toàn thực phẩm")
    assert following(desk, hung_id) == set()
    with desk.db.session() as s:
        actions = [
            e.action
            for e in s.exec(
                select(AuditEvent).where(AuditEvent.subject == f"topic:{desk.topic_id}")
            )
        ]
    assert actions == ["topic.subscribed", "topic.unsubscribed"]


async def test_an_outsider_sees_his_agencys_topics_only(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    khoa_tg, khoa_id = desk.outsider
    khoa = account_of(khoa_tg.id)
    [listed] = await channel.type(runtime, khoa, "/topics")
    assert listed.endswith("1. Bỏ theo dõi: Học đường") and "An toàn thực phẩm" not in listed
    [detail] = await channel.type(runtime, khoa, "/topics An toàn thực phẩm")
    assert detail.startswith("Không tìm thấy chủ đề")  # another agency's topic
    assert following(desk, khoa_id) != {desk.topic_id}


async def test_mute_by_topic_name_and_by_the_alerts_typed_choice(desk: Desk) -> None:
    channel = FakeChannel()
    runtime = fake_runtime(desk, channel)
    alert_id = desk.add_alert()
    await deliver(desk, runtime, alert_id)
    lan = account_of(desk.spokespeople[0][0].id)

    [muted] = await channel.type(runtime, lan, "/mute An toàn thực phẩm 6")
    assert "An toàn thực phẩm" in muted
    [muted_again] = await channel.type(runtime, lan, f"/mute {alert_id}")  # the alert's choice
    assert "An toàn thực phẩm" in muted_again
    assert await channel.type(runtime, lan, "/mute") == [
        runtime.renderer.render("mute_usage", "vi")
    ]
    with desk.db.session() as s:
        mutes = s.exec(select(AuditEvent).where(AuditEvent.action == "topic.muted")).all()
    assert len(mutes) == 2
