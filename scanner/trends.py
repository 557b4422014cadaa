"""Trend detection after each scan: series → detectors → Alert rows, and chart data.

Entry points:

* :func:`run_detection` (own transaction, commits, then returns what to deliver) and
  :func:`detect_for_topics` (inside the caller's session) — called after every scan;
* :func:`chart_data` — the hours around an alert with the detector's expected level and band,
  the alert window's numbers and the forecast, for the alert charts.

One developing story gives one alert: every finding on a topic with a live alert updates that
alert (a sentiment turn during a burst is added to it as a second kind and reported as an
escalation, never suppressed), and a burst must stay notable without its biggest outlet, so one
outlet flooding its own feed (or a wire story and its copies, which dedupe already folds into one
story) never alerts. The label (emerging terms) is computed only when people are about to be
told (a new or escalated alert), not on every silent update.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from scanner.alerting import COOLDOWN, AlertChange, Finding, record_emerging, record_finding
from scanner.detectors import (
    Baseline,
    Detection,
    DetectorConfig,
    Prediction,
    coherence_candidates,
    coherent_burst,
    cold_rate,
    fit_baseline,
    predict,
    sentiment_turn,
    slow_buildup,
    upper_tail,
    volume_burst,
)
from scanner.forecast import Forecast, forecast_counts
from scanner.harm import Harm, assess
from scanner.series import (
    BUCKET,
    OUTLET_CAP,
    TOPIC_LABEL,
    TopicSeries,
    bucket_ceil,
    history_starts,
    load_series,
    topic_articles,
)
from scanner.terms import emerging_signal, emerging_terms, has_candidates, suggested_queries
from scanner.topics import parse_query
from storage.db import Database
from storage.models import Alert, AlertKind, Article, Setting, Story, Topic

log = logging.getLogger(__name__)

HISTORY = timedelta(days=28)
SHORT_HISTORY = timedelta(days=7)  # less real history than this: the alert says so
FORECAST_BUCKETS = 12  # 3 hours
EMERGING_WINDOW = timedelta(hours=6)  # recent stories an emerging term is counted in
EMERGING_BACKGROUND = timedelta(days=3)  # ... against the topic's stories of the 3 days before
DEFAULT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
LAST_DETECTION_KEY = "last_detection"  # Setting row: when detection last ran
CATCH_UP_GAP = 2 * BUCKET  # detections further apart than this left buckets unjudged
CATCH_UP = timedelta(hours=24)  # the longest outage whose missed buckets are judged


@dataclass(frozen=True)
class WindowFacts:
    """What the stored articles say about one topic's window (read only when something fired)."""

    stories: int
    outlets: int  # distinct outlets of all articles, copies included (reach)
    top_outlet_stories: int  # stories first published by the busiest outlet (capped per bucket)
    top_story_ids: list[int]
    texts: list[str]
    harm: Harm  # what the stories say happened to people, by the outlets that carry it


# What a window's facts and its background read of each article.
_TEXT_COLUMNS = (
    Article.id,
    Article.story_id,
    Article.outlet,
    Article.published_at,
    Article.title,
    Article.summary,
)


def window_facts(session: Session, topic_id: int, start: datetime, end: datetime) -> WindowFacts:
    columns = (*_TEXT_COLUMNS, TOPIC_LABEL, Story.outlet_count)
    stmt = topic_articles(columns, start, end, [topic_id]).order_by(Article.published_at)
    first: dict[int, tuple[str, datetime, str, int]] = {}
    carried: dict[int, set[str]] = {}
    outlets: set[str] = set()
    for aid, sid, outlet, published, title, summary, _lab, reach in session.execute(stmt):
        key = sid if sid is not None else -aid
        outlets.add(outlet)
        carried.setdefault(key, set()).add(outlet)
        if key not in first:
            first[key] = (outlet, published, f"{title}. {summary}", reach or 1)
    per_bucket: Counter[tuple[str, int]] = Counter()
    counted_by_outlet: Counter[str] = Counter()
    for outlet, published, _text, _reach in first.values():
        b = int(published.timestamp() // BUCKET.total_seconds())
        per_bucket[(outlet, b)] += 1
        if per_bucket[(outlet, b)] <= OUTLET_CAP:
            counted_by_outlet[outlet] += 1
    top = sorted((k for k in first if k > 0), key=lambda k: -first[k][3])[:5]
    return WindowFacts(
        stories=sum(counted_by_outlet.values()),
        outlets=len(outlets),
        top_outlet_stories=max(counted_by_outlet.values(), default=0),
        top_story_ids=top,
        texts=[v[2] for v in first.values()],
        harm=assess((v[2], carried[k]) for k, v in first.items()),
    )


def _first_story(series: TopicSeries, start: datetime, end: datetime) -> datetime:
    """Start of the first bucket of ``[start, end)`` with a story (``start`` if none has).

    A turn's CUSUM run starts after its last reset, often hours of empty night before the
    first story; the alert's window ("09:15–11:30") should say when the stories came.
    """
    i0 = max(int((start - series.start) / series.bucket), 0)
    i1 = max(int((end - series.start) / series.bucket), i0)
    hits = np.flatnonzero(series.stories[i0:i1] > 0)
    return series.bucket_start(i0 + int(hits[0])) if len(hits) else start


def negative_share(series: TopicSeries, start: datetime, end: datetime) -> float:
    """Share of the counted stories of ``[start, end)`` labelled negative: the one number.

    The alert text, the crisis room card and the chart all show this, over the alert's window,
    from the same buckets the detectors read (the negative turn's share is this over its run).
    """
    i0 = max(int((start - series.start) / series.bucket), 0)
    i1 = max(int((end - series.start) / series.bucket), i0)
    stories = series.stories[i0:i1]
    total = float(stories.sum())
    return float(np.minimum(series.negative[i0:i1], stories).sum()) / total if total else 0.0


def _index(series: TopicSeries, at: datetime) -> int:
    """Index of the bucket starting at ``at``, clipped to ``[0, len(series)]``."""
    return min(max(int((at - series.start) / series.bucket), 0), len(series))


def window_prediction(
    series: TopicSeries, base: Baseline, cfg: DetectorConfig, slots: np.ndarray, i0: int, i1: int
) -> Prediction:
    """The detector's predictive of the stories of buckets ``[i0, i1)``: the seasonal profile
    times today's level read from the buckets before ``i0`` (as :func:`volume_burst` sees a
    window). The alert's baseline and the chart's expected level over the window are this."""
    r0 = max(i0 - cfg.level_span, 0)
    return predict(base, slots[i0:i1], series.stories[r0:i0], slots[r0:i0], cfg)


def _window_numbers(
    alert: Alert, series: TopicSeries, base: Baseline | None, cfg: DetectorConfig, tz: tzinfo
) -> None:
    """Set the alert's volume, baseline and negative share to those of its whole window.

    Findings of different kinds and windows land on one alert (a burst, then a turn over a
    longer run; windows merge). Each used to leave its own numbers on the row, so the text
    quoted one window's share and the crisis room card, read after a silent update, another's.
    The row's numbers now always describe its window: counted stories, the detector's expected
    stories over it (when the seasonal profile exists) and the negative share
    (:func:`negative_share`) — what the alert text, the chart and the card all show.
    """
    i0, i1 = _index(series, alert.window_start), _index(series, alert.window_end)
    if i1 <= i0:
        return
    alert.volume = float(series.stories[i0:i1].sum())
    if base is not None:
        pred = window_prediction(series, base, cfg, series.slots(tz), i0, i1)
        alert.baseline = round(pred.mean, 3)
    alert.negative_share = round(negative_share(series, alert.window_start, alert.window_end), 3)


def _background_texts(
    session: Session, topic_id: int, start: datetime, end: datetime, limit: int = 300
) -> list[str]:
    stmt = (
        topic_articles([Article.title, Article.summary], start, end, [topic_id])
        .order_by(Article.published_at.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    return [f"{t}. {s}" for t, s in session.execute(stmt)]


def _forecast(series: TopicSeries) -> Forecast:
    return forecast_counts(
        series.stories, horizon=FORECAST_BUCKETS, bucket_minutes=series.bucket.total_seconds() / 60
    )


def _finding(
    session: Session,
    series: TopicSeries,
    det: Detection,
    cfg: DetectorConfig,
    kind: str,
    *,
    now_up: bool = True,
) -> Finding | None:
    """Turn a fired detection into a Finding, after the outlet-spread check for volume kinds.

    ``now_up``: the topic's last half hour is up on its own (volume findings may raise a live
    alert's severity only then; see :func:`scanner.alerting.record_finding`).
    """
    end = series.end
    start = _first_story(series, end - series.bucket * max(det.window, 1), end)
    facts = window_facts(session, series.topic_id, start, end)
    volume = kind in (AlertKind.VOLUME_BURST, AlertKind.SLOW_BUILDUP)
    if volume and det.stats.get("method") != "coherent":
        # A burst must stay notable without its busiest outlet (a flooding feed is not news).
        # A coherent burst's shared term already comes from several outlets.
        rest = facts.stories - facts.top_outlet_stories
        if rest < 1 or upper_tail(rest, max(det.baseline, 1e-9), 1.0) >= math.sqrt(cfg.alpha):
            return None
    threshold = -math.log10(cfg.alpha)
    fc = _forecast(series)
    return Finding(
        topic_id=series.topic_id,
        kind=kind,
        window_start=start,
        window_end=end,
        volume=det.volume,
        baseline=round(det.baseline, 3),
        score=round(det.score, 3),
        strength=det.score / threshold,
        outlets=facts.outlets,
        negative_share=round(negative_share(series, start, end), 3),
        harm=round(facts.harm.score, 3),
        current=now_up or not volume,
        forecast=fc.as_dict(),
        details={
            "top_story_ids": facts.top_story_ids,
            "stories": facts.stories,
            "harm": facts.harm.as_dict(),
            "history": history_note(series, det),
            "detector": {
                "kind": det.kind,
                "window": det.window,
                "share": det.share,
                "reference": det.reference,
                **_jsonable(det.stats),
            },
        },
    )


def history_note(series: TopicSeries, det: Detection) -> dict[str, Any]:
    """How much real history the finding stands on, for the alert to say when it is little.

    ``cold_start``: the volume test had under a day of profile and compared the bucket with the
    average of the past hours (``detectors._ewma_burst``); ``short``: under ``SHORT_HISTORY``,
    the seasonal model is still wide (weekends, the day's level) and the usual level a rough one.
    """
    hours = len(series) * series.bucket / timedelta(hours=1)
    return {
        "hours": round(hours, 1),
        "short": hours < SHORT_HISTORY / timedelta(hours=1),
        "cold_start": det.stats.get("method") == "ewma",
    }


def label_terms(
    session: Session, topic_id: int, start: datetime, end: datetime, *, top: int = 5
) -> list[str]:
    """What the stories of ``[start, end)`` are about: their emerging terms against 3 days."""
    facts = window_facts(session, topic_id, start, end)
    if not facts.texts:
        return []
    background = _background_texts(session, topic_id, start - timedelta(days=3), start)
    return [t.term for t in emerging_terms(facts.texts, background, top=top)]


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, np.floating | np.integer) else v) for k, v in d.items()}


def detect_topic(
    session: Session,
    topic: Topic,
    series: TopicSeries,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
    cooldown: timedelta = COOLDOWN,
) -> list[AlertChange]:
    """Run every detector on one topic's series (last element = current bucket).

    Returns at most one change: all findings of the bucket land on the topic's one live alert.
    """
    assert topic.id is not None
    cfg = DetectorConfig.for_sensitivity(topic.sensitivity)
    emerging = detect_emerging(session, topic, series, now, cfg=cfg, tz=tz)
    return _detect_trend(session, topic, series, now, cfg, tz=tz, cooldown=cooldown) + emerging


def _said_nothing(
    topic: Topic, series: TopicSeries, now: datetime, burst: Detection, build: Detection
) -> None:
    """At DEBUG: what the trend detectors saw when they found nothing, so a run that expected
    an alert (the sandbox's news day in CI) says why none came: the last two hours' buckets
    (stories, outlets, negative) and each detector's score and windows."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    last = slice(-(timedelta(hours=2) // series.bucket), None)
    log.debug(
        "topic %s at %s: no trend finding; last buckets stories %s outlets %s negative %s; "
        "burst score %.3g %s; build-up score %.3g %s",
        topic.id,
        now.isoformat(),
        series.stories[last].tolist(),
        series.outlets[last].tolist(),
        series.negative[last].tolist(),
        burst.score,
        burst.stats,
        build.score,
        build.stats,
    )


def _detect_trend(
    session: Session,
    topic: Topic,
    series: TopicSeries,
    now: datetime,
    cfg: DetectorConfig,
    *,
    tz: tzinfo,
    cooldown: timedelta,
) -> list[AlertChange]:
    assert topic.id is not None
    base = _profile(series, tz, cfg)
    burst = volume_burst(series, tz, cfg, base)
    windows = burst.stats.get("windows", {})
    now_up = any(v["p"] < cfg.up_level for w, v in windows.items() if w <= 2) or (
        burst.fired and not windows
    )
    coherent = _coherence(session, topic, series, burst, cfg)
    if coherent is not None:
        burst = coherent
    build = slow_buildup(series, tz, cfg, base)
    findings: list[Finding] = []
    for det, kind in sorted(
        ((burst, AlertKind.VOLUME_BURST), (build, AlertKind.SLOW_BUILDUP)),
        key=lambda dk: -dk[0].score,
    ):
        if det.fired:
            finding = _finding(session, series, det, cfg, kind, now_up=now_up)
            if finding is not None:
                findings.append(finding)
                break
    for negative, kind in ((True, AlertKind.NEGATIVE_TURN), (False, AlertKind.POSITIVE_TURN)):
        turn = sentiment_turn(series, cfg, negative=negative, tz=tz)
        if turn.fired:
            finding = _finding(session, series, turn, cfg, kind)
            if finding is not None:
                findings.append(finding)
    if not findings:
        _said_nothing(topic, series, now, burst, build)
        return []
    changes = []
    told: list[dict[str, Any]] = []  # what each notifying change of this scan tells people
    for f in findings:
        c = record_finding(session, f, now, cooldown=cooldown)
        changes.append(c)
        if c.notify:
            told.append(dict(c.alert.details.get("told") or {}))
    rank = {"new": 2, "escalated": 1, "updated": 0}
    change = max(changes, key=lambda c: rank[c.change])  # all are the same alert row
    if change.change == "new" and len(changes) > 1:
        change = AlertChange(change.alert, "new")
    _window_numbers(change.alert, series, base, cfg, tz)
    if change.notify:
        alert = change.alert
        terms = label_terms(session, topic.id, alert.window_start, alert.window_end)
        shared = [str(f.details["detector"].get("term") or "") for f in findings]
        for term in reversed([t for t in shared if t]):  # a coherent burst's own term first
            terms = [term, *(t for t in terms if t not in term and term not in t)][:5]
        families = list(dict.fromkeys(fam for t in told for fam in t.get("families", [])))
        merged = {**told[0], "families": families}
        for key in ("strength", "outlets", "negative_share", "harm"):  # the most people were told
            merged[key] = max((t.get(key, 0) for t in told), default=0)
        alert.details = {**alert.details, "terms": terms, "told": merged}
        session.add(alert)
        session.flush()
    return [change]


def _coherence(
    session: Session, topic: Topic, series: TopicSeries, burst: Detection, cfg: DetectorConfig
) -> Detection | None:
    """The volume test's windows that are up, asked whether their stories share a rare term.

    Reads the stories only when some window's volume passed the gate (a few buckets a day), and
    the topic's 3-day background only when a term could qualify. See
    :func:`scanner.detectors.coherent_burst`.
    """
    assert topic.id is not None
    windows = coherence_candidates(burst, cfg)
    if not windows:
        return None
    end = series.end
    start = end - series.bucket * max(windows)
    recent = _stories(session, topic.id, start, end)
    own = _own_terms(topic)
    fg_by_window = {
        w: [(text, outlet) for text, outlet, at in recent if at >= end - series.bucket * w]
        for w in windows
    }
    fg_by_window = {
        w: fg
        for w, fg in fg_by_window.items()
        if has_candidates(
            fg,
            min_stories=cfg.coherence_min_stories,
            min_outlets=cfg.coherence_min_outlets,
            exclude=own,
        )
    }
    if not fg_by_window:
        return None
    bg = [text for text, _, _ in _stories(session, topic.id, start - EMERGING_BACKGROUND, start)]
    terms: dict[int, tuple[str, int, int, float]] = {}
    for w, fg in fg_by_window.items():
        found = emerging_signal(
            fg,
            bg,
            alpha=1.0,
            min_stories=cfg.coherence_min_stories,
            min_outlets=cfg.coherence_min_outlets,
            exclude=own,
        )
        if found:
            terms[w] = (found[0].term, found[0].stories, found[0].outlets, found[0].p)
    return coherent_burst(burst, terms, cfg) if terms else None


def _own_terms(topic: Topic) -> list[str]:
    """The topic's own query terms (on every story of the topic, so never news in themselves)."""
    try:
        return [t.key for t in parse_query(topic.query).terms]
    except Exception:  # a topic's query was validated when saved; never fail detection on it
        return []


def _stories(
    session: Session, topic_id: int, start: datetime, end: datetime
) -> list[tuple[str, str, datetime]]:
    """(text, outlet, published) of the first article of each story of the topic in the range."""
    stmt = topic_articles(_TEXT_COLUMNS, start, end, [topic_id]).order_by(Article.published_at)
    first: dict[int, tuple[str, str, datetime]] = {}
    for aid, sid, outlet, published, title, summary in session.execute(stmt):
        key = sid if sid is not None else -aid
        if key not in first:
            first[key] = (f"{title}. {summary}", outlet, published)
    return list(first.values())


def detect_emerging(
    session: Session,
    topic: Topic,
    series: TopicSeries,
    now: datetime,
    *,
    cfg: DetectorConfig,
    tz: tzinfo = DEFAULT_TZ,
) -> list[AlertChange]:
    """Emerging terms of a topic, checked once an hour (when the bucket ends on the hour).

    The stories of the last 6 h against those of the 3 days before (:func:`emerging_signal`: at
    least 4 stories from 3 distinct outlets, a Bonferroni-corrected binomial test at the topic's
    level, at least three times the background rate). At most one new alert per topic and hour
    (the most significant term; the others significant with it go in its ``terms``), one per
    term and topic a day (:func:`scanner.alerting.record_emerging`). Volume plays no part: a
    new term carried by several outlets at an unchanged volume is what this is for.
    """
    assert topic.id is not None
    end = series.end
    if end.astimezone(tz).minute != 0:
        return []
    start = end - EMERGING_WINDOW
    fg = [(text, outlet) for text, outlet, _ in _stories(session, topic.id, start, end)]
    if not fg:
        return []
    # The 3-day background is read only when some term of the window could qualify at all.
    own = _own_terms(topic)
    if not has_candidates(fg, exclude=own):
        return []
    bg = [text for text, _, _ in _stories(session, topic.id, start - EMERGING_BACKGROUND, start)]
    found = emerging_signal(fg, bg, alpha=cfg.alpha, exclude=own)
    if not found:
        return []
    best = found[0]
    terms = [e.term for e in found[:5]]
    fg_texts = [text for text, _ in fg]
    finding = Finding(
        topic_id=topic.id,
        kind=AlertKind.EMERGING,
        window_start=start,
        window_end=end,
        volume=float(best.stories),
        baseline=round(best.expected, 3),
        score=round(-math.log10(max(best.p, 1e-300)), 3),
        strength=-math.log10(max(best.p, 1e-300)) / -math.log10(cfg.alpha),
        outlets=best.outlets,
        negative_share=round(negative_share(series, start, end), 3),
        details={
            "terms": terms,
            "suggested_queries": suggested_queries(terms, fg_texts),
            "stories": len(fg),
            "detector": {
                "kind": "emerging",
                "term": best.term,
                "term_stories": best.stories,
                "term_outlets": best.outlets,
                "background_stories": len(bg),
                "background_hits": best.background,
                "p": best.p,
            },
        },
    )
    return [record_emerging(session, finding, best.term, now)]


def _profile(series: TopicSeries, tz: tzinfo, cfg: DetectorConfig) -> Baseline | None:
    """The seasonal profile both volume detectors share (``None`` while history is short)."""
    cut = max(len(series) - cfg.guard, 0)
    lo = max(cut - cfg.max_history, 0)
    if cut - lo < cfg.min_history:
        return None
    slots = series.slots(tz)
    return fit_baseline(series.stories[lo:cut], slots[lo:cut], cfg)


def real_series(session: Session, topics: Sequence[Topic], now: datetime) -> dict[int, TopicSeries]:
    """Each topic's series up to the current bucket over its real history only (at most
    ``HISTORY``; :func:`scanner.series.history_starts`): a young topic's series is short, so the
    detectors take their cold-start rules instead of fitting a seasonal model on zeros."""
    end = bucket_ceil(now)
    starts = history_starts(session, topics, now, HISTORY)
    loaded = load_series(session, list(starts), min(starts.values(), default=end - BUCKET), end)
    return {t: s.tail(int((end - starts[t]) / BUCKET)) for t, s in loaded.items()}


def detect_for_topics(
    session: Session,
    topics: Sequence[Topic],
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
    series: Mapping[int, TopicSeries] | None = None,
    cooldown: timedelta = COOLDOWN,
) -> list[AlertChange]:
    """Run detection for ``topics`` at ``now`` on their stored series (:func:`real_series`).

    The scan has already rebuilt the buckets its articles touched
    (:func:`scanner.series.rebuild_for_articles`). ``series`` lets a caller that keeps the arrays
    in memory (``trends replay``) skip loading them per call. Rows are flushed, not committed:
    commit before delivering (or use :func:`run_detection`, which does).
    """
    active = [t for t in topics if t.id is not None and t.active]
    loaded = series if series is not None else real_series(session, active, now)
    changes: list[AlertChange] = []
    for topic in active:
        assert topic.id is not None
        s = loaded.get(topic.id)
        if s is not None and len(s):
            changes.extend(detect_topic(session, topic, s, now, tz=tz, cooldown=cooldown))
    return changes


def missed_bucket_ends(since: datetime | None, now: datetime) -> list[datetime]:
    """The bucket ends between the last detection and ``now`` that no detection looked at.

    Empty when detections ran at the usual pace (a gap of at most ``CATCH_UP_GAP``) or when no
    detection ever ran here (a new installation's history is baseline, not news); at most
    ``CATCH_UP`` back.
    """
    if since is None or now - since <= CATCH_UP_GAP:
        return []
    at = max(bucket_ceil(since), bucket_ceil(now - CATCH_UP))
    ends = []
    while at < now:  # now's own bucket is judged live
        ends.append(at)
        at += BUCKET
    return ends


def last_detection(session: Session) -> datetime | None:
    row = session.get(Setting, LAST_DETECTION_KEY)
    if row is None or "at" not in row.value:
        return None
    return datetime.fromisoformat(str(row.value["at"]))


def _mark_detection(session: Session, now: datetime) -> None:
    row = session.get(Setting, LAST_DETECTION_KEY) or Setting(key=LAST_DETECTION_KEY)
    row.value = {"at": now.isoformat()}
    row.updated_at = now
    session.add(row)


def catch_up(
    session: Session,
    topics: Sequence[Topic],
    since: datetime | None,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
) -> list[AlertChange]:
    """Detect at every bucket end an outage made the scanner miss, on the series as it stands now.

    A bot that was down (or a scan job that could not run) for hours brings the missed news in
    its next scan, with their publication times; without this, a burst that began and ended
    while it was down would only ever be baseline, and the press office would never hear of a
    crisis of that morning. Each missed bucket end is judged as the live scan would have judged
    it (the series cut at that end), so an alert found here is stamped with its own time; one
    that tells people carries ``details["caught_up"]`` so its message says it comes late.
    """
    ends = missed_bucket_ends(since, now)
    if not ends:
        return []
    assert since is not None
    active = [t for t in topics if t.id is not None and t.active]
    full = real_series(session, active, now)
    log.info(
        "detection: no detection ran from %s to %s; judging the %d missed buckets",
        since.isoformat(),
        now.isoformat(),
        len(ends),
    )
    changes: list[AlertChange] = []
    for end in ends:
        cut = {tid: s.head(max(len(s) - int((s.end - end) / BUCKET), 0)) for tid, s in full.items()}
        for change in detect_for_topics(session, active, end, tz=tz, series=cut):
            if change.notify:
                alert = change.alert
                alert.details = {
                    **alert.details,
                    "caught_up": {"since": since.isoformat(), "found_at": now.isoformat()},
                }
                session.add(alert)
            changes.append(change)
    session.flush()
    return changes


def _one_per_alert(changes: Sequence[AlertChange]) -> list[AlertChange]:
    """The changes of one run, one per alert: the one that says most (new, then escalated), so a
    burst judged at several missed buckets is delivered once at its final severity."""
    rank = {"new": 2, "escalated": 1, "updated": 0}
    best: dict[int | None, AlertChange] = {}
    for change in changes:
        key = change.alert.id
        kept = best.get(key)
        if kept is None or rank[change.change] > rank[kept.change]:
            best[key] = AlertChange(change.alert, change.change, (kept or change).previous_severity)
    return list(best.values())


def run_detection(
    db: Database, now: datetime, *, tz: tzinfo = DEFAULT_TZ, fetched_at: datetime | None = None
) -> list[AlertChange]:
    """After a scan: detect on every active topic, commit, and return the changes to deliver.

    When the last detection is older than the usual pace (the bot was down, or the scan job
    could not run), the missed bucket ends are judged first (:func:`catch_up`). The commit
    happens before this returns, so the delivery code (which only sends changes whose
    ``notify`` is true) never tells anyone about an alert that could still be rolled back.

    ``fetched_at``: when the scan read the feeds. The detection is recorded as of then, since
    it can vouch only for the news it was given: a scan that fetched before a stall (a machine
    that slept, a clock that jumped) and detected after it would otherwise mark the stall's
    hours as judged, and their news, read by the next scan, would reach no detector.
    """
    with db.session() as session:
        topics = list(session.execute(sa.select(Topic).where(Topic.active == sa.true())).scalars())  # type: ignore[arg-type]
        missed = catch_up(session, topics, last_detection(session), now, tz=tz)
        changes = _one_per_alert([*missed, *detect_for_topics(session, topics, now, tz=tz)])
        _mark_detection(session, now if fetched_at is None else min(fetched_at, now))
    return changes


# --------------------------------------------------------------------------- charts


CHART_CONTEXT = timedelta(hours=5)  # baseline shown before the alert window
CHART_MIN = timedelta(hours=8)  # the shortest chart
CHART_MAX = timedelta(hours=24)  # the longest chart: hours, not days
CHART_BARS = 24  # at most this many bars ...
CHART_PEAK = 3  # ... and buckets widened (15 → 30 → 60 min) until the peak bar holds this many
BAND = 0.8  # the central predictive interval drawn as the expected band


@dataclass(frozen=True)
class ChartData:
    """What an alert chart draws: one topic's hours around the alert, as the detector saw them.

    Every list has one value per bar of ``bucket`` (15, 30 or 60 minutes: the shortest that
    gives at most 24 bars and a peak of at least 3 stories; bars never straddle the alert
    window's edges).
    ``expected``/``band_*`` are the seasonal predictive of each bucket given the buckets before
    it; inside the alert window they are the detector's prediction of the whole window (the
    level read before it), spread over its buckets by the seasonal profile, so the expected
    line over the window adds up to the baseline the alert text quotes.
    """

    topic_id: int
    bucket: timedelta
    bucket_starts: list[datetime]
    bar_ends: list[datetime]  # a bar ends early at the alert window's edge or at "now"
    stories: list[float]
    negative: list[float]  # the negative part of each bar (at most ``stories``)
    expected: list[float]
    band_low: list[float]
    band_high: list[float]
    forecast: Forecast  # the alert's stored forecast when there is an alert
    forecast_starts: list[datetime]
    forecast_expected: list[float]
    forecast_low: list[float]
    forecast_high: list[float]
    alert: Alert | None
    window_start: datetime | None
    window_end: datetime | None
    window_expected: float  # the detector's expected stories over the alert window
    window_stories: float  # counted stories in the alert window
    negative_share: float  # share of the alert window's stories that are negative
    now: datetime


def _chart_span(end: datetime, alert: Alert | None) -> datetime:
    """Start of the chart: the alert window and a few hours before it to compare, on the hour."""
    start = end - CHART_MIN if alert is None else alert.window_start - CHART_CONTEXT
    start = max(min(start, end - CHART_MIN), end - CHART_MAX)
    return datetime.fromtimestamp(start.timestamp() // 3600 * 3600, tz=start.tzinfo)


def _chart_step(stories: np.ndarray) -> int:
    """Buckets per bar: the smallest of 1, 2, 4 giving few enough bars and a readable peak."""
    if not len(stories):
        return 1
    for k in (1, 2):
        pooled = np.add.reduceat(stories, np.arange(0, len(stories), k))
        if len(pooled) <= CHART_BARS and pooled.max(initial=0) >= CHART_PEAK:
            return k
    return 4


def chart_data(
    session: Session,
    topic: Topic,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
    alert: Alert | None = None,
) -> ChartData:
    """The hours of ``topic`` around ``alert`` (default: its latest), as the detector saw them."""
    from scipy import stats

    assert topic.id is not None
    end = bucket_ceil(now)
    if alert is None:
        alert = session.execute(
            sa.select(Alert)
            .where(Alert.topic_id == topic.id)  # type: ignore[arg-type]
            .order_by(Alert.window_end.desc())  # type: ignore[attr-defined]
            .limit(1)
        ).scalar_one_or_none()
    full = real_series(session, [topic], now)[topic.id]
    cfg = DetectorConfig.for_sensitivity(topic.sensitivity)
    first = max(len(full) - int((end - _chart_span(end, alert)) / BUCKET), 0)
    w0 = w1 = len(full)
    if alert is not None:
        w0 = min(max(int((alert.window_start - full.start) / BUCKET), first), len(full))
        w1 = min(max(int((alert.window_end - full.start) / BUCKET), w0), len(full))
    k = _chart_step(full.stories[first:])
    # Bars never straddle the window's edges: they start at the window and step out from it.
    first = w0 - (w0 - first) // k * k if w0 > first else first
    edges = sorted(
        {*range(first, w0, k), *range(w0, w1, k), *range(w1, len(full), k), len(full)}
        - ({len(full)} if first == len(full) else set())
    )
    slots = full.slots(tz)
    base = _profile(full, tz, cfg)
    means, sizes = [], []
    window_expected = 0.0
    window_pred = None
    if base is not None and w1 > w0:
        window_pred = window_prediction(full, base, cfg, slots, w0, w1)
        window_mu = base.expected(slots[w0:w1], cfg.rate_floor)
        window_expected = window_pred.mean
    elif w1 > w0:  # cold start: the detector's rate from the history before the window
        window_expected = cold_rate(full.stories[:w0], cfg)[0] * (w1 - w0)
    for a, b in itertools.pairwise(edges):
        if base is None:
            # Cold start: each bucket geometric around the rate of the history before the bar
            # (the detector's predictive), so a bar of k buckets is negative binomial of size k.
            means.append(cold_rate(full.stories[:a], cfg)[0] * (b - a))
            sizes.append(float(b - a))
        elif window_pred is not None and w0 <= a < w1:
            # The detector's prediction of the whole window, spread by the seasonal profile;
            # one shared level, so each part keeps the window's gamma size.
            part = float(window_mu[a - w0 : b - w0].sum()) / max(float(window_mu.sum()), 1e-12)
            means.append(window_pred.mean * part)
            sizes.append(window_pred.size)
        else:
            r0 = max(a - cfg.level_span, 0)
            pred = predict(base, slots[a:b], full.stories[r0:a], slots[r0:a], cfg)
            means.append(pred.mean)
            sizes.append(pred.size)
    mean = np.array(means)
    size = np.array(sizes)
    finite = np.isfinite(size) & (mean > 0)
    n = np.where(finite, size, 1.0)
    p = n / (n + np.maximum(mean, 1e-9))
    tail = (1 - BAND) / 2
    low = np.where(finite, stats.nbinom.ppf(tail, n, p), 0.0)
    high = np.where(finite, stats.nbinom.ppf(1 - tail, n, p), 0.0)
    stories = [float(full.stories[a:b].sum()) for a, b in itertools.pairwise(edges)]
    negative = [
        float(np.minimum(full.negative[a:b], full.stories[a:b]).sum())
        for a, b in itertools.pairwise(edges)
    ]
    fc = _forecast(full)
    # The alert's own forecast (the numbers its text quotes) while it is current; a chart of an
    # alert that ended earlier continues from now with today's forecast.
    if alert is not None and alert.forecast and alert.window_end >= end - BUCKET:
        stored = alert.forecast
        fc = replace(
            fc,
            hours=float(stored.get("hours", fc.hours)),
            expected=float(stored.get("expected", fc.expected)),
            low=float(stored.get("low", fc.low)),
            high=float(stored.get("high", fc.high)),
        )
    total = sum(fc.per_bucket) or 1.0
    f_edges = list(range(0, len(fc.per_bucket), k))
    return ChartData(
        topic_id=topic.id,
        bucket=BUCKET * k,
        bucket_starts=[full.bucket_start(a) for a in edges[:-1]],
        bar_ends=[full.bucket_start(b) if b < len(full) else end for b in edges[1:]],
        stories=stories,
        negative=negative,
        expected=mean.tolist(),
        band_low=low.tolist(),
        band_high=high.tolist(),
        forecast=fc,
        forecast_starts=[end + BUCKET * i for i in f_edges],
        forecast_expected=[sum(fc.per_bucket[i : i + k]) * fc.expected / total for i in f_edges],
        forecast_low=[sum(fc.per_bucket[i : i + k]) * fc.low / total for i in f_edges],
        forecast_high=[sum(fc.per_bucket[i : i + k]) * fc.high / total for i in f_edges],
        alert=alert,
        window_start=alert.window_start if alert is not None else None,
        window_end=alert.window_end if alert is not None else None,
        window_expected=window_expected,
        window_stories=float(full.stories[w0:w1].sum()),
        negative_share=negative_share(full, alert.window_start, alert.window_end)
        if alert is not None
        else 0.0,
        now=end,
    )
