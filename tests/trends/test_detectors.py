"""Detectors on hand-made series: seasonality, floors, cold start, CUSUM, sentiment turns."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from scanner.detectors import (
    Detection,
    DetectorConfig,
    coherence_candidates,
    coherent_burst,
    fit_baseline,
    sentiment_turn,
    slow_buildup,
    volume_burst,
)
from scanner.series import TopicSeries

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # Monday 00:00 in Hà Nội
CFG = DetectorConfig()


def seasonal(
    days: int, day_rate: float = 2.0, night_rate: float = 0.1, seed: int = 0
) -> TopicSeries:
    """Poisson stories: busy 08:00-18:00 local, quiet otherwise; 3 outlets whenever busy."""
    rng = np.random.default_rng(seed)
    n = days * 96
    s = TopicSeries.empty(1, START, n)
    hours = s.slots(TZ) % 24
    rate = np.where((hours >= 8) & (hours < 18), day_rate, night_rate)
    s.stories = rng.poisson(rate).astype(float)
    s.outlets = np.minimum(s.stories, 3)
    s.articles = s.stories * 1.5
    s.negative = np.floor(s.stories * 0.2)
    return s


def with_last(s: TopicSeries, stories: float, outlets: float) -> TopicSeries:
    s.stories[-1], s.outlets[-1] = stories, outlets
    return s


def until(s: TopicSeries, hour_local: int, day: int) -> TopicSeries:
    """Cut the series so the current bucket is ``hour_local``:00 on ``day``."""
    return s.head(day * 96 + hour_local * 4 + 1)


def test_slots_follow_local_time_and_weekends() -> None:
    s = TopicSeries.empty(1, START, 7 * 96)
    slots = s.slots(TZ)
    assert slots[0] == 0  # Monday 00:00 local
    assert slots[8 * 4] == 8
    assert slots[5 * 96] == 24  # Saturday 00:00 -> weekend slot
    assert slots[6 * 96 + 10 * 4] == 34


def test_baseline_learns_day_night_profile() -> None:
    s = seasonal(14)
    base = fit_baseline(s.stories, s.slots(TZ), CFG)
    assert 1.6 < base.rate[10] < 2.4
    assert base.rate[3] < 0.3


def test_same_count_alerts_at_night_not_at_noon() -> None:
    night = with_last(until(seasonal(14), 2, 12), 6, 3)
    noon = with_last(until(seasonal(14), 12, 12), 6, 3)
    assert volume_burst(night, TZ, CFG).fired
    assert not volume_burst(noon, TZ, CFG).fired


def test_big_daytime_burst_fires_within_the_bucket() -> None:
    s = with_last(until(seasonal(14), 11, 12), 14, 6)
    d = volume_burst(s, TZ, CFG)
    assert d.fired and d.window == 1 and d.stats["method"] == "seasonal"


def test_quiet_night_floor_one_or_two_stories_never_alert() -> None:
    s = seasonal(14, night_rate=0.0)
    for stories in (1, 2):
        assert not volume_burst(with_last(until(s, 3, 12), stories, 2), TZ, CFG).fired


def test_two_bucket_night_spike_counts_distinct_outlets_of_the_window() -> None:
    """2 + 2 stories at 02:00 (2 outlets, then 1): four times nothing, from two outlets."""
    s = until(seasonal(14, night_rate=0.05), 2, 12)
    s.stories[-2:], s.outlets[-2:] = [2, 2], [2, 1]
    d = volume_burst(s, TZ, CFG)
    assert d.fired and d.window == 2


def test_a_past_weekend_step_does_not_become_next_weekends_profile() -> None:
    """Quiet topic, one Saturday with 3 stories a bucket 09:00-13:00: plausible bucket by bucket,
    not hour by hour. The next Saturday's 10:00 must not expect it again."""
    clean = seasonal(13, day_rate=0.4, night_rate=0.05, seed=3)
    stepped = seasonal(13, day_rate=0.4, night_rate=0.05, seed=3)
    sat = 5 * 96
    stepped.stories[sat + 36 : sat + 52] += 3
    slots = clean.slots(TZ)
    a = fit_baseline(clean.stories, slots, CFG).rate[24 + 10]
    b = fit_baseline(stepped.stories, slots, CFG).rate[24 + 10]
    assert b < a + 0.45  # without the hour clip: about +0.63


def test_single_outlet_is_not_a_burst() -> None:
    s = with_last(until(seasonal(14), 2, 12), 8, 1)
    assert not volume_burst(s, TZ, CFG).fired


def test_sensitivity_changes_the_level() -> None:
    s = with_last(until(seasonal(14), 12, 12), 8, 3)
    low = volume_burst(s, TZ, DetectorConfig.for_sensitivity("low"))
    high = volume_burst(s, TZ, DetectorConfig.for_sensitivity("high"))
    assert high.fired and not low.fired


def test_cold_start_uses_ewma_and_needs_some_history() -> None:
    s = seasonal(1)
    tiny = with_last(s.head(5), 10, 4)
    assert not volume_burst(tiny, TZ, CFG).fired  # too little history to say anything
    cold = with_last(s.head(60), 30, 8)
    d = volume_burst(cold, TZ, CFG)
    assert d.stats["method"] == "ewma" and d.fired
    calm = with_last(s.head(60), 2, 2)
    assert not volume_burst(calm, TZ, CFG).fired


def test_background_alone_rarely_fires() -> None:
    s = seasonal(21, seed=3)
    fired = sum(volume_burst(s.head(i), TZ, CFG).fired for i in range(14 * 96, 21 * 96, 3))
    assert fired <= 2


def test_cusum_catches_a_slow_build_up_the_burst_test_misses() -> None:
    s = until(seasonal(14, seed=5), 16, 12)
    n = len(s)
    s.stories[n - 24 :] = 4.0  # twice the usual rate for six hours, never a spike
    s.outlets[n - 24 :] = 3
    assert slow_buildup(s, TZ, CFG).fired
    assert not volume_burst(s, TZ, CFG).fired
    assert not slow_buildup(until(seasonal(14, seed=5), 16, 12), TZ, CFG).fired


def turn_fires(s: TopicSeries, since: int, *, negative: bool = True) -> int | None:
    """First bucket index >= ``since`` at which the turn detector fires on the series so far."""
    for i in range(since, len(s) + 1):
        if sentiment_turn(s.head(i), CFG, negative=negative).fired:
            return i - 1
    return None


def test_negative_turn_at_unchanged_volume() -> None:
    s = until(seasonal(14, seed=7), 16, 12)
    n = len(s)
    assert turn_fires(s, n - 40) is None
    s.negative[n - 16 :] = s.stories[n - 16 :]  # same volume, all negative
    at = turn_fires(s, n - 40)
    assert at is not None and at <= n - 12  # a few busy buckets are enough evidence
    d = sentiment_turn(s.head(at + 1), CFG)
    assert d.share > 0.9 and d.reference < 0.4 and d.stats["method"] == "cusum"
    assert turn_fires(s, n - 40, negative=False) is None


def test_positive_turn() -> None:
    s = until(seasonal(14, seed=8), 16, 12)
    n = len(s)
    s.positive[n - 16 :] = s.stories[n - 16 :]
    assert turn_fires(s, n - 16, negative=False) is not None


def test_turn_evidence_accumulates_across_buckets_on_a_quiet_topic() -> None:
    """One story an hour, 70 % negative against ~15 %: no single window holds much, but the
    sequential test adds the evidence up and fires within the day, after >= 8 stories."""
    rng = np.random.default_rng(21)
    s = until(seasonal(14, day_rate=0.3, night_rate=0.05, seed=21), 8, 12)
    s.negative[:] = (rng.random(len(s)) < 0.15) * s.stories
    n = len(s)
    extra = TopicSeries.empty(1, s.end, 48)
    extra.stories[::4] = 1  # one story an hour for 12 hours
    extra.negative[::4] = rng.random(12) < 0.75
    extra.negative[0:12:4] = 1
    joined = TopicSeries(
        1,
        s.start,
        s.bucket,
        np.concatenate([s.stories, extra.stories]),
        np.concatenate([s.outlets, np.minimum(extra.stories, 1)]),
        np.concatenate([s.negative, extra.negative]),
        np.concatenate([s.positive, extra.positive]),
        np.concatenate([s.articles, extra.stories]),
    )
    at = turn_fires(joined, n)
    assert at is not None
    # The alarm's run (the CUSUM's, or the day's for the exact day test) holds >= 8 stories.
    assert sentiment_turn(joined.head(at + 1), CFG).volume >= CFG.turn_min_stories


def test_turn_null_rarely_fires() -> None:
    """A stable 20 % negative share: simulated average run to a false turn (per direction)."""
    from scanner.detectors import turn_threshold

    h = turn_threshold(CFG)
    rng = np.random.default_rng(0)
    x = rng.random(200_000) < 0.2
    p0 = 0.2
    alarms = 0
    cusum = [0.0] * len(CFG.turn_lifts)
    for v in x:
        for j, lift in enumerate(CFG.turn_lifts):
            p1 = p0 + lift
            cusum[j] = max(
                0.0, cusum[j] + (math.log(p1 / p0) if v else math.log((1 - p1) / (1 - p0)))
            )
        if max(cusum) > h:
            alarms += 1
            cusum = [0.0] * len(CFG.turn_lifts)
    assert alarms <= 200_000 / 15_000


def test_detectors_are_causal() -> None:
    """Appending future buckets must not change what was decided about an earlier one."""
    s = with_last(until(seasonal(14), 11, 12), 14, 6)
    before = volume_burst(s, TZ, CFG)
    later = seasonal(14).head(len(s) + 20)
    later.stories[len(s) - 1], later.outlets[len(s) - 1] = 14, 6
    again = volume_burst(later.head(len(s)), TZ, CFG)
    assert before.score == again.score


def test_busy_day_level_is_not_a_burst_but_a_burst_on_it_is() -> None:
    """A day at 1.8x the usual level: the recent-level term absorbs it; a real burst still shows."""
    s = until(seasonal(14, seed=11), 15, 12)
    n = len(s)
    rng = np.random.default_rng(4)
    today = np.arange(n - 7 * 4 - 1, n)  # since 08:00 today
    s.stories[today] = rng.poisson(3.6, today.shape[0]).astype(float)
    s.outlets[today] = np.minimum(s.stories[today], 3)
    fired = sum(volume_burst(s.head(i), TZ, CFG).fired for i in range(n - 16, n + 1))
    assert fired == 0
    burst = with_last(s, 16, 8)
    d = volume_burst(burst, TZ, CFG)
    assert d.fired and d.stats["level"] > 1.1


def test_level_only_adapts_upward_after_a_quiet_spell() -> None:
    s = until(seasonal(14, seed=12), 14, 12)
    n = len(s)
    s.stories[n - 25 : n - 1] = 0  # six silent hours, then an ordinary bucket
    s.outlets[n - 25 : n - 1] = 0
    d = volume_burst(with_last(s, 3, 2), TZ, CFG)
    assert not d.fired and d.stats["level"] == 1.0


def test_young_topic_profile_is_uncertain_and_cautious() -> None:
    """With two days of history the slot estimates carry their uncertainty (wider predictive)."""
    young = seasonal(2, seed=13)
    old = seasonal(20, seed=13)
    b_young = fit_baseline(young.stories, young.slots(TZ), CFG)
    b_old = fit_baseline(old.stories, old.slots(TZ), CFG)
    assert b_young.shape[10] < b_old.shape[10]


def test_cold_start_morning_rise_is_not_a_burst() -> None:
    """First day: the gradual rise from a quiet night into the office day is not news."""
    profile = np.array([0.1] * 5 + [0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 0.9] + [0.8] * 6 + [0.4] * 6)
    fired = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        s = TopicSeries.empty(1, START, 96)
        s.stories = rng.poisson(1.5 * np.repeat(profile, 4)).astype(float)
        s.outlets = np.minimum(s.stories, 3)
        fired += sum(volume_burst(s.head(i), TZ, CFG).fired for i in range(9, 96))
    assert fired == 0


def test_negative_turn_on_a_quiet_topic_needs_enough_stories() -> None:
    s = until(seasonal(14, day_rate=0.3, night_rate=0.02, seed=15), 16, 12)
    n = len(s)
    s.negative[:] = 0
    s.negative[: n - 32] = np.floor(s.stories[: n - 32] * 0.5) * (np.arange(n - 32) % 5 == 0)
    s.stories[n - 32 :] = 0
    s.stories[n - 3 :] = 1
    s.negative[n - 3 :] = 1  # three negative stories: too few to call a turn
    assert turn_fires(s, n - 32) is None
    s.stories[n - 20 : n - 3] = np.where(np.arange(17) % 2 == 0, 1, 0)
    s.negative[n - 20 :] = s.stories[n - 20 :]  # twelve of twelve negative against ~10 %
    at = turn_fires(s, n - 32)
    assert at is not None
    assert sentiment_turn(s.head(at + 1), CFG).volume >= CFG.turn_min_stories


def test_predictive_tail_matches_scipy() -> None:
    from scipy import stats

    from scanner.detectors import predictive_tail

    assert abs(predictive_tail(6, 2.0, 3.0) - stats.nbinom.sf(5, 3.0, 3.0 / 5.0)) < 1e-12
    assert abs(predictive_tail(6, 2.0, math.inf) - stats.poisson.sf(5, 2.0)) < 1e-12


def _weak_noon_spike() -> Detection:
    """Seven stories at noon against about two: notable, not enough for volume alone."""
    d = volume_burst(with_last(until(seasonal(14, seed=21), 12, 12), 7, 5), TZ, CFG)
    assert not d.fired and 1e-3 < d.stats["windows"][1]["p"] < CFG.up_level
    return d


def test_coherent_burst_needs_volume_up_and_a_strong_shared_term() -> None:
    burst = _weak_noon_spike()
    assert 1 in coherence_candidates(burst, CFG)
    strong = {1: ("vỡ đập", 6, 5, 1e-8)}
    d = coherent_burst(burst, strong, CFG)
    assert d is not None and d.fired and d.window == 1
    assert d.stats["method"] == "coherent" and d.stats["term"] == "vỡ đập"
    assert d.stats["p"] < CFG.alpha  # the combined evidence is reported as the p-value
    # A term tail that would pass a plain test at alpha is not enough: stories cluster.
    assert coherent_burst(burst, {1: ("vỡ đập", 6, 5, 1e-4)}, CFG) is None
    assert coherent_burst(burst, {1: ("vỡ đập", 2, 2, 1e-8)}, CFG) is None  # too few stories
    assert coherent_burst(burst, {1: ("vỡ đập", 6, 2, 1e-8)}, CFG) is None  # too few outlets
    assert coherent_burst(burst, {1: ("vỡ đập", 3, 3, 1e-8)}, CFG) is not None  # three desks


def test_coherence_is_asked_only_when_volume_is_up() -> None:
    calm = volume_burst(with_last(until(seasonal(14, seed=21), 12, 12), 2, 2), TZ, CFG)
    assert coherence_candidates(calm, CFG) == []
    assert coherent_burst(calm, {1: ("vỡ đập", 6, 5, 1e-12)}, CFG) is None
    loud = volume_burst(with_last(until(seasonal(14), 11, 12), 14, 6), TZ, CFG)
    assert loud.fired and coherence_candidates(loud, CFG) == []  # already an alert


def test_qn_scale_is_the_standard_deviation_of_normal_data_and_robust() -> None:
    from scanner.detectors import qn_scale

    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 0.3, 400)
    assert abs(qn_scale(x) - np.std(x)) < 0.02
    spoiled = x.copy()
    spoiled[:40] = 5.0  # a tenth of the days are crises
    assert abs(qn_scale(spoiled) - np.std(x)) < 0.06
    assert np.std(spoiled) > 1.0  # the plain standard deviation is ruined


def test_level_spread_is_measured_on_calendar_days() -> None:
    """Gamma day levels (shape 8) on a busy topic: the spread is that of the days. Read off
    24-hour blocks that straddle two days (days starting at noon here), it looks about half."""
    from scanner.detectors import _level_shape

    days = 21
    slots = TopicSeries.empty(1, START, days * 96).slots(TZ)
    mu = np.full(days * 96, 50.0)
    cut = days * 96 - 40  # the history ends mid-day, as the profile's does
    for seed in range(3):
        level = np.repeat(np.random.default_rng(seed).gamma(8.0, 1 / 8.0, days), 96)
        x = (level * mu)[:cut]
        aligned = _level_shape(x, mu[:cut], slots[:cut], CFG)
        straddling = _level_shape(x, mu[:cut], np.roll(slots, 48)[:cut], CFG)
        assert 5.0 < aligned < 12.0 and straddling > 1.5 * aligned


def test_today_start_finds_the_local_midnight() -> None:
    from scanner.detectors import today_start

    hours = np.array([22, 22, 23, 23, 0, 0, 1])
    assert today_start(hours, 1) == 4  # today began at the wrap from 23 to 0
    assert today_start(hours[:4], 0) == 4  # the next bucket opens a new day: nothing of today
    assert today_start(np.array([5, 5, 6]), 6) == 0  # all of it is today
    assert today_start(np.array([29, 30, 30]), 30) == 0  # weekend slots: hour = slot % 24


def _noisy_days(days: int, seed: int) -> TopicSeries:
    """Office hours at 2 stories a bucket times a day level drawn from gamma(8) (CV 0.35)."""
    rng = np.random.default_rng(seed)
    s = TopicSeries.empty(1, START, days * 96)
    hours = s.slots(TZ) % 24
    level = np.repeat(rng.gamma(8.0, 1 / 8.0, days), 96)
    s.stories = rng.poisson(np.where((hours >= 8) & (hours < 18), 2.0, 0.1) * level).astype(float)
    s.outlets = np.minimum(s.stories, 3)
    return s


def test_a_busy_day_is_not_a_build_up() -> None:
    """Ten topics whose days vary (gamma, CV 0.35), each now at 1.8 times its usual level since
    midnight (1 in 60 days is that busy). Learned from yesterday evening, today's level was too
    sure and four of the ten alerted as build-ups by 17:00; from today's buckets, at most one."""
    fired_days = 0
    for seed in range(10):
        s = until(_noisy_days(14, 40 + seed), 17, 12)
        n = len(s)
        today = np.arange(n - 17 * 4 - 1, n)
        hours = s.slots(TZ)[today] % 24
        rate = np.where((hours >= 8) & (hours < 18), 2.0, 0.1) * 1.8
        s.stories[today] = np.random.default_rng(seed).poisson(rate).astype(float)
        s.outlets[today] = np.minimum(s.stories[today], 3)
        fired_days += any(slow_buildup(s.head(i), TZ, CFG).fired for i in range(n - 40, n + 1, 4))
    assert fired_days <= 1


def test_turn_norm_changes_once_a_day() -> None:
    """The norm is read off whole local days before the span: it does not jitter bucket by
    bucket (an alarm crossed only because the norm dipped was dated back past the hold)."""
    s = seasonal(14, seed=8)
    rng = np.random.default_rng(8)
    s.negative = np.floor(s.stories * (rng.random(len(s)) < 0.3))
    norms = {}
    for i in range(10 * 96 + 1, 12 * 96 + 1):
        d = sentiment_turn(s.head(i), CFG, tz=TZ)
        if "null_share" in d.stats or d.stats.get("reference_stories"):
            day = (i - 96) // 96  # the local day the span starts in (START is midnight)
            norms.setdefault(day, set()).add(round(d.reference, 12))
    assert norms and all(len(v) == 1 for v in norms.values())


def _quiet_topic(negative_today: list[int]) -> TopicSeries:
    """Fourteen working days of 12 stories (08:00-18:00 local, 2 of them negative), then a
    day whose stories are labelled negative where ``negative_today`` says (one a bucket)."""
    s = TopicSeries.empty(1, START, 15 * 96)
    at = [8 * 4 + round(i * 40 / 12) for i in range(12)]  # 08:00, 08:50, ... 17:10
    for day in range(15):
        for j, b in enumerate(at):
            s.stories[day * 96 + b] = 1
            if day < 14:
                s.negative[day * 96 + b] = float(j in (3, 9))
            else:
                s.negative[day * 96 + b] = float(negative_today[j])
    s.outlets = np.minimum(s.stories, 1)
    s.articles = s.stories.copy()
    return s


def test_turn_on_a_dozen_stories_a_day_is_found_when_the_labels_carry_it() -> None:
    """Nine negative stories of a working day's twelve against a 1-in-6 norm: an exact tail
    of ~1e-5, yet the CUSUM alone (8.6 nats against its norm's mean + 1 sd) never fired. The
    day's exact beta-binomial test finds it; three or six of twelve are no turn."""
    turned = _quiet_topic([0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1])
    fired = [
        i for i in range(14 * 96, 15 * 96) if sentiment_turn(turned.head(i + 1), CFG, tz=TZ).fired
    ]
    assert fired, "a turn carried by 9 of 12 labels was missed"
    d = sentiment_turn(turned.head(fired[0] + 1), CFG, tz=TZ)
    assert d.stats["method"] == "day" and d.stats["p"] < CFG.alpha and d.share >= 0.6
    assert d.volume >= CFG.turn_min_stories and d.stats["hits"] >= CFG.turn_min_hits
    for labels in ([0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0], [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]):
        usual = _quiet_topic(labels)
        assert not any(
            sentiment_turn(usual.head(i + 1), CFG, tz=TZ).fired for i in range(14 * 96, 15 * 96)
        )


def test_day_turn_tail_is_the_exact_beta_binomial_tail_times_the_looks() -> None:
    from scipy import stats

    from scanner.detectors import day_turn_tail

    total = 168 + CFG.turn_prior_weight
    exact = stats.betabinom.sf(8, 12, 0.15 * total, 0.85 * total)
    assert abs(day_turn_tail(9, 12, 0.15, 168, CFG) - 12 * exact) < 1e-15
    # An uncertain norm (few reference stories) gives a heavier tail than a known one.
    assert day_turn_tail(9, 12, 0.15, 30, CFG) > day_turn_tail(9, 12, 0.15, 3000, CFG)


def test_a_return_after_a_silent_spell_is_not_a_burst_but_a_burst_on_return_is() -> None:
    """Four ordinary days, six silent ones (the topic was out of the news), then a day at the
    usual level: not a burst (the silent days used to halve the profile, and the return
    alerted on every seed). A real spike on the return day still fires."""
    fired = 0
    for seed in range(3):
        s = seasonal(11, day_rate=2.0, night_rate=0.1, seed=seed)
        s.stories[4 * 96 : 10 * 96] = 0
        s.outlets[4 * 96 : 10 * 96] = 0
        for i in range(10 * 96 + 1, 11 * 96 + 1):
            fired += volume_burst(s.head(i), TZ, CFG).fired
            fired += slow_buildup(s.head(i), TZ, CFG).fired
    assert fired == 0
    spike = with_last(until(s, 11, 10), 16, 8)
    assert volume_burst(spike, TZ, CFG).fired


def test_silent_days_are_only_those_a_usual_day_makes_implausible() -> None:
    from scanner.detectors import silent_days

    busy = seasonal(10, day_rate=2.0, seed=3)
    busy.stories[3 * 96 : 5 * 96] = 0
    mask = silent_days(busy.stories, busy.slots(TZ), CFG)
    assert mask[3 * 96 : 5 * 96].all() and not mask[: 3 * 96].any() and mask.sum() == 2 * 96
    # One story every other day: an empty day is ordinary, nothing is left out.
    sparse = TopicSeries.empty(1, START, 10 * 96)
    sparse.stories[40 :: 2 * 96] = 1
    assert not silent_days(sparse.stories, sparse.slots(TZ), CFG).any()
