"""The translation app: word splitting and detokenization, the decoder's agreement with its training
graph, beam search against exhaustive search, and the quick-trained export in a fresh process."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from apps import pipeline, translation
from apps.translation import END, START, Translator
from serving.contracts import CONTRACTS
from tests.helpers import folders, run_without_our_code

SIGNATURES = {"serving_default", "translate_greedy", "translate_with_attention"}


def decode(values):
    return [value.decode("utf-8") for value in np.asarray(values).ravel()]


def test_split_words_keeps_accented_words_and_separates_punctuation():
    words = translation.split_words(tf.constant(["¿Quién es JEHOVÁ, el Dios?", "", "Naomi’s  husband; 12."]))
    assert [decode(row) for row in words.to_list()] == [
        ["¿", "quién", "es", "jehová", ",", "el", "dios", "?"], [], ["naomi’s", "husband", ";", "12", "."]
    ]
    spelled = translation.split_words(tf.constant(["¿Quién es JEHOVÁ?"]), lowercase=False)
    assert decode(spelled.to_list()[0]) == ["¿", "Quién", "es", "JEHOVÁ", "?"]


def test_detokenize_and_capitalize_give_readable_text():
    words = tf.constant([["¿", "quién", "es", "", "él", "?"], ["dijo", ":", "«", "sí", "»", "."]])
    assert decode(translation.detokenize(words)) == ["¿quién es él?", "dijo: «sí»."]
    assert decode(translation.capitalize(tf.constant(["ángel", "", "x", "Él"]))) == ["Ángel", "", "X", "Él"]


def test_vocabulary_is_by_frequency_and_shows_the_usual_spelling():
    words, display = translation.build_vocabulary(
        ["Dios dijo: dios es Dios.", "Y dijo Jehová."], size=10, reserved=(START, END)
    )
    assert words[:2] == [START, END] and words[2:5] == ["dios", ".", "dijo"]  # ties alphabetical
    assert display[words.index("dios")] == "Dios" and display[words.index("jehová")] == "Jehová"
    assert len(words) <= 8  # size counts padding and the unknown token too


def tiny_translator(attention=True, cell="gru", max_output_tokens=3):
    keras_seed = 7
    tf.keras.utils.set_random_seed(keras_seed)
    model = Translator(
        ["[START]", "[END]", "the", "house", "dog"],
        ["[START]", "[END]", "la", "casa"],
        ["[START]", "[END]", "la", "casa"],
        embedding_dim=4, units=5, cell=cell, attention=attention, dropout=0.0,
        max_source_tokens=8, max_output_tokens=max_output_tokens,
    )  # fmt: skip
    model.build()
    # Random weights are too flat to make the search interesting; sharpen the output layer.
    kernel, bias = model.output_layer.get_weights()
    model.output_layer.set_weights([kernel * 8.0, bias])
    return model


@pytest.mark.parametrize("cell, attention", [("gru", True), ("lstm", True), ("gru", False)])
def test_greedy_tokens_are_the_argmax_of_the_teacher_forced_graph(cell, attention):
    """The step-by-step decoder must compute what the training graph computes on the same prefix."""
    model = tiny_translator(attention, cell, max_output_tokens=6)
    texts = tf.constant(["the house", "the dog the house dog", "unknown words here"])
    result = model.translate(texts, beam_width=1)
    source_ids, _, _ = model.tokenize_source(texts)
    ids = tf.cast(model.target_lookup(tf.constant([[START, END]]))[0], tf.int64)  # sanity of the lookup
    assert ids.numpy().tolist() == [translation.START_ID, translation.END_ID]
    chosen, _ = model.greedy_search(source_ids, tf.constant(6))
    target_in = tf.concat([tf.fill([3, 1], tf.constant(translation.START_ID, tf.int64)), chosen[:, :-1]], axis=1)
    logits = model({"source": source_ids, "target_in": target_in}).numpy()
    logits[:, :, [translation.PAD_ID, translation.START_ID]] = -np.inf
    for row, tokens in enumerate(chosen.numpy()):
        for position, token in enumerate(tokens):
            if token == translation.PAD_ID:  # finished earlier
                break
            assert token == np.argmax(logits[row, position])
    assert result["translation"].shape == (3,)


def test_beam_width_one_is_greedy_search():
    model = tiny_translator(max_output_tokens=6)
    texts = tf.constant(["the house", "dog", "the the the dog house", ""])
    greedy = model.translate(texts, beam_width=1, search="greedy")
    beam = model.translate(texts, beam_width=1, search="beam")
    for name in ("translation", "target_tokens"):
        np.testing.assert_array_equal(greedy[name].numpy(), beam[name].numpy())
    np.testing.assert_allclose(greedy["attention"].numpy(), beam["attention"].numpy(), atol=1e-6)


def exhaustive_best(model, text, max_length, alpha):
    """The best output by brute force: every sequence of allowed tokens up to `max_length`, scored by its
    log-probability over GNMT's length penalty, computed with the teacher-forced training graph."""
    source_ids, _, _ = model.tokenize_source(tf.constant([text]))
    allowed = [translation.UNKNOWN_ID, translation.END_ID] + list(range(4, len(model.target_vocabulary) + 2))
    best, best_score = None, -np.inf
    for length in range(1, max_length + 1):
        for sequence in itertools.product(allowed, repeat=length):
            if translation.END_ID in sequence[:-1]:
                continue
            target_in = tf.constant([[translation.START_ID, *sequence[:-1]]], tf.int64)
            logits = model({"source": source_ids, "target_in": target_in}).numpy()[0]
            logits[:, [translation.PAD_ID, translation.START_ID]] = -1e9
            log_probabilities = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True)) - logits.max(-1, keepdims=True)
            total = sum(log_probabilities[step, token] for step, token in enumerate(sequence))
            # Sequences that stop at the length limit without [END] are complete too.
            if sequence[-1] != translation.END_ID and length < max_length:
                continue
            score = total / ((5.0 + length) / 6.0) ** alpha
            if score > best_score:
                best, best_score = list(sequence), score
    return best


@pytest.mark.parametrize("text", ["the house", "dog dog the"])
def test_wide_beam_search_finds_the_exhaustive_best(text):
    model = tiny_translator(max_output_tokens=3)
    expected = exhaustive_best(model, text, 3, model.length_penalty)
    source_ids, _, _ = model.tokenize_source(tf.constant([text]))
    ids, _ = model.beam_search(source_ids, tf.constant(3), beam_width=64)
    found = [int(token) for token in ids.numpy()[0] if token != translation.PAD_ID]
    assert found == expected


def test_translator_config_round_trip_and_bad_arguments():
    model = tiny_translator()
    clone = Translator.from_config(model.get_config())
    clone.build()
    clone.set_weights(model.get_weights())
    texts = tf.constant(["the dog", "house"])
    np.testing.assert_array_equal(
        model.translate(texts, beam_width=2)["translation"].numpy(), clone.translate(texts, beam_width=2)["translation"].numpy()
    )
    with pytest.raises(ValueError, match="Received"):
        Translator(["a"], ["la", "casa"], ["la", "casa"])
    with pytest.raises(ValueError, match="Received: beam_width=0"):
        model.translate(texts, beam_width=0, search="beam")
    with pytest.raises(ValueError, match="Received: cell='cnn'"):
        translation.TranslationConfig(cell="cnn")


@pytest.fixture(scope="module")
def trained_translation(trained_app):
    return trained_app("translation")


def test_train_quick_reports_bleu_next_to_both_baselines(trained_translation):
    _, tmp_path, report = trained_translation
    assert set(report["baselines"]) == {"identity (copy the English)", "word by word (dictionary from training)"}
    for scores in [report["model"], *report["baselines"].values()]:
        assert 0.0 <= scores["bleu"] <= 100.0 and 0.0 <= scores["chrf"] <= 100.0
    assert {"bleu_greedy", "chrf_greedy", "train_pairs", "test_pairs"} <= set(report["model"])
    report_dir = tmp_path / "reports" / "translation"
    samples = (report_dir / "samples.md").read_text()
    assert "## Best" in samples and "## Worst" in samples and "## Random" in samples
    assert (report_dir / "attention.png").stat().st_size > 1000


def test_export_translates_odd_batches_in_a_fresh_process(trained_translation):
    _, tmp_path, _ = trained_translation
    script = f"""
import json, tensorflow as tf
loaded = tf.saved_model.load({str(tmp_path / "saved_models" / "translation" / "1")!r})
texts = ["In the beginning God created the heavens and the earth.", "", "   ", "Zorblax qwerty!",
         "and " * 400, "¿Who? 🎬"]
out = {{}}
for name in sorted(loaded.signatures):
    result = loaded.signatures[name](text=tf.constant(texts))
    out[name] = {{key: [list(value.shape), value.dtype.name] for key, value in result.items()}}
out["texts"] = [value.decode("utf-8") for value in loaded.signatures["serving_default"](text=tf.constant(texts))["translation"].numpy()]
out["single"] = loaded.signatures["serving_default"](text=tf.constant(texts[:1]))["translation"].shape.as_list()
print(json.dumps(out))
"""
    found = run_without_our_code(script, tmp_path)
    assert SIGNATURES <= set(found)
    assert found["serving_default"] == {"translation": [[6], "string"]}
    assert {key: value[1] for key, value in found["translate_with_attention"].items()} == {
        "translation": "string", "attention": "float32", "source_tokens": "string", "target_tokens": "string"
    }
    batch, target, source = found["translate_with_attention"]["attention"][0]
    assert batch == 6 and 1 <= target <= translation.TranslationConfig.QUICK["max_output_tokens"]
    assert source == translation.TranslationConfig.max_source_tokens  # the long text is cut, not refused
    assert found["texts"][1] == "" and found["texts"][2] == ""  # empty in, empty out
    assert found["single"] == [1]
    assert list(CONTRACTS["translation"]["outputs"]) == ["translation"]


def test_predict_verb_prints_translations(trained_translation, capsys):
    _, tmp_path, _ = trained_translation
    outputs = pipeline.main(translation.TranslationApp(), ["predict", "The house.", "", *folders(tmp_path)])
    assert len(outputs["translation"]) == 2 and outputs["translation"][1] == b""
    assert "->" in capsys.readouterr().out


def test_attention_rows_are_distributions_over_real_source_words(trained_translation):
    _, tmp_path, _ = trained_translation
    loaded = tf.saved_model.load(str(tmp_path / "saved_models" / "translation" / "1"))
    result = loaded.signatures["translate_with_attention"](text=tf.constant(["The man went to Moab.", "Ruth"]))
    attention, targets = result["attention"].numpy(), result["target_tokens"].numpy()
    sources = result["source_tokens"].numpy()
    for row in range(2):
        real = targets[row] != b""
        np.testing.assert_allclose(attention[row][real].sum(axis=-1), 1.0, atol=1e-5)
        source_words = int(np.sum(sources[row] != b""))
        assert np.all(attention[row][real][:, source_words + 1 :] < 1e-6)  # padding gets no weight
