"""Trend detectors: small pure functions of past and current buckets (causal by construction).

Each detector takes a :class:`~scanner.series.TopicSeries` whose last element is the current
bucket and returns a :class:`Detection` (``fired`` plus the numbers an alert shows). Nothing here
reads the database or the clock, so detectors are unit-tested on hand-made series and the
benchmark can run them on millions of buckets.

Why these detectors:

* **volume burst**: news volume follows the office day (morning peak, quiet nights, slow
  weekends), so a fixed threshold either misses daytime bursts or screams at night. The baseline
  is learned per seasonal slot (local hour × weekday/weekend), shrunk toward the topic's overall
  rate where a slot has little data, and floored so that one story on a quiet night is never
  "infinitely unlikely". The tail probability uses a negative binomial whose dispersion is
  estimated from the topic's own past, because news counts are burstier than Poisson; with no
  overdispersion it is exactly Poisson. While a topic has too little history for a seasonal
  profile, an EWMA z-score stands in.
* **slow build-up**: a Poisson CUSUM (log-likelihood ratio for a doubled rate) accumulates small
  excesses that no single bucket shows.
* **sentiment turn**: a binomial test of the negative (or positive) share of recent stories
  against the topic's own 7-day share, at any volume.
* **baselines** (for the benchmark only): a fixed threshold and a plain EWMA z-score on raw
  article counts, which is what naive monitors do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import numpy as np
from scipy import stats

from scanner.series import TopicSeries

SENSITIVITY_ALPHA: dict[str, float] = {"low": 1e-4, "medium": 1e-3, "high": 1e-2}
N_SLOTS = 48  # 24 hours × (weekday, weekend)


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
    rate_floor: float = 0.15  # stories per bucket: the least a baseline may expect
    prior_buckets: float = 8.0  # shrinkage strength toward the broader rate
    guard: int = 32  # recent buckets kept out of the baseline (8 h), so a build-up can't hide
    min_history: int = 2 * 96  # buckets of history before the seasonal baseline is trusted
    min_cold_history: int = 8  # below this, no volume alert at all
    max_history: int = 28 * 96
    ewma_alpha: float = 0.05
    cusum_rho: float = 2.0
    cusum_h: float = 10.0
    cusum_span: int = 32
    turn_windows: tuple[int, ...] = (4, 8, 16, 32)
    turn_min_stories: int = 6
    turn_min_hits: int = 4
    turn_min_lift: float = 0.2  # share must exceed the reference share by this much
    turn_reference: int = 7 * 96
    turn_prior_weight: float = 20.0

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


@dataclass(frozen=True)
class Baseline:
    """Expected stories per bucket for each seasonal slot, learned from the past."""

    rate: np.ndarray
    overall: float
    dispersion: float
    history: int

    def expected(self, slots: np.ndarray, floor: float) -> np.ndarray:
        return np.maximum(self.rate[slots], floor)


def fit_baseline(values: np.ndarray, slots: np.ndarray, cfg: DetectorConfig) -> Baseline:
    """Seasonal rate per slot with two-level shrinkage and a robust clip.

    Each slot (hour × weekday/weekend) is shrunk toward its hour-of-day rate, scaled by the
    weekday/weekend ratio, which is in turn shrunk toward the topic's overall rate: a slot seen
    five times borrows most of its estimate from its neighbours, a slot seen fifty times stands
    on its own. Past values are clipped so that yesterday's burst does not blind today's test.
    """
    n = values.shape[0]
    if n == 0:
        return Baseline(np.full(N_SLOTS, cfg.rate_floor), cfg.rate_floor, 1.0, 0)
    raw_mean = float(values.mean())
    clipped = np.minimum(values, 4.0 * raw_mean + 3.0)
    overall = float(clipped.mean())
    k = cfg.prior_buckets
    weekend = slots >= 24
    hours = slots % 24
    part = np.array([clipped[~weekend].sum(), clipped[weekend].sum()])
    part_n = np.array([(~weekend).sum(), weekend.sum()])
    part_rate = (part + k * 4 * overall) / (part_n + k * 4)
    scale = part_rate / max(overall, 1e-9)
    hour_sum = np.bincount(hours, weights=clipped, minlength=24)
    hour_n = np.bincount(hours, minlength=24)
    hour_rate = (hour_sum + k * overall) / (hour_n + k)
    slot_sum = np.bincount(slots, weights=clipped, minlength=N_SLOTS)
    slot_n = np.bincount(slots, minlength=N_SLOTS)
    prior = (
        np.concatenate([hour_rate * scale[0], hour_rate * scale[1]])
        if overall > 0
        else np.zeros(N_SLOTS)
    )
    rate = (slot_sum + k * prior) / (slot_n + k)
    mu = np.maximum(rate[slots], cfg.rate_floor)
    # Dispersion from hourly sums: day-to-day swings in a topic's level hardly show in one
    # 15-minute bucket but dominate a window of several, so estimate it where it shows.
    hours_n = n // 4
    if hours_n >= 24:
        xs = clipped[: hours_n * 4].reshape(hours_n, 4).sum(axis=1)
        ms = mu[: hours_n * 4].reshape(hours_n, 4).sum(axis=1)
        pearson = float(np.mean((xs - ms) ** 2 / ms))
    else:
        pearson = 1.0
    dispersion = float(min(max(pearson, 1.0), 5.0))
    return Baseline(rate, overall, dispersion, n)


def upper_tail(x: float, mu: float, dispersion: float) -> float:
    """P(X >= x) for a count with mean ``mu`` and variance ``dispersion * mu``.

    Poisson when ``dispersion`` is 1, else the negative binomial with that variance.
    """
    if x <= 0:
        return 1.0
    if dispersion <= 1.02:
        return float(stats.poisson.sf(x - 1, mu))
    size = mu / (dispersion - 1.0)
    return float(stats.nbinom.sf(x - 1, size, 1.0 / dispersion))


def _split(
    series: TopicSeries, tz: tzinfo, cfg: DetectorConfig
) -> tuple[np.ndarray, np.ndarray, int]:
    """Slots of the whole series and the index where the recent (guarded) part starts."""
    slots = series.slots(tz)
    cut = max(len(series) - cfg.guard, 0)
    return slots, slots[max(cut - cfg.max_history, 0) : cut], cut


def volume_burst(series: TopicSeries, tz: tzinfo, cfg: DetectorConfig) -> Detection:
    """Is the current bucket (or the last 2 or 4) far above what this hour usually brings?

    The smallest tail probability over the windows is Bonferroni-corrected and compared with
    ``cfg.alpha``. A window must also hold ``cfg.min_stories`` distinct stories from, on average,
    ``cfg.min_outlets`` outlets per bucket.
    """
    n = len(series)
    slots, past_slots, cut = _split(series, tz, cfg)
    past = series.stories[max(cut - cfg.max_history, 0) : cut]
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
    if past.shape[0] < cfg.min_history:
        return _ewma_burst(series, cfg)
    base = fit_baseline(past, past_slots, cfg)
    mu_all = base.expected(slots[-max(cfg.windows) :], cfg.rate_floor)
    best: Detection | None = None
    for w in cfg.windows:
        if w > n:
            continue
        x = float(series.stories[-w:].sum())
        mu = float(mu_all[-w:].sum())
        p = min(upper_tail(x, mu, base.dispersion) * len(cfg.windows), 1.0)
        outlets = float(series.outlets[-w:].mean())
        ok = x >= cfg.min_stories and outlets >= cfg.min_outlets
        d = Detection(
            "volume_burst",
            ok and p < cfg.alpha,
            _score(p),
            w,
            x,
            mu,
            stats={
                "method": "seasonal",
                "p": p,
                "dispersion": base.dispersion,
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
    """Cold start: z-score of the current bucket against an EWMA of the past (no seasonality)."""
    past = series.stories[:-1]
    mean, var = _ewma(past, cfg.ewma_alpha, float(past[: min(8, len(past))].mean()))
    x = float(series.stories[-1])
    sd = math.sqrt(max(var, mean, cfg.rate_floor))
    z = (x - max(mean, cfg.rate_floor)) / sd
    p = float(stats.norm.sf(z))
    ok = x >= cfg.min_stories and series.outlets[-1] >= cfg.min_outlets
    # No seasonality yet, so every morning looks like a rise: ask for ten times more evidence.
    return Detection(
        "volume_burst",
        ok and p < cfg.alpha / 10,
        _score(p),
        1,
        x,
        mean,
        stats={"method": "ewma", "z": z, "p": p, "history": len(past)},
    )


def slow_buildup(series: TopicSeries, tz: tzinfo, cfg: DetectorConfig) -> Detection:
    """Poisson CUSUM over the last ``cfg.cusum_span`` buckets against the seasonal baseline.

    Each bucket adds its log-likelihood ratio for "rate is ``rho`` times the baseline" (divided by
    the dispersion); the sum restarts at zero whenever the evidence turns negative. The run since
    the last restart must hold ``2 * min_stories`` stories, so night-time singles never add up.
    """
    n = len(series)
    slots, past_slots, cut = _split(series, tz, cfg)
    past = series.stories[max(cut - cfg.max_history, 0) : cut]
    if past.shape[0] < cfg.min_history:
        return Detection("slow_buildup", False, 0.0, 0, 0.0, 0.0, stats={"method": "none"})
    base = fit_baseline(past, past_slots, cfg)
    span = min(cfg.cusum_span, n)
    x = series.stories[-span:]
    mu = base.expected(slots[-span:], cfg.rate_floor)
    inc = (x * math.log(cfg.cusum_rho) - (cfg.cusum_rho - 1.0) * mu) / base.dispersion
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
    # Express the statistic on the same scale as the others: ln-evidence -> log10.
    return Detection(
        "slow_buildup",
        ok and s > cfg.cusum_h,
        s / math.log(10),
        span - run_start,
        volume,
        expected,
        stats={
            "method": "cusum",
            "cusum": s,
            "h": cfg.cusum_h,
            "dispersion": base.dispersion,
            "mean_outlets": outlets,
        },
    )


def sentiment_turn(
    series: TopicSeries,
    cfg: DetectorConfig,
    *,
    negative: bool = True,
    prior_share: float | None = None,
) -> Detection:
    """Has the negative (or positive) share of recent stories risen above the topic's own norm?

    The reference share comes from the ``cfg.turn_reference`` buckets before the longest window,
    shrunk toward ``prior_share`` (a topic with ten stories a week has no share of its own yet).
    Each window (``cfg.turn_windows``) gets a one-sided binomial test; the smallest p-value is
    Bonferroni-corrected. Volume plays no part, so a turn at unchanged volume is seen.
    """
    kind = "negative_turn" if negative else "positive_turn"
    hits_all = series.negative if negative else series.positive
    prior = prior_share if prior_share is not None else (0.2 if negative else 0.25)
    longest = max(cfg.turn_windows)
    ref_end = max(len(series) - longest, 0)
    ref_start = max(ref_end - cfg.turn_reference, 0)
    ref_n = float(series.stories[ref_start:ref_end].sum())
    ref_k = float(hits_all[ref_start:ref_end].sum())
    p0 = (ref_k + cfg.turn_prior_weight * prior) / (ref_n + cfg.turn_prior_weight)
    p0 = min(max(p0, 0.02), 0.95)
    best: Detection | None = None
    for w in cfg.turn_windows:
        n = round(float(series.stories[-w:].sum()))
        k = round(float(hits_all[-w:].sum()))
        share = k / n if n else 0.0
        p = float(stats.binom.sf(k - 1, n, p0)) if n else 1.0
        p = min(p * len(cfg.turn_windows), 1.0)
        ok = (
            n >= cfg.turn_min_stories and k >= cfg.turn_min_hits and share >= p0 + cfg.turn_min_lift
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
        if best is None or (d.fired, d.score) > (best.fired, best.score):
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
