"""Stock forecasting: past daily closes in, the next `horizon` closes with an 80% interval out.

    python -m apps.stock_forecast train [--quick]     # bundled 20 S&P 500 stocks, 1990-2022
    python -m apps.stock_forecast train --data sales.csv --horizon 7 --window 56   # your own series
    python -m apps.stock_forecast predict 101.2,101.9,100.7,...   # oldest first, 10 to 60 prices

The model turns prices into scaled log returns inside the graph (so it is scale-free and a client sends
raw prices), runs a deep LSTM from our layers, and predicts three quantiles (10%, 50%, 90%) of the
cumulative log return to each horizon. The median is the forecast, the outer two the 80% interval.
Splits are by time, never random: for the bundled data train up to 2016, validate 2017-2018, test
2019-2022; for other data the oldest 80% of the span, the next 10% and the newest 10% (or
`--split-dates`). A window belongs to the split its forecast dates fall in. Beating a random walk on
prices is hard; the report puts the model next to the last-value and drift forecasts and says how
well its intervals are calibrated.
"""

import dataclasses

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops

import layers
from apps import pipeline, stock_baselines
from apps.config import Config, layer_sizes
from data import loaders, sources

QUANTILES = stock_baselines.QUANTILES  # (0.1, 0.5, 0.9): the 80% interval and the median, one tuple for model and scores
MINIMUM_WINDOW = 10  # prices a request must hold at least: 9 returns give the LSTM some context
QUICK_TICKERS = ("AAPL", "MSFT", "XOM")  # --quick on the bundled data: three of the twenty
BUNDLED_SPLIT_DATES = ("2017-01-01", "2019-01-01")  # where validation and test start for the bundled and yfinance data


@dataclasses.dataclass
class StockConfig(Config):
    dataset: str = "bundled"  # or "yfinance" (online, with --tickers --start --end)
    tickers: tuple = ()  # empty: every bundled ticker
    start: str = "1990-01-01"  # yfinance only
    end: str = "2023-01-01"  # yfinance only
    date_column: str = ""  # --data: default the column named like a date, else the first
    series_column: str = ""  # --data in long form (date, series, value): the column naming the series
    value_column: str = "value"  # --data in long form: the column holding the values
    split_dates: tuple = ()  # (validation start, test start); empty: bundled dates, or fractions of the span
    window: int = 60  # prices per training window (about three months); requests may be shorter
    horizon: int = 5  # steps forecast (trading days for daily prices)
    train_stride: int = 3  # a training window every 3 days: neighbours overlap 57/60 and add little
    units: tuple = (64, 64)  # a deep LSTM, as the notes describe; returns carry weak, noisy signal
    dropout: float = 0.1
    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 2

    QUICK = dict(train_stride=20, units=(8,), epochs=1, window=30)
    DEMO = dict(train_stride=10, epochs=3)  # all 20 stocks, every 10th window: the intervals are already calibrated

    def __post_init__(self):
        super().__post_init__()
        for name, lowest in (("window", MINIMUM_WINDOW), ("horizon", 1), ("train_stride", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"`{name}` must be an integer >= {lowest}. Received: {name}={value!r}")
        self.units = layer_sizes(self.units)
        if self.group_column or self.split_column:
            raise ValueError(
                "Series split by time, never by group or by a column. Received: "
                f"group_column={self.group_column!r}, split_column={self.split_column!r}; use --split-dates"
            )


@keras.saving.register_keras_serializable(package="rnn_suite")
class ScaledLogReturns(keras.layers.Layer):
    """Prices `(batch, time)` -> log returns `(batch, time - 1, 1)` divided by a fixed training-set scale."""

    def __init__(self, scale=0.02, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, prices):
        returns = ops.log(prices[:, 1:] / prices[:, :-1]) / self.scale
        return ops.expand_dims(returns, -1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="rnn_suite")
class QuantileHead(keras.layers.Layer):
    """Features -> `(batch, horizon, 3)` ordered quantiles: the median, minus and plus positive widths."""

    def __init__(self, horizon, **kwargs):
        super().__init__(**kwargs)
        self.horizon = int(horizon)
        self.dense = keras.layers.Dense(3 * self.horizon, name="quantiles")

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, features):
        raw = ops.reshape(self.dense(features), (-1, self.horizon, 3))
        median = raw[..., 1]
        lower = median - ops.softplus(raw[..., 0])
        upper = median + ops.softplus(raw[..., 2])
        return ops.stack([lower, median, upper], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, 3)

    def get_config(self):
        return {**super().get_config(), "horizon": self.horizon}


@keras.saving.register_keras_serializable(package="rnn_suite")
def pinball_loss(targets, quantiles):
    """Mean quantile (pinball) loss of the three quantiles against `(batch, horizon)` targets."""
    errors = ops.expand_dims(targets, -1) - quantiles
    levels = ops.convert_to_tensor(QUANTILES, dtype=quantiles.dtype)
    return ops.mean(ops.maximum(levels * errors, (levels - 1.0) * errors))


def split_of_dates(dates, split_starts):
    """The split name of each date, given `(validation start, test start)`."""
    validation_start, test_start = (pd.Timestamp(value) for value in split_starts)
    return np.where(dates < validation_start, "train", np.where(dates < test_start, "validation", "test"))


def make_windows(prices, window, horizon, split, split_starts, stride=1, source="the data"):
    """All windows of `window` prices whose `horizon` targets fall in `split`'s dates, over every ticker.

    `split_starts` is `(validation start, test start)`. Returns `(inputs (n, window), targets (n, horizon),
    tickers (n,), target dates (n,))`. Windows with a missing price (ragged histories, gaps) are skipped.
    """
    dates = prices.index
    in_split = split_of_dates(dates, split_starts) == split
    inputs, targets, tickers, target_dates = [], [], [], []
    skipped = 0
    for ticker in prices.columns:
        series = prices[ticker].to_numpy(np.float64)
        for end in range(window - 1, len(series) - horizon, stride):
            future = slice(end + 1, end + 1 + horizon)
            if not in_split[future].all():
                continue
            values = series[end - window + 1 : end + 1 + horizon]
            if not np.isfinite(values).all() or (values <= 0).any():
                skipped += 1
                continue
            inputs.append(values[:window])
            targets.append(values[window:])
            tickers.append(ticker)
            target_dates.append(dates[end + 1])
    if skipped:
        print(f"{split}: skipped {skipped} windows with missing or non-positive prices (ragged histories, gaps)")
    if not inputs:
        raise sources.DataError(
            f"{source}: no complete window of {window} values followed by {horizon} forecast values in the {split} "
            f"split (dates {int(in_split.sum())} of {len(dates)}). Received series {list(prices.columns)}; use a "
            "smaller --window or --horizon, more data, or other --split-dates"
        )
    return (np.array(inputs, "float32"), np.array(targets, "float32"), np.array(tickers), np.array(target_dates))


def forecast_metrics(last, targets, forecast, lower=None, upper=None, naive_mae=None):
    """Per-horizon MAE and RMSE in price units, MAE ratio to the naive forecast, direction, and with an
    interval its score, the pinball loss of the three quantiles and coverage (see stock_baselines)."""
    metrics = {}
    for step in range(targets.shape[1]):
        error = forecast[:, step] - targets[:, step]
        mae = float(np.mean(np.abs(error)))
        metrics[f"mae_day{step + 1}"] = mae
        metrics[f"rmse_day{step + 1}"] = float(np.sqrt(np.mean(error**2)))
        if naive_mae is not None:
            metrics[f"mae_ratio_to_naive_day{step + 1}"] = float(mae / naive_mae[step])
        predicted_move = np.sign(forecast[:, step] - last)
        if np.any(predicted_move != 0):
            metrics[f"direction_accuracy_day{step + 1}"] = float(np.mean(predicted_move == np.sign(targets[:, step] - last)))
    if lower is not None:
        metrics.update(stock_baselines.interval_metrics(lower, forecast, upper, targets))
    metrics = dict(sorted(metrics.items(), key=lambda item: int(item[0].rsplit("day", 1)[1])))  # by horizon
    metrics["windows"] = int(len(targets))
    return metrics


class StockForecastApp(pipeline.App):
    """Daily stock price forecasting with quantile intervals, from a deep LSTM over log returns."""

    name = "stock_forecast"
    Config = StockConfig

    def add_arguments(self, parser):
        parser.add_argument("--tickers", nargs="+", type=str, default=None, help="default: all bundled")
        parser.add_argument("--start", help="first date, yfinance only")
        parser.add_argument("--end", help="last date, yfinance only")
        parser.add_argument("--window", type=int, help="values per training window; requests may be shorter")
        parser.add_argument("--horizon", type=int, help="steps to forecast")
        parser.add_argument("--units", type=int, nargs="+", help="units of each stacked LSTM layer")
        parser.add_argument("--date-column", dest="date_column", help="--data: the date column")
        parser.add_argument("--series-column", dest="series_column",
                            help="--data in long form (date, series, value): the column naming each series")
        parser.add_argument("--value-column", dest="value_column", help="--data in long form: the values' column")
        parser.add_argument("--split-dates", dest="split_dates", type=lambda text: tuple(text.split(",")),
                            help="VALIDATION_START,TEST_START, e.g. 2017-01-01,2019-01-01")

    def load_data(self, config):
        if config.data_path:
            prices, dropped = loaders.load_price_table(
                config.data_path, config.date_column, config.series_column, config.value_column
            )
            if config.tickers:
                missing = sorted(set(config.tickers) - set(prices.columns))
                if missing:
                    raise sources.DataError(f"{config.data_path}: no series {missing}. Received series "
                                            f"{list(prices.columns)}")  # fmt: skip
                prices = prices[list(config.tickers)]
            source, split_dates = config.data_path, config.split_dates
        else:
            tickers = list(config.tickers) or (list(QUICK_TICKERS) if config.quick else None)
            prices = loaders.load_prices(tickers, dataset=config.dataset, start=config.start, end=config.end)
            source, dropped, split_dates = config.dataset, {}, config.split_dates or BUNDLED_SPLIT_DATES
        split_starts = sources.time_split_dates(prices.index, config.split_fractions, split_dates, source)
        windows = {
            split: make_windows(prices, config.window, config.horizon, split, split_starts,
                                config.train_stride if split == "train" else 1, source)
            for split in sources.SPLIT_NAMES
        }  # fmt: skip
        return sources.make_splits(
            **windows, source=source, dropped=dropped, prices=prices,
            split_starts=[str(pd.Timestamp(value).date()) for value in split_starts],
            return_scale=float(np.std(np.diff(np.log(windows["train"][0]), axis=1))),
        )  # fmt: skip

    def make_dataset(self, config, data, split, training):
        inputs, targets = data[split][0], data[split][1]
        cumulative = np.log(targets / inputs[:, -1:]) / data["return_scale"]
        dataset = tf.data.Dataset.from_tensor_slices((inputs, cumulative.astype("float32")))
        if training:
            dataset = dataset.shuffle(len(inputs), seed=config.seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(config.batch_size)
        if training:
            # Each batch keeps only its last L prices, L drawn in [MINIMUM_WINDOW, window], so the model
            # learns every window length a client may send.
            def crop(index, batch):
                length = tf.random.stateless_uniform(
                    [], seed=[config.seed, index], minval=MINIMUM_WINDOW, maxval=config.window + 1, dtype=tf.int32
                )
                return batch[0][:, -length:], batch[1]

            dataset = dataset.enumerate().map(lambda index, batch: crop(tf.cast(index, tf.int32), batch))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def build_model(self, config, data):
        prices = keras.Input(shape=(None,), name="prices")
        returns = ScaledLogReturns(data["return_scale"], name="scaled_log_returns")(prices)
        features = layers.DeepRNN("lstm", units=list(config.units), dropout=config.dropout, name="deep_lstm")(returns)
        quantiles = QuantileHead(config.horizon, name="quantile_head")(features)
        model = keras.Model(prices, quantiles, name="stock_forecast")
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=pinball_loss)
        return model

    def serving_endpoints(self, model, config, resources):
        scale = model.get_layer("scaled_log_returns").scale
        window = config.window

        def serve(prices):
            length = tf.shape(prices)[1]
            checks = [
                tf.debugging.assert_greater_equal(
                    length, MINIMUM_WINDOW, message=f"prices must hold at least {MINIMUM_WINDOW} days per row"
                ),
                tf.debugging.assert_all_finite(prices, message="prices must not be NaN or infinite"),
                tf.debugging.assert_positive(prices, message="prices must be positive"),
            ]
            with tf.control_dependencies(checks):
                recent = prices[:, -window:]  # longer histories: the last `window` days, as in training
            quantiles = model(recent, training=False) * scale
            last = recent[:, -1:]
            return {
                "forecast": last * tf.exp(quantiles[..., 1]),
                "lower": last * tf.exp(quantiles[..., 0]),
                "upper": last * tf.exp(quantiles[..., 2]),
            }

        return {"serving_default": (serve, [tf.TensorSpec([None, None], tf.float32, name="prices")])}

    def example_inputs(self, config, data):
        inputs = data["test"][0]
        return [{"prices": inputs[:3]}, {"prices": inputs[:1, -MINIMUM_WINDOW - 5 :]}]

    def predictions(self, data, predict):
        inputs, targets = data["test"][0], data["test"][1]
        return inputs, targets, predict({"prices": inputs})

    def evaluate(self, config, data, predict):
        inputs, targets, outputs = self.predictions(data, predict)
        if outputs["forecast"].shape[1] != targets.shape[1]:
            raise ValueError(f"The export forecasts {outputs['forecast'].shape[1]} steps and the data was windowed for "
                             f"{targets.shape[1]}. Received: --horizon {config.horizon}; evaluate with the export's")  # fmt: skip
        last = inputs[:, -1]
        naive_mae = np.mean(np.abs(targets - last[:, None]), axis=0)
        return forecast_metrics(last, targets, outputs["forecast"], outputs["lower"], outputs["upper"], naive_mae)

    def baselines(self, config, data):
        inputs, targets = data["test"][0], data["test"][1]
        last = inputs[:, -1]
        naive = np.repeat(last[:, None], targets.shape[1], axis=1)
        naive_mae = np.mean(np.abs(targets - naive), axis=0)
        daily_drift = np.mean(np.diff(np.log(inputs), axis=1), axis=1)
        drift = last[:, None] * np.exp(daily_drift[:, None] * np.arange(1, targets.shape[1] + 1))
        results = {
            "naive (last value)": forecast_metrics(last, targets, naive, naive_mae=naive_mae),
            "drift (window's mean return)": forecast_metrics(last, targets, drift, naive_mae=naive_mae),
        }
        for name, (lower, median, upper) in interval_baselines(data).items():
            results[name] = forecast_metrics(last, targets, median, lower, upper, naive_mae)
        return results

    def plot(self, config, data, predict, report_dir):
        inputs, targets, outputs = self.predictions(data, predict)
        tickers, dates = data["test"][2], data["test"][3]
        ticker = "AAPL" if "AAPL" in set(tickers) else tickers[0]
        rows = tickers == ticker
        figure, axis = pipeline.pyplot().subplots(figsize=(10, 4))
        axis.fill_between(dates[rows], outputs["lower"][rows, 0], outputs["upper"][rows, 0], alpha=0.3,
                          label="80% interval")
        axis.plot(dates[rows], targets[rows, 0], color="black", linewidth=0.8, label="actual close")
        axis.plot(dates[rows], outputs["forecast"][rows, 0], linewidth=0.8, label="forecast (median)")
        axis.set_title(f"{ticker}: next-step forecast on the test period")
        axis.set_ylabel("price")
        axis.legend()
        forecasts = {"ours": (outputs["lower"], outputs["forecast"], outputs["upper"]), **interval_baselines(data)}
        return [pipeline.save_figure(figure, report_dir / "forecast_vs_actual.png"),
                plot_interval_score_by_year(forecasts, targets, dates, report_dir / "interval_score_by_year.png")]  # fmt: skip


def interval_baselines(data):
    """`{name: (lower, median, upper)}` of the volatility baselines on the test windows (see stock_baselines)."""
    inputs, targets, tickers, dates = data["test"]
    return {
        "rolling volatility (window's returns)": stock_baselines.rolling_volatility(inputs, targets.shape[1]),
        "GARCH(1,1), Student t (arch)": stock_baselines.garch_baseline(
            data["prices"], tickers, dates, data["split_starts"][0], targets.shape[1]
        ),
    }


def plot_interval_score_by_year(forecasts, targets, dates, path):
    """One panel per horizon (at most five, spread over the horizons): each forecast's 80% interval score in
    each calendar year of the test windows, so a result that hangs on one year shows."""
    years = pd.DatetimeIndex(dates).year.to_numpy()
    calendar = np.unique(years)
    steps = np.unique(np.linspace(0, targets.shape[1] - 1, min(5, targets.shape[1])).round().astype(int))
    figure, axes = pipeline.pyplot().subplots(1, len(steps), figsize=(3.2 * len(steps), 3.4), squeeze=False)
    for axis, step in zip(axes[0], steps):
        for name, (lower, _, upper) in forecasts.items():
            scores = [stock_baselines.interval_score(lower[years == year, step : step + 1],
                                                     upper[years == year, step : step + 1],
                                                     targets[years == year, step : step + 1])[0] for year in calendar]  # fmt: skip
            axis.plot(calendar, scores, marker="o", label=name.split(" (")[0])
        axis.set_title(f"day {step + 1}")
        axis.set_xticks(calendar)
        axis.set_xlabel("year of the forecast")
    axes[0, 0].set_ylabel("80% interval score (lower is better)")
    axes[0, 0].legend(fontsize=7)
    return pipeline.save_figure(figure, path)


def main(argv=None):
    return pipeline.main(StockForecastApp(), argv)


if __name__ == "__main__":
    pipeline.command_line(StockForecastApp())
