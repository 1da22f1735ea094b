"""Loaders for the sentiment, stock and translation apps: bundled offline data, online data, the user's own pairs."""

import os
import pathlib
import re
import socket

import numpy as np
import pandas as pd

from data import sources

BUNDLED_DIRECTORY = pathlib.Path(__file__).resolve().parent / "bundled"
SENTIMENT_FILE = BUNDLED_DIRECTORY / "rotten_tomatoes.csv.gz"
SENTIMENT_PLOTS_FILE = BUNDLED_DIRECTORY / "rotten_tomatoes_plots.csv.gz"  # the same corpus' plot summaries
PRICES_FILE = BUNDLED_DIRECTORY / "sp500_prices.csv.gz"
BIBLE_FILE = BUNDLED_DIRECTORY / "bible_en_es.tsv.gz"  # written by data/build_bible_corpus.py

SENTIMENT_DATASETS = ("bundled", "imdb_reviews")
PRICES_DATASETS = ("bundled", "yfinance")
TRANSLATION_DATASETS = ("bundled", "spa_eng")
SPLIT_NAMES = ("train", "validation", "test")
# Shares of the snippets per split. Whole movies go to one split: snippets about one film share its
# names and plot words, which would leak from training into the test.
SPLIT_FRACTIONS = sources.DEFAULT_FRACTIONS
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


def load_sentiment(dataset="bundled"):
    """Returns `(train, validation, test)`, each `(texts: list[str], labels: np.ndarray of int64, 1 = positive)`.

    `dataset="bundled"`: 12,752 Rotten Tomatoes critic snippets about 507 movies, shipped in data/bundled/
    (works offline), split 80/10/10 by movie (`sources.grouped_split`).
    `dataset="imdb_reviews"`: IMDB via tensorflow_datasets; train is the first 90% of its train split,
    validation the last 10%, test its test split. Fails within seconds when it is neither cached nor reachable.
    """
    _check_dataset(dataset, SENTIMENT_DATASETS)
    if dataset == "imdb_reviews":
        return _load_imdb_reviews()
    frame, splits = _bundled_sentiment()
    return tuple(
        (frame.loc[splits == name, "text"].tolist(), frame.loc[splits == name, "label"].to_numpy(np.int64))
        for name in SPLIT_NAMES
    )


def _bundled_sentiment():
    """The bundled snippets and the split name of each, by movie."""
    frame = pd.read_csv(SENTIMENT_FILE, keep_default_na=False)
    return frame, sources.grouped_split(frame["movie"], SPLIT_SEED, SPLIT_FRACTIONS)


def load_sentiment_plots():
    """The bundled corpus' plot summaries (unlabelled, 1,083 films) but those of the films whose snippets
    `load_sentiment()` puts in validation or test: a summary holds its film's names and plot words, which
    would leak into the judged splits. Returns a list of texts, one per film."""
    frame, splits = _bundled_sentiment()
    held_out = set(frame.loc[splits != "train", "movie"])
    plots = pd.read_csv(SENTIMENT_PLOTS_FILE, keep_default_na=False)
    return plots.loc[~plots["movie"].isin(held_out), "text"].tolist()


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

    Returns `sources.make_splits(...)`'s dict:
      - `"train"`, `"validation"`, `"test"`: `(english: list[str], spanish: list[str])`, aligned.
      - `"source"`: the dataset's name; `"dropped"`: `{reason: pairs}` left out on the way.
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
    into `cache_dir` and read by `load_translation_pairs` (split 80/10/10 by a `seed`-shuffled order of the
    unique English sentences). Fails within seconds when it is neither cached nor reachable.
    """
    _check_dataset(dataset, TRANSLATION_DATASETS)
    _check_max_words(max_words)
    if dataset == "spa_eng":
        return load_translation_pairs(
            _spa_eng_file(cache_dir), max_words, sources.SplitOptions(seed=seed), source_name="spa_eng"
        )
    verses = pd.read_csv(BIBLE_FILE, sep="\t", keep_default_na=False)
    books = {
        "test": list(TEST_BOOKS),
        "validation": list(VALIDATION_BOOKS),
        "train": [book for book in verses["book"].unique() if book not in TEST_BOOKS + VALIDATION_BOOKS],
    }
    missing = [book for book in TEST_BOOKS + VALIDATION_BOOKS if book not in set(verses["book"])]
    if missing:
        raise ValueError(f"Expected the corpus to hold every test and validation book. Received none of: {missing}")
    pairs, kept = {}, {}
    for split in SPLIT_NAMES:
        in_split = verses[verses["book"].isin(books[split])]
        references = zip(in_split["book"], in_split["chapter"], in_split["verse"])
        english, spanish, references, kept[split] = _cut_and_filter(
            in_split["english"], in_split["spanish"], references, max_words
        )
        pairs[split] = (english, spanish)
        if split == "test":
            test_references = references
    return sources.make_splits(
        *(pairs[split] for split in SPLIT_NAMES), source="bundled", dropped=_too_long(kept, max_words),
        kept=kept, books=books, test_refs=test_references,
    )  # fmt: skip


def load_translation_pairs(path, max_words=MAX_WORDS, options=None, source_column="", target_column="",
                           source_name=None):  # fmt: skip
    """The sentence pairs of one file, any language pair, split like `load_translation` and returned as it
    returns them (`"books"` empty, `"test_refs"` None, `"source"` the path or `source_name`).

    Without column names the file has spa.txt's layout: no header, one pair a line, the source and the
    target in the first two tab-separated columns, later columns (Tatoeba's attribution) ignored. With
    `source_column` and `target_column` it is a headered CSV, TSV or JSON-lines table (`sources.read_table`).

    `options` (`sources.SplitOptions`) chooses the split: by default seeded random, with each distinct
    source sentence (often translated several ways) whole in one split, so no test sentence was trained
    on; or whole groups of its `group_column`; or the file's own `split_column` (headered files only).
    Blank lines and repeated pairs are dropped, then pairs longer than `max_words` on a side that cannot be
    cut into aligned pieces; `"dropped"` counts each.

    Raises `sources.DataError` naming the file and line for: a missing file, a line without a tab, an
    empty source or target, a missing column, and a split left without pairs.
    """
    _check_max_words(max_words)
    options = options or sources.SplitOptions()
    if bool(source_column) != bool(target_column):
        raise ValueError(
            "Give both the source and the target column of a headered file, or neither for a headerless "
            f"source<TAB>target file. Received: source_column={source_column!r}, target_column={target_column!r}"
        )
    if source_column:
        frame = sources.read_table(path, [source_column, target_column])
    elif options.group_column or options.split_column:
        raise sources.DataError(
            f"{path}: a group or split column needs a headered file; name its source and target columns with "
            "--source-column and --target-column. Received: a headerless source<TAB>target file"
        )
    else:
        frame = read_sentence_pairs(path)
        source_column, target_column = "source", "target"
    columns = [source_column, target_column]
    frame[columns] = frame[columns].astype(str).apply(lambda column: column.str.strip())
    frame, dropped = sources.drop_blank_and_duplicate_rows(frame, columns)
    for column in columns:
        sources.require_nonblank(frame, column, path)
    if options.group_column or options.split_column:
        splits = sources.split_rows(frame, options, path)
    else:
        # One source sentence with several translations goes whole to one split.
        splits = sources.grouped_split(frame[source_column], options.seed, options.fractions)
    sources.check_split_sizes(splits, path)
    pairs, kept = {}, {}
    for split in SPLIT_NAMES:
        rows = frame[splits == split]
        english, spanish, _, kept[split] = _cut_and_filter(
            rows[source_column], rows[target_column], [None] * len(rows), max_words
        )
        if not english:
            raise sources.DataError(
                f"{path}: the {split} split holds no pair of at most {max_words} words a side. Received "
                f"{len(rows)} {split} pair(s), all longer; shorten them, raise max_words, or add shorter pairs"
            )
        pairs[split] = (english, spanish)
    return sources.make_splits(
        *(pairs[split] for split in SPLIT_NAMES), source=source_name or path,
        dropped={**dropped, **_too_long(kept, max_words)}, kept=kept,
        books={split: [] for split in SPLIT_NAMES}, test_refs=None,
    )  # fmt: skip


def _too_long(kept, max_words):
    count = sum(counts["dropped_too_long"] for counts in kept.values())
    return {f"pairs longer than {max_words} words": count} if count else {}


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


def read_sentence_pairs(path):
    """spa.txt's layout as a frame of `"source"` and `"target"` strings, row `i` from line `i + 1`.

    One pair a line, source and target in the first two tab-separated columns; later columns (Tatoeba's
    attribution) are ignored. Blank lines stay as blank rows, which `drop_blank_and_duplicate_rows` counts.
    A line with text but no tab is a `sources.DataError` naming it.
    """
    path = sources.require_path(path)
    rows = []
    try:
        with path.open(encoding="utf-8-sig") as file:
            for number, line in enumerate(file, start=1):
                columns = line.rstrip("\r\n").split("\t")
                if len(columns) < 2 and columns[0].strip():
                    raise sources.DataError(
                        f"{path}, line {number}: expected a source and a target sentence separated by a tab. "
                        f"Received 1 column: {columns[0][:80]!r}"
                    )
                rows.append(columns[:2] if len(columns) >= 2 else ["", ""])
    except UnicodeDecodeError as error:
        raise sources.DataError(f"{path}: expected UTF-8 text. Received: {error}") from None
    if not rows:
        raise sources.DataError(f"{path}: expected lines of tab-separated sentence pairs. Received: an empty file")
    frame = pd.DataFrame(rows, columns=["source", "target"])
    frame.attrs.update(path=str(path), first_line=1)
    return frame


# ---------------------------------------------------------------------------------------------------------
# The user's own files (`--data`)
# ---------------------------------------------------------------------------------------------------------


def load_labelled_texts(path, options, text_column="text", label_column="label"):
    """The user's labelled texts, split by `options` (a `sources.SplitOptions`), as `sources.make_splits`.

    `path` is a CSV, TSV or JSON-lines file with a text and a label column, or a folder with one subfolder of
    .txt files per label (`keras.utils.text_dataset_from_directory`'s layout). Each split is `(texts: list[str],
    label ids: int64 array)`; the ids index `"classes"`, the sorted label values. Blank rows and repeated rows
    are dropped, as are texts given two different labels; each is counted in `"dropped"`.
    """
    path = sources.require_path(path, folder=pathlib.Path(path).is_dir())
    if path.is_dir():
        if options.group_column or options.split_column:
            raise sources.DataError(
                f"{path}: a folder of text files has no columns to group or split by. Received: "
                f"--group-column {options.group_column!r} --split-column {options.split_column!r}; use a CSV instead"
            )
        frame, skipped = sources.read_text_folder(path)
    else:
        extra = [column for column in (options.group_column, options.split_column) if column]
        table = sources.read_table(path, [text_column, label_column, *extra])
        frame = table[extra].copy()
        frame["text"], frame["label"] = table[text_column], table[label_column]
        frame.attrs = table.attrs
    frame, dropped = sources.drop_blank_and_duplicate_rows(frame, ["text", "label"], key_columns=["text"])
    if path.is_dir() and skipped:
        dropped["files that are not .txt"] = skipped
    for column, name in (("text", text_column), ("label", label_column)):
        sources.require_nonblank(frame, column, path, name)
    labels = frame["label"].astype(str).str.strip()
    splits = sources.split_rows(frame, options, path, strata=labels.to_numpy())
    sources.check_split_sizes(splits, path)
    sources.check_classes(labels, splits, path)
    classes = sorted(set(labels))
    ids = labels.map({name: index for index, name in enumerate(classes)}).to_numpy(np.int64)
    texts = frame["text"].astype(str).to_numpy(dtype=object)
    return sources.make_splits(
        *[(texts[splits == name].tolist(), ids[splits == name]) for name in SPLIT_NAMES],
        source=path, dropped=dropped, classes=classes,
    )  # fmt: skip


DATE_COLUMN_NAMES = ("date", "datetime", "timestamp", "time", "day")


def load_price_table(path, date_column="", series_column="", value_column="value"):
    """The user's series as `(prices, dropped)`: a DataFrame indexed by date, one float column per series.

    Wide form (default): a date column and one column per series; an empty cell is a missing value (a series
    that starts later, a holiday). Long form (`series_column` given): rows of date, series name and value.
    The date column defaults to the first column named like a date ("date", "timestamp", ...), else the first
    column. Every value must be a positive number; dates must parse; a date given twice must agree.
    """
    frame = sources.read_table(path)
    path = frame.attrs["path"]
    if not date_column:
        named = [column for column in frame.columns if str(column).strip().lower() in DATE_COLUMN_NAMES]
        date_column = named[0] if named else frame.columns[0]
    if series_column:
        sources.require_columns(frame, [date_column, series_column, value_column], path)
        value_columns = [value_column]
    else:
        sources.require_columns(frame, [date_column], path)
        value_columns = [column for column in frame.columns if column != date_column]
        if not value_columns:
            raise sources.DataError(f"{path}: expected a date column and one column per series. Received only "
                                    f"{list(frame.columns)}")  # fmt: skip
    frame, dropped = sources.drop_blank_and_duplicate_rows(frame, list(frame.columns))
    dates = pd.to_datetime(frame[date_column].astype(str).str.strip(), errors="coerce", format="mixed")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise sources.DataError(f"{path}, {sources.row_name(frame, row)}: column {date_column!r} must hold a date "
                                f"like 2024-01-31. Received: {frame[date_column].iloc[row]!r}")  # fmt: skip
    for column in value_columns:
        text = frame[column].astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = (values.isna() & (text != "")) | (values <= 0) | np.isinf(values)
        if series_column:
            bad |= text == ""
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise sources.DataError(
                f"{path}, {sources.row_name(frame, row)}: column {column!r} must hold a positive number (a price, a "
                f"volume, sales). Received: {frame[column].iloc[row]!r}"
            )
        frame[column] = values
    frame[date_column] = dates
    if series_column:
        frame[series_column] = frame[series_column].astype(str).str.strip()
        keys = [date_column, series_column]
        where = lambda row: f"{frame[series_column].iloc[row]!r} on {frame[date_column].iloc[row].date()}"  # noqa: E731
    else:
        keys = [date_column]
        where = lambda row: f"{frame[date_column].iloc[row].date()}"  # noqa: E731
    twice = frame.duplicated(keys, keep="first")
    if twice.any():
        row = int(np.flatnonzero(twice.to_numpy())[0])
        raise sources.DataError(f"{path}, {sources.row_name(frame, row)}: {where(row)} is given twice with different "
                                f"values. Expected one value per date")  # fmt: skip
    if series_column:
        prices = frame.pivot(index=date_column, columns=series_column, values=value_column)
    else:
        prices = frame.set_index(date_column)[value_columns]
    prices = prices.sort_index().astype(np.float64)
    prices.index.name, prices.columns.name = "Date", None
    return prices, dropped
