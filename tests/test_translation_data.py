"""The translation data and its yardsticks: book splits, verse cutting, spa_eng offline, BLEU/chrF, baselines."""

import collections
import math
import time

import numpy as np
import pandas as pd
import pytest

from apps import translation_metrics
from data import build_bible_corpus
from data import loaders
from tests.helpers import FAIL_FAST_SECONDS


COUNT_NAMES = ("pairs", "verses", "dropped_too_long", "split_verses", "pieces_from_split_verses")


@pytest.fixture(scope="module")
def verses():
    return pd.read_csv(build_bible_corpus.BIBLE_FILE, sep="\t", keep_default_na=False)


@pytest.fixture(scope="module")
def translation():
    return loaders.load_translation()


def word_count(text):
    return len(text.split())


def test_each_split_holds_exactly_its_books(translation, verses):
    books = translation["books"]
    assert books["test"] == ["Ruth", "Esther", "Jonah", "James", "I John"]
    assert books["validation"] == ["Joel", "Habakkuk", "Titus", "Philemon", "Jude"]
    assert sorted(books["train"] + books["validation"] + books["test"]) == sorted(verses["book"].unique())
    assert sum(len(split_books) for split_books in books.values()) == 66  # so no book is in two splits
    assert {book for book, _, _ in translation["test_refs"]} == set(books["test"])
    for split in ("validation", "test"):
        # Every pair, whole verse or piece, comes out of the split's own books and out of no other split's.
        own_text = "\n".join(verses.loc[verses["book"].isin(books[split]), "english"])
        assert all(english in own_text for english in translation[split][0])
    train_text = set(verses.loc[verses["book"].isin(books["train"]), "english"])
    held_out = set(verses.loc[~verses["book"].isin(books["train"]), "english"])
    whole_train_verses = [english for english in translation["train"][0] if english in train_text]
    assert len(whole_train_verses) > 0.9 * len(translation["train"][0])
    assert not set(translation["train"][0]) & (held_out - train_text)


def test_test_references_point_at_the_verses_the_pairs_come_from(translation, verses):
    english, _ = translation["test"]
    assert len(translation["test_refs"]) == len(english)
    by_reference = verses.set_index(["book", "chapter", "verse"])["english"]
    for text, reference in zip(english, translation["test_refs"]):
        assert text in by_reference[reference]


def test_kept_counts_add_up_and_match_the_lists(translation, verses):
    for split in loaders.SPLIT_NAMES:
        english, spanish = translation[split]
        counts = translation["kept"][split]
        assert tuple(counts) == COUNT_NAMES
        assert counts["pairs"] == len(english) == len(spanish)
        assert counts["verses"] == verses["book"].isin(translation["books"][split]).sum()
        assert counts["pairs"] == (
            counts["verses"] - counts["split_verses"] + counts["pieces_from_split_verses"] - counts["dropped_too_long"]
        )
        assert counts["pieces_from_split_verses"] >= 2 * counts["split_verses"]
        # The cap keeps most of every split: the report's "kept" is not an accident of one split.
        assert counts["pairs"] >= 0.9 * counts["verses"]


@pytest.mark.parametrize("max_words", [12, loaders.MAX_WORDS])
def test_no_pair_exceeds_max_words(max_words):
    translation = loaders.load_translation(max_words=max_words)
    for split in loaders.SPLIT_NAMES:
        english, spanish = translation[split]
        assert english and all(0 < word_count(text) <= max_words for text in english + spanish)
        assert translation["kept"][split]["dropped_too_long"] > 0


def test_cut_verses_pair_piece_for_piece():
    english = "He went down to Joppa, and found a ship going to Tarshish. He paid its fare, and went down into it."
    spanish = "Y descendió á Joppe, y halló un navío que partía para Tharsis. Y pagando su pasaje entró en él."
    assert loaders.split_into_pieces(english, ".") == [
        "He went down to Joppa, and found a ship going to Tarshish.",
        "He paid its fare, and went down into it.",
    ]
    english_pieces, spanish_pieces = loaders.aligned_pieces(english, spanish)
    assert [word_count(piece) for piece in english_pieces] == [12, 9]
    assert spanish_pieces[1] == "Y pagando su pasaje entró en él."
    # A closing quote stays with its sentence; ":" and ";" cut only when "." does not pair the sides up.
    quoted = loaders.split_into_pieces("He said, “Go.” She went; he stayed.", ".?!")
    assert quoted == ["He said, “Go.”", "She went; he stayed."]
    assert loaders.split_into_pieces("a: b; c", ".?!;:") == ["a:", "b;", "c"]


def test_verses_whose_cuts_do_not_pair_stay_whole():
    # Different numbers of pieces.
    assert loaders.aligned_pieces("One. Two. Three.", "Uno. Dos y tres.") is None
    # As many pieces, but the cut falls early in one side and late in the other.
    english = "Go. Then the king arose in his wrath from the banquet of wine and went into the garden."
    spanish = "Levantóse luego el rey del banquete del vino en su furor, y se fué al huerto del palacio. Vete."
    assert loaders.aligned_pieces(english, spanish) is None
    assert loaders.aligned_pieces("No cut here", "Sin corte aquí") is None


def test_bundled_split_is_deterministic(translation):
    again = loaders.load_translation()
    for split in loaders.SPLIT_NAMES:
        assert again[split] == translation[split]


@pytest.mark.parametrize(
    "arguments", [dict(dataset="wmt14"), dict(max_words=0), dict(max_words=2.5), dict(max_words=True)]
)
def test_bad_arguments_raise_value_error(arguments):
    with pytest.raises(ValueError, match="Received"):
        loaders.load_translation(**arguments)


def test_spa_eng_fails_fast_offline(no_network, tmp_path):
    start = time.monotonic()
    with pytest.raises(RuntimeError, match='load_translation\\(dataset="bundled"\\)'):
        loaders.load_translation(dataset="spa_eng", cache_dir=tmp_path)
    assert time.monotonic() - start < FAIL_FAST_SECONDS


def test_spa_eng_from_the_cache_splits_by_unique_english_sentence(no_network, tmp_path):
    # The layout keras.utils.get_file leaves after extracting the archive; the network is never touched.
    spa_file = tmp_path / "datasets" / "spa-eng_extracted" / "spa-eng" / "spa.txt"
    spa_file.parent.mkdir(parents=True)
    attribution = "CC-BY 2.0 (France) Attribution: tatoeba.org"
    lines = [f"Sentence {number % 150}.\tFrase {number}.\t{attribution}" for number in range(300)]
    lines.append("Hello.\tHola.")  # the older two-column format
    lines.append(" ".join(["word"] * 50) + "\t" + " ".join(["palabra"] * 50))  # too long, dropped
    spa_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    translation = loaders.load_translation(dataset="spa_eng", cache_dir=tmp_path)
    english_of = {split: set(translation[split][0]) for split in loaders.SPLIT_NAMES}
    assert not english_of["train"] & english_of["validation"]
    assert not english_of["train"] & english_of["test"] and not english_of["validation"] & english_of["test"]
    unique_english = [len(english_of[split]) for split in loaders.SPLIT_NAMES]
    assert sum(unique_english) == 151
    np.testing.assert_allclose(np.array(unique_english) / 152, [0.8, 0.1, 0.1], atol=0.02)
    assert sum(translation["kept"][split]["pairs"] for split in loaders.SPLIT_NAMES) == 301
    assert sum(translation["kept"][split]["dropped_too_long"] for split in loaders.SPLIT_NAMES) == 1
    assert translation["test_refs"] is None
    for english, spanish in zip(*translation["train"]):
        assert english.startswith(("Sentence", "Hello")) and spanish.startswith(("Frase", "Hola"))


def reference_bleu(hypotheses, references, max_order=4):
    """Corpus BLEU from its definition: clipped n-gram precisions pooled over sentences, brevity penalty."""
    matches, totals = np.zeros(max_order), np.zeros(max_order)
    hypothesis_length = reference_length = 0
    for hypothesis, reference in zip(hypotheses, references):
        hypothesis_words, reference_words = hypothesis.split(), reference.split()
        hypothesis_length += len(hypothesis_words)
        reference_length += len(reference_words)
        for order in range(1, max_order + 1):
            hypothesis_ngrams = collections.Counter(zip(*(hypothesis_words[start:] for start in range(order))))
            reference_ngrams = collections.Counter(zip(*(reference_words[start:] for start in range(order))))
            clipped = [min(count, reference_ngrams[ngram]) for ngram, count in hypothesis_ngrams.items()]
            matches[order - 1] += sum(clipped)
            totals[order - 1] += sum(hypothesis_ngrams.values())
    brevity_penalty = min(1.0, math.exp(1 - reference_length / hypothesis_length))
    return 100 * brevity_penalty * math.exp(np.mean(np.log(matches / totals)))


def test_corpus_bleu_matches_the_formula_on_a_small_corpus():
    # No punctuation, so sacrebleu's 13a tokens are the words; every order has a match, so no smoothing.
    hypotheses = ["el perro come la comida en la casa", "los niños juegan en el jardín"]
    references = ["el perro come su comida en la casa grande", "los niños juegan en el jardín hoy"]
    expected = reference_bleu(hypotheses, references)
    assert 40 < expected < 90  # a real test of the brevity penalty and the clipped precisions
    assert translation_metrics.corpus_scores(hypotheses, references)["bleu"] == pytest.approx(expected, abs=1e-9)
    # Pooled counts, not the mean of sentence scores.
    sentence_mean = np.mean([reference_bleu([h], [r]) for h, r in zip(hypotheses, references)])
    assert abs(sentence_mean - expected) > 0.5


def test_identical_and_disjoint_corpora():
    sentences = ["La casa de mi padre es grande.", "Y dijo Dios: Sea la luz."]
    identical = translation_metrics.corpus_scores(sentences, sentences)
    assert identical == pytest.approx({"bleu": 100.0, "chrf": 100.0, "bleu_lowercase": 100.0})
    disjoint = translation_metrics.corpus_scores(["wxyz qwvk"], ["abcde fghij"])
    assert disjoint["bleu"] == pytest.approx(0.0, abs=1e-6) and disjoint["chrf"] < 1.0
    recased = translation_metrics.corpus_scores(["LA CASA DE MI PADRE"], ["la casa de mi padre"])
    assert recased["bleu"] < 10 and recased["bleu_lowercase"] == pytest.approx(100.0)


def test_sentence_bleu_ranks_sentences_and_lengths_must_match():
    scores = translation_metrics.sentence_bleu_scores(
        ["la casa de mi padre es grande", "otra cosa distinta"], ["la casa de mi padre es grande", "la casa"]
    )
    assert scores[0] == pytest.approx(100.0) and scores[1] < 10
    for function in (translation_metrics.corpus_scores, translation_metrics.sentence_bleu_scores):
        with pytest.raises(ValueError, match="Received: 2 hypotheses and 1 references"):
            function(["a", "b"], ["a"])


def test_identity_baseline_copies():
    english = ["In the beginning.", "God said."]
    copied = translation_metrics.identity_baseline(english)
    assert copied == english and copied is not english


@pytest.mark.parametrize("method", translation_metrics.METHODS)
def test_word_by_word_learns_a_toy_dictionary(method):
    baseline = translation_metrics.WordByWordBaseline(method).fit(
        ["the house", "the dog", "a house"], ["la casa", "el perro", "una casa"]
    )
    assert baseline.dictionary["house"] == "casa"
    assert baseline.dictionary["a"] == "una"
    # Unknown words are copied, punctuation is kept, names stay capitalised, the sentence starts with a capital.
    assert baseline.translate(["a house, Zorro!", "house"]) == ["Una casa, Zorro!", "Casa"]


def test_word_by_word_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received: method='giza'"):
        translation_metrics.WordByWordBaseline("giza")
    with pytest.raises(ValueError, match="Received: iterations=0"):
        translation_metrics.WordByWordBaseline(iterations=0)
    with pytest.raises(ValueError, match="Received: 1 hypotheses and 2 references"):
        translation_metrics.WordByWordBaseline().fit(["a", "b"], ["una"])


def test_detokenize_attaches_punctuation():
    tokens = translation_metrics.tokenize("“Don’t go,” he said (twice)¿ ¡no!")
    assert tokens[:4] == ["“", "Don’t", "go", ","]
    assert translation_metrics.detokenize(["¿", "qué", "?", "(", "dijo", ")"]) == "¿Qué? (dijo)"


@pytest.mark.slow
def test_word_by_word_beats_copying_on_the_validation_books(translation):
    start = time.monotonic()
    scores = translation_metrics.baseline_scores(translation, split="validation")
    assert time.monotonic() - start < 60
    assert scores["word_by_word"]["bleu"] > 5 + scores["identity"]["bleu"]
    assert scores["word_by_word"]["chrf"] > 10 + scores["identity"]["chrf"]


def test_copied_share_counts_source_words_the_target_language_never_uses():
    sources = ["Mordecai saw the king.", "Ruth went."]
    translations = ["Mordecai vió al rey the.", "Rut fué."]
    # "mordecai" and "the" come from the source and no Spanish training sentence has them; "rey" does.
    found = translation_metrics.copied_share(translations, sources, ["El rey vió á Rut.", "Y fué."])
    assert found == {"copied_words": 2, "output_words": 7, "copied_share": 2 / 7}
    with pytest.raises(ValueError, match="Received: 1 hypotheses and 2 references"):
        translation_metrics.copied_share(translations[:1], sources, [])
