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
  Bonferroni-corrected (an exact family-wise correction for the nested windows is available,
  ``window_correction="exact"``), below the sensitivity's level; the window needs
  ``min_stories`` distinct stories from ``min_outlets`` distinct outlets. Under one day of
  history an EWMA z-score on stories (ten times stricter) stands in.
* **slow build-up**: a CUSUM of the log-likelihood ratio "rate doubled", against the same
  level-adjusted baseline (level taken before the CUSUM span), scaled for overdispersion.
* **sentiment turn**: a sequential test (CUSUM of the per-story log-likelihood ratio "the share
  rose by 0.2 / 0.4" against the topic's previous 14 days, conservative for an uncertain norm):
  evidence accumulates across buckets and the test fires as soon as it is enough, with a minimum
  number of stories, labelled stories and lift in share in the alarm's run. Volume plays no part,
  so a turn at unchanged volume is seen. On a quiet topic the day's stories are also tested at
  once, exactly (a beta-binomial tail against the norm's posterior): a dozen stories carry too
  few nats for the CUSUM even when their labels are clear.
* **baselines** (benchmark only): a fixed threshold and a plain EWMA z-score on raw article
  counts, which is what naive monitors do.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
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
    # How the smallest tail over the windows is corrected: "bonferroni" (× number of windows)
    # or "exact" (family-wise over the nested windows, :func:`max_window_tail`).
    window_correction: str = "bonferroni"
    min_stories: int = 3  # a window needs this many distinct stories to alert at all
    min_outlets: float = 2.0  # distinct outlets in the window (burst), per bucket (build-up)
    rate_floor: float = 0.1  # stories per bucket: the least a baseline may expect
    history_clip: float = 3.0  # past buckets above this multiple of their slot (+2) are clipped
    prior_buckets: float = 8.0  # shrinkage strength of a slot toward its hour of day
    slot_tau2_prior: float = 0.25  # squared relative deviation of a slot from its prior, a priori
    slot_tau2_weight: float = 50.0  # ... worth this many expected stories
    slot_tau2_min: float = 0.01  # slots always keep some room to differ (10 %)
    slot_prior_max: float = 400.0
    hour_prior_buckets: float = 2.0  # shrinkage of an hour of day toward the overall rate
    guard: int = 32  # recent buckets kept out of the seasonal profile (8 h)
    min_history: int = DAY  # buckets of profile history before the seasonal model is used
    min_cold_history: int = 8  # below this, no volume alert at all
    cold_alpha_factor: float = 0.1  # under a day of history: ten times stronger evidence
    max_history: int = 28 * DAY
    level_half_life: float = 24.0  # buckets (6 h): how fast today's level forgets
    level_span: int = DAY  # recent buckets that inform today's level
    level_shape_default: float = 4.0  # prior shape of the level until 3 days show the swings
    level_prior_days: float = 2.0  # pseudo-days of that prior in the measured spread
    level_shape_bounds: tuple[float, float] = (2.0, 100.0)
    ewma_alpha: float = 0.05
    # Volume is "up" in a window whose predictive tail is below this: the gate of a coherent
    # burst, and what a live alert's last half hour needs for a severity rise to be told.
    up_level: float = 0.05
    # Coherent burst: a window whose volume is up and whose stories share a term that is rare
    # in the topic's background and in the news at large (tail below alpha × this factor).
    coherence_term_factor: float = 0.01
    coherence_min_stories: int = 3  # stories of the window containing the shared term
    coherence_min_outlets: int = 3  # ... first published by this many distinct outlets
    cusum_rho: float = 2.0
    cusum_h: float = 10.0
    cusum_span: int = 32
    cusum_hold: int = 4  # the CUSUM's peak must be this recent for the build-up to fire
    turn_span: int = DAY  # buckets the turn CUSUM runs over (a turn fires within a day)
    turn_lifts: tuple[float, ...] = (0.2, 0.4)  # alternatives: the share rose by this much
    turn_h_extra: float = 1.0  # nats above -ln(alpha) + ln(len(turn_lifts))
    turn_hold: int = 4  # buckets an alarm keeps firing (a missed scan still reports it)
    turn_min_stories: int = 8  # the least evidence of a turn: stories in the alarm's run
    turn_min_hits: int = 5  # ... and labelled stories among them
    turn_min_lift: float = 0.2  # ... whose share exceeds the reference share by this much
    turn_reference: int = 14 * DAY
    turn_prior_weight: float = 10.0  # pseudo-stories of the prior share
    turn_min_reference: int = 30  # stories before the span: a topic needs a norm to turn from
    # The day's exact test is for quiet topics (a busier one has the stories the CUSUM needs):
    # at most this many stories a day in the reference fortnight.
    turn_day_max_stories: float = 40.0

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


def _fit_rates(clipped: np.ndarray, slots: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """First-pass slot rates (same shrinkage as :func:`fit_baseline`), for robust clipping."""
    overall = float(clipped.mean())
    hours = slots % 24
    k0 = cfg.hour_prior_buckets
    hour_sum = _smooth_circular(np.bincount(hours, weights=clipped, minlength=24))
    hour_n = _smooth_circular(np.bincount(hours, minlength=24).astype(float))
    hour_rate = (hour_sum + k0 * overall) / (hour_n + k0)
    prior = np.concatenate([hour_rate, hour_rate])
    slot_sum = np.bincount(slots, weights=clipped, minlength=N_SLOTS)
    slot_n = np.bincount(slots, minlength=N_SLOTS).astype(float)
    k = cfg.prior_buckets
    return np.asarray((slot_sum + k * prior) / (slot_n + k))


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
    silent = silent_days(values, slots, cfg)
    if silent.any() and not silent.all():
        values, slots = values[~silent], slots[~silent]
    raw_mean = float(values.mean())
    clipped = np.minimum(values, 4.0 * raw_mean + 3.0)
    first = _fit_rates(clipped, slots, cfg)
    # Second pass: past bursts clipped against the first pass's own slot (a burst at 03:00 is
    # far above its hour long before it is above the topic's daily mean).
    clipped = np.minimum(clipped, cfg.history_clip * np.maximum(first[slots], floor) + 2.0)
    clipped, event = _clip_hours(clipped, slots, cfg)
    # Hours beyond the hour clip are past events: they teach the profile nothing (kept at their
    # cap they still lifted a weekend learned from one weekend day that held a step).
    keep = ~event
    kv, ks = clipped[keep], slots[keep]
    if kv.shape[0] == 0:
        kv, ks = clipped, slots
    overall = float(kv.mean())
    weekend = ks >= 24
    hours = ks % 24
    k = cfg.prior_buckets
    part = np.array([kv[~weekend].sum(), kv[weekend].sum()])
    part_n = np.array([(~weekend).sum(), weekend.sum()])
    part_rate = (part + k * 4 * overall) / (part_n + k * 4)
    scale = part_rate / max(overall, 1e-9)
    hour_sum = _smooth_circular(np.bincount(hours, weights=kv, minlength=24))
    hour_n = _smooth_circular(np.bincount(hours, minlength=24).astype(float))
    k0 = cfg.hour_prior_buckets
    hour_rate = (hour_sum + k0 * overall) / (hour_n + k0)
    prior = np.concatenate([hour_rate * scale[0], hour_rate * scale[1]])
    slot_sum = np.bincount(ks, weights=kv, minlength=N_SLOTS)
    slot_n = np.bincount(ks, minlength=N_SLOTS).astype(float)
    level_shape = _level_shape(clipped, np.maximum(prior[slots], floor), slots, cfg)
    k_slot = _slot_prior_weight(slot_sum, slot_n, prior, level_shape, cfg)
    rate = (slot_sum + k_slot * prior) / (slot_n + k_slot)
    # The prior's own weight: the hour-of-day estimate pools the hour's buckets of all days.
    hour_weight = np.concatenate([hour_n, hour_n])
    borrowed = np.minimum(k_slot, hour_weight)
    counting = np.maximum(rate, floor) * (slot_n + borrowed + 1.0)
    # A slot's estimate averages its days, each with its own level: both noises count.
    days = np.maximum(slot_n / 4.0, 0.0) + borrowed / 4.0 + 0.25
    shape = 1.0 / (1.0 / counting + 1.0 / (level_shape * days))
    return Baseline(rate, shape, overall, level_shape, n)


#: A whole local day without a story is a silent spell, not a quiet day, when a day at the
#: topic's usual volume would be empty less often than this.
SILENT_DAY_P = 0.01


def silent_days(values: np.ndarray, slots: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """Mask of the buckets of whole local days without a story that the topic's usual volume
    makes implausible (a silent spell: the topic was not in the news, the feeds were quiet).

    Such days teach the profile nothing about the topic's days in the news: left in, a topic
    that was silent for a week and comes back at its usual level had a profile at half that
    level, and its ordinary return read as a burst (six of six such days alerted, 90 buckets,
    on a topic of 80 stories a day silent for 6 of its 10 days). The usual volume is the mean of
    the days that had stories; an empty day is silent when a negative binomial day of that
    mean with the default level spread (``cfg.level_shape_default``) would be empty with
    probability below :data:`SILENT_DAY_P` (about 9 stories a day or more). A topic that is
    empty on many days anyway keeps them all.
    """
    mask = np.zeros(values.shape[0], dtype=bool)
    full = [(a, b) for a, b in itertools.pairwise(day_starts(slots)) if b - a >= DAY - 4]
    totals = [float(values[a:b].sum()) for a, b in full]
    busy = [t for t in totals if t > 0]
    if not busy or len(busy) == len(totals):
        return mask
    usual = sum(busy) / len(busy)
    shape = cfg.level_shape_default
    if (shape / (shape + usual)) ** shape >= SILENT_DAY_P:
        return mask
    for (a, b), total in zip(full, totals, strict=True):
        if total == 0:
            mask[a:b] = True
    return mask


def _pooled_prior(values: np.ndarray, slots: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """Per slot: the hour of day pooled over all days (smoothed) × the weekday/weekend ratio."""
    overall = float(values.mean())
    weekend = slots >= 24
    k = cfg.prior_buckets
    part = np.array([values[~weekend].sum(), values[weekend].sum()])
    part_n = np.array([(~weekend).sum(), weekend.sum()])
    scale = (part + k * 4 * overall) / (part_n + k * 4) / max(overall, 1e-9)
    hours = slots % 24
    hour_sum = _smooth_circular(np.bincount(hours, weights=values, minlength=24))
    hour_n = _smooth_circular(np.bincount(hours, minlength=24).astype(float))
    k0 = cfg.hour_prior_buckets
    hour_rate = (hour_sum + k0 * overall) / (hour_n + k0)
    return np.concatenate([hour_rate * scale[0], hour_rate * scale[1]])


def _clip_hours(
    values: np.ndarray, slots: np.ndarray, cfg: DetectorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Clip each past hour (a run of buckets of one slot) at ``history_clip × expected + 2``.

    Returns the clipped values and the mask of the buckets of hours that were beyond the cap
    (past events, which :func:`fit_baseline` then leaves out of the profile).

    The per-bucket clip cannot see a past step on a quiet topic (3 stories a bucket for five
    hours: each bucket is plausible, the hours are not), and a slot seen on two weekend days, one
    of them such a step, would expect it again a week later. The hour's expectation is taken
    from the hour of day pooled over *all* days × the day-type ratio (one contaminated day of
    many), not from the slot itself; the hour's buckets are scaled down together.
    """
    if values.shape[0] < 2:
        return values, np.zeros(values.shape[0], dtype=bool)
    pooled = _pooled_prior(values, slots, cfg)
    # The day-type ratio of the reference is not lifted above 1 by the data it clips either: a
    # first weekend learned from one Saturday that held a step would otherwise expect the step.
    pooled[24:] = np.minimum(pooled[24:], pooled[:24])
    block = np.concatenate([[0], np.cumsum(slots[1:] != slots[:-1])])
    total = np.bincount(block, weights=values)
    length = np.bincount(block).astype(float)
    block_slot = slots[np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])]
    # Robust per hour of day: the median over all days of the hour's rate relative to the
    # pooled prior (one bucket in two of a morning may belong to some past event; the median
    # does not move), so the reference is not itself lifted by the bursts it must clip.
    rel = total / length / np.maximum(pooled[block_slot], 1e-9)
    ratio = np.ones(24)
    for h in range(24):
        sel = (block_slot % 24) == h
        if sel.sum() >= 3:
            ratio[h] = min(float(np.median(rel[sel])), 1.0)
    ref = np.maximum(pooled * np.concatenate([ratio, ratio]), cfg.rate_floor)
    expected = np.bincount(block, weights=ref[slots])
    cap = cfg.history_clip * expected + 2.0
    factor = np.minimum(1.0, cap / np.maximum(total, 1e-12))
    return np.asarray(values * factor[block]), (factor < 1.0)[block]


def _slot_prior_weight(
    slot_sum: np.ndarray,
    slot_n: np.ndarray,
    prior: np.ndarray,
    level_shape: float,
    cfg: DetectorConfig,
) -> np.ndarray:
    """Pseudo-buckets of the hour-of-day × day-type prior in each slot's estimate (empirical Bayes).

    How far do the slots stray from "hour of day × weekday/weekend ratio" beyond what counting
    noise and the day-to-day level explain? The squared relative deviation ``tau²`` is measured
    by the method of moments over the slots seen on at least one full day, and shrunk toward
    ``cfg.slot_tau2_prior`` (worth ``cfg.slot_tau2_weight`` expected stories) while data are
    few. A slot then weighs its prior like ``1 / (tau² × rate)`` buckets of its own: a topic whose
    weekends follow its weekdays' shape learns its weekend slots from every day, one whose
    Sunday mornings are special keeps them apart.
    """
    p = np.maximum(prior, cfg.rate_floor)
    seen = slot_n >= 4
    if not seen.any():
        tau2 = cfg.slot_tau2_prior
    else:
        raw = slot_sum[seen] / slot_n[seen]
        ps, ns = p[seen], slot_n[seen]
        noise = ps / ns + ps**2 / (level_shape * ns / 4.0)
        w = ns * ps
        tau2_hat = float(np.sum(w * ((raw - ps) ** 2 - noise) / ps**2) / np.sum(w))
        w0 = cfg.slot_tau2_weight
        tau2 = (float(np.sum(w)) * max(tau2_hat, 0.0) + w0 * cfg.slot_tau2_prior) / (
            float(np.sum(w)) + w0
        )
    tau2 = max(tau2, cfg.slot_tau2_min)
    return np.asarray(np.clip(1.0 / (tau2 * p), 1.0, cfg.slot_prior_max))


def _level_shape(x: np.ndarray, mu: np.ndarray, slots: np.ndarray, cfg: DetectorConfig) -> float:
    """Prior shape of today's level (1 / squared CV of the day-to-day multiplier), robustly.

    The spread of the daily ratios actual / expected is taken from their Qn scale
    (:func:`qn_scale`: a past crisis day is an outlier, not a sign that every day is
    unpredictable), net of Poisson noise, then shrunk toward ``1 / level_shape_default`` with
    ``cfg.level_prior_days`` pseudo-days: with a week of history the model still allows busier
    days than it has seen, and it trusts the measured spread as the weeks add up.

    Days are local calendar days (from ``slots``, midnight to midnight), as the level they
    measure is: a 24-hour block ending at an arbitrary bucket straddles two days and averages
    their levels, which made busy topics look twice as steady as they are (a level shape of
    15-21 where the days varied with shape 8) and their busy mornings look like bursts.
    """
    default_cv2 = 1.0 / cfg.level_shape_default
    full = [(a, b) for a, b in itertools.pairwise(day_starts(slots)) if b - a >= DAY - 4]
    days = len(full)
    if days < 3:
        return cfg.level_shape_default
    xs = np.array([x[a:b].sum() for a, b in full])
    ms = np.maximum(np.array([mu[a:b].sum() for a, b in full]), 1e-9)
    ratio = xs / ms
    med = float(np.median(ratio))
    if med <= 0:
        return cfg.level_shape_default
    spread = qn_scale(ratio)
    cv2 = max(spread**2 - float(np.mean(ratio / ms)), 0.0) / med**2
    k = cfg.level_prior_days
    cv2 = (days * cv2 + k * default_cv2) / (days + k)
    lo, hi = cfg.level_shape_bounds
    return float(min(max(1.0 / max(cv2, 1e-9), lo), hi))


def qn_scale(values: np.ndarray) -> float:
    """Rousseeuw and Croux's Qn: a robust scale (50 % breakdown) that, unlike the median
    absolute deviation, is nearly as efficient as the standard deviation (82 %).

    With two weeks of days the MAD's estimate of the day-to-day spread is so noisy that one
    topic in ten came out more than twice as steady as it was (simulated on gamma days: 90th
    percentile of the implied level shape 14.9 against a true 8; Qn: 11.8), and its ordinary
    busy mornings alerted. The first quartile of the pairwise distances, scaled to the normal
    (2.2219) with Croux and Rousseeuw's small-sample factor; written here (a dozen values a
    call) rather than adding statsmodels for its ``qn_scale``.
    """
    x = np.asarray(values, dtype=float)
    n = x.shape[0]
    if n < 2:
        return 0.0
    diffs = np.sort(np.abs(x[:, None] - x[None, :])[np.triu_indices(n, 1)])
    h = n // 2 + 1
    k = h * (h - 1) // 2
    if n <= 9:
        small = (0.399, 0.994, 0.512, 0.844, 0.611, 0.857, 0.669, 0.872)[n - 2]
    else:
        small = n / (n + 1.4) if n % 2 else n / (n + 3.8)
    return float(2.2219 * diffs[k - 1] * small)


@dataclass(frozen=True)
class Level:
    """Posterior of today's level: gamma with this shape and rate (mean ``shape / rate``)."""

    shape: float
    rate: float

    @property
    def mean(self) -> float:
        return self.shape / self.rate


def day_starts(slots: np.ndarray) -> np.ndarray:
    """Indexes of the buckets of contiguous ``slots`` that begin a local day: hour 0 after
    another hour (or first)."""
    hours = slots % 24
    return np.flatnonzero((hours == 0) & (np.r_[-1, hours[:-1]] != 0))


def today_start(recent_slots: np.ndarray, next_slot: int) -> int:
    """Index of the first of ``recent_slots`` on the local day of the bucket after them.

    ``recent_slots`` are contiguous and end just before a bucket of slot ``next_slot``.
    """
    n = int(recent_slots.shape[0])
    if n == 0 or (next_slot % 24 == 0 and recent_slots[-1] % 24 != 0):
        return n
    starts = day_starts(recent_slots)
    return int(starts[-1]) if starts.shape[0] else 0


def recent_level(
    values: np.ndarray, expected: np.ndarray, base: Baseline, cfg: DetectorConfig
) -> Level:
    """Today's level from ``values`` (today's buckets before the tested window, oldest first).

    Discounted gamma–Poisson update; each bucket is clipped at a generous multiple of its
    expectation so a recent burst lifts the level only moderately. Floored at 1 (upward only).
    Callers pass only the buckets of the window's local day (:func:`today_start`): news days
    differ (the day-to-day spread is what ``base.level_shape`` measures), so yesterday
    evening's level says little about this morning's. Carried across midnight it made the
    predictive as sure of today's level as of yesterday's, and an ordinary busy day looked
    like a build-up by mid-afternoon.
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
    today = today_start(recent_slots, int(slots[0]))
    lvl = recent_level(
        recent[today:], base.expected(recent_slots[today:], cfg.rate_floor), base, cfg
    )
    m = float(mu.sum())
    inv_param = float((mu * base.inv_shape(slots)).sum() / max(m, 1e-12))
    size = 1.0 / (1.0 / lvl.shape + inv_param)
    return Prediction(m * lvl.mean, size, lvl.mean)


# Above this smallest per-window tail the correction cannot matter for any sensitivity level
# (all are <= 1e-2): the Bonferroni product stands in and the exact computation is skipped.
EXACT_BELOW = 0.02
_QUAD_NODES = 256


def _critical_count(p: float, pred: Prediction) -> int:
    """The smallest count whose predictive tail is at most ``p`` (the window's critical value)."""
    if pred.mean <= 0:
        return 1
    tol = p * (1.0 + 1e-9)
    if pred.size > 1e6:
        c = int(stats.poisson.isf(p, pred.mean)) + 1
    else:
        q = pred.size / (pred.size + pred.mean)
        c = int(stats.nbinom.isf(p, pred.size, q)) + 1
    c = max(c, 1)
    while c > 1 and pred.tail(c - 1) <= tol:
        c -= 1
    while pred.tail(c) > tol:
        c += 1
    return c


def _gamma_nodes(shape: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature of a mean-1 gamma multiplier with this shape: nodes and normalised weights."""
    if shape > 1e6:
        return np.ones(1), np.ones(1)
    dist = stats.gamma(shape, scale=1.0 / shape)
    lo, hi = float(dist.ppf(1e-12)), float(dist.isf(1e-14))
    lo = max(lo, 1e-12)
    edges = np.geomspace(lo, hi, _QUAD_NODES + 1)
    w = np.diff(dist.cdf(edges))
    # node: the cell's conditional mean (exact first moment within each cell)
    m1 = np.diff(stats.gamma(shape + 1.0, scale=1.0 / shape).cdf(edges))
    nodes = np.where(w > 0, m1 / np.maximum(w, 1e-300), np.sqrt(edges[:-1] * edges[1:]))
    return nodes, w / w.sum()


def nested_exceed_prob(crit: list[int], groups: list[float], shape: float) -> float:
    """P(S_1 >= c_1 or S_2 >= c_2 or ...) for nested window sums.

    ``S_k`` is the sum of the first ``k`` groups of buckets; group ``k`` is Poisson with mean
    ``L × groups[k]`` and ``L`` a shared mean-1 gamma multiplier of ``shape`` (the level and
    profile uncertainty every bucket of the window shares). Exact given ``L`` (a truncated
    convolution), integrated over ``L`` by quadrature.
    """
    nodes, weights = _gamma_nodes(shape)
    cap = max(crit)
    # state[g, s] = P(S_k = s and no earlier window exceeded), s < c_k
    state = np.zeros((nodes.shape[0], 1))
    state[:, 0] = 1.0
    for c, g in zip(crit, groups, strict=True):
        c = min(c, cap)
        lam = nodes[:, None] * g
        pmf = stats.poisson.pmf(np.arange(c)[None, :], lam)
        new = np.zeros((nodes.shape[0], c))
        for t in range(min(state.shape[1], c)):
            new[:, t:] += state[:, t : t + 1] * pmf[:, : c - t]
        state = new
    stay = float(weights @ state.sum(axis=1))
    return min(max(1.0 - stay, 0.0), 1.0)


def max_window_tail(
    p_obs: float,
    windows: list[int],
    preds: dict[int, Prediction],
    bucket_means: np.ndarray,
    shape: float,
) -> float:
    """Family-wise tail of the smallest per-window tail ``p_obs`` over the nested windows.

    The probability, under the predictive of the widest window, that *some* window's tail is at
    most ``p_obs``: each window's critical count is taken from its own predictive, and the joint
    probability of the nested sums is computed exactly (:func:`nested_exceed_prob`). Calibrated
    this way, the per-bucket false-alarm rate of ``p < alpha`` is alpha, where Bonferroni's
    ``p_obs × len(windows)`` spends up to ``len(windows)`` times less, as the windows share
    buckets. Bounded by ``[p_obs, Bonferroni]`` (it is never above the union bound nor below the
    one window's own tail).
    """
    k = len(windows)
    bonf = min(p_obs * k, 1.0)
    if k <= 1 or p_obs >= EXACT_BELOW or p_obs <= 0.0:
        return bonf
    # bucket_means: the widest window's buckets, oldest first; window w = the last w of them.
    rev = bucket_means[::-1]
    groups, prev = [], 0
    for w in windows:
        groups.append(float(rev[prev:w].sum()))
        prev = w
    total = float(rev[: windows[-1]].sum())
    scale = preds[windows[-1]].mean / max(total, 1e-12)
    crit = [_critical_count(p_obs, preds[w]) for w in windows]
    exact = nested_exceed_prob(crit, [g * scale for g in groups], shape)
    return float(min(max(exact, p_obs), bonf))


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

    The smallest predictive tail probability over the windows is corrected for the number of
    windows (``cfg.window_correction``: Bonferroni, or exactly with :func:`max_window_tail`, the
    family-wise probability that some nested window is that extreme) and compared with
    ``cfg.alpha``. A window must also hold
    ``cfg.min_stories`` distinct stories from ``cfg.min_outlets`` distinct outlets.
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
    windows = [w for w in sorted(cfg.windows) if w < n]
    preds: dict[int, Prediction] = {}
    for w in windows:
        r0 = max(n - w - cfg.level_span, 0)
        preds[w] = predict(base, slots[n - w :], series.stories[r0 : n - w], slots[r0 : n - w], cfg)
    # The joint null of the nested windows: the widest window's buckets under its predictive.
    wmax = windows[-1]
    exact = cfg.window_correction == "exact"
    bucket_means = base.expected(slots[n - wmax :], cfg.rate_floor) if exact else None
    best: Detection | None = None
    per_window: dict[int, dict[str, float]] = {}
    for w in windows:
        pred = preds[w]
        x = float(series.stories[-w:].sum())
        raw = pred.tail(x)
        if bucket_means is not None:
            p = max_window_tail(raw, windows, preds, bucket_means, preds[wmax].size)
        else:
            p = min(raw * len(cfg.windows), 1.0)
        # Distinct outlets in the window: at least the most seen in one of its buckets (the
        # series keeps per-bucket counts). A mean per bucket would ask a 2-bucket spike of 4
        # stories for 4 outlet appearances; one outlet flooding is judged by ``_finding``.
        outlets = float(series.outlets[-w:].max())
        ok = x >= cfg.min_stories and outlets >= cfg.min_outlets
        per_window[w] = {"stories": x, "expected": pred.mean, "p": raw, "eligible": float(ok)}
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
                "p_window": raw,
                "level": pred.level,
                "size": pred.size,
                "overall_rate": base.overall,
                "mean_outlets": outlets,
            },
        )
        if best is None or (d.fired, d.score) > (best.fired, best.score):
            best = d
    assert best is not None
    best.stats["windows"] = per_window
    return best


def coherence_candidates(burst: Detection, cfg: DetectorConfig) -> list[int]:
    """Windows of a volume test worth asking about shared terms (volume up, gates met)."""
    if burst.fired or burst.stats.get("method") != "seasonal":
        return []
    windows: dict[int, dict[str, float]] = burst.stats.get("windows", {})
    return [w for w, v in windows.items() if v["eligible"] and v["p"] < cfg.up_level]


def coherent_burst(
    burst: Detection, terms: dict[int, tuple[str, int, int, float]], cfg: DetectorConfig
) -> Detection | None:
    """A burst told by volume *and* content: the window's count is up and its stories share a
    term that is rare in the topic's background.

    A developing story is many outlets writing about the same thing. Volume alone cannot tell a
    weak spike (six stories against two expected) from a busy quarter hour; a term shared by
    several of the window's stories, from several outlets, that neither the topic's last days
    nor the news at large often carry, can. ``terms[w]`` is the window's best such term
    ``(term, stories, outlets, p)``, ``p`` its binomial tail against the larger of the
    background and the general-news rate, corrected over the candidate terms
    (:func:`scanner.terms.emerging_signal`).

    It fires when the window's volume is up (tail below ``cfg.up_level``) and the term's tail
    below ``cfg.alpha × cfg.coherence_term_factor``, with ``cfg.coherence_min_stories`` stories
    from ``cfg.coherence_min_outlets`` outlets carrying the term. The term's level is a hundred
    times stricter than the topic's because the binomial null treats stories as independent
    draws of words, while real stories cluster (a shared phrase rewritten by three desks, a
    day's wording): on the benchmark's streams, shared terms with tails of 1e-3 to 1e-5
    outside any event came from that clustering, not from news (docs/trends.md). The reported
    ``p`` is the two tails combined by Fisher's method (chi-squared with 4 degrees of
    freedom), corrected for the number of windows.
    Returns the strongest window's detection, or ``None``.
    """
    windows: dict[int, dict[str, float]] = burst.stats.get("windows", {})
    best: Detection | None = None
    for w, (term, k, outlets, p_term) in terms.items():
        v = windows.get(w)
        if (
            v is None
            or v["p"] >= cfg.up_level
            or k < cfg.coherence_min_stories
            or outlets < cfg.coherence_min_outlets
            or p_term >= cfg.alpha * cfg.coherence_term_factor
        ):
            continue
        stat = -2.0 * (math.log(max(v["p"], 1e-300)) + math.log(max(p_term, 1e-300)))
        p = min(float(stats.chi2.sf(stat, 4)) * len(cfg.windows), 1.0)
        d = Detection(
            "volume_burst",
            True,
            _score(p),
            w,
            v["stories"],
            v["expected"],
            stats={
                **{k_: val for k_, val in burst.stats.items() if k_ != "windows"},
                "method": "coherent",
                "p": p,
                "p_window": v["p"],
                "term": term,
                "term_stories": k,
                "term_outlets": outlets,
                "p_term": p_term,
            },
        )
        if best is None or d.score > best.score:
            best = d
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


def cold_rate(past: np.ndarray, cfg: DetectorConfig) -> tuple[float, float]:
    """The cold start's expected stories per bucket after ``past`` (and the EWMA variance): the
    larger of the EWMA mean and the mean of all history, never below the rate floor. The chart
    draws the same level, so a cold-start alert's picture quotes the detector's numbers."""
    if len(past) == 0:
        return cfg.rate_floor, cfg.rate_floor
    mean, var = _ewma(past, cfg.ewma_alpha, float(past[: min(8, len(past))].mean()))
    return max(mean, float(past.mean()), cfg.rate_floor), var


def _ewma_burst(series: TopicSeries, cfg: DetectorConfig) -> Detection:
    """Cold start: the current bucket against an EWMA of the past, with a geometric tail.

    Without a seasonal profile the rate of the next bucket is unknown within a wide range (the
    morning rise alone is tenfold), so the predictive is the widest sensible one: a Poisson whose
    rate is exponentially distributed around the larger of the EWMA mean and the mean of all
    history (a geometric distribution, ``P(X >= x) = (m / (1 + m)) ** x``).
    """
    past = series.stories[:-1]
    m, var = cold_rate(past, cfg)
    x = float(series.stories[-1])
    p = (m / (1.0 + m)) ** x if x > 0 else 1.0
    z = (x - m) / math.sqrt(max(var, m))
    ok = x >= cfg.min_stories and series.outlets[-1] >= cfg.min_outlets
    return Detection(
        "volume_burst",
        ok and p < cfg.alpha * cfg.cold_alpha_factor,
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
    r0 += today_start(slots[r0 : n - span], int(slots[n - span]))
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
    s, run_start, peak, peak_at = 0.0, 0, 0.0, -1
    for i, v in enumerate(inc.tolist()):
        s = s + v
        if s <= 0:
            s, run_start, peak, peak_at = 0.0, i + 1, 0.0, -1
        elif s >= peak:
            peak, peak_at = s, i
    # Only while the build-up is still building: the CUSUM's peak within the last few buckets.
    # Hours after a burst ended the sum is still high; that must not keep (or open) an alert.
    rising = peak_at >= span - cfg.cusum_hold
    run = slice(run_start, span)
    volume = float(x[run].sum())
    expected = float(mu[run].sum())
    outlets = float(series.outlets[-span:][run].mean()) if run_start < span else 0.0
    ok = volume >= 2 * cfg.min_stories and outlets >= cfg.min_outlets
    # The CUSUM finds where the rise began; whether the run's total is really more than a busy
    # day brings is then asked of the negative binomial predictive of the run, given all of
    # today's buckets before it (today's level is uncertain; those buckets say how busy).
    p = 1.0
    if ok and s > cfg.cusum_h:
        start = n - span + run_start
        r1 = max(start - cfg.level_span, 0)
        pred = predict(base, slots[start:n], series.stories[r1:start], slots[r1:start], cfg)
        p, expected = pred.tail(volume), pred.mean
    # Express the statistic on the same scale as the others: ln-evidence -> log10.
    return Detection(
        "slow_buildup",
        ok and rising and s > cfg.cusum_h and p < cfg.alpha,
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


def turn_threshold(cfg: DetectorConfig) -> float:
    """Evidence (nats) the turn CUSUM needs: ``-ln(alpha)``, plus ``ln`` of the number of
    alternatives (one CUSUM each), plus ``cfg.turn_h_extra``.

    At the medium level (alpha 1e-3, two alternatives) this is 8.6 nats; simulated on a stable
    Bernoulli stream with a known share of 0.1-0.3 the average run to a false turn is 25,000-
    45,000 stories per direction (``tests/trends/test_detectors.py`` checks a lower bound).
    """
    return -math.log(cfg.alpha) + math.log(len(cfg.turn_lifts)) + cfg.turn_h_extra


def reference_share(
    series: TopicSeries, end: int, cfg: DetectorConfig, hits_all: np.ndarray, prior: float
) -> tuple[float, float, float]:
    """The topic's share before bucket ``end``: (estimate, conservative share, stories).

    The ``cfg.turn_reference`` buckets before ``end`` are cut into days; the estimate is the
    median of the daily shares (days with 3 stories or more; robust: a fortnight holds a few
    turn or crisis days, when most stories were negative and there were many, and they do not
    become the norm), as a beta
    posterior with the reference's stories around ``prior`` (``cfg.turn_prior_weight``
    pseudo-stories). The conservative share is the estimate plus one posterior standard
    deviation: a quiet topic's norm is uncertain, and a turn is judged against the upper end of
    what it could be.
    """
    start = max(end - cfg.turn_reference, 0)
    n_days = -(-(end - start) // DAY)
    cuts = [max(end - DAY * d, start) for d in range(n_days, -1, -1)]
    days = [
        (float(series.stories[a:b].sum()), float(hits_all[a:b].sum()))
        for a, b in itertools.pairwise(cuts)
    ]
    ref_n = sum(n for n, _ in days)
    shares = [min(k, n) / n for n, k in days if n >= 3]
    share = float(np.median(shares)) if shares else prior
    a = share * ref_n + cfg.turn_prior_weight * prior
    b = ref_n - share * ref_n + cfg.turn_prior_weight * (1.0 - prior)
    mean = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
    return mean, min(mean + sd, 0.9), ref_n


def day_turn_tail(
    k: np.ndarray | float, n: np.ndarray | float, mean: float, ref_n: float, cfg: DetectorConfig
) -> np.ndarray:
    """Exact tail of ``k`` or more labelled stories among ``n`` under the norm, corrected for
    the day's looks: ``P(K >= k)`` for a beta-binomial whose beta is the norm's posterior
    (``mean`` over ``ref_n`` reference stories plus ``cfg.turn_prior_weight`` pseudo-stories),
    times ``n`` (the test is asked again with each new story of the day; Bonferroni).
    Element-wise over arrays.

    The beta-binomial carries the norm's own uncertainty exactly, where the CUSUM takes the
    norm at its mean + 1 sd; on a dozen stories no normal approximation holds.
    """
    k_, n_ = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    total = ref_n + cfg.turn_prior_weight
    a, b = max(mean * total, 1e-9), max((1.0 - mean) * total, 1e-9)
    tail = stats.betabinom.sf(k_ - 1.0, n_.astype(int), a, b)
    return np.asarray(np.where((n_ > 0) & (k_ > 0), np.minimum(tail * n_, 1.0), 1.0))


def local_midnight(series: TopicSeries, index: int, tz: tzinfo) -> int:
    """Index of the bucket that begins the local day of bucket ``index`` (0 if before the
    series)."""
    local = series.bucket_start(index).astimezone(tz)
    since = (local - local.replace(hour=0, minute=0, second=0, microsecond=0)) // series.bucket
    return max(index - since, 0)


def sentiment_turn(
    series: TopicSeries,
    cfg: DetectorConfig,
    *,
    negative: bool = True,
    prior_share: float | None = None,
    tz: tzinfo = UTC,
) -> Detection:
    """Has the negative (or positive) share of recent stories turned above the topic's norm?

    A sequential test: each story's label is evidence for "the share has risen to ``p1``"
    against "it is still the topic's norm ``p0``" (log-likelihood ratio ``ln(p1/p0)`` for a
    labelled story, ``ln((1-p1)/(1-p0))`` for another), summed by a CUSUM (Page 1954) that
    restarts at zero when the evidence turns negative and after each alarm. It accumulates
    across buckets, so a turn fires as soon as its stories are enough, whether they came in one
    hour or over a day, and a quiet topic is not judged on a fixed window that holds three
    stories. One CUSUM per alternative ``p1 = p0 + lift`` (``cfg.turn_lifts``), threshold
    :func:`turn_threshold`.

    ``p0`` is the topic's share over the ``cfg.turn_reference`` buckets of whole local days
    (in ``tz``) before the day the CUSUM span starts in (:func:`reference_share`,
    conservative). Whole days, so the norm changes once a day: slid with the span bucket by
    bucket it jittered, and an alarm whose crossing came from a lower norm at the next bucket
    was dated back past the hold and never told. The run that crosses the threshold must also hold
    the minimum evidence of a turn: ``cfg.turn_min_stories`` stories, ``cfg.turn_min_hits`` of
    them labelled, and a share at least ``cfg.turn_min_lift`` above the norm; a topic needs
    ``cfg.turn_min_reference`` earlier stories (a norm to turn from). Volume plays no part, so a
    turn at unchanged volume is seen, and a burst of mostly negative stories is one too. When the
    CUSUM does not fire, a quiet topic's day is tested at once (:func:`_day_turn`).
    """
    kind = "negative_turn" if negative else "positive_turn"
    hits_all = series.negative if negative else series.positive
    prior = prior_share if prior_share is not None else (0.2 if negative else 0.25)
    n = len(series)
    span = min(cfg.turn_span, n)
    first = n - span
    p_mean, p0, ref_n = reference_share(
        series, local_midnight(series, first, tz), cfg, hits_all, prior
    )
    h = turn_threshold(cfg)
    m = series.stories[first:]
    k = np.minimum(hits_all[first:], m)
    none = Detection(
        kind,
        False,
        0.0,
        0,
        0.0,
        0.0,
        reference=p_mean,
        stats={"method": "cusum", "reference_stories": ref_n, "h": h},
    )
    if ref_n < cfg.turn_min_reference or not m[-1] > 0:
        return none  # no norm yet, or no new story: no new evidence
    p1s = [min(p0 + lift, 0.95) for lift in cfg.turn_lifts]
    gain = [math.log(p1 / p0) for p1 in p1s]
    loss = [math.log((1.0 - p1) / (1.0 - p0)) for p1 in p1s]
    alts = range(len(p1s))
    cusum = [0.0] * len(p1s)
    starts = [0] * len(p1s)
    fired_at, best_run = -1, (0, 0.0)
    idx = np.flatnonzero(m > 0).tolist()
    mm, kk = m[idx].tolist(), k[idx].tolist()
    for pos, i in enumerate(idx):
        mi, ki = mm[pos], kk[pos]
        for j in alts:
            cusum[j] += ki * gain[j] + (mi - ki) * loss[j]
            if cusum[j] <= 0.0:
                cusum[j], starts[j] = 0.0, i + 1
        j = max(alts, key=cusum.__getitem__)
        if cusum[j] > h:
            run_n = float(m[starts[j] : i + 1].sum())
            run_k = float(k[starts[j] : i + 1].sum())
            if (
                run_n >= cfg.turn_min_stories
                and run_k >= cfg.turn_min_hits
                and run_k / run_n >= p_mean + cfg.turn_min_lift
            ):
                fired_at, best_run = i, (starts[j], cusum[j])
                cusum = [0.0] * len(p1s)  # restart after an alarm
                starts = [i + 1] * len(p1s)
    # The alarm stands for ``turn_hold`` buckets: a scan that skipped a bucket (late items, a
    # restart) still reports it; repeats only update the topic's live alert.
    fired = fired_at >= span - cfg.turn_hold
    j = max(alts, key=cusum.__getitem__)
    if fired:
        run_start, stat = best_run
    else:
        run_start, stat = starts[j], cusum[j]
        day = _day_turn(series, cfg, kind, hits_all, prior, tz)
        if day is not None:
            return day
    run_n = float(m[run_start:].sum())
    run_k = float(k[run_start:].sum())
    return Detection(
        kind,
        fired,
        stat / math.log(10),
        span - run_start,
        run_n,
        p_mean * run_n,
        share=run_k / run_n if run_n else 0.0,
        reference=p_mean,
        stats={
            "method": "cusum",
            "cusum": stat,
            "h": h,
            "hits": run_k,
            "reference_stories": ref_n,
            "null_share": p0,
        },
    )


def _day_turn(
    series: TopicSeries,
    cfg: DetectorConfig,
    kind: str,
    hits_all: np.ndarray,
    prior: float,
    tz: tzinfo,
) -> Detection | None:
    """The working day's stories as one exact test, for the topic too quiet for the CUSUM.

    A dozen stories in a working day, nine of them negative against a 15 % norm, is strong
    evidence (exact tail ~1e-5), yet the CUSUM, built for streams, needs more nats than nine
    stories carry against its conservative norm (mean + 1 sd). Here the stories since local
    midnight are tested at once with :func:`day_turn_tail` against the beta posterior of the
    norm of the 14 days before today, at the topic's ``alpha``; the same minimum evidence as
    the CUSUM's run applies (stories, labelled stories, lift). Only on quiet topics (at most
    ``cfg.turn_day_max_stories`` a day in the reference): a busier topic has the stories the
    CUSUM needs. Like the CUSUM, the count restarts after each alarm and an alarm stands for
    ``cfg.turn_hold`` buckets: a day's earlier stories do not raise a turn again after it ended.
    (A first version with neither, on every topic, raised the false alarms of the office
    streams, seeds 20-21, from 3 to 11 at the same recall.)
    """
    n = len(series)
    today = local_midnight(series, n - 1, tz)
    m = series.stories[today:]
    k = np.minimum(hits_all[today:], m)
    if float(m.sum()) < cfg.turn_min_stories or float(k.sum()) < cfg.turn_min_hits:
        return None
    mean, _p0, ref_n = reference_share(series, today, cfg, hits_all, prior)
    ref_days = max(min(cfg.turn_reference, today) / DAY, 1.0)
    if ref_n < cfg.turn_min_reference or ref_n / ref_days > cfg.turn_day_max_stories:
        return None
    # Like the CUSUM, the count restarts after each alarm: once told, the day's earlier
    # stories do not raise the same turn again hours after it ended.
    start, fired = 0, None
    while start < m.shape[0]:
        cn, ck = np.cumsum(m[start:]), np.cumsum(k[start:])
        ok = (
            (k[start:] > 0)
            & (cn >= cfg.turn_min_stories)
            & (ck >= cfg.turn_min_hits)
            & (ck >= (mean + cfg.turn_min_lift) * cn)
        )
        at = np.flatnonzero(ok)
        if at.shape[0] == 0:
            break
        tails = day_turn_tail(ck[at], cn[at], mean, ref_n, cfg)
        hit = np.flatnonzero(tails < cfg.alpha)
        if hit.shape[0] == 0:
            break
        i = int(at[hit[0]])
        fired = (start, start + i, float(tails[hit[0]]), float(cn[i]), float(ck[i]))
        start += i + 1
    if fired is None or fired[1] < m.shape[0] - cfg.turn_hold:
        return None
    run_start, _end, p, run_n, run_k = fired
    return Detection(
        kind,
        True,
        _score(p),
        m.shape[0] - run_start,
        run_n,
        mean * run_n,
        share=run_k / run_n,
        reference=mean,
        stats={"method": "day", "p": p, "hits": run_k, "reference_stories": ref_n},
    )


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
