"""The bundled datasets' loaders: split integrity, price sanity, fast offline failures without the network."""

import sys
import time
import types

import numpy as np
import pandas as pd
import pytest

from data import loaders, sources
from tests.helpers import FAIL_FAST_SECONDS


@pytest.fixture(scope="module")
def sentiment_splits():
    return loaders.load_sentiment()


def test_sentiment_splits_are_disjoint_and_cover_the_bundled_data(sentiment_splits):
    bundled = pd.read_csv(loaders.SENTIMENT_FILE, keep_default_na=False)
    split_texts = [set(texts) for texts, _ in sentiment_splits]
    assert sum(len(texts) for texts in split_texts) == len(bundled) == bundled["text"].nunique()
    assert set().union(*split_texts) == set(bundled["text"])
    for first in range(3):
        for second in range(first + 1, 3):
            assert not split_texts[first] & split_texts[second]
    sizes = np.array([len(texts) for texts, _ in sentiment_splits]) / len(bundled)
    np.testing.assert_allclose(sizes, loaders.SPLIT_FRACTIONS, atol=0.02)


def test_no_movie_is_in_two_splits():
    bundled = pd.read_csv(loaders.SENTIMENT_FILE, keep_default_na=False)
    splits = sources.grouped_split(bundled["movie"])
    assert (pd.crosstab(bundled["movie"], splits) > 0).sum(axis=1).max() == 1
    assert set(splits) == set(loaders.SPLIT_NAMES)
    assert not np.array_equal(splits, sources.grouped_split(bundled["movie"], seed=1))


def test_sentiment_split_is_deterministic(sentiment_splits):
    assert [texts for texts, _ in loaders.load_sentiment()] == [texts for texts, _ in sentiment_splits]


def test_sentiment_labels_and_texts(sentiment_splits):
    for texts, labels in sentiment_splits:
        assert len(texts) == len(labels)
        assert np.issubdtype(labels.dtype, np.integer)
        assert set(np.unique(labels)) == {0, 1}
        assert all(isinstance(text, str) and text.strip() for text in texts)


def test_prices_have_the_twenty_tickers_in_increasing_dates():
    prices = loaders.load_prices()
    assert len(prices.columns) == 20 and {"AAPL", "MSFT", "XOM"} <= set(prices.columns)
    assert isinstance(prices.index, pd.DatetimeIndex) and prices.index.is_monotonic_increasing
    assert prices.index.is_unique
    assert all(np.issubdtype(dtype, np.floating) for dtype in prices.dtypes)
    assert not prices.isna().any().any() and (prices.to_numpy() >= 0).all()
    assert list(loaders.load_prices(["MSFT", "AAPL"]).columns) == ["MSFT", "AAPL"]


@pytest.mark.parametrize(
    "call",
    [
        lambda: loaders.load_sentiment(dataset="sst2"),
        lambda: loaders.load_prices(dataset="stooq"),
        lambda: loaders.load_prices(["NOT_A_TICKER"]),
    ],
)
def test_unknown_names_raise_value_error(call):
    with pytest.raises(ValueError, match="Received"):
        call()


def test_imdb_reviews_fails_fast_offline(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # an empty directory: no local copy
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="bundled"):
        loaders.load_sentiment(dataset="imdb_reviews")
    assert time.monotonic() - start < FAIL_FAST_SECONDS


def test_host_is_reachable_is_false_offline(no_network):
    assert loaders.host_is_reachable() is False


def test_yfinance_empty_result_points_to_bundled_data(no_network, monkeypatch):
    # yfinance returns an empty frame offline; a stand-in module keeps the test off the network entirely.
    fake_yfinance = types.SimpleNamespace(download=lambda *arguments, **keyword_arguments: pd.DataFrame())
    monkeypatch.setitem(sys.modules, "yfinance", fake_yfinance)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="bundled"):
        loaders.load_prices(["AAPL"], dataset="yfinance")
    assert time.monotonic() - start < FAIL_FAST_SECONDS


def test_yfinance_result_becomes_a_float_frame_per_ticker(monkeypatch, tmp_path):
    dates = pd.to_datetime(["2020-01-02", "2020-01-03"])
    columns = pd.MultiIndex.from_product([["Close", "Open"], ["AAPL", "MSFT"]], names=["Price", "Ticker"])
    downloaded = pd.DataFrame(np.arange(8.0).reshape(2, 4), index=dates, columns=columns)
    fake_yfinance = types.SimpleNamespace(download=lambda *arguments, **keyword_arguments: downloaded)
    monkeypatch.setitem(sys.modules, "yfinance", fake_yfinance)
    prices = loaders.load_prices(["MSFT", "AAPL"], dataset="yfinance", cache_dir=tmp_path)
    assert list(prices.columns) == ["MSFT", "AAPL"]
    np.testing.assert_array_equal(prices.to_numpy(), [[1.0, 0.0], [5.0, 4.0]])
    # The second call reads the CSV cache, not yfinance.
    monkeypatch.setitem(sys.modules, "yfinance", None)
    cached = loaders.load_prices(["MSFT", "AAPL"], dataset="yfinance", cache_dir=tmp_path)
    pd.testing.assert_frame_equal(cached, prices, check_freq=False)
