"""Where is the story going: a short-term projection of a topic's story count with an 80 % band.

Damped Holt (level + damped trend) on the recent buckets. The trend is damped because news
stories peak and fade: an undamped line drawn through the first hour of a burst promises
hundreds of stories by the evening. Smoothing constants are picked from a small grid by one-step
squared error on the same recent window, which is cheap enough to run whenever an alert fires.

The band is for the *total* number of stories over the horizon. Its variance adds the state
uncertainty of Holt's error-correction form (each past shock keeps feeding later buckets through
the level and trend) to the count noise, and the quantiles come from a negative binomial (or a
Poisson when the errors are no wider than counting noise) matched to that mean and variance, so
low counts get honest, integer, non-negative bands.

Written here rather than taken from statsmodels' ``Holt``: that would bring statsmodels, pandas
and patsy for some forty lines, refit by numerical optimisation on every alert, and give
Gaussian bands that go below zero on the small counts a young story has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

_ALPHAS = (0.05, 0.1, 0.2, 0.4, 0.7)
_BETAS = (0.05, 0.2)
PHI = 0.9  # trend damping per bucket


@dataclass(frozen=True)
class Forecast:
    """Expected stories over the next ``hours`` and the central ``level`` interval."""

    hours: float
    expected: float
    low: float
    high: float
    per_bucket: tuple[float, ...] = ()
    level: float = 0.8

    def as_dict(self) -> dict[str, float]:
        """The form stored in ``Alert.forecast`` and written by ``trends replay``."""
        return {
            "hours": self.hours,
            "expected": round(self.expected, 2),
            "low": self.low,
            "high": self.high,
        }


def _holt(y: np.ndarray, alpha: float, beta: float, phi: float) -> tuple[float, float, float]:
    """Run damped Holt over ``y``; return final level, trend and one-step squared error mean."""
    level, trend = float(y[0]), 0.0
    sse, n = 0.0, 0
    for v in y[1:]:
        pred = level + phi * trend
        err = float(v) - pred
        sse += err * err
        n += 1
        new_level = pred + alpha * err
        trend = phi * trend + alpha * beta * err
        level = new_level
    return level, trend, sse / max(n, 1)


def _quantiles(mean: float, var: float, level: float) -> tuple[float, float]:
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    if mean <= 0:
        return 0.0, 0.0
    if var <= mean * 1.02:
        return float(stats.poisson.ppf(lo_q, mean)), float(stats.poisson.ppf(hi_q, mean))
    size = mean * mean / (var - mean)
    p = size / (size + mean)
    return float(stats.nbinom.ppf(lo_q, size, p)), float(stats.nbinom.ppf(hi_q, size, p))


def forecast_counts(
    history: np.ndarray,
    *,
    horizon: int = 12,
    bucket_minutes: float = 15.0,
    level: float = 0.8,
    window: int = 32,
) -> Forecast:
    """Project the total count of the next ``horizon`` buckets from the last ``window`` buckets."""
    y = np.asarray(history, dtype=float)[-window:]
    hours = horizon * bucket_minutes / 60.0
    if y.shape[0] < 4:
        mean = float(y.mean()) * horizon if y.shape[0] else 0.0
        lo, hi = _quantiles(mean, mean, level)
        return Forecast(hours, mean, lo, hi, level=level)
    best = min(
        ((a, b) for a in _ALPHAS for b in _BETAS), key=lambda ab: _holt(y, ab[0], ab[1], PHI)[2]
    )
    alpha, beta = best
    lvl, trend, mse = _holt(y, alpha, beta, PHI)
    damp = np.cumsum(PHI ** np.arange(1, horizon + 1))
    path = np.maximum(lvl + damp * trend, 0.0)
    mean = float(path.sum())
    # Coefficient of shock j (1 = first future bucket) in the horizon total (error-correction form).
    coef = np.ones(horizon)
    for j in range(horizon):
        for k in range(j + 1, horizon):
            steps = k - j
            coef[j] += alpha + alpha * beta * float(np.sum(PHI ** np.arange(1, steps + 1)))
    # The mean one-step error already contains counting noise; shocks scale with it.
    var_shock = mse * float(np.sum(coef**2))
    # Current-state uncertainty: the level estimate itself is off by about alpha-weighted noise.
    var_state = mse * alpha / (2 - alpha) * horizon**2
    var = max(var_shock + var_state, mean)
    lo, hi = _quantiles(mean, var, level)
    return Forecast(hours, mean, lo, hi, tuple(float(v) for v in path), level)
