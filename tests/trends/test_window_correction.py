"""The exact family-wise correction of the volume burst's nested 1/2/4-bucket windows."""

from __future__ import annotations

import numpy as np
import pytest

from scanner.detectors import (
    DetectorConfig,
    Prediction,
    max_window_tail,
    nested_exceed_prob,
    predictive_tail,
    volume_burst,
)
from tests.trends.test_detectors import TZ, seasonal, until, with_last


@pytest.mark.parametrize(
    ("mean", "size", "crit"), [(1.5, 4.0, 7), (6.0, 10.0, 15), (0.4, 2.5, 4), (30.0, 20.0, 60)]
)
def test_one_window_is_the_negative_binomial_tail(mean: float, size: float, crit: int) -> None:
    got = nested_exceed_prob([crit], [mean], size)
    assert got == pytest.approx(predictive_tail(crit, mean, size), rel=2e-3)


def test_nested_windows_match_a_simulation_of_the_model() -> None:
    rng = np.random.default_rng(7)
    mus, size, n = np.array([1.5, 1.5, 1.5, 1.5]), 6.0, 1_000_000
    x = rng.poisson(rng.gamma(size, 1.0 / size, n)[:, None] * mus)
    s1, s2, s4 = x[:, 3], x[:, 2:].sum(axis=1), x.sum(axis=1)
    simulated = float(np.mean((s1 >= 6) | (s2 >= 9) | (s4 >= 14)))
    exact = nested_exceed_prob([6, 9, 14], [1.5, 1.5, 3.0], size)
    assert exact == pytest.approx(simulated, rel=0.03)


def test_family_wise_rate_is_calibrated_between_the_smallest_tail_and_bonferroni() -> None:
    mus, size = np.full(4, 1.5), 6.0
    preds = {w: Prediction(1.5 * w, size, 1.0) for w in (1, 2, 4)}
    rng = np.random.default_rng(11)
    n = 400_000
    x = rng.poisson(rng.gamma(size, 1.0 / size, n)[:, None] * mus)
    sums = {1: x[:, 3], 2: x[:, 2:].sum(axis=1), 4: x.sum(axis=1)}
    tails = {w: np.array([predictive_tail(k, 1.5 * w, size) for k in range(200)]) for w in sums}
    min_p = np.min([tails[w][sums[w]] for w in sums], axis=0)
    for p_obs in (1e-2, 3e-3):
        adjusted = max_window_tail(p_obs, [1, 2, 4], preds, mus, size)
        assert p_obs < adjusted < 3 * p_obs  # tighter than Bonferroni for nested windows
        # the adjusted p is the probability, under the model, of a min tail this small
        assert adjusted == pytest.approx(float(np.mean(min_p <= p_obs * (1 + 1e-9))), rel=0.1)


def test_exact_correction_is_never_weaker_evidence_than_bonferroni() -> None:
    s = with_last(until(seasonal(14, seed=3), 11, 12), 7, 3)
    bonf = volume_burst(s, TZ, DetectorConfig())
    exact = volume_burst(s, TZ, DetectorConfig(window_correction="exact"))
    assert exact.stats["p_window"] == bonf.stats["p_window"]
    assert exact.stats["p"] <= bonf.stats["p"]
    assert exact.stats["p"] >= exact.stats["p_window"]
