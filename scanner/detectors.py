"""Trend detectors: small pure functions of past and current buckets (causal by construction).

Each detector takes a :class:`~scanner.series.TopicSeries` whose last element is the current
bucket and returns a :class:`Detection` (``fired`` plus the numbers an alert shows). Nothing here
reads the database or the clock, so detectors are unit-tested on hand-made series and the
benchmark can run them on millions of buckets.

The count model behind the volume detectors
-------------------------------------------
Stories per bucket are Poisson with rate ``level × profile(slot)``:

* ``profile`` is the seasonal expectation per slot (local hour × weekday/weekend), learned from
  the topic's past with hierarchical shrinkage (slot → smoothed hour of day → overall rate). Its
  estimation uncertainty is kept as a gamma shape per slot, so a profile learned from two days is
  trusted less than one learned from four weeks: the test is automatically cautious while a topic
  is young, instead of switching from "no model" to "full trust" at a fixed day.
* ``level`` is today's multiplier: news days differ (a busy day lifts every daytime bucket). It
  has a gamma prior of mean 1 whose shape is estimated from the topic's own day-to-day swings, and
  a posterior from the recent buckets *before* the tested window, discounted with a half-life of
  a few hours (West & Harrison's discount form of the gamma–Poisson model). The level only adapts
  upward: a slow or silent spell (a quiet night, a holiday) must not make ordinary volume look
  like a burst when it resumes.

Integrating the gamma uncertainty out gives a negative binomial predictive for the window's total,
whose upper tail is the burst p-value. News counts are overdispersed mainly because of the level,
and this form (variance ``m + m²/size``) is the right shape for it, unlike a constant variance
multiplier.

Detectors
---------
* **volume burst**: the smallest predictive tail probability over windows of 1, 2 and 4 buckets,
  Bonferroni-corrected, below the sensitivity's level; the window needs ``min_stories`` distinct
  stories from on average ``min_outlets`` outlets per bucket. Under one day of history an EWMA
  z-score on stories (ten times stricter) stands in.
* **slow build-up**: a CUSUM of the log-likelihood ratio "rate doubled", against the same
  level-adjusted baseline (level taken before the CUSUM span), scaled for overdispersion.
* **sentiment turn**: the negative (positive) count among the stories of the last 1–8 hours,
  tested with the beta-binomial predictive of the topic's previous 7 days (the reference share is
  itself uncertain on a quiet topic), with a minimum number of stories and a minimum lift in
  share. Volume plays no part, so a turn at unchanged volume is seen.
* **baselines** (benchmark only): a fixed threshold and a plain EWMA z-score on raw article
  counts, which is what naive monitors do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import numpy as np
from scipy import special, stats

from scanner.series import TopicSeries

SENSITIVITY_ALPHA: dict[str, float] = {"low": 1e-4, "medium": 1e-3, "high": 1e-2}
N_SLOTS = 48  # 24 hours × (weekday, weekend)
DAY = 96  # buckets of 15 minutes


def alpha_for(sensitivity: str) -> float:
    """The tail-probability level of a topic's sensitivity (unknown values mean medium)."""
    return SENSITIVITY_ALPHA.get(str(sensitivity), SENSITIVITY_ALPHA["medium"])


@dataclass(frozen=True)
class DetectorConfig:
    """Tuning shared by the detectors; defaults are the medium sensitivity."""

    alpha: float = 1e-3
    windows: tuple[int, ...] = (1, 2, 4)  # buckets summed by the volume test
    min_stories: int = 3  # a window needs this many distinct stories to alert at all
    min_outlets: float = 2.0  # mean distinct outlets per bucket over the window
    rate_floor: float = 0.1  # stories per bucket: the least a baseline may expect
    prior_buckets: float = 8.0  # shrinkage strength of a slot toward its hour of day
    hour_prior_buckets: float = 2.0  # shrinkage of an hour of day toward the overall rate
    guard: int = 32  # recent buckets kept out of the seasonal profile (8 h)
    min_history: int = DAY  # buckets of profile history before the seasonal model is used
    min_cold_history: int = 8  # below this, no volume alert at all
    max_history: int = 28 * DAY
    level_half_life: float = 24.0  # buckets (6 h): how fast today's level forgets
    level_span: int = DAY  # recent buckets that inform today's level
    level_shape_default: float = 4.0  # prior shape of the level until 3 days show the swings
    level_shape_bounds: tuple[float, float] = (2.0, 100.0)
    ewma_alpha: float = 0.05
    cusum_rho: float = 2.0
    cusum_h: float = 10.0
    cusum_span: int = 32
    turn_windows: tuple[int, ...] = (4, 8, 16, 32)
    turn_min_stories: int = 5
    turn_min_hits: int = 4
    turn_min_lift: float = 0.2  # share must exceed the reference share by this much
    turn_null_shift: float = 0.0  # tested null: the reference share plus this much
    turn_reference: int = 7 * DAY
    turn_prior_weight: float = 10.0  # pseudo-stories of the prior share
    turn_min_reference: int = 20  # stories before the window: a topic needs a norm to turn from

    @classmethod
    def for_sensitivity(cls, sensitivity: str, **overrides: Any) -> DetectorConfig:
        alpha = alpha_for(sensitivity)
        # CUSUM threshold follows the same sensitivity: about -ln(alpha) nats of evidence.
        return cls(alpha=alpha, cusum_h=-math.log(alpha) + 3.1, **overrides)


@dataclass
class Detection:
    """What a detector saw on the current bucket."""

    kind: str
    fired: bool
    score: float  # -log10 of the tail probability (or its equivalent); higher = stronger
    window: int  # buckets in the window that decided
    volume: float  # stories in that window
    baseline: float  # expected stories in that window
    share: float = 0.0  # sentiment share in the window (turn detectors)
    reference: float = 0.0  # reference share (turn detectors)
    stats: dict[str, Any] = field(default_factory=dict)


def _score(p: float) -> float:
    return float(-math.log10(max(p, 1e-300)))


# --------------------------------------------------------------------------- the count model


@dataclass(frozen=True)
class Baseline:
    """Seasonal profile of a topic, learned from the past, with its uncertainty."""

    rate: np.ndarray  # expected stories per bucket for each slot (long-run level = 1)
    shape: np.ndarray  # gamma shape of each slot's rate estimate (larger = better known)
    overall: float
    level_shape: float  # prior gamma shape of the day's level (1 / squared CV of daily swings)
    history: int

    @property
    def dispersion(self) -> float:
        """Variance-to-mean ratio of an hour's count at the overall rate (for display)."""
        hour = 4 * max(self.overall, 1e-9)
        return 1.0 + hour / self.level_shape

    def expected(self, slots: np.ndarray, floor: float) -> np.ndarray:
        return np.maximum(self.rate[slots], floor)

    def inv_shape(self, slots: np.ndarray) -> np.ndarray:
        return 1.0 / np.maximum(self.shape[slots], 1e-9)


def _smooth_circular(values: np.ndarray) -> np.ndarray:
    return 0.25 * np.roll(values, 1) + 0.5 * values + 0.25 * np.roll(values, -1)


def fit_baseline(values: np.ndarray, slots: np.ndarray, cfg: DetectorConfig) -> Baseline:
    """Seasonal rate per slot with hierarchical shrinkage, a robust clip and the level's spread.

    A slot (hour × weekday/weekend) is shrunk toward its hour of day (smoothed over neighbouring
    hours, scaled by the weekday/weekend ratio), which is shrunk toward the topic's overall rate:
    a slot seen twice borrows most of its estimate from its neighbours, a slot seen twenty times
    stands on its own. Past values are clipped so that yesterday's burst does not blind today's
    test. The spread of the day-to-day level is estimated from 24-hour blocks, net of Poisson
    noise (method of moments).
    """
    n = values.shape[0]
    floor = cfg.rate_floor
    if n == 0:
        return Baseline(
            np.full(N_SLOTS, floor), np.full(N_SLOTS, 1.0), floor, cfg.level_shape_default, 0
        )
    raw_mean = float(values.mean())
    clipped = np.minimum(values, 4.0 * raw_mean + 3.0)
    overall = float(clipped.mean())
    weekend = slots >= 24
    hours = slots % 24
    k = cfg.prior_buckets
    part = np.array([clipped[~weekend].sum(), clipped[weekend].sum()])
    part_n = np.array([(~weekend).sum(), weekend.sum()])
    part_rate = (part + k * 4 * overall) / (part_n + k * 4)
    scale = part_rate / max(overall, 1e-9)
    hour_sum = _smooth_circular(np.bincount(hours, weights=clipped, minlength=24))
    hour_n = _smooth_circular(np.bincount(hours, minlength=24).astype(float))
    k0 = cfg.hour_prior_buckets
    hour_rate = (hour_sum + k0 * overall) / (hour_n + k0)
    prior = np.concatenate([hour_rate * scale[0], hour_rate * scale[1]])
    slot_sum = np.bincount(slots, weights=clipped, minlength=N_SLOTS)
    slot_n = np.bincount(slots, minlength=N_SLOTS).astype(float)
    rate = (slot_sum + k * prior) / (slot_n + k)
    # The prior's own weight: the hour-of-day estimate pools about 2 hour-slots of data.
    hour_weight = np.concatenate([hour_n, hour_n]) / 2.0
    counting = np.maximum(rate, floor) * (slot_n + np.minimum(k, hour_weight) + 1.0)
    level_shape = _level_shape(clipped, np.maximum(rate[slots], floor), cfg)
    # A slot's estimate averages its days, each with its own level: both noises count.
    days = np.maximum(slot_n / 4.0, 0.0) + np.minimum(k, hour_weight) / 4.0 + 0.25
    shape = 1.0 / (1.0 / counting + 1.0 / (level_shape * days))
    return Baseline(rate, shape, overall, level_shape, n)


def _level_shape(x: np.ndarray, mu: np.ndarray, cfg: DetectorConfig) -> float:
    days = x.shape[0] // DAY
    if days < 3:
        return cfg.level_shape_default
    cut = x.shape[0] - days * DAY  # whole 24-hour blocks ending at the most recent bucket
    xs = x[cut:].reshape(days, DAY).sum(axis=1)
    ms = mu[cut:].reshape(days, DAY).sum(axis=1)
    ratio = xs / ms
    cv2 = float(np.var(ratio, ddof=1) - np.mean(ratio / ms))
    lo, hi = cfg.level_shape_bounds
    return float(min(max(1.0 / max(cv2, 1e-9), lo), hi))


@dataclass(frozen=True)
class Level:
    """Posterior of today's level: gamma with this shape and rate (mean ``shape / rate``)."""

    shape: float
    rate: float

    @property
    def mean(self) -> float:
        return self.shape / self.rate


def recent_level(
    values: np.ndarray, expected: np.ndarray, base: Baseline, cfg: DetectorConfig
) -> Level:
    """Today's level from ``values`` (the buckets just before the tested window, oldest first).

    Discounted gamma–Poisson update; each bucket is clipped at a generous multiple of its
    expectation so a recent burst lifts the level only moderately. Floored at 1 (upward only).
    """
    a0 = base.level_shape
    m = values.shape[0]
    if m == 0:
        return Level(a0, a0)
    weights = 0.5 ** (np.arange(m)[::-1] / cfg.level_half_life)
    x = np.minimum(values, 3.0 * expected + 2.0)
    a = a0 + float(weights @ x)
    b = a0 + float(weights @ expected)
    return Level(a, min(a, b))


def predictive_tail(x: float, mean: float, size: float) -> float:
    """P(X >= x) for a negative binomial with this mean and size (Poisson when size is huge)."""
    if x <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if size > 1e6:
        return float(special.gammainc(x, mean))
    return float(special.betainc(x, size, mean / (size + mean)))


def upper_tail(x: float, mu: float, dispersion: float) -> float:
    """P(X >= x) for a count with mean ``mu`` and variance ``dispersion * mu``.

    Poisson when ``dispersion`` is 1, else the negative binomial with that variance.
    """
    if dispersion <= 1.02:
        return predictive_tail(x, mu, math.inf)
    return predictive_tail(x, mu, mu / (dispersion - 1.0))


@dataclass(frozen=True)
class Prediction:
    """Predictive distribution of the next ``len(mu)`` buckets' total."""

    mean: float
    size: float
    level: float

    def tail(self, x: float) -> float:
        return predictive_tail(x, self.mean, self.size)

    def quantile(self, q: float) -> float:
        p = self.size / (self.size + self.mean) if self.mean > 0 else 1.0
        return float(stats.nbinom.ppf(q, self.size, p)) if self.mean > 0 else 0.0


def predict(
    base: Baseline,
    slots: np.ndarray,
    recent: np.ndarray,
    recent_slots: np.ndarray,
    cfg: DetectorConfig,
) -> Prediction:
    """Predictive of the total over ``slots`` given the ``recent`` buckets just before them."""
    mu = base.expected(slots, cfg.rate_floor)
    lvl = recent_level(recent, base.expected(recent_slots, cfg.rate_floor), base, cfg)
    m = float(mu.sum())
    inv_param = float((mu * base.inv_shape(slots)).sum() / max(m, 1e-12))
    size = 1.0 / (1.0 / lvl.shape + inv_param)
    return Prediction(m * lvl.mean, size, lvl.mean)


# --------------------------------------------------------------------------- volume


def _history(series: TopicSeries, tz: tzinfo, cfg: DetectorConfig) -> tuple[np.ndarray, int, int]:
    """Slots of the whole series, and [lo, cut): the past the profile learns from."""
    slots = series.slots(tz)
    cut = max(len(series) - cfg.guard, 0)
    return slots, max(cut - cfg.max_history, 0), cut


def volume_burst(
    series: TopicSeries, tz: tzinfo, cfg: DetectorConfig, base: Baseline | None = None
) -> Detection:
    """Is the current bucket (or the last 2 or 4) far above what this hour usually brings?

    The smallest predictive tail probability over the windows is Bonferroni-corrected and
    compared with ``cfg.alpha``. A window must also hold ``cfg.min_stories`` distinct stories
    from, on average, ``cfg.min_outlets`` outlets per bucket.
    """
    n = len(series)
    history = n - 1
    if history < cfg.min_cold_history:
        return Detection(
            "volume_burst",
            False,
            0.0,
            1,
            float(series.stories[-1:].sum()),
            0.0,
            stats={"method": "none", "history": history},
        )
    slots, lo, cut = _history(series, tz, cfg)
    if cut - lo < cfg.min_history:
        return _ewma_burst(series, cfg)
    if base is None:
        base = fit_baseline(series.stories[lo:cut], slots[lo:cut], cfg)
    best: Detection | None = None
    for w in cfg.windows:
        if w >= n:
            continue
        r0 = max(n - w - cfg.level_span, 0)
        pred = predict(base, slots[n - w :], series.stories[r0 : n - w], slots[r0 : n - w], cfg)
        x = float(series.stories[-w:].sum())
        p = min(pred.tail(x) * len(cfg.windows), 1.0)
        outlets = float(series.outlets[-w:].mean())
        ok = x >= cfg.min_stories and outlets >= cfg.min_outlets
        d = Detection(
            "volume_burst",
            ok and p < cfg.alpha,
            _score(p),
            w,
            x,
            pred.mean,
            stats={
                "method": "seasonal",
                "p": p,
                "level": pred.level,
                "size": pred.size,
                "overall_rate": base.overall,
                "mean_outlets": outlets,
            },
        )
        if best is None or (d.fired, d.score) > (best.fired, best.score):
            best = d
    assert best is not None
    return best


def _ewma(values: np.ndarray, alpha: float, start: float) -> tuple[float, float]:
    """Exponentially weighted mean and variance of ``values`` (oldest first)."""
    mean, var = start, start
    for v in values:
        diff = v - mean
        incr = alpha * diff
        mean += incr
        var = (1 - alpha) * (var + diff * incr)
    return mean, var


def _ewma_burst(series: TopicSeries, cfg: DetectorConfig) -> Detection:
    """Cold start: the current bucket against an EWMA of the past, with a geometric tail.

    Without a seasonal profile the rate of the next bucket is unknown within a wide range (the
    morning rise alone is tenfold), so the predictive is the widest sensible one: a Poisson whose
    rate is exponentially distributed around the larger of the EWMA mean and the mean of all
    history (a geometric distribution, ``P(X >= x) = (m / (1 + m)) ** x``).
    """
    past = series.stories[:-1]
    mean, var = _ewma(past, cfg.ewma_alpha, float(past[: min(8, len(past))].mean()))
    m = max(mean, float(past.mean()), cfg.rate_floor)
    x = float(series.stories[-1])
    p = (m / (1.0 + m)) ** x if x > 0 else 1.0
    z = (x - m) / math.sqrt(max(var, m))
    ok = x >= cfg.min_stories and series.outlets[-1] >= cfg.min_outlets
    return Detection(
        "volume_burst",
        ok and p < cfg.alpha,
        _score(p),
        1,
        x,
        m,
        stats={"method": "ewma", "z": z, "p": p, "history": len(past)},
    )


def slow_buildup(
    series: TopicSeries, tz: tzinfo, cfg: DetectorConfig, base: Baseline | None = None
) -> Detection:
    """CUSUM over the last ``cfg.cusum_span`` buckets against the level-adjusted baseline.

    Each bucket adds its log-likelihood ratio for "rate is ``rho`` times the baseline", divided
    by the bucket's overdispersion; the sum restarts at zero whenever the evidence turns negative.
    Today's level is taken from the buckets before the span, so the build-up cannot explain
    itself away. The run since the last restart must hold ``2 * min_stories`` stories, so
    night-time singles never add up.
    """
    n = len(series)
    slots, lo, cut = _history(series, tz, cfg)
    if cut - lo < cfg.min_history:
        return Detection("slow_buildup", False, 0.0, 0, 0.0, 0.0, stats={"method": "none"})
    if base is None:
        base = fit_baseline(series.stories[lo:cut], slots[lo:cut], cfg)
    span = min(cfg.cusum_span, n)
    r0 = max(n - span - cfg.level_span, 0)
    lvl = recent_level(
        series.stories[r0 : n - span],
        base.expected(slots[r0 : n - span], cfg.rate_floor),
        base,
        cfg,
    )
    x = series.stories[-span:]
    mu = base.expected(slots[-span:], cfg.rate_floor) * lvl.mean
    over = 1.0 + mu * (1.0 / lvl.shape + base.inv_shape(slots[-span:]))
    inc = (x * math.log(cfg.cusum_rho) - (cfg.cusum_rho - 1.0) * mu) / over
    s, run_start = 0.0, 0
    for i, v in enumerate(inc):
        s = s + float(v)
        if s <= 0:
            s, run_start = 0.0, i + 1
    run = slice(run_start, span)
    volume = float(x[run].sum())
    expected = float(mu[run].sum())
    outlets = float(series.outlets[-span:][run].mean()) if run_start < span else 0.0
    ok = volume >= 2 * cfg.min_stories and outlets >= cfg.min_outlets
    # The CUSUM finds where the rise began; whether the run's total is really more than a busy
    # day brings is then asked of the negative binomial predictive (today's level is uncertain).
    p = 1.0
    if ok and s > cfg.cusum_h:
        inv_param = float(
            (mu[run] * base.inv_shape(slots[-span:][run])).sum() / max(expected, 1e-12)
        )
        p = predictive_tail(volume, expected, 1.0 / (1.0 / lvl.shape + inv_param))
    # Express the statistic on the same scale as the others: ln-evidence -> log10.
    return Detection(
        "slow_buildup",
        ok and s > cfg.cusum_h and p < cfg.alpha,
        s / math.log(10),
        span - run_start,
        volume,
        expected,
        stats={
            "method": "cusum",
            "cusum": s,
            "h": cfg.cusum_h,
            "p": p,
            "level": lvl.mean,
            "mean_outlets": outlets,
        },
    )


# --------------------------------------------------------------------------- sentiment


def sentiment_turn(
    series: TopicSeries,
    cfg: DetectorConfig,
    *,
    negative: bool = True,
    prior_share: float | None = None,
) -> Detection:
    """Has the negative (or positive) share of recent stories risen above the topic's own norm?

    The reference is the ``cfg.turn_reference`` buckets before the longest window, as a beta
    posterior around ``prior_share`` (a topic with ten stories a week has no share of its own
    yet, and its share is uncertain). Each window of ``cfg.turn_windows`` pools the recent
    stories and gets a one-sided beta-binomial test; the smallest p-value is
    Bonferroni-corrected. A window needs ``turn_min_stories`` stories, ``turn_min_hits`` of them
    with the label, and a share at least ``turn_min_lift`` above the reference.
    """
    kind = "negative_turn" if negative else "positive_turn"
    hits_all = series.negative if negative else series.positive
    prior = prior_share if prior_share is not None else (0.2 if negative else 0.25)
    longest = max(cfg.turn_windows)
    ref_end = max(len(series) - longest, 0)
    ref_start = max(ref_end - cfg.turn_reference, 0)
    ref_n = float(series.stories[ref_start:ref_end].sum())
    ref_k = float(min(hits_all[ref_start:ref_end].sum(), ref_n))
    a = ref_k + cfg.turn_prior_weight * prior
    b = ref_n - ref_k + cfg.turn_prior_weight * (1.0 - prior)
    p0 = a / (a + b)
    p_null = min(p0 + cfg.turn_null_shift, 0.95)
    a1, b1 = p_null * (a + b), (1.0 - p_null) * (a + b)
    best: Detection | None = None
    for w in cfg.turn_windows:
        n = round(float(series.stories[-w:].sum()))
        k = min(round(float(hits_all[-w:].sum())), n)
        share = k / n if n else 0.0
        ok = (
            ref_n >= cfg.turn_min_reference
            and n >= cfg.turn_min_stories
            and k >= cfg.turn_min_hits
            and share >= p0 + cfg.turn_min_lift
        )
        p = (
            min(float(stats.betabinom.sf(k - 1, n, a1, b1)) * len(cfg.turn_windows), 1.0)
            if ok
            else 1.0
        )
        d = Detection(
            kind,
            ok and p < cfg.alpha,
            _score(p),
            w,
            float(n),
            p0 * n,
            share=share,
            reference=p0,
            stats={"p": p, "hits": k, "reference_stories": ref_n},
        )
        if best is None or (d.fired, d.score, share) > (best.fired, best.score, best.share):
            best = d
    assert best is not None
    return best


# --------------------------------------------------------------------------- naive baselines


def fixed_threshold(articles: np.ndarray, threshold: float) -> bool:
    """Baseline 1: alert when the current bucket holds at least ``threshold`` raw articles."""
    return bool(articles.shape[0] and articles[-1] >= threshold)


def ewma_zscore_raw(
    articles: np.ndarray, *, alpha: float = 0.05, z: float = 3.0, min_count: float = 3.0
) -> bool:
    """Baseline 2: EWMA z-score of raw article counts (no dedupe, no seasonality)."""
    if articles.shape[0] < 9:
        return False
    mean, var = _ewma(articles[:-1], alpha, float(articles[:8].mean()))
    x = float(articles[-1])
    return x >= min_count and (x - mean) / math.sqrt(max(var, 0.25)) > z
