"""The stock model's parts against NumPy references: its input features, the ensemble's quantiles and their
loss, and the interval calibration fitted on validation data, checked by brute force on the interval score."""

import numpy as np
import pytest

from apps import pipeline, stock_baselines, stock_forecast
from tests.helpers import folders


def random_prices(rows, days, seed=0):
    return (100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.02, (rows, days)), axis=1))).astype("float32")


@pytest.mark.parametrize("window_scaling, absolute_returns", [(False, False), (True, False), (True, True), (False, True)])
def test_return_features_match_numpy(window_scaling, absolute_returns):
    returns = np.random.default_rng(1).normal(0, 1.5, (3, 12, 1)).astype("float32")
    layer = stock_forecast.ReturnFeatures(window_scaling, absolute_returns, floor=1e-3)
    features, unit = (np.asarray(value) for value in layer(returns))
    expected_unit = np.sqrt(np.mean(returns**2, axis=1, keepdims=True) + 1e-6) if window_scaling else np.ones((3, 1, 1))
    channels = [returns / expected_unit]
    if window_scaling:
        channels.append(np.broadcast_to(np.log(expected_unit), returns.shape))
    if absolute_returns:
        channels.append(np.abs(returns / expected_unit))
    np.testing.assert_allclose(unit, expected_unit, rtol=1e-5)
    np.testing.assert_allclose(features, np.concatenate(channels, axis=-1), rtol=1e-5, atol=1e-6)
    assert features.shape[-1] == layer.compute_output_shape((3, 12, 1))[0][-1]


def test_decayed_window_scaling_weighs_older_days_less_as_numpy():
    returns = np.random.default_rng(6).normal(0, 1.0, (2, 9, 1)).astype("float32")
    features, unit = (np.asarray(value) for value in stock_forecast.ReturnFeatures(True, decay=0.9, floor=0.0)(returns))
    weights = 0.9 ** np.arange(8, -1, -1.0)  # the last day weighs 1, the first 0.9**8
    expected = np.sqrt(np.sum(weights[None, :, None] * returns**2, axis=1, keepdims=True) / weights.sum())
    np.testing.assert_allclose(unit, expected, rtol=1e-5)
    np.testing.assert_allclose(features[..., 0:1], returns / expected, rtol=1e-5)
    with pytest.raises(ValueError, match="Received: decay=0"):
        stock_forecast.ReturnFeatures(True, decay=0.0)


def test_window_scaling_makes_the_features_free_of_the_volatility_level():
    returns = np.random.default_rng(2).normal(0, 1.0, (2, 20, 1)).astype("float32")
    layer = stock_forecast.ReturnFeatures(window_scaling=True, absolute_returns=True)
    calm, calm_unit = (np.asarray(value) for value in layer(returns))
    wild, wild_unit = (np.asarray(value) for value in layer(5.0 * returns))
    np.testing.assert_allclose(wild_unit, 5.0 * calm_unit, rtol=1e-4)
    np.testing.assert_allclose(wild[..., [0, 2]], calm[..., [0, 2]], rtol=1e-4, atol=1e-5)  # returns, |returns|
    np.testing.assert_allclose(wild[..., 1], calm[..., 1] + np.log(5.0), rtol=1e-4)  # only the level channel moves


def test_ensemble_quantiles_scale_each_side_around_the_median_for_every_member():
    rng = np.random.default_rng(3)
    members = [np.sort(rng.normal(size=(4, 2, 3)), axis=-1).astype("float32") for _ in range(3)]
    unit = rng.uniform(0.5, 2.0, (4, 1, 1)).astype("float32")
    layer = stock_forecast.EnsembleQuantiles(horizon=2)
    stacked_members = np.stack(members, axis=1)  # as `ensembles.StackMembers` gives them
    layer.build([unit.shape, stacked_members.shape])
    layer.lower_factors.assign([0.5, 1.0])
    layer.upper_factors.assign([2.0, 1.5])
    output = np.asarray(layer([unit, stacked_members]))
    stacked = np.stack(members, axis=1) * unit[..., None]  # [batch, members, horizon, 3]
    median = stacked[..., 1]
    np.testing.assert_allclose(output[..., 1], median, rtol=1e-6)
    np.testing.assert_allclose(output[..., 0], median - np.array([0.5, 1.0]) * (median - stacked[..., 0]), rtol=1e-5)
    np.testing.assert_allclose(output[..., 2], median + np.array([2.0, 1.5]) * (stacked[..., 2] - median), rtol=1e-5)
    # Linear in the members: scaling the members' mean equals the mean of the scaled members.
    mean = stacked.mean(axis=1)
    np.testing.assert_allclose(output.mean(axis=1)[..., 0], mean[..., 1] - np.array([0.5, 1.0]) * (mean[..., 1] - mean[..., 0]),
                               rtol=1e-5)  # fmt: skip


def test_pinball_loss_of_an_ensemble_is_the_mean_of_its_members_losses():
    rng = np.random.default_rng(4)
    quantiles = np.sort(rng.normal(size=(6, 3, 5, 3)), axis=-1).astype("float32")  # [batch, members, horizon, 3]
    targets = rng.normal(size=(6, 5)).astype("float32")
    expected = np.mean([stock_baselines.pinball(quantiles[:, member], targets).mean() for member in range(3)])
    assert float(stock_forecast.pinball_loss(targets, quantiles)) == pytest.approx(expected, rel=1e-5)
    assert float(stock_forecast.pinball_loss(targets, quantiles[:, 0])) == pytest.approx(
        stock_baselines.pinball(quantiles[:, 0], targets).mean(), rel=1e-5)  # fmt: skip


def test_interval_factors_minimise_the_interval_score_by_brute_force():
    rng = np.random.default_rng(5)
    last = rng.uniform(20, 200, 400)
    spread = rng.uniform(0.005, 0.03, (400, 2))
    # The model's interval is too narrow below and too wide above, by different amounts at each horizon.
    quantiles = np.stack([-0.6 * 1.28 * spread, np.zeros_like(spread), 1.5 * 1.28 * spread], axis=-1)
    targets = last[:, None] * np.exp(spread * rng.standard_t(5, (400, 2)) * np.sqrt(3 / 5))
    grid = np.round(np.arange(0.5, 3.0 + 1e-9, 0.05), 2)
    lower, upper = stock_forecast.interval_factors(last, quantiles, targets, factors=grid)
    for step in range(2):
        median = quantiles[:, step, 1]
        bounds = {side: last[:, None] * np.exp(median[:, None] + grid[None] * (quantiles[:, step, index] - median)[:, None])
                  for side, index in (("lower", 0), ("upper", 2))}  # fmt: skip
        scores = np.array([[stock_baselines.interval_score(bounds["lower"][:, [i]], bounds["upper"][:, [j]], targets[:, [step]])[0]
                            for j in range(len(grid))] for i in range(len(grid))])  # fmt: skip
        best_lower, best_upper = np.unravel_index(np.argmin(scores), scores.shape)
        assert (lower[step], upper[step]) == (grid[best_lower], grid[best_upper])
    assert np.all(lower > 1.2) and np.all(upper < 0.9)  # widened below, narrowed above, as the data needs


def test_interval_factors_refuse_bad_factors():
    with pytest.raises(ValueError, match="Received"):
        stock_forecast.interval_factors(np.ones(2), np.zeros((2, 1, 3)), np.ones((2, 1)), factors=[1.0, -0.5])


@pytest.mark.parametrize("changes", [dict(ensemble_size=0), dict(ensemble_size=1.5), dict(window_scaling="yes"),
                                     dict(calibrate_intervals=1), dict(absolute_returns=None),
                                     dict(scale_decay=0), dict(scale_decay=1.5)])  # fmt: skip
def test_bad_model_options_raise_value_errors(changes):
    with pytest.raises(ValueError, match="Received"):
        stock_forecast.StockConfig(**changes)


def test_export_averages_the_members_and_applies_the_calibrated_factors():
    app = stock_forecast.StockForecastApp()
    config = stock_forecast.StockConfig(units=(4,), ensemble_size=3, window_scaling=True, absolute_returns=True, horizon=2)
    model = app.build_model(config, {"return_scale": 0.02})
    prices = random_prices(5, 30)
    raw = np.asarray(model(prices)).mean(axis=1) * 0.02  # [batch, horizon, 3], factors still 1
    layer = model.get_layer("ensemble_quantiles")
    layer.lower_factors.assign([0.8, 1.3])
    layer.upper_factors.assign([1.1, 0.9])
    serve = app.serving_endpoints(model, config, {})[pipeline.SERVING_SIGNATURE][0]
    outputs = {name: np.asarray(value) for name, value in serve(prices).items()}
    last, median = prices[:, -1:].astype(np.float64), raw[..., 1]
    np.testing.assert_allclose(outputs["forecast"], last * np.exp(median), rtol=1e-5)
    np.testing.assert_allclose(outputs["lower"], last * np.exp(median - np.array([0.8, 1.3]) * (median - raw[..., 0])), rtol=1e-5)
    np.testing.assert_allclose(outputs["upper"], last * np.exp(median + np.array([1.1, 0.9]) * (raw[..., 2] - median)), rtol=1e-5)


def test_calibrated_training_keeps_the_validation_factors_in_the_model_and_reports_validation(tmp_path):
    import keras

    report = pipeline.main(stock_forecast.StockForecastApp(),
                           ["train", "--quick", "--ensemble-size", "2", "--calibrate-intervals", *folders(tmp_path)])  # fmt: skip
    model = keras.models.load_model(tmp_path / "runs" / "stock_forecast" / "model.keras")
    layer = model.get_layer("ensemble_quantiles")
    lower, upper = np.asarray(layer.lower_factors), np.asarray(layer.upper_factors)
    config = stock_forecast.StockConfig(**stock_forecast.StockConfig.QUICK, quick=True)
    data = stock_forecast.StockForecastApp().load_data(config)
    inputs, targets = data["validation"][0], data["validation"][1]
    layer.lower_factors.assign(np.ones_like(lower))
    layer.upper_factors.assign(np.ones_like(upper))
    quantiles = np.asarray(model.predict(inputs, verbose=0)).mean(axis=1) * data["return_scale"]
    expected = stock_forecast.interval_factors(inputs[:, -1], quantiles, targets)
    np.testing.assert_allclose(lower, expected[0], rtol=1e-6)
    np.testing.assert_allclose(upper, expected[1], rtol=1e-6)
    last, median = inputs[:, -1:].astype(np.float64), quantiles[..., 1]
    raw = stock_baselines.interval_score(last * np.exp(quantiles[..., 0]), last * np.exp(quantiles[..., 2]), targets)
    calibrated = stock_baselines.interval_score(last * np.exp(median - lower * (median - quantiles[..., 0])),
                                                last * np.exp(median + upper * (quantiles[..., 2] - median)), targets)  # fmt: skip
    assert np.all(calibrated <= raw + 1e-9)  # 1.0 is among the factors, so the fit can only help in sample
    validation = (tmp_path / "reports" / "stock_forecast" / "validation.md").read_text()
    assert "GARCH" in validation and "interval_score80_day1" in validation and "Interval sides scaled" in validation
    assert str(tmp_path / "reports" / "stock_forecast" / "validation.md") in report["files"]
