"""Subwords for translation: byte-pair merges on hand-checked cases, the graph segmentation against the
plain-Python reference, round trips of seen and unseen words, no [UNK] over the training alphabet, the
output words with their capitals, and a subword translator that never writes [UNK]."""

import numpy as np
import pytest
import tensorflow as tf

from apps import pipeline, translation, translation_subwords, translation_text
from apps.translation_model import Translator
from apps.translation_text import END, START

SPANISH = [
    "En el principio crió Dios los cielos y la tierra.",
    "Y dijo Dios: Sea la luz; y fué la luz.",
    "¿Quién es Jehová, el Dios de Israel?",
    "Y Noemí dijo á Rut: Vuélvete, hija mía; ¿para qué has de venir conmigo?",
    "Entonces Mardoqueo mandó que respondiesen á Esther: No pienses que escaparás en la casa del rey.",
    "Jonás se levantó para huir de la presencia de Jehová á Tarsis, y descendió á Joppe.",
    "El corazón del niño, ¡oh pequeñuelo!, busca la verdad.",
]
UNSEEN = ["mardoqueos", "corazones", "niñez", "jehovás", "huyeron", "tarsiseño", "quiéreme", "q", "ññ"]


def decode(values):
    return [value.decode("utf-8") for value in np.asarray(values).ravel()]


def pieces_of(texts, vocabulary):
    """The graph segmentation of `texts`, as lists of strings."""
    lookup = translation_text.word_lookup(vocabulary)
    split = translation_subwords.splitter(lookup, translation_subwords.longest_piece(vocabulary))
    return [decode(row) for row in split(tf.constant(texts)).to_list()]


@pytest.fixture(scope="module")
def vocabulary():
    """Few merges, so that most words are cut into several pieces."""
    return translation_subwords.learn_subwords(SPANISH, size=120, reserved=(START, END))


def test_byte_pair_merges_join_the_most_frequent_pair_first():
    # Pairs: (a, ##b) 4 times, (##b, ##c) and (b, ##c) once each: one merge, then nothing seen twice.
    vocabulary = translation_subwords.learn_subwords(["ab ab ab abc", "bc"], size=20, reserved=(START, END))
    # Every character comes in both forms, "##a" and "c" too, though no word has them.
    assert vocabulary == [START, END, "##a", "##b", "##c", "a", "b", "c", "ab"]
    # The size counts padding and the unknown token: 10 leaves no room for a merge beyond the alphabet.
    assert translation_subwords.learn_subwords(["ab ab ab abc", "bc"], size=10, reserved=(START, END))[-1] == "c"
    # (a, ##b) 3 times first; then continuation pieces merge too, and of two pairs seen twice the smaller
    # goes first: ("##a", "##b") before ("ab", "##a").
    vocabulary = translation_subwords.learn_subwords(["abab abab ab"], size=20)
    assert vocabulary[-3:] == ["ab", "##ab", "abab"]


def test_graph_segmentation_equals_the_plain_python_reference(vocabulary):
    texts = SPANISH + [" ".join(UNSEEN), "", "   ", "zzz 🎬 MARDOQUEO"]
    expected = [
        [piece for word in decode(words) for piece in translation_subwords.reference_segment(word, vocabulary)]
        for words in translation_text.split_words(tf.constant(texts)).to_list()
    ]
    found = pieces_of(texts, vocabulary)
    assert found == expected
    assert any(len(translation_subwords.reference_segment(word, vocabulary)) > 2 for word in UNSEEN)


def test_pieces_join_back_into_the_lowercased_words_seen_or_not(vocabulary):
    texts = SPANISH[2:5] + [" ".join(UNSEEN), "Noemí y MARDOQUEO, Jehová."]
    pieces = [row + [""] * 3 for row in pieces_of(texts, vocabulary)]  # padding is left out
    width = max(len(row) for row in pieces)
    joined = translation_subwords.join_pieces(tf.constant([row + [""] * (width - len(row)) for row in pieces]))
    words = translation_text.split_words(tf.constant(texts)).to_list()
    for row, expected in zip(joined.numpy().tolist(), words):
        assert [word.decode("utf-8") for word in row if word] == decode(expected)
    assert "mardoqueos" in decode(joined) and "niñez" in decode(joined) and "jehová" in decode(joined)


def test_no_word_over_the_training_alphabet_is_unknown(vocabulary):
    alphabet = sorted({character for text in SPANISH for character in text.lower() if character.isalpha()})
    random = np.random.default_rng(0)
    words = ["".join(random.choice(alphabet, size=random.integers(1, 14))) for _ in range(300)]
    assert translation_text.UNKNOWN not in sum(pieces_of([" ".join(words)], vocabulary), [])
    # A character never seen in training is the one thing left unknown.
    assert pieces_of(["жa"], vocabulary) == [[translation_text.UNKNOWN, "##a"]]


def test_display_words_keep_the_capitals_they_have_inside_sentences():
    texts = ["Y Dios dijo.", "Entonces Dios habló á Jehová.", "Entonces vino. Entonces fué.",
             "Y dijo: Sea la luz.", "Del rey ACHAB."]  # fmt: skip
    assert translation_subwords.learn_display_words(texts) == ["Dios", "Jehová"]


def test_output_words_join_pieces_and_restore_names_and_sentence_starts():
    vocabulary = [START, END, "y", "dios", "vio", "á", "mor", "##de", "##cai", ".", "en", "##tonces"]
    display_words = ["Dios"]
    pieces = ["y", "dios", "vio", "á", "mor", "##de", "##cai", ".", "en", "##tonces", END, "vio"]
    ids = tf.constant([[vocabulary.index(piece) + 2 for piece in pieces]], tf.int64)
    words = translation_subwords.output_words(
        ids, translation_text.real_tokens(ids), vocabulary, translation_subwords.display_lookup(display_words),
        display_words, tf.constant(["Mordecai saw God, and Mordecai went."]),
    )  # fmt: skip
    # "Mordecai" opens the source sentence once, but its second use shows that it is a name.
    assert [word for word in decode(words) if word] == ["Y", "Dios", "vio", "á", "Mordecai", ".", "Entonces"]
    assert decode(translation_text.detokenize(words)) == ["Y Dios vio á Mordecai. Entonces"]


def tiny_subword_translator():
    tf.keras.utils.set_random_seed(3)
    source = translation_subwords.learn_subwords(["the house of the dog"], size=30, reserved=(START, END))
    target = translation_subwords.learn_subwords(["la casa del perro"], size=30, reserved=(START, END))
    model = Translator(
        source, target, target, embedding_dim=4, units=(5,), dropout=0.0, max_output_tokens=6,
        tokens="subwords", display_words=["Casa"],
    )  # fmt: skip
    model.build()
    return model


def test_subword_translator_never_writes_unknown_even_when_it_is_likeliest():
    model = tiny_subword_translator()
    kernel, bias = model.output_layer.get_weights()
    bias[translation_text.UNKNOWN_ID] = 50.0  # [UNK] far ahead of every piece
    model.output_layer.set_weights([kernel, bias])
    texts = tf.constant(["the house of hogs 🎬", "dog", ""])
    for beam_width in (1, 3):
        result = model.translate(texts, beam_width=beam_width)
        assert translation_text.UNKNOWN not in decode(result["target_tokens"])
        assert decode(result["translation"])[2] == ""
    # Its source tokens are pieces; the character never seen is the only unknown one.
    assert decode(result["source_tokens"][0]).count(translation_text.UNKNOWN) == 1


def test_subword_translator_config_round_trip_and_bad_tokens():
    model = tiny_subword_translator()
    clone = Translator.from_config(model.get_config())
    clone.build()
    clone.set_weights(model.get_weights())
    texts = tf.constant(["the dog", "house of the house"])
    assert clone.tokens == "subwords" and clone.display_words == ["Casa"]
    np.testing.assert_array_equal(
        model.translate(texts, beam_width=2)["translation"].numpy(), clone.translate(texts, beam_width=2)["translation"].numpy()
    )
    with pytest.raises(ValueError, match="Received: tokens='bytes'"):
        Translator([START, END], [START, END], [START, END], tokens="bytes")
    with pytest.raises(ValueError, match="Received: tokens='bytes'"):
        translation.TranslationConfig(tokens="bytes")
    app = translation.TranslationApp()
    arguments = pipeline.build_parser(app).parse_args(["train", "--tokens", "words", "--subword-vocabulary", "900"])
    config = pipeline.config_from_arguments(app, arguments)
    assert config.tokens == "words" and config.subword_vocabulary == 900
