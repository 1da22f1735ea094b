"""One data interface for every app: bundled, online or the user's own files, split the same way.

Every app's `load_data` returns `make_splits(...)`: a dict with `"train"`, `"validation"` and `"test"`, the
`"source"` it came from and the rows `"dropped"` on the way (counted in the report). User files are read
here, checked before any training starts, and split by one of three rules (`SplitOptions`):

- by default a seeded random split (80/10/10; stratified by label for classification, so that every class
  is seen in training);
- `group_column`: whole groups stay in one split, as the bundled movies, books and voices do
  (`grouped_split`, the one function all of them use);
- `split_column`: the user's own split, with values train, validation and test.

Time series never split at random: `time_split_dates` cuts a span by fractions or at given dates.

Bad data raises `DataError` (a `ValueError`) naming the file, the row or file name, what was expected and
what was found.
"""

import csv
import dataclasses
import json
import pathlib
import warnings
import zipfile

import numpy as np
import pandas as pd

SPLIT_NAMES = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


class DataError(ValueError):
    """The user's data cannot be used as given; the message names the file, the row, the expectation."""


@dataclasses.dataclass(frozen=True)
class SplitOptions:
    """How rows are split into train, validation and test.

    Args:
        seed: orders rows (or groups) for the random split; fixed by default so that every run and every
            version compares on the same test rows.
        fractions: train, validation and test shares of the rows.
        group_column: a column whose values (a movie, a speaker, a book) each go whole to one split.
        split_column: a column holding "train", "validation" or "test" for each row: the user's own split.
    """

    seed: int = 0
    fractions: tuple = DEFAULT_FRACTIONS
    group_column: str = ""
    split_column: str = ""

    def __post_init__(self):
        fractions = tuple(float(value) for value in self.fractions)
        if len(fractions) != 3 or min(fractions) < 0 or fractions[0] <= 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(
                f"`split_fractions` must be three shares (train, validation, test) that sum to 1, train above 0. "
                f"Received: {self.fractions!r}"
            )
        if self.group_column and self.split_column:
            raise ValueError(
                "Give a group column or a split column, not both. "
                f"Received: group_column={self.group_column!r}, split_column={self.split_column!r}"
            )
        object.__setattr__(self, "fractions", fractions)

    @classmethod
    def from_config(cls, config):
        return cls(config.split_seed, config.split_fractions, config.group_column, config.split_column)


def make_splits(train, validation, test, source, dropped=None, **extra):
    """The structure every app's `load_data` returns; `extra` holds what the app derives from its data."""
    return {"train": train, "validation": validation, "test": test, "source": str(source),
            "dropped": dict(dropped or {}), **extra}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------------------------------------


def grouped_split(groups, seed=0, fractions=DEFAULT_FRACTIONS):
    """The split name of each row, whole groups at a time, in a seeded random order of the groups.

    Groups are taken in that order until their rows fill each split's share of the rows. With every row a
    group of its own this is a plain seeded random split.
    """
    groups = pd.Series(np.asarray(groups, dtype=object))
    counts = groups.value_counts().sort_index()
    order = counts.index[np.random.default_rng(seed).permutation(len(counts))]
    filled = counts[order].cumsum() / len(groups)
    boundaries = np.cumsum(fractions)[:-1]
    split_of_group = dict(zip(order, np.array(SPLIT_NAMES)[np.searchsorted(boundaries, filled - 1e-12)]))
    return groups.map(split_of_group).to_numpy()


def random_split(count, seed=0, fractions=DEFAULT_FRACTIONS, strata=None):
    """A seeded random split of `count` rows; with `strata` (a label per row), each stratum apart, so that
    every label keeps its share in every split."""
    if strata is None:
        return grouped_split(np.arange(count), seed, fractions)
    strata = np.asarray(strata, dtype=object)
    splits = np.empty(count, dtype=object)
    for index, stratum in enumerate(sorted(set(strata.tolist()), key=str)):
        rows = np.flatnonzero(strata == stratum)
        splits[rows] = grouped_split(np.arange(len(rows)), [seed, index], fractions)
    return splits


def split_rows(frame, options, path, strata=None):
    """The split name of each row of `frame` (read from `path`), by `options`' rule."""
    if options.split_column:
        require_columns(frame, [options.split_column], path)
        values = frame[options.split_column].astype(str).str.strip().str.lower()
        wrong = ~values.isin(SPLIT_NAMES)
        if wrong.any():
            row = int(np.flatnonzero(wrong.to_numpy())[0])
            raise DataError(
                f"{path}, {row_name(frame, row)}: column {options.split_column!r} must be one of {list(SPLIT_NAMES)}. "
                f"Received: {frame[options.split_column].iloc[row]!r}"
            )
        return values.to_numpy(dtype=object)
    if options.group_column:
        require_columns(frame, [options.group_column], path)
        return grouped_split(frame[options.group_column].astype(str).to_numpy(), options.seed, options.fractions)
    return random_split(len(frame), options.seed, options.fractions, strata)


def check_split_sizes(splits, path, needed=("train", "validation", "test")):
    """Every split must hold at least one row (a tiny file, or a split column naming only some splits)."""
    sizes = {name: int(np.sum(splits == name)) for name in SPLIT_NAMES}
    empty = [name for name in needed if sizes[name] == 0]
    if empty:
        raise DataError(
            f"{path}: every split needs at least one row, and {empty} got none. Received split sizes {sizes}; "
            "add rows, change --split-fractions, or name every split in the split column."
        )
    return sizes


def time_split_dates(dates, fractions=DEFAULT_FRACTIONS, split_dates=None, path=""):
    """`(validation start, test start)` timestamps cutting the sorted unique `dates`.

    Given `split_dates` ("YYYY-MM-DD" strings), they are parsed and checked; otherwise the span's unique dates
    are cut at the cumulative `fractions`, so that train is the oldest share and test the newest.
    """
    dates = pd.DatetimeIndex(sorted(set(pd.DatetimeIndex(dates))))
    if split_dates:
        if len(split_dates) != 2:
            raise ValueError(f"`split_dates` must be two dates: where validation starts and where test starts. "
                             f"Received: {split_dates!r}")  # fmt: skip
        try:
            starts = [pd.Timestamp(value) for value in split_dates]
        except (ValueError, TypeError) as error:
            raise ValueError(f"`split_dates` must be dates like 2017-01-01. Received: {split_dates!r} ({error})") from None
        if not dates[0] < starts[0] < starts[1] <= dates[-1]:
            raise DataError(
                f"{path}: the split dates must fall inside the data, in order: {dates[0].date()} < validation start "
                f"< test start <= {dates[-1].date()}. Received: {split_dates!r}"
            )
        return starts[0], starts[1]
    cuts = np.floor(np.cumsum(fractions)[:-1] * len(dates)).astype(int)
    if cuts[0] < 1 or cuts[1] <= cuts[0] or cuts[1] >= len(dates):
        raise DataError(f"{path}: {len(dates)} dates are too few to split by time into {fractions}. "
                        "Received: too few dates")  # fmt: skip
    return dates[cuts[0]], dates[cuts[1]]


# ---------------------------------------------------------------------------------------------------------
# Reading the user's files
# ---------------------------------------------------------------------------------------------------------


def require_path(path, folder=False):
    """`path` as a `Path` once it exists (as a folder when `folder`), else a `DataError` saying what is there."""
    path = pathlib.Path(path).expanduser()
    kind = "folder" if folder else "file"
    if not path.exists():
        raise DataError(f"{path}: no such {kind}. Received a path that does not exist")
    if folder and not path.is_dir():
        raise DataError(f"{path}: expected a folder with one subfolder per label. Received a file")
    if not folder and path.is_dir():
        raise DataError(f"{path}: expected a file. Received a folder")
    return path


def table_format(path):
    suffixes = [suffix.lower() for suffix in pathlib.Path(path).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz"):
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in TABLE_FORMATS:
        raise DataError(
            f"{path}: expected a table ending in {sorted(TABLE_FORMATS)} (optionally compressed: .gz, .bz2, .zip, "
            f".xz). Received: {pathlib.Path(path).name!r}"
        )
    return TABLE_FORMATS[suffixes[-1]]


def read_table(path, columns=()):
    """A CSV, TSV or JSON-lines file as a DataFrame of strings (empty cells are ""), with `columns` checked.

    Each row remembers its line in the file (`frame.attrs["first_line"]`), so errors can name it: blank lines
    stay as blank rows (which `drop_blank_and_duplicate_rows` drops and counts) rather than shifting the rows
    after them. A row with more fields than the header is an error, not a shifted row.
    """
    path = require_path(path)
    kind = table_format(path)
    try:
        if kind == "jsonl":
            frame = read_json_lines(path)
        else:
            frame = read_delimited(path, kind)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, DataError):
            raise
        expected = "one JSON object per line" if kind == "jsonl" else f"a {kind.upper()} file with a header row"
        raise DataError(f"{path}: could not be read as {expected}. Received: {error}") from None
    frame.attrs["path"] = str(path)
    if frame.empty:
        raise DataError(f"{path}: expected rows of data. Received: no rows")
    require_columns(frame, columns, path)
    return frame.reset_index(drop=True)


def read_delimited(path, kind):
    """A CSV or TSV file with a header row; a row with more fields than the header is an error naming its line
    (pandas would otherwise take the extra field of a first row for an index, or drop it with a warning)."""
    separator, quoting = ("," if kind == "csv" else "\t"), (csv.QUOTE_MINIMAL if kind == "csv" else csv.QUOTE_NONE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, skip_blank_lines=False,
                                index_col=False, quoting=quoting)  # fmt: skip
        except pd.errors.ParserWarning:
            with pandas_open(path) as file:
                reader = csv.reader(file, delimiter=separator, quoting=quoting)
                width = len(next(reader))
                line, fields = next((reader.line_num, row) for row in reader if len(row) > width)
            raise DataError(f"{path}, line {line}: expected {width} fields as in the header. Received {len(fields)}: "
                            f"{fields!r}; quote a field that holds a {'comma' if kind == 'csv' else 'tab'}") from None  # fmt: skip
    frame.attrs["first_line"] = 2
    return frame


def read_json_lines(path):
    """One JSON object per line, a blank line a row of empty values, so row `i` is line `i + 1`."""
    rows = []
    with pandas_open(path) as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                rows.append({})
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}, line {number}: expected one JSON object. Received: {error}") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {number}: expected a JSON object. Received: {line.strip()[:80]!r}")
            rows.append({key: "" if value is None else value for key, value in row.items()})
    frame = pd.DataFrame(rows).astype(object)
    frame = frame.where(frame.notna(), "")
    frame.attrs["first_line"] = 1
    return frame


def pandas_open(path):
    """A text handle on `path`, decompressed as pandas would by its suffix."""
    from pandas.io.common import get_handle

    return get_handle(str(path), "r", compression="infer", encoding="utf-8").handle


def require_columns(frame, columns, path):
    missing = [column for column in columns if column and column not in frame.columns]
    if missing:
        raise DataError(f"{path}: expected the column(s) {missing}. Received columns: {list(frame.columns)}")


def row_name(frame, row):
    """How a person finds row `row` of `frame` in its file: a line number, or a file name."""
    if "file" in frame.columns:
        return f"file {frame['file'].iloc[row]}"
    return f"line {frame.attrs.get('first_line', 1) + int(frame.index[row])}"


def drop_blank_and_duplicate_rows(frame, columns, key_columns=None):
    """Drops rows whose `columns` are all blank, and repeated rows; returns `(frame, {reason: count})`.

    With `key_columns`, rows that agree on them but not on the other `columns` (the same text with two
    labels) are dropped too, all of them, since no one of them can be trusted over the other.
    """
    columns = list(columns)
    values = frame[columns].astype(str).apply(lambda column: column.str.strip())
    blank = (values == "").all(axis=1)
    dropped = {"blank rows": int(blank.sum())}
    frame, values = frame[~blank], values[~blank]
    repeated = values.duplicated()
    dropped["duplicate rows"] = int(repeated.sum())
    frame, values = frame[~repeated], values[~repeated]
    if key_columns:
        conflicting = values.duplicated(list(key_columns), keep=False)
        dropped["rows whose text has conflicting labels"] = int(conflicting.sum())
        frame = frame[~conflicting]
    return frame, {reason: count for reason, count in dropped.items() if count}


def require_nonblank(frame, column, path, name=None):
    """Every row's `column` (called `name` in the user's file, if it was renamed) must hold something other
    than whitespace."""
    blank = frame[column].astype(str).str.strip() == ""
    if blank.any():
        row = int(np.flatnonzero(blank.to_numpy())[0])
        raise DataError(
            f"{path}, {row_name(frame, row)}: column {(name or column)!r} is empty ({int(blank.sum())} row(s) like it). "
            "Expected a value in every row that has other values"
        )


def check_classes(labels, splits, path):
    """Every class needs at least 2 examples, and one of them in training: a label seen only in validation or
    test cannot be learned, and a class of one example cannot be both learned and checked."""
    labels = pd.Series(np.asarray(labels, dtype=object)).astype(str)
    counts = labels.value_counts()
    rare = sorted(counts[counts < 2].index)
    if rare:
        raise DataError(f"{path}: each label needs at least 2 examples. Received only one example of {rare}")
    trained = set(labels[np.asarray(splits) == "train"])
    unseen = sorted(set(labels) - trained)
    if unseen:
        where = {label: sorted(set(np.asarray(splits)[labels.to_numpy() == label])) for label in unseen}
        raise DataError(
            f"{path}: every label must have training examples. Received labels only in {where}; "
            "move some of their rows to train or let the random split stratify them"
        )
    if len(counts) < 2:
        raise DataError(f"{path}: a classifier needs at least 2 labels. Received only {list(counts.index)}")


def read_text_folder(path):
    """A folder with one subfolder of .txt files per label (the layout `keras.utils.text_dataset_from_directory`
    reads) as a DataFrame with columns `text`, `label` and `file`, and the count of other files skipped.

    Read here rather than through Keras, whose dataset does not say which file each text came from, and an
    error must name the file.
    """
    path = require_path(path, folder=True)
    subfolders = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    rows, skipped = [], 0
    for subfolder in subfolders:
        for file in sorted(item for item in subfolder.rglob("*") if item.is_file()):
            if file.suffix.lower() != ".txt":
                skipped += 1
                continue
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise DataError(f"{file}: expected UTF-8 text. Received: {error}") from None
            rows.append({"text": text, "label": subfolder.name, "file": str(file)})
    frame = pd.DataFrame(rows, columns=["text", "label", "file"])
    frame.attrs["path"] = str(path)
    if frame.empty:
        raise DataError(f"{path}: expected one subfolder of .txt files per label. Received subfolders "
                        f"{[folder.name for folder in subfolders]} and no .txt file in them")  # fmt: skip
    return frame, skipped
