"""Loaders for the sentiment and stock apps: the bundled offline data by default, online sources on request."""

import os
import pathlib
import socket

import numpy as np
import pandas as pd

BUNDLED_DIRECTORY = pathlib.Path(__file__).resolve().parent / "bundled"
SENTIMENT_FILE = BUNDLED_DIRECTORY / "rotten_tomatoes.csv.gz"
PRICES_FILE = BUNDLED_DIRECTORY / "sp500_prices.csv.gz"

SENTIMENT_DATASETS = ("bundled", "imdb_reviews")
PRICES_DATASETS = ("bundled", "yfinance")
SPLIT_NAMES = ("train", "validation", "test")
# Percent of the snippets per split. Whole movies go to one split: snippets about one film share its
# names and plot words, which would leak from training into the test.
SPLIT_PERCENTAGES = (80, 10, 10)
SPLIT_SEED = 0  # fixed, so every run and every version compares on the same test movies

# tensorflow_datasets downloads IMDB from here; offline it retries for minutes before failing.
TFDS_DATA_HOST = ("storage.googleapis.com", 443)
CONNECTIVITY_TIMEOUT_SECONDS = 3.0
# yfinance's history for the bundled tickers, so both price sources cover the same period.
YFINANCE_START, YFINANCE_END = "1990-01-01", "2023-01-01"


def _check_dataset(dataset, accepted):
    if dataset not in accepted:
        raise ValueError(f"`dataset` must be one of {accepted}. Received: dataset={dataset!r}")


def host_is_reachable(address=TFDS_DATA_HOST, timeout=CONNECTIVITY_TIMEOUT_SECONDS):
    """True when a TCP connection to `address` opens within `timeout` seconds."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def movie_splits(movies, seed=SPLIT_SEED):
    """The split name of each row, whole movies at a time, in a seeded random order of the movies.

    Movies are taken in that order until their snippets fill each split's percentage of the rows.
    """
    movies = pd.Series(movies)
    counts = movies.value_counts().sort_index()
    order = counts.index[np.random.default_rng(seed).permutation(len(counts))]
    filled = counts[order].cumsum() / len(movies)
    boundaries = np.cumsum(SPLIT_PERCENTAGES)[:-1] / 100
    split_of_movie = dict(zip(order, np.array(SPLIT_NAMES)[np.searchsorted(boundaries, filled - 1e-12)]))
    return movies.map(split_of_movie).to_numpy()


def load_sentiment(dataset="bundled"):
    """Returns `(train, validation, test)`, each `(texts: list[str], labels: np.ndarray of int64, 1 = positive)`.

    `dataset="bundled"`: 12,752 Rotten Tomatoes critic snippets about 507 movies, shipped in data/bundled/
    (works offline), split 80/10/10 by movie (`movie_splits`).
    `dataset="imdb_reviews"`: IMDB via tensorflow_datasets; train is the first 90% of its train split,
    validation the last 10%, test its test split. Fails within seconds when it is neither cached nor reachable.
    """
    _check_dataset(dataset, SENTIMENT_DATASETS)
    if dataset == "imdb_reviews":
        return _load_imdb_reviews()
    frame = pd.read_csv(SENTIMENT_FILE, keep_default_na=False)
    splits = movie_splits(frame["movie"])
    return tuple(
        (frame.loc[splits == name, "text"].tolist(), frame.loc[splits == name, "label"].to_numpy(np.int64))
        for name in SPLIT_NAMES
    )


def _tfds_data_directory():
    return pathlib.Path(os.environ.get("TFDS_DATA_DIR", pathlib.Path.home() / "tensorflow_datasets"))


def _load_imdb_reviews():
    if not (_tfds_data_directory() / "imdb_reviews").is_dir() and not host_is_reachable():
        raise RuntimeError(
            f"imdb_reviews is not downloaded under {_tfds_data_directory()} and {TFDS_DATA_HOST[0]} is unreachable "
            f"(no connection within {CONNECTIVITY_TIMEOUT_SECONDS:g} s). Offline, use the bundled data: "
            'load_sentiment(dataset="bundled").'
        )
    import tensorflow_datasets

    splits = tensorflow_datasets.load(
        "imdb_reviews", split=["train[:90%]", "train[90%:]", "test"], as_supervised=True, batch_size=-1
    )
    return tuple(
        ([text.decode("utf-8") for text in texts], np.asarray(labels, np.int64))
        for texts, labels in (tensorflow_datasets.as_numpy(split) for split in splits)
    )


def bundled_tickers():
    """The 20 S&P 500 tickers in the bundled price file, in its column order."""
    return pd.read_csv(PRICES_FILE, nrows=0).columns.drop("Date").tolist()


def load_prices(tickers=None, dataset="bundled", start=None, end=None, cache_dir=".cache/yfinance"):
    """Daily adjusted close prices: a DataFrame indexed by date, one float column per ticker.

    `tickers=None` means the 20 bundled tickers. `dataset="bundled"`: 1990-01-02 to 2022-12-28 from
    data/bundled/ (works offline). `dataset="yfinance"`: downloaded with yfinance and cached as CSV in
    `cache_dir`. `start` and `end` (inclusive dates, optional) cut either source.
    """
    _check_dataset(dataset, PRICES_DATASETS)
    available = bundled_tickers()
    tickers = available if tickers is None else [tickers] if isinstance(tickers, str) else list(tickers)
    if not tickers:
        raise ValueError(f"`tickers` must name at least one ticker. Received: tickers={tickers!r}")
    if dataset == "yfinance":
        return _load_yfinance(tickers, start or YFINANCE_START, end or YFINANCE_END, cache_dir)
    unknown = [ticker for ticker in tickers if ticker not in available]
    if unknown:
        raise ValueError(
            f"The bundled prices hold only {available}. Received unknown tickers: {unknown}; "
            'use dataset="yfinance" for others.'
        )
    prices = pd.read_csv(PRICES_FILE, index_col="Date", parse_dates=["Date"])
    return prices.loc[start:end, tickers].astype(np.float64)


def _load_yfinance(tickers, start, end, cache_dir):
    cache = pathlib.Path(cache_dir) / f"{'_'.join(tickers)}_{start}_{end}.csv"
    if cache.exists():
        return pd.read_csv(cache, index_col="Date", parse_dates=["Date"]).astype(np.float64)
    import yfinance

    downloaded = yfinance.download(tickers, start=start, end=end, auto_adjust=True, progress=False, threads=False)
    prices = downloaded["Close"] if downloaded is not None and "Close" in downloaded else pd.DataFrame()
    if isinstance(prices, pd.Series):
        prices = prices.to_frame(tickers[0])
    prices = prices.dropna(how="all")
    if prices.empty:
        raise RuntimeError(
            f"yfinance returned no prices for {tickers} (offline, or unknown tickers). Offline, use the bundled "
            'data: load_prices(dataset="bundled"), which holds ' + ", ".join(bundled_tickers()) + "."
        )
    prices.index.name = "Date"
    prices.columns.name = None  # as read back from the cache
    missing = [ticker for ticker in tickers if ticker not in prices or prices[ticker].isna().all()]
    if missing:
        print(f"yfinance returned no prices for {missing}; continuing without them.")
    prices = prices[[ticker for ticker in tickers if ticker not in missing]].astype(np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    prices.to_csv(cache)
    return prices
