"""Article retention: old article text is blanked by the daily due row; figures stay the same."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from seeding import add_topic
from sqlmodel import col, select

from bot.clock import SimulatedClock
from bot.runtime import Runtime
from bot.services import retention
from bot.services.due import fire_due
from bot.templating import Renderer
from scanner.series import rebuild_buckets
from storage.db import Database
from storage.models import (
    Alert,
    Article,
    ArticleTopic,
    AuditEvent,
    Due,
    SeriesBucket,
    Story,
)


def _seed(db: Database, clock: SimulatedClock) -> dict[str, int]:
    """Two stories 40 days old (three copies) and one 2 days old, all on one topic."""
    now = clock.now()
    with db.session() as session:
        topic = add_topic(session, "Vắc-xin", "vắc-xin")
        ids = {"topic": topic.id}
        plan = [
            ("old-a", 40, ["VnExpress", "Tuổi Trẻ"], "negative"),
            ("old-b", 39, ["Thanh Niên"], "neutral"),
            ("new", 2, ["VnExpress"], "positive"),
        ]
        for name, days, outlets, label in plan:
            at = now - timedelta(days=days)
            story = Story(title=f"Story {name}", first_seen_at=at, last_seen_at=at)
            session.add(story)
            session.flush()
            ids[name] = story.id
            for i, outlet in enumerate(outlets):
                article = Article(
                    canonical_url=f"https://news.example/{name}/{i}",
                    url=f"https://news.example/{name}/{i}?utm=feed",
                    outlet=outlet,
                    title=f"Vắc-xin {name} {i}",
                    summary=f"Tin về vắc-xin {name} từ {outlet}",
                    published_at=at + timedelta(minutes=10 * i),
                    fetched_at=at + timedelta(minutes=10 * i + 1),
                    fingerprint=f"fp-{name}-{i}",
                    sentiment_label=label,
                    story_id=story.id,
                )
                session.add(article)
                session.flush()
                session.add(ArticleTopic(article_id=article.id, topic_id=topic.id))
        session.add(
            Alert(
                topic_id=topic.id,
                kind="burst",
                dedupe_key="burst:old-a",
                window_start=now - timedelta(days=40),
                window_end=now - timedelta(days=40, hours=-1),
            )
        )
    return ids


def _buckets(db: Database, clock: SimulatedClock) -> list[tuple[Any, ...]]:
    now = clock.now()
    with db.session() as session:
        rebuild_buckets(session, now - timedelta(days=60), now)
    with db.session() as session:
        rows = session.exec(select(SeriesBucket).order_by(col(SeriesBucket.bucket_start))).all()
        return [
            (r.topic_id, r.bucket_start, r.stories, r.outlets, r.negative, r.positive, r.articles)
            for r in rows
        ]


@pytest.fixture
def runtime(db: Database, clock: SimulatedClock, make_settings: Any) -> Runtime:
    settings = make_settings({"CRISISDESK_ARTICLE_RETENTION_DAYS": "30"})
    return Runtime(settings, db, clock, Renderer(settings.timezone), notifier=None)  # type: ignore[arg-type]


async def test_the_daily_purge_blanks_old_text_and_keeps_every_figure(
    runtime: Runtime, db: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 2)  # several short transactions
    ids = _seed(db, clock)
    before = _buckets(db, clock)
    assert sum(b[2] for b in before) == 3  # three stories counted

    with db.session() as session:
        assert retention.ensure_scheduled(session, clock.now(), 30) is not None
        assert retention.ensure_scheduled(session, clock.now(), 30) is None  # once a day
    assert await fire_due(runtime) == 1

    with db.session() as session:
        articles = session.exec(select(Article).order_by(col(Article.id))).all()
        old = [a for a in articles if a.story_id in (ids["old-a"], ids["old-b"])]
        new = [a for a in articles if a.story_id == ids["new"]]
        assert len(old) == 3 and len(articles) == 4
        for article in old:
            assert (article.title, article.summary, article.url) == ("", "", "")
            assert article.canonical_url.startswith("https://news.example/old-")
            assert article.fingerprint.startswith("fp-old-")
        assert new[0].title == "Vắc-xin new 0" and new[0].url.endswith("?utm=feed")
        assert [s.title for s in session.exec(select(Story).order_by(col(Story.id)))] == [
            "Story old-a",
            "Story old-b",
            "Story new",
        ]
        assert session.exec(select(Alert.dedupe_key)).all() == ["burst:old-a"]
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "retention.purge")).one()
        assert event.after is not None and event.after["articles"] == 3
        pending = session.exec(select(Due).where(col(Due.done_at).is_(None))).all()
        assert [(d.kind, d.due_at) for d in pending] == [
            ("retention", clock.now() + timedelta(days=1))
        ]
    assert _buckets(db, clock) == before  # the series do not change when text is purged

    clock.advance(timedelta(days=1))
    assert await fire_due(runtime) == 1  # the next day: nothing left, no new audit row
    with db.session() as session:
        assert len(session.exec(select(AuditEvent)).all()) == 1


async def test_retention_off_purges_nothing(
    runtime: Runtime, db: Database, clock: SimulatedClock, make_settings: Any
) -> None:
    _seed(db, clock)
    with db.session() as session:
        assert retention.ensure_scheduled(session, clock.now(), None) is None
        retention.ensure_scheduled(session, clock.now(), 30)  # scheduled, then switched off
    runtime.settings = make_settings()
    assert await fire_due(runtime) == 1
    with db.session() as session:
        assert all(a.title for a in session.exec(select(Article)))
        assert session.exec(select(Due).where(col(Due.done_at).is_(None))).all() == []


def test_the_setting_is_generous_at_least(make_settings: Any) -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="CRISISDESK_ARTICLE_RETENTION_DAYS"):
        make_settings({"CRISISDESK_ARTICLE_RETENTION_DAYS": "3"})
    assert make_settings().article_retention_days is None
