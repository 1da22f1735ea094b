"""The bundled English-Spanish Bible verse pairs: shape, completeness of the canon, and one known verse."""

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
