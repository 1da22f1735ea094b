"""The stock app's interval scores and volatility baselines, on cases worked by hand and on simulated data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from apps import stock_baselines


def test_interval_score_of_a_known_case_by_hand():
    # Interval [10, 12] at alpha 0.2 (penalty 2 / 0.2 = 10 per unit outside):
    # outcome 11 inside: 2; outcome 9 below by 1: 2 + 10; outcome 12.5 above by 0.5: 2 + 5.
    lower, upper = np.full((3, 1), 10.0), np.full((3, 1), 12.0)
    targets = np.array([[11.0], [9.0], [12.5]])
    assert stock_baselines.interval_score(lower, upper, targets)[0] == pytest.approx((2 + 12 + 7) / 3)


def test_pinball_loss_of_a_known_case_by_hand():
    # Quantiles 10, 11, 12 at levels 0.1, 0.5, 0.9 and outcome 9: each is above the outcome, so each costs
    # (1 - level) * (quantile - outcome) = 0.9 * 1, 0.5 * 2, 0.1 * 3; the mean is 2.2 / 3.
    quantiles = np.array([[[10.0, 11.0, 12.0]]])
    assert stock_baselines.pinball(quantiles, np.array([[9.0]]))[0] == pytest.approx(2.2 / 3)


def test_interval_metrics_count_coverage_per_horizon():
    targets = np.array([[1.0, 5.0], [2.0, 2.0]])
    lower, upper = np.zeros((2, 2)), np.full((2, 2), 3.0)
    metrics = stock_baselines.interval_metrics(lower, (lower + upper) / 2, upper, targets)
    assert metrics["coverage80_day1"] == 1.0 and metrics["coverage80_day2"] == 0.5


def test_rolling_volatility_interval_from_the_windows_own_returns():
    prices = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, (4, 60)), axis=1))  # the default window
    lower, median, upper = stock_baselines.rolling_volatility(prices, horizon=3)
    sigma = np.std(np.diff(np.log(prices[1])), ddof=1)
    np.testing.assert_allclose(median[1], prices[1, -1])
    np.testing.assert_allclose(np.log(upper[1] / prices[1, -1]), 1.2815516 * sigma * np.sqrt([1, 2, 3]), rtol=1e-6)
    np.testing.assert_allclose(np.log(prices[1, -1] / lower[1]), np.log(upper[1] / prices[1, -1]))


def test_rolling_volatility_reads_only_the_last_60_days_of_a_longer_window():
    prices = 100.0 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, (2, 150)), axis=1))
    prices[:, :90] *= np.exp(np.random.default_rng(2).normal(0, 0.05, (2, 90)))  # wild early days, not read
    for longer, last_60 in zip(stock_baselines.rolling_volatility(prices, 2), stock_baselines.rolling_volatility(prices[:, -60:], 2)):
        np.testing.assert_allclose(longer, last_60)


def test_student_t_sum_quantiles_are_exact_for_one_step_and_tend_to_normal():
    quantiles = stock_baselines.student_t_sum_quantiles(nu=5.0, horizon=20)
    unit_t = stats.t.ppf(0.9, 5.0) * np.sqrt(3.0 / 5.0)
    assert quantiles[0, 2] == pytest.approx(unit_t) and quantiles[0, 0] == pytest.approx(-unit_t)
    # A sum of many unit-variance shocks is nearly normal: its 90% quantile moves from t's towards 1.2816.
    assert unit_t < quantiles[19, 2] < stats.norm.ppf(0.9) + 0.02
    assert abs(quantiles[19, 1]) < 0.01


def simulate_garch(omega, alpha, beta, nu, steps, seed=0):
    """Daily log returns in percent of a GARCH(1,1) with unit-variance Student-t shocks."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(nu, steps) * np.sqrt((nu - 2) / nu)
    variance, returns = omega / (1 - alpha - beta), np.empty(steps)
    for step in range(steps):
        returns[step] = np.sqrt(variance) * shocks[step]
        variance = omega + alpha * returns[step] ** 2 + beta * variance
    return returns


def test_garch_fit_recovers_the_parameters_of_a_simulated_series_roughly():
    returns = pd.Series(simulate_garch(omega=0.05, alpha=0.08, beta=0.9, nu=6.0, steps=6000))
    params = stock_baselines.fit_garch(returns)
    assert params["alpha[1]"] == pytest.approx(0.08, abs=0.03)
    assert params["beta[1]"] == pytest.approx(0.9, abs=0.04)
    assert params["nu"] == pytest.approx(6.0, abs=2.0)
    assert abs(params["mu"]) < 0.05


def test_garch_intervals_cover_about_80_percent_of_a_simulated_test_span():
    dates = pd.bdate_range("2000-01-03", periods=5001)
    returns = simulate_garch(omega=0.05, alpha=0.08, beta=0.9, nu=6.0, steps=5000, seed=1)
    prices = pd.DataFrame({"SIM": 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns / 100.0)]))}, index=dates)
    test_dates = dates[4001:-2]  # first target dates; each forecast's origin is the day before
    lower, median, upper = stock_baselines.garch_baseline(
        prices, np.array(["SIM"] * len(test_dates)), test_dates, dates[4000], horizon=2
    )
    outcomes = np.stack([prices["SIM"].loc[test_dates].to_numpy(), prices["SIM"].shift(-1).loc[test_dates].to_numpy()], 1)
    coverage = np.mean((outcomes >= lower) & (outcomes <= upper), axis=0)
    assert np.all(np.abs(coverage - 0.8) < 0.05), coverage
    # The interval widens with the forecast's volatility, which a constant interval would not.
    assert np.std(np.log(upper[:, 0] / lower[:, 0])) > 0.1 * np.mean(np.log(upper[:, 0] / lower[:, 0]))


def test_garch_fits_are_kept_and_reused_with_the_same_quantiles(monkeypatch):
    dates = pd.bdate_range("2000-01-03", periods=1501)
    returns = simulate_garch(omega=0.05, alpha=0.08, beta=0.9, nu=6.0, steps=1500, seed=2)
    prices = pd.DataFrame({"SIM": 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns / 100.0)]))}, index=dates)
    first, second = dates[1001:1201], dates[1201:-2]  # two splits scored against one training span
    tickers = lambda target_dates: np.array(["SIM"] * len(target_dates))  # noqa: E731
    fresh = stock_baselines.garch_baseline(prices, tickers(second), second, dates[1000], horizon=2)
    fits = {}
    stock_baselines.garch_baseline(prices, tickers(first), first, dates[1000], horizon=2, fits=fits)
    assert list(fits) == ["SIM"]

    def refit(returns):
        raise AssertionError("a kept fit was fitted again")

    monkeypatch.setattr(stock_baselines, "fit_garch", refit)
    kept = stock_baselines.garch_baseline(prices, tickers(second), second, dates[1000], horizon=2, fits=fits)
    for fresh_quantile, kept_quantile in zip(fresh, kept):
        np.testing.assert_allclose(kept_quantile, fresh_quantile, rtol=1e-6)
