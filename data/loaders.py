"""Loaders for the sentiment, stock and translation apps: bundled offline data by default, online on request."""

import os
import pathlib
import re
import socket

import numpy as np
import pandas as pd

BUNDLED_DIRECTORY = pathlib.Path(__file__).resolve().parent / "bundled"
SENTIMENT_FILE = BUNDLED_DIRECTORY / "rotten_tomatoes.csv.gz"
PRICES_FILE = BUNDLED_DIRECTORY / "sp500_prices.csv.gz"
BIBLE_FILE = BUNDLED_DIRECTORY / "bible_en_es.tsv.gz"  # written by data/build_bible_corpus.py

SENTIMENT_DATASETS = ("bundled", "imdb_reviews")
PRICES_DATASETS = ("bundled", "yfinance")
TRANSLATION_DATASETS = ("bundled", "spa_eng")
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

# Translation splits of the bundled Bible are whole books, so a verse's neighbours (same names, same phrasing,
# often a repeated formula) never leak into the test. Short books from both testaments and several genres.
TEST_BOOKS = ("Ruth", "Esther", "Jonah", "James", "I John")  # pysword's name for 1 John
VALIDATION_BOOKS = ("Joel", "Habakkuk", "Titus", "Philemon", "Jude")
# 91% of the verses have at most 40 words on both sides (median 22 English, 21 Spanish; the 99th percentile is
# 54); cutting long verses keeps the pieces of about 1,000 of the other 2,702. Longer pairs would set the padded
# length of every batch for a few percent of the data.
MAX_WORDS = 40
# Strong punctuation where a long verse may be cut, coarsest first: sentence ends, then also semicolons, then
# also colons. The RV1909 often ends a sentence with ":" or ";" where the WEB has ".", so the finer sets find
# more verses whose two sides cut into the same number of pieces.
PIECE_MARKS = (".?!", ".?!;", ".?!;:")
# Where the two sides cut at the same places, each cut falls at about the same fraction of the verse's characters.
# Allowing the cuts to sit 8% of the verse apart accepted 1,032 of the 2,702 verses over 40 words, and in a
# sample read by eye their pieces paired up; 15% let in pieces holding their neighbour's clause.
MAX_CUT_SHIFT = 0.08
# The English-Spanish sentence pairs of the TensorFlow NMT tutorial (Tatoeba via manythings.org).
SPA_ENG_URL = "http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"
SPA_ENG_HOST = ("storage.googleapis.com", 80)


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


def tfds_data_directory():
    return pathlib.Path(os.environ.get("TFDS_DATA_DIR", pathlib.Path.home() / "tensorflow_datasets"))


def _load_imdb_reviews():
    if not (tfds_data_directory() / "imdb_reviews").is_dir() and not host_is_reachable():
        raise RuntimeError(
            f"imdb_reviews is not downloaded under {tfds_data_directory()} and {TFDS_DATA_HOST[0]} is unreachable "
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


def split_into_pieces(text, marks):
    """`text` cut after each of the punctuation `marks` (and any closing quotes) that a space follows."""
    pattern = r"[" + re.escape(marks) + r"][”’»\"')]*(\s+)"
    pieces, start = [], 0
    for match in re.finditer(pattern, text):
        pieces.append(text[start : match.start(1)])
        start = match.end()
    pieces.append(text[start:])
    return [piece for piece in pieces if piece]


def aligned_pieces(english, spanish, marks=PIECE_MARKS, max_cut_shift=MAX_CUT_SHIFT):
    """The two sides cut into the same number (at least 2) of pieces that pair up, or None.

    Tries each set of `marks` in turn, coarsest first, and takes the first where both sides have as many
    pieces and each cut lies at the same fraction of its side's characters, within `max_cut_shift`.
    Otherwise None: the verse stays whole, since cuts that fall in different places would pair a clause
    with the translation of its neighbour.
    """
    for piece_marks in marks:
        english_pieces = split_into_pieces(english, piece_marks)
        spanish_pieces = split_into_pieces(spanish, piece_marks)
        if len(english_pieces) != len(spanish_pieces) or len(english_pieces) < 2:
            continue
        english_cuts, spanish_cuts = (
            np.cumsum([len(piece) for piece in pieces])[:-1] / sum(len(piece) for piece in pieces)
            for pieces in (english_pieces, spanish_pieces)
        )
        if np.abs(english_cuts - spanish_cuts).max() <= max_cut_shift:
            return english_pieces, spanish_pieces
    return None


def _check_max_words(max_words):
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"`max_words` must be a positive integer. Received: max_words={max_words!r}")


def load_translation(dataset="bundled", max_words=MAX_WORDS, cache_dir=".cache", seed=SPLIT_SEED):
    """English-Spanish sentence pairs split for training, validation and test, at most `max_words` words a side.

    Returns a dict:
      - `"train"`, `"validation"`, `"test"`: `(english: list[str], spanish: list[str])`, aligned.
      - `"kept"`: `{split: {"pairs", "verses", "dropped_too_long", "split_verses", "pieces_from_split_verses"}}`:
        the pairs returned; the verses (sentence pairs for spa_eng) in the split's books; the pairs dropped for
        having more than `max_words` words on either side; the verses cut into pieces and the pieces they gave
        (kept or dropped). So `pairs == verses - split_verses + pieces_from_split_verses - dropped_too_long`.
      - `"books"`: `{split: [book names]}` in canonical order (empty lists for spa_eng).
      - `"test_refs"`: `[(book, chapter, verse)]` of each test pair (the pieces of one verse share it);
        None for spa_eng.

    `dataset="bundled"`: the 30,636 Bible verse pairs of data/bundled/bible_en_es.tsv.gz (works offline),
    split by book (`TEST_BOOKS`, `VALIDATION_BOOKS`, the rest for training). A verse longer than `max_words`
    on either side is cut into pieces when `aligned_pieces` finds cuts that pair up; otherwise it stays whole.
    `dataset="spa_eng"`: the TensorFlow NMT tutorial's Tatoeba pairs, downloaded with `keras.utils.get_file`
    into `cache_dir`, split 80/10/10 by a `seed`-shuffled order of the unique English sentences, so one English
    sentence is never in two splits. Fails within seconds when it is neither cached nor reachable.
    """
    _check_dataset(dataset, TRANSLATION_DATASETS)
    _check_max_words(max_words)
    if dataset == "spa_eng":
        return _load_spa_eng(max_words, cache_dir, seed)
    verses = pd.read_csv(BIBLE_FILE, sep="\t", keep_default_na=False)
    books = {
        "test": list(TEST_BOOKS),
        "validation": list(VALIDATION_BOOKS),
        "train": [book for book in verses["book"].unique() if book not in TEST_BOOKS + VALIDATION_BOOKS],
    }
    missing = [book for book in TEST_BOOKS + VALIDATION_BOOKS if book not in set(verses["book"])]
    if missing:
        raise ValueError(f"Expected the corpus to hold every test and validation book. Received none of: {missing}")
    result = {"kept": {}, "books": {}}
    for split in SPLIT_NAMES:
        in_split = verses[verses["book"].isin(books[split])]
        references = zip(in_split["book"], in_split["chapter"], in_split["verse"])
        english, spanish, references, counts = _cut_and_filter(
            in_split["english"], in_split["spanish"], references, max_words
        )
        result[split] = (english, spanish)
        result["kept"][split] = counts
        result["books"][split] = books[split]
        if split == "test":
            result["test_refs"] = references
    return result


def _cut_and_filter(english_texts, spanish_texts, references, max_words):
    english, spanish, kept_references = [], [], []
    counts = {"pairs": 0, "verses": 0, "dropped_too_long": 0, "split_verses": 0, "pieces_from_split_verses": 0}
    for english_text, spanish_text, reference in zip(english_texts, spanish_texts, references):
        counts["verses"] += 1
        pairs = [(english_text, spanish_text)]
        if max(len(english_text.split()), len(spanish_text.split())) > max_words:
            pieces = aligned_pieces(english_text, spanish_text)
            if pieces is not None:
                pairs = list(zip(*pieces))
                counts["split_verses"] += 1
                counts["pieces_from_split_verses"] += len(pairs)
        for english_piece, spanish_piece in pairs:
            if max(len(english_piece.split()), len(spanish_piece.split())) > max_words:
                counts["dropped_too_long"] += 1
                continue
            english.append(english_piece)
            spanish.append(spanish_piece)
            kept_references.append(reference)
    counts["pairs"] = len(english)
    return english, spanish, kept_references, counts


def _spa_eng_file(cache_dir):
    """spa.txt from the cache, or downloaded into it; RuntimeError at once when neither is possible."""
    cache_dir = pathlib.Path(cache_dir).resolve()
    cached = sorted((cache_dir / "datasets").glob("**/spa-eng/spa.txt"))
    if cached:
        return cached[0]
    if not host_is_reachable(SPA_ENG_HOST):
        raise RuntimeError(
            f"spa-eng is not downloaded under {cache_dir} and {SPA_ENG_HOST[0]} is unreachable (no connection "
            f"within {CONNECTIVITY_TIMEOUT_SECONDS:g} s). Offline, use the bundled Bible corpus: "
            'load_translation(dataset="bundled").'
        )
    import keras

    downloaded = pathlib.Path(keras.utils.get_file("spa-eng.zip", SPA_ENG_URL, cache_dir=str(cache_dir), extract=True))
    # Keras returns the archive's path or, from 3.x on, the folder it extracted to.
    found = sorted((downloaded if downloaded.is_dir() else downloaded.parent).glob("**/spa-eng/spa.txt"))
    if not found:
        raise RuntimeError(f"Expected spa-eng/spa.txt in the archive from {SPA_ENG_URL}. Received: {downloaded}")
    return found[0]


def read_spa_eng(path):
    """`(english, spanish)` lists from spa.txt: tab-separated, English first; later columns (attribution) ignored."""
    english, spanish = [], []
    for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines():
        columns = line.split("\t")
        if len(columns) >= 2 and columns[0].strip() and columns[1].strip():
            english.append(columns[0].strip())
            spanish.append(columns[1].strip())
    return english, spanish


def _load_spa_eng(max_words, cache_dir, seed):
    english, spanish = read_spa_eng(_spa_eng_file(cache_dir))
    unique_english = sorted(set(english))
    order = np.random.default_rng(seed).permutation(len(unique_english))
    boundaries = np.cumsum(SPLIT_PERCENTAGES)[:-1] * len(unique_english) // 100
    split_of_english = {
        unique_english[index]: SPLIT_NAMES[np.searchsorted(boundaries, position, side="right")]
        for position, index in enumerate(order)
    }
    result = {"kept": {}, "books": {split: [] for split in SPLIT_NAMES}, "test_refs": None}
    for split in SPLIT_NAMES:
        pairs = [(source, target) for source, target in zip(english, spanish) if split_of_english[source] == split]
        english_kept, spanish_kept, _, counts = _cut_and_filter(
            [source for source, _ in pairs], [target for _, target in pairs], [None] * len(pairs), max_words
        )
        result[split] = (english_kept, spanish_kept)
        result["kept"][split] = counts
    return result
