"""The bundled English-Spanish Bible verse pairs: shape, completeness of the canon, one known verse, a rebuild."""

import gzip
import hashlib
import importlib.util

import pandas as pd
import pytest

from data import build_bible_corpus


@pytest.fixture(scope="module")
def verses():
    return pd.read_csv(build_bible_corpus.BIBLE_FILE, sep="\t", keep_default_na=False)


def test_columns_and_size(verses):
    assert tuple(verses.columns) == build_bible_corpus.COLUMNS
    assert 30_000 <= len(verses) <= 31_102  # the KJV versification has 31,102 verses
    assert not verses.duplicated(["book", "chapter", "verse"]).any()


def test_no_empty_texts(verses):
    for language in ("english", "spanish"):
        assert (verses[language].str.strip() != "").all()
        assert not verses[language].str.contains("[<>\t]").any()


def test_the_66_books_including_the_short_ones(verses):
    assert verses["book"].nunique() == 66
    short_books = ["Ruth", "Esther", "Joel", "Jonah", "Habakkuk", "Titus", "Philemon", "James", "I John", "Jude"]
    assert set(short_books) <= set(verses["book"])


def test_john_3_16(verses):
    verse = verses[(verses["book"] == "John") & (verses["chapter"] == 3) & (verses["verse"] == 16)].iloc[0]
    assert "God so loved the world" in verse["english"]
    assert "Dios" in verse["spanish"]


def content_sha256(path):
    """SHA-256 of the decompressed TSV, so a different zlib cannot fail the comparison."""
    with gzip.open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def rebuild_skip_reason():
    missing = build_bible_corpus.missing_packages()
    if missing:
        modules = [module for _, module, _ in (build_bible_corpus.ENGLISH_MODULE, build_bible_corpus.SPANISH_MODULE)]
        return (
            f"Debian packages {missing} are not installed (no {modules} under "
            f"{build_bible_corpus.SWORD_DIRECTORY}/modules/texts/ztext): apt-get install -y {' '.join(missing)}"
        )
    if importlib.util.find_spec("pysword") is None:
        return f"pysword is not installed: .venv/bin/pip install pysword=={build_bible_corpus.PYSWORD_VERSION}"
    return None


@pytest.mark.slow
@pytest.mark.skipif(rebuild_skip_reason() is not None, reason=str(rebuild_skip_reason()))
def test_the_builder_reproduces_the_committed_corpus(tmp_path):
    rebuilt = tmp_path / build_bible_corpus.BIBLE_FILE.name
    build_bible_corpus.main(["--output", str(rebuilt)])
    assert content_sha256(rebuilt) == content_sha256(build_bible_corpus.BIBLE_FILE)
