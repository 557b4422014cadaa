"""The forecast band covers about 80 % of outcomes on simulated data."""

from __future__ import annotations

import numpy as np
import pytest

from scanner.forecast import forecast_counts


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.poisson(2.0, 44),
        lambda rng: rng.poisson(np.linspace(1, 4, 44)),
        lambda rng: rng.poisson(0.5, 44),
    ],
    ids=["flat", "rising", "sparse"],
)
def test_interval_coverage_is_about_80_percent(make) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(42)
    hits = 0
    trials = 300
    for _ in range(trials):
        y = make(rng)
        f = forecast_counts(y[:32], horizon=12)
        hits += f.low <= y[32:].sum() <= f.high
    assert 0.70 <= hits / trials <= 0.93


def test_forecast_follows_a_trend_and_stays_non_negative() -> None:
    up = forecast_counts(np.arange(32, dtype=float), horizon=4)
    assert up.expected > 4 * 31
    down = forecast_counts(np.concatenate([np.full(16, 10.0), np.zeros(16)]), horizon=4)
    assert down.low >= 0 and down.expected >= 0
    d = up.as_dict()
    assert set(d) == {"hours", "expected", "low", "high"} and d["hours"] == 1.0
