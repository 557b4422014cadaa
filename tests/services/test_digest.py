"""The daily digest service on its own: when it is due, who gets it, and its chart. The
delivery of a digest through a chat is tested in tests/alerts/test_topics_and_digest.py."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from seeding import add_topic
from sqlmodel import Session, select

from bot.channels.refs import PersonRef
from bot.services import digest, identity
from storage.db import Database
from storage.models import Agency, Due, SeriesBucket, Subscription, Topic, User

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def test_next_digest_is_the_next_local_time_strictly_after_now() -> None:
    at = time(17, 30)
    # 10:29 UTC is 17:29 in Hanoi: today's digest is still ahead.
    assert digest.next_digest_at(datetime(2026, 12, 7, 10, 29, tzinfo=UTC), at, HANOI) == datetime(
        2026, 12, 7, 10, 30, tzinfo=UTC
    )
    # Exactly at the time, and after it: tomorrow's.
    for now in (
        datetime(2026, 12, 7, 10, 30, tzinfo=UTC),
        datetime(2026, 12, 7, 16, 59, tzinfo=UTC),
    ):
        assert digest.next_digest_at(now, at, HANOI) == datetime(2026, 12, 8, 10, 30, tzinfo=UTC)
    # 18:00 UTC is already the 8th in Hanoi.
    assert digest.next_digest_at(datetime(2026, 12, 7, 18, 0, tzinfo=UTC), at, HANOI) == datetime(
        2026, 12, 8, 10, 30, tzinfo=UTC
    )


def test_one_digest_row_per_local_day(db: Database) -> None:
    now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    with db.session() as s:
        first = digest.ensure_scheduled(s, now, time(17, 30), HANOI)
        again = digest.ensure_scheduled(s, now.replace(hour=9), time(17, 30), HANOI)
    assert first is not None and again is None
    with db.session() as s:
        rows = s.exec(select(Due).where(Due.kind == digest.DIGEST_KIND)).all()
        assert [r.payload["day"] for r in rows] == ["2026-12-07"]


def _person(
    s: Session,
    name: str,
    channels: tuple[str, ...],
    *,
    status: str = "active",
    reachable: bool = True,
) -> int:
    """A person with an account on each of ``channels`` (linked identities of one user)."""
    user = User(full_name=name, status=status, reachable=reachable)
    first, *rest = channels
    identity.add_person(s, PersonRef(first, f"{name}-{first}"), user)
    for channel in rest:
        identity.link(s, user, PersonRef(channel, f"{name}-{channel}"), datetime.now(UTC))
    s.flush()
    assert user.id is not None
    return user.id


def test_subscribers_are_active_reachable_people_on_the_channel(db: Database) -> None:
    with db.session() as s:
        agency = Agency(code="bgd", name="BGD", owner="chat")
        s.add(agency)
        s.flush()
        assert agency.id is not None
        live = Topic(agency_id=agency.id, name="Thi cử", query="thi")
        gone = Topic(agency_id=agency.id, name="Học phí", query="học phí", active=False)
        s.add_all([live, gone])
        s.flush()
        people = {
            "an": _person(s, "an", ("telegram",)),
            "binh": _person(s, "binh", ("zalo",)),
            "chi": _person(s, "chi", ("telegram",), status="suspended"),
            "dung": _person(s, "dung", ("telegram",), reachable=False),
            "em": _person(s, "em", ("telegram", "zalo")),
        }
        for user_id in people.values():
            for topic in (live, gone):
                assert topic.id is not None
                s.add(Subscription(user_id=user_id, topic_id=topic.id))
    with db.session() as s:
        on_telegram = digest.subscribers(s, "telegram")
        on_zalo = digest.subscribers(s, "zalo")
    assert on_telegram == {people["an"]: [live.id], people["em"]: [live.id]}
    assert on_zalo == {people["binh"]: [live.id], people["em"]: [live.id]}


def test_digest_chart_is_a_png_even_without_topics() -> None:
    png = digest.render_digest_chart([], HANOI, "Tin trong ngày")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_digest_reads_the_series_without_rewriting_them(db: Database) -> None:
    """The series are the scans' to write: a digest that rebuilt them from the article rows it
    could see deleted, beside a scan's detection, the buckets of articles it had not seen yet
    (the burst was never alerted). Here the buckets have no article rows behind them at all."""
    now = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    with db.session() as s:
        topic = add_topic(s, query="ngộ độc")
        assert topic.id is not None
        s.add(
            SeriesBucket(
                topic_id=topic.id,
                bucket_start=datetime(2026, 12, 7, 2, 0, tzinfo=UTC),
                stories=9.0,
                outlets=4,
                negative=6,
                articles=12,
            )
        )
    with db.session() as s:
        topics = s.exec(select(Topic)).all()
        [day] = digest.topic_days(s, list(topics), now).values()
    assert day.stories == 9 and day.negative == 6
    with db.session() as s:
        assert len(s.exec(select(SeriesBucket)).all()) == 1
