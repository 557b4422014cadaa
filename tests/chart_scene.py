"""A topic with two weeks of ordinary news and the Sao Mai school poisoning: the chart tests' scene.

History is written as series buckets (a daytime profile, one story in six negative); the crisis
morning as real articles from the sandbox's written crisis, so the detectors, the alert and the
chart all read what a scan would have stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from seeding import add_topic
from sqlmodel import Session, col, select

from scanner.series import BUCKET, bucket_ceil, rebuild_buckets
from scanner.trends import detect_for_topics
from storage.models import Alert, Article, ArticleTopic, SeriesBucket, Story, Topic

CRISIS = Path(__file__).parents[1] / "bot" / "sandbox" / "data" / "crisis_written.jsonl"
DAY0 = datetime(2026, 3, 16, 0, 0, tzinfo=UTC)  # the crisis day, 00:00 UTC = 07:00 in Hà Nội
HISTORY_DAYS = 14


def _history(session: Session, topic_id: int, until: datetime) -> None:
    rng = np.random.default_rng(7)
    t = DAY0 - timedelta(days=HISTORY_DAYS)
    while t < until:
        hour = (t + timedelta(hours=7)).hour
        rate = 0.12 if 7 <= hour < 22 else 0.02
        n = int(rng.poisson(rate))
        neg = int(rng.binomial(n, 1 / 6)) if n else 0
        session.add(
            SeriesBucket(
                topic_id=topic_id,
                bucket_start=t,
                stories=n,
                outlets=n,
                negative=neg,
                articles=n,
            )
        )
        t += BUCKET


def crisis_rows(until: str) -> list[dict[str, str]]:
    """The written crisis's articles published up to local ``until`` ("HH:MM")."""
    rows = [json.loads(line) for line in CRISIS.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r["time"] <= until]


def local(hhmm: str) -> datetime:
    """The crisis day's local ``hhmm`` (Hà Nội, UTC+7) as an aware UTC datetime."""
    h, m = map(int, hhmm.split(":"))
    return DAY0 + timedelta(hours=h - 7, minutes=m)


def store_crisis(
    session: Session, topic_id: int, until: str, *, own: bool = False, mixed: bool = False
) -> None:
    """Store the crisis's articles up to ``until`` as a scan would (stories, topic links)."""
    stories: dict[str, Story] = {}
    for r in crisis_rows(until):
        at = local(r["time"])
        key = f"{r['story']}-{r['outlet']}" if own else r["story"]
        label = "neutral" if mixed and int(r["story"][1:]) % 2 == 0 else r["sentiment"]
        story = stories.get(key)
        if story is None:
            story = stories[key] = Story(
                title=r["title"],
                first_seen_at=at,
                last_seen_at=at,
                sentiment_label=label,
            )
            session.add(story)
            session.flush()
        article = Article(
            canonical_url=f"https://{r['outlet']}.example/{r['slug']}",
            url=f"https://{r['outlet']}.example/{r['slug']}",
            outlet=r["outlet"],
            title=r["title"],
            summary=r["lead"],
            published_at=at,
            fetched_at=at,
            story_id=story.id,
            sentiment_label=label,
        )
        session.add(article)
        session.flush()
        assert article.id is not None
        session.add(ArticleTopic(article_id=article.id, topic_id=topic_id))


def poisoning_scene(
    session: Session, until: str = "10:45", *, own: bool = False, mixed: bool = False
) -> tuple[Topic, Alert, datetime]:
    """Seed the scene up to local ``until`` and run detection every 15 minutes from 09:00.

    ``own``: every outlet wrote its own story (no syndicated copies), a volume burst.
    ``mixed``: the even-numbered stories are labelled neutral (a mixed negative share).
    """
    topic = add_topic(session)
    assert topic.id is not None
    now = local(until)
    _history(session, topic.id, local("09:00"))  # ordinary news until 09:00
    store_crisis(session, topic.id, until, own=own, mixed=mixed)
    session.flush()
    t = DAY0 + timedelta(hours=2, minutes=5)
    while t <= now:
        # Rebuild only the crisis morning: the history before it exists as buckets only.
        rebuild_buckets(session, DAY0 + timedelta(hours=2), bucket_ceil(t), [topic.id])
        detect_for_topics(session, [topic], t)
        t += BUCKET
    first = select(Alert).where(Alert.topic_id == topic.id).order_by(col(Alert.id))
    alert = session.exec(first).first()
    assert alert is not None, "the scene must alert"
    return topic, alert, now
