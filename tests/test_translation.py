"""The translation app: word splitting and detokenization, the decoder's agreement with its training
graph, beam search against exhaustive search, the config's layer sizes, and the quick-trained export in a
fresh process."""

import itertools
import json
import re
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps import pipeline, translation, translation_search, translation_text
from apps.translation_model import Translator
from apps.translation_text import END, START
from serving.contracts import CONTRACTS
from tests.helpers import folders, run_without_our_code

SIGNATURES = {"serving_default", "translate_greedy", "translate_with_attention", "decoding"}


def decode(values):
    return [value.decode("utf-8") for value in np.asarray(values).ravel()]


def test_split_words_keeps_accented_words_and_separates_punctuation():
    words = translation_text.split_words(tf.constant(["¿Quién es JEHOVÁ, el Dios?", "", "Naomi’s  husband; 12."]))
    assert [decode(row) for row in words.to_list()] == [
        ["¿", "quién", "es", "jehová", ",", "el", "dios", "?"], [], ["naomi’s", "husband", ";", "12", "."]
    ]
    spelled = translation_text.split_words(tf.constant(["¿Quién es JEHOVÁ?"]), lowercase=False)
    assert decode(spelled.to_list()[0]) == ["¿", "Quién", "es", "JEHOVÁ", "?"]


def test_detokenize_and_capitalize_give_readable_text():
    words = tf.constant([["¿", "quién", "es", "", "él", "?"], ["dijo", ":", "«", "sí", "»", "."]])
    assert decode(translation_text.detokenize(words)) == ["¿quién es él?", "dijo: «sí»."]
    assert decode(translation_text.capitalize(tf.constant(["ángel", "", "x", "Él"]))) == ["Ángel", "", "X", "Él"]


def test_an_unknown_output_word_copies_only_a_name_the_encoder_does_not_know():
    # Source "Where I met Zorobabel ." with "where", "i", "met" known; three output tokens, each unknown,
    # attending in turn to "Where" (known, capitalized), "Zorobabel" (unknown, capitalized), "met".
    source_ids = tf.constant([[5, 6, 7, translation_text.UNKNOWN_ID, translation_text.END_ID]])
    spellings = tf.constant([["Where", "I", "met", "Zorobabel", ""]])
    attention = tf.one_hot([[0, 3, 2]], 5)
    ids = tf.fill([1, 3], translation_text.UNKNOWN_ID)
    vocabulary = [START, END, "dónde"]
    words, keep = translation_text.target_words(ids, attention, source_ids, spellings, vocabulary, vocabulary)
    assert decode(words) == ["", "Zorobabel", ""]
    assert keep.numpy().tolist() == [[True, True, True]]
    words, _ = translation_text.target_words(
        ids, attention, source_ids, spellings, vocabulary, vocabulary, copy_names=False
    )
    assert decode(words) == ["", "", ""]
    # The first shown word starts the sentence even when a left-out unknown word comes before it.
    words, _ = translation_text.target_words(
        tf.constant([[translation_text.UNKNOWN_ID, 4]]), attention[:, :2], source_ids, spellings, vocabulary, vocabulary
    )
    assert decode(words) == ["", "Dónde"]


def test_vocabulary_is_by_frequency_and_shows_the_usual_spelling():
    words, display = translation_text.build_vocabulary(
        ["Dios dijo: dios es Dios.", "Y dijo Jehová."], size=10, reserved=(START, END)
    )
    assert words[:2] == [START, END] and words[2:5] == ["dios", ".", "dijo"]  # ties alphabetical
    assert display[words.index("dios")] == "Dios" and display[words.index("jehová")] == "Jehová"
    assert len(words) <= 8  # size counts padding and the unknown token too


def tiny_translator(attention=True, cell="gru", max_output_tokens=3, units=(5,)):
    keras_seed = 7
    tf.keras.utils.set_random_seed(keras_seed)
    model = Translator(
        ["[START]", "[END]", "the", "house", "dog"],
        ["[START]", "[END]", "la", "casa"],
        ["[START]", "[END]", "la", "casa"],
        embedding_dim=4, units=units, cell=cell, attention=attention, dropout=0.0,
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
    source_ids, _, _ = translation_text.tokenize_source(texts, model.source_lookup, model.max_source_tokens)
    ids = tf.cast(model.target_lookup(tf.constant([[START, END]]))[0], tf.int64)  # sanity of the lookup
    assert ids.numpy().tolist() == [translation_text.START_ID, translation_text.END_ID]
    chosen, _ = model.search(source_ids, tf.constant(6), method="greedy")
    target_in = tf.concat([tf.fill([3, 1], tf.constant(translation_text.START_ID, tf.int64)), chosen[:, :-1]], axis=1)
    logits = model({"source": source_ids, "target_in": target_in}).numpy()
    logits[:, :, [translation_text.PAD_ID, translation_text.START_ID]] = -np.inf
    for row, tokens in enumerate(chosen.numpy()):
        for position, token in enumerate(tokens):
            if token == translation_text.PAD_ID:  # finished earlier
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
    source_ids, _, _ = translation_text.tokenize_source(tf.constant([text]), model.source_lookup, model.max_source_tokens)
    allowed = [translation_text.UNKNOWN_ID, translation_text.END_ID] + list(range(4, len(model.target_vocabulary) + 2))
    best, best_score = None, -np.inf
    for length in range(1, max_length + 1):
        for sequence in itertools.product(allowed, repeat=length):
            if translation_text.END_ID in sequence[:-1]:
                continue
            target_in = tf.constant([[translation_text.START_ID, *sequence[:-1]]], tf.int64)
            logits = model({"source": source_ids, "target_in": target_in}).numpy()[0]
            logits[:, [translation_text.PAD_ID, translation_text.START_ID]] = -1e9
            log_probabilities = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True)) - logits.max(-1, keepdims=True)
            total = sum(log_probabilities[step, token] for step, token in enumerate(sequence))
            # Sequences that stop at the length limit without [END] are complete too.
            if sequence[-1] != translation_text.END_ID and length < max_length:
                continue
            score = total / ((5.0 + length) / 6.0) ** alpha
            if score > best_score:
                best, best_score = list(sequence), score
    return best


@pytest.mark.parametrize("text", ["the house", "dog dog the"])
def test_wide_beam_search_finds_the_exhaustive_best(text):
    model = tiny_translator(max_output_tokens=3)
    expected = exhaustive_best(model, text, 3, model.length_penalty)
    source_ids, _, _ = translation_text.tokenize_source(tf.constant([text]), model.source_lookup, model.max_source_tokens)
    ids, _ = model.search(source_ids, tf.constant(3), beam_width=64, method="beam")
    found = [int(token) for token in ids.numpy()[0] if token != translation_text.PAD_ID]
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
    with pytest.raises(ValueError, match="Received: 'cnn'"):
        translation.TranslationConfig(cell="cnn")


def test_searches_drive_any_step_function_and_beam_finds_what_greedy_misses():
    """A made-up next-token table, no model: greedy takes the likelier first word (0.6) and ends at
    0.6 x 0.34; a beam of 2 keeps "[END]" at once (0.4), the better whole sequence."""
    never = -1e9
    uniform = [never, np.log(1 / 3), never, np.log(1 / 3), np.log(1 / 3)]  # unknown, [END], word 4
    table = tf.constant([uniform, uniform, [never, never, never, np.log(0.4), np.log(0.6)], uniform,
                         [never, np.log(0.33), never, np.log(0.34), np.log(0.33)]], tf.float32)  # fmt: skip

    def step(tokens, states, context):
        return tf.gather(table, tokens), tf.ones([tf.shape(tokens)[0], 1]), states

    states = [tf.zeros([2, 1])]
    greedy, _ = translation_search.greedy_search(step, states, [], tf.constant(3))
    assert greedy.numpy().tolist() == [[4, translation_text.END_ID]] * 2
    beam, attention = translation_search.beam_search(
        step, states, [], tf.constant(3), beam_width=2, length_penalty=0.0, vocabulary_size=5, source_length=1
    )
    assert beam.numpy().tolist() == [[translation_text.END_ID, translation_text.PAD_ID]] * 2
    assert attention.shape == (2, 2, 1)


def test_units_list_the_encoder_layers_and_the_decoder_takes_the_last(tmp_path):
    model = tiny_translator(units=(6, 5))
    assert [layer.forward_layer.units for layer in model.encoder_layers] == [6, 5]
    assert model.decoder.units == 5 and model.get_config()["units"] == [6, 5]
    texts = tf.constant(["the dog", "house the"])
    assert model.translate(texts, beam_width=2)["translation"].shape == (2,)
    # A model saved while the config held one size and a depth still loads, as a stack of that size.
    model = tiny_translator(units=(5,))
    expected = model.translate(texts, beam_width=2)["translation"].numpy()
    path = tmp_path / "old.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    saved = json.loads(files["config.json"])
    saved["module"] = "apps.translation"
    saved["config"]["units"], saved["config"]["encoder_depth"] = 5, 1
    files["config.json"] = json.dumps(saved).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    loaded = keras.models.load_model(path)
    assert loaded.units == (5,)
    np.testing.assert_array_equal(loaded.translate(texts, beam_width=2)["translation"].numpy(), expected)


def test_config_takes_units_as_a_list_of_layer_sizes_from_the_command_line():
    app = translation.TranslationApp()
    arguments = pipeline.build_parser(app).parse_args(["train", "--units", "32", "16", "--cell", "lstm"])
    config = pipeline.config_from_arguments(app, arguments)
    assert config.units == (32, 16) and config.cell == "lstm"
    assert translation.TranslationConfig().units == (256,)
    for units in [256, (), (16, 0), ("16",)]:
        with pytest.raises(ValueError, match=re.escape(f"Received: units={units!r}")):
            translation.TranslationConfig(units=units)
    with pytest.raises(ValueError, match="Received: dataset='wmt14'"):
        translation.TranslationConfig(dataset="wmt14")
    with pytest.raises(SystemExit):  # the depth is the number of sizes now
        pipeline.build_parser(app).parse_args(["train", "--encoder-depth", "2"])


@pytest.fixture(scope="module")
def trained_translation(trained_app):
    return trained_app("translation")


def test_train_quick_reports_bleu_next_to_both_baselines(trained_translation):
    _, tmp_path, report = trained_translation
    assert set(report["baselines"]) == {"identity (copy the English)", "word by word (dictionary from training)"}
    for scores in [report["model"], *report["baselines"].values()]:
        assert 0.0 <= scores["bleu"] <= 100.0 and 0.0 <= scores["chrf"] <= 100.0
    assert {"bleu_greedy", "chrf_greedy", "train_pairs", "test_pairs", "validation_bleu", "copied_share"} <= set(
        report["model"]
    )
    assert report["model"]["tokens"] == "words" and report["model"]["unknown_tokens"] >= 0
    report_dir = tmp_path / "reports" / "translation"
    samples = (report_dir / "samples.md").read_text()
    assert "## Best" in samples and "## Worst" in samples and "## Random" in samples
    assert (report_dir / "attention.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def trained_subwords(tmp_path_factory):
    """The quick profile with subword tokens, in its own folder."""
    tmp_path = tmp_path_factory.mktemp("translation_subwords")
    report = pipeline.main(translation.TranslationApp(), ["train", "--quick", "--tokens", "subwords", *folders(tmp_path)])
    return "translation", tmp_path, report


@pytest.fixture(params=["words", "subwords"])
def trained_either(request, trained_translation, trained_subwords):
    return trained_translation if request.param == "words" else trained_subwords


def test_export_translates_odd_batches_in_a_fresh_process(trained_either):
    _, tmp_path, _ = trained_either
    script = f"""
import json, tensorflow as tf
loaded = tf.saved_model.load({str(tmp_path / "saved_models" / "translation" / "1")!r})
texts = ["In the beginning God created the heavens and the earth.", "", "   ", "Zorblax qwerty!",
         "and " * 400, "¿Who? 🎬"]
out = {{}}
for name in sorted(loaded.signatures):
    result = loaded.signatures[name](**({{}} if name == "decoding" else {{"text": tf.constant(texts)}}))
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
    assert found["decoding"] == {"beam_width": [[], "int32"], "length_penalty": [[], "float32"]}
    assert list(CONTRACTS["translation"]["outputs"]) == ["translation"]


def test_evaluate_reports_the_exports_decoding_not_the_configs(trained_translation):
    _, tmp_path, report = trained_translation
    quick = translation.TranslationConfig.QUICK
    assert (report["model"]["beam_width"], report["model"]["length_penalty"]) == (quick["beam_width"], 0.6)
    evaluated = pipeline.main(translation.TranslationApp(), ["evaluate", "--quick", "--beam-width", "5",
                                                             *folders(tmp_path)])  # fmt: skip
    assert (evaluated["model"]["beam_width"], evaluated["model"]["length_penalty"]) == (quick["beam_width"], 0.6)
    assert evaluated["model"]["decoding_chosen_on_validation"] is False  # this export was made without the search


def test_predict_verb_prints_translations(trained_translation, capsys):
    _, tmp_path, _ = trained_translation
    outputs = pipeline.main(translation.TranslationApp(), ["predict", "The house.", "", *folders(tmp_path)])
    assert len(outputs["translation"]) == 2 and outputs["translation"][1] == b""
    assert "->" in capsys.readouterr().out


def test_subword_export_writes_no_unknown_token(trained_subwords):
    _, tmp_path, report = trained_subwords
    assert report["model"]["tokens"] == "subwords" and report["model"]["unknown_tokens"] == 0
    loaded = tf.saved_model.load(str(tmp_path / "saved_models" / "translation" / "1"))
    result = loaded.signatures["translate_with_attention"](text=tf.constant(["The man went to Zorobabel.", "Ruth"]))
    assert b"[UNK]" not in result["target_tokens"].numpy().ravel().tolist()
    assert b"[UNK]" not in result["source_tokens"].numpy().ravel().tolist()  # every letter was seen in training


def test_attention_rows_are_distributions_over_real_source_words(trained_either):
    _, tmp_path, _ = trained_either
    loaded = tf.saved_model.load(str(tmp_path / "saved_models" / "translation" / "1"))
    result = loaded.signatures["translate_with_attention"](text=tf.constant(["The man went to Moab.", "Ruth"]))
    attention, targets = result["attention"].numpy(), result["target_tokens"].numpy()
    sources = result["source_tokens"].numpy()
    for row in range(2):
        real = targets[row] != b""
        np.testing.assert_allclose(attention[row][real].sum(axis=-1), 1.0, atol=1e-5)
        source_words = int(np.sum(sources[row] != b""))
        assert np.all(attention[row][real][:, source_words + 1 :] < 1e-6)  # padding gets no weight


def test_sequence_loss_smooths_labels_and_averages_over_real_tokens_only():
    from apps.translation_model import SequenceCrossentropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 6)).astype("float32")
    targets = np.array([[3, 5, 2, 0], [4, 0, 0, 0]])  # 0 is padding: 4 real tokens
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    for smoothing in (0.0, 0.1, 0.5):
        smoothed = (1 - smoothing) * np.eye(6)[targets] + smoothing / 6  # the target distribution, by hand
        per_token = -(smoothed * log_probabilities).sum(axis=-1)
        expected = per_token[targets != 0].mean()
        loss = SequenceCrossentropy(label_smoothing=smoothing)(targets, logits)
        np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    # Unsmoothed, it is the loss the app used before: Keras' own, padding ignored.
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=translation_text.PAD_ID)
    np.testing.assert_allclose(float(SequenceCrossentropy()(targets, logits)), float(keras_loss(targets, logits)), rtol=1e-5)
    clone = SequenceCrossentropy.from_config(SequenceCrossentropy(label_smoothing=0.1).get_config())
    assert clone.label_smoothing == 0.1
    for value in (1.0, -0.1, "0.1"):
        with pytest.raises(ValueError, match=re.escape(f"Received: label_smoothing={value!r}")):
            SequenceCrossentropy(label_smoothing=value)
        with pytest.raises(ValueError, match=re.escape(f"Received: label_smoothing={value!r}")):
            translation.TranslationConfig(label_smoothing=value)
    app = translation.TranslationApp()
    arguments = pipeline.build_parser(app).parse_args(["train", "--label-smoothing", "0.1"])
    assert pipeline.config_from_arguments(app, arguments).label_smoothing == 0.1
