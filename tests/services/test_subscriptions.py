"""The subscriptions service on its own (no chat): who may follow, add, change and remove
topics and sources, and what each refusal is called. Flows that reach it through a chat are
tested in tests/channels and tests/alerts; these pin the rules themselves, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.services import subscriptions as subs
from bot.services.permissions import Actor
from storage.db import Database
from storage.models import Agency, AuditEvent, Owner, Role, Source, Subscription, Topic, User

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _setup(db: Database) -> dict[str, int]:
    """Two agencies, a supervisor and a spokesperson in the first, a topic in each."""
    ids: dict[str, int] = {}
    with db.session() as s:
        for code in ("bgd", "byt"):
            agency = Agency(code=code, name=code.upper(), owner="chat")
            s.add(agency)
            s.flush()
            assert agency.id is not None
            ids[code] = agency.id
        for name, role in (("sup", Role.SUPERVISOR), ("spk", Role.SPOKESPERSON)):
            user = User(full_name=name, status="active", role=role, agency_id=ids["bgd"])
            s.add(user)
            s.flush()
            assert user.id is not None
            ids[name] = user.id
        for code in ("bgd", "byt"):
            topic = Topic(agency_id=ids[code], name=f"Thi cử {code}", query="thi")
            s.add(topic)
            s.flush()
            assert topic.id is not None
            ids[f"topic_{code}"] = topic.id
    return ids


def _actor(db: Database, user_id: int, *, admin: bool = False) -> Actor:
    with db.session() as s:
        user = s.get(User, user_id)
        s.expunge(user)
    return Actor(f"tg:{user_id}", user, admin)


def test_follow_is_idempotent_and_audited(db: Database) -> None:
    ids = _setup(db)
    actor = _actor(db, ids["spk"])
    with db.session() as s:
        assert subs.set_subscription(s, actor, ids["topic_bgd"], True, NOW)
        assert not subs.set_subscription(s, actor, ids["topic_bgd"], True, NOW)
    with db.session() as s:
        rows = s.exec(select(Subscription).where(Subscription.user_id == ids["spk"])).all()
        assert [r.topic_id for r in rows] == [ids["topic_bgd"]]
        actions = [a.action for a in s.exec(select(AuditEvent))]
        assert actions == ["topic.subscribed"]
        assert subs.set_subscription(s, actor, ids["topic_bgd"], False, NOW)
        assert not subs.set_subscription(s, actor, ids["topic_bgd"], False, NOW)


def test_other_agency_topic_is_not_found_not_forbidden(db: Database) -> None:
    """Another agency's topic is answered as missing, so its name does not leak."""
    ids = _setup(db)
    actor = _actor(db, ids["spk"])
    with db.session() as s, pytest.raises(subs.TopicError) as info:
        subs.set_subscription(s, actor, ids["topic_byt"], True, NOW)
    assert info.value.template == "topic_not_found"
    with db.session() as s:
        visible = [line.topic.id for line in subs.visible_topics(s, actor, NOW)]
        assert visible == [ids["topic_bgd"]]
        admin = Actor("tg:1", None, True)
        assert len(subs.visible_topics(s, admin, NOW)) == 2


def test_spokesperson_cannot_add_topic_supervisor_can(db: Database) -> None:
    ids = _setup(db)
    with db.session() as s, pytest.raises(subs.TopicError) as info:
        subs.add_topic(
            s,
            _actor(db, ids["spk"]),
            agency_id=None,
            name="Học phí",
            query="học phí",
            sensitivity="medium",
            now=NOW,
        )
    assert info.value.template == "not_allowed"
    with db.session() as s:
        topic = subs.add_topic(
            s,
            _actor(db, ids["sup"]),
            agency_id=None,
            name=" Học phí ",
            query=' "học phí" OR hoc phi ',
            sensitivity="high",
            now=NOW,
        )
        assert (topic.agency_id, topic.name, topic.owner) == (ids["bgd"], "Học phí", Owner.CHAT)


@pytest.mark.parametrize(
    ("name", "query", "sensitivity", "template"),
    [
        ("", "thi", "medium", "topic_bad_name"),
        ("x" * 101, "thi", "medium", "topic_bad_name"),
        ("Học phí", "thi", "extreme", "topic_bad_sensitivity"),
        ("Học phí", '"thi', "medium", "topic_bad_query"),
        ("Thi cử bgd", "thi", "medium", "topic_exists"),
    ],
)
def test_add_topic_refusals(
    sqlite_db: Database, name: str, query: str, sensitivity: str, template: str
) -> None:
    ids = _setup(sqlite_db)
    with sqlite_db.session() as s, pytest.raises(subs.TopicError) as info:
        subs.add_topic(
            s,
            _actor(sqlite_db, ids["sup"]),
            agency_id=None,
            name=name,
            query=query,
            sensitivity=sensitivity,
            now=NOW,
        )
    assert info.value.template == template
    with sqlite_db.session() as s:
        assert len(s.exec(select(Topic)).all()) == 2  # nothing half-added


def test_toml_topic_is_read_only_and_removal_drops_followers(db: Database) -> None:
    ids = _setup(db)
    sup = _actor(db, ids["sup"])
    with db.session() as s:
        subs.set_subscription(s, _actor(db, ids["spk"]), ids["topic_bgd"], True, NOW)
        topic = s.get(Topic, ids["topic_bgd"])
        assert topic is not None
        topic.owner = Owner.TOML
    with db.session() as s:
        topic = s.get(Topic, ids["topic_bgd"])
        assert topic is not None
        with pytest.raises(subs.TopicError) as info:
            subs.change_topic(s, sup, topic, query="thi OR tuyển sinh", now=NOW)
        assert info.value.template == "topic_read_only"
        topic.owner = Owner.CHAT
        subs.remove_topic(s, sup, topic, NOW)
    with db.session() as s:
        topic = s.get(Topic, ids["topic_bgd"])
        assert topic is not None and not topic.active
        assert s.exec(select(Subscription)).all() == []


def test_supervisor_cannot_change_other_agency_topic(db: Database) -> None:
    ids = _setup(db)
    with db.session() as s:
        topic = s.get(Topic, ids["topic_byt"])
        assert topic is not None
        with pytest.raises(subs.TopicError) as info:
            subs.change_topic(s, _actor(db, ids["sup"]), topic, sensitivity="high", now=NOW)
        assert info.value.template == "not_allowed"


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("ftp://example.org/rss", "source_bad_url"),
        ("https://exa mple.org/rss", "source_bad_url"),
        ("http://127.0.0.1/rss", "source_unsafe_url"),
        ("http://169.254.169.254/latest", "source_unsafe_url"),
        ("http://10.0.0.7/feed", "source_unsafe_url"),
        ("http://[::1]/feed", "source_unsafe_url"),
    ],
)
def test_add_source_refuses_bad_and_private_addresses(
    sqlite_db: Database, url: str, template: str
) -> None:
    ids = _setup(sqlite_db)
    with sqlite_db.session() as s, pytest.raises(subs.TopicError) as info:
        subs.add_source(
            s, _actor(sqlite_db, ids["sup"]), name="Báo", outlet="Báo", url=url, now=NOW
        )
    assert info.value.template == template


def test_sources_are_added_by_supervisors_once(db: Database) -> None:
    ids = _setup(db)
    url = "https://vnexpress.net/rss/thoi-su.rss"
    with db.session() as s, pytest.raises(subs.TopicError) as info:
        subs.add_source(s, _actor(db, ids["spk"]), name="VnE", outlet="VnExpress", url=url, now=NOW)
    assert info.value.template == "not_allowed"
    sup = _actor(db, ids["sup"])
    with db.session() as s:
        source = subs.add_source(s, sup, name="VnE", outlet="VnExpress", url=url, now=NOW)
        source_id = source.id
    assert source_id is not None
    with db.session() as s, pytest.raises(subs.TopicError) as info:
        subs.add_source(s, sup, name="VnE 2", outlet="VnExpress", url=url, now=NOW)
    assert info.value.template == "source_exists"
    with db.session() as s:
        removed = subs.remove_source(s, sup, source_id, NOW)
        assert not removed.active
        assert [src.url for src in subs.list_sources(s)] == [url]
        with pytest.raises(subs.TopicError) as info:
            subs.remove_source(s, sup, 10_000, NOW)
        assert info.value.template == "source_not_found"
        assert s.get(Source, source_id) is not None
