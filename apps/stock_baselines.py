"""Interval forecasts the stock model is judged against, and the scores that compare intervals.

A median alone says nothing of an interval's worth, so every forecast here gives the same three quantiles as
the model (10%, 50%, 90%): the 80% interval and its median, scored by

- the interval score of Gneiting & Raftery (2007, eq. 43): the interval's width plus 2/alpha times how far the
  outcome falls outside it; lower is better, and a too-narrow interval pays for every miss;
- the pinball (quantile) loss of the three quantiles, which the model is trained on;
- coverage, the share of outcomes inside the interval.

The two volatility baselines forecast no move (the median is the last price, or GARCH's constant mean) and put
the interval where the recent spread of returns says:

- rolling volatility: a normal interval from the standard deviation of the daily log returns of the window's last
  60 days;
- GARCH(1,1) with Student-t errors, from the `arch` package, fitted per series on the training span and then
  run over the whole series with those parameters, so each forecast uses only the prices up to its origin.
"""

import warnings

import numpy as np
from scipy import stats

QUANTILES = (0.1, 0.5, 0.9)
ALPHA = 0.2  # the 80% interval
SIMULATIONS = 200_000  # draws for the quantiles of a sum of Student-t shocks
ROLLING_VOLATILITY_DAYS = 60  # prices the rolling-volatility interval reads: the baseline stays one when the model's window grows


def interval_score(lower, upper, targets, alpha=ALPHA):
    """Mean interval score of central (1 - alpha) intervals, per column: width plus 2/alpha times each miss."""
    lower, upper, targets = (np.asarray(value, np.float64) for value in (lower, upper, targets))
    below = np.maximum(lower - targets, 0.0)
    above = np.maximum(targets - upper, 0.0)
    return np.mean((upper - lower) + (2.0 / alpha) * (below + above), axis=0)


def pinball(quantiles, targets, levels=QUANTILES):
    """Mean pinball loss per column of `quantiles [n, horizon, len(levels)]` against `targets [n, horizon]`."""
    errors = np.asarray(targets, np.float64)[..., None] - np.asarray(quantiles, np.float64)
    levels = np.asarray(levels, np.float64)
    return np.mean(np.maximum(levels * errors, (levels - 1.0) * errors), axis=(0, 2))


def interval_metrics(lower, forecast, upper, targets):
    """`{name_dayH: value}`: interval score, pinball loss of the three quantiles and coverage, per horizon."""
    scores = interval_score(lower, upper, targets)
    losses = pinball(np.stack([lower, forecast, upper], axis=-1), targets)
    inside = (targets >= lower) & (targets <= upper)
    metrics = {}
    for step in range(targets.shape[1]):
        metrics[f"interval_score80_day{step + 1}"] = float(scores[step])
        metrics[f"pinball_day{step + 1}"] = float(losses[step])
        metrics[f"coverage80_day{step + 1}"] = float(np.mean(inside[:, step]))
    return metrics


def rolling_volatility(inputs, horizon, days=ROLLING_VOLATILITY_DAYS):
    """`(lower, median, upper)`, each `[n, horizon]`: the last price, with a normal 80% interval of the
    cumulative log return whose daily spread is the standard deviation of the log returns of the window's last
    `days` prices (all of them in a shorter window)."""
    returns = np.diff(np.log(np.asarray(inputs, np.float64)[:, -days:]), axis=1)
    spread = np.std(returns, axis=1, ddof=1)[:, None] * np.sqrt(np.arange(1, horizon + 1))
    z = stats.norm.ppf(1 - ALPHA / 2)
    last = np.asarray(inputs, np.float64)[:, -1:]
    median = np.repeat(last, horizon, axis=1)
    return median * np.exp(-z * spread), median, median * np.exp(z * spread)


def student_t_sum_quantiles(nu, horizon, seed=0):
    """Quantiles (QUANTILES) of the sum of h independent unit-variance Student-t shocks, divided by sqrt(h),
    for h = 1..horizon: `[horizon, 3]`. Exact for h = 1; simulated for longer sums, which are not t."""
    draws = np.random.default_rng(seed).standard_t(nu, size=(SIMULATIONS, horizon)) * np.sqrt((nu - 2.0) / nu)
    sums = np.cumsum(draws, axis=1) / np.sqrt(np.arange(1, horizon + 1))
    quantiles = np.quantile(sums, QUANTILES, axis=0).T
    quantiles[0] = stats.t.ppf(QUANTILES, nu) * np.sqrt((nu - 2.0) / nu)
    return quantiles


def fit_garch(returns):
    """GARCH(1,1) with a constant mean and Student-t errors fitted to daily log returns in percent (a pandas
    Series); returns the fitted parameters (mu, omega, alpha[1], beta[1], nu)."""
    from arch import arch_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arch's convergence and scaling notes; the fit is checked by its use
        return arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="t").fit(disp="off").params


def percent_log_returns(series):
    """Daily log returns in percent of a pandas Series of positive prices, its gaps left out."""
    return 100.0 * np.log(series.dropna()).diff().dropna()


def garch_forecasts(series, params, origins, horizon):
    """GARCH's three quantiles of the price `horizon` steps after each of `origins` (dates of `series`, a
    pandas Series of positive prices): `[len(origins), horizon, 3]`, with the parameters `params` that
    `fit_garch` fitted, filtered over the whole series."""
    from arch import arch_model

    series = series.dropna()
    returns = percent_log_returns(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="t").fix(params)
        variance = fixed.forecast(horizon=horizon, start=min(origins), reindex=False).variance
    cumulative = np.cumsum(variance.loc[list(origins)].to_numpy(), axis=1)  # percent^2, sum over the steps
    location = params["mu"] * np.arange(1, horizon + 1)  # percent
    shocks = student_t_sum_quantiles(params["nu"], horizon)  # [horizon, 3], of a unit-variance sum
    log_returns = (location[None, :, None] + np.sqrt(cumulative)[..., None] * shocks[None]) / 100.0
    return series.loc[list(origins)].to_numpy()[:, None, None] * np.exp(log_returns)


def garch_baseline(prices, tickers, target_dates, training_end, horizon, fits=None):
    """GARCH's `(lower, median, upper)` `[n, horizon]` for windows given by their series and first target date.

    `fits`, a dict, keeps each series' fitted parameters by name: pass the same dict for every split scored
    against the same training span, and each series is fitted once."""
    fits = {} if fits is None else fits
    quantiles = np.empty((len(tickers), horizon, 3))
    positions = prices.index.get_indexer(target_dates)
    if np.any(positions < 1):
        raise ValueError("Every forecast needs a price before its first target date. Received dates not in the "
                         f"prices, e.g. {target_dates[positions < 1][:3]}")  # fmt: skip
    origins = prices.index[positions - 1]
    for ticker in np.unique(tickers):
        rows = np.flatnonzero(tickers == ticker)
        if ticker not in fits:
            returns = percent_log_returns(prices[ticker])
            fits[ticker] = fit_garch(returns[returns.index < training_end])
        quantiles[rows] = garch_forecasts(prices[ticker], fits[ticker], origins[rows], horizon)
    return quantiles[..., 0], quantiles[..., 1], quantiles[..., 2]
