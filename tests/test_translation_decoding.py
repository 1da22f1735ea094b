"""The decoding search: one beam search ranks every length penalty as `translate` would, the choice is the best
validation BLEU (the narrower beam on a tie), bad grids are refused, and a quick training exports its choice."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps import pipeline, translation
from apps.translation_model import Translator
from tests.helpers import folders
from tests.test_translation import tiny_translator


def test_one_beam_search_ranks_each_length_penalty_as_translate_does():
    model = tiny_translator(max_output_tokens=6)
    texts = tf.constant(["the house", "dog", "the the the dog house", ""])
    alphas = [0.0, 0.6, 3.0]
    ranked = model.translate_with_length_penalties(texts, 3, alphas)
    for alpha, translations in zip(alphas, ranked):
        model.length_penalty = alpha
        np.testing.assert_array_equal(translations.numpy(), model.translate(texts, beam_width=3)["translation"].numpy())


def test_choose_decoding_takes_the_best_bleu_then_the_narrower_beam():
    scores = {(1, 0.0): {"bleu": 10.0}, (2, 0.0): {"bleu": 12.5}, (2, 1.0): {"bleu": 13.0}, (8, 0.6): {"bleu": 12.9}}
    assert translation.choose_decoding(scores) == (2, 1.0)
    scores[8, 0.6]["bleu"] = 14.0
    assert translation.choose_decoding(scores) == (8, 0.6)
    scores[4, 1.4] = {"bleu": 14.0}  # a tie: the narrower beam decodes faster
    assert translation.choose_decoding(scores) == (4, 1.4)
    with pytest.raises(ValueError, match="Received"):
        translation.choose_decoding({})


GOOD, BAD = "el pan de la casa es bueno", "nada"


class FakeTranslator:
    """Writes the reference for every source only at beam 4 and alpha 1.0, a wrong word otherwise."""

    beam_width, length_penalty = 2, 0.6

    def translate(self, text, beam_width=1):
        return {"translation": tf.fill(tf.shape(text), BAD)}

    def translate_with_length_penalties(self, text, beam_width, length_penalties):
        return [tf.fill(tf.shape(text), GOOD if (beam_width, alpha) == (4, 1.0) else BAD) for alpha in length_penalties]


def test_calibrate_keeps_the_best_validation_setting_in_the_model():
    config = translation.TranslationConfig(beam_widths=(1, 2, 4), length_penalties=(0.0, 1.0, 1.4))
    data = {"validation": (["a b", "c"] * 3, [GOOD] * 6)}
    model = FakeTranslator()
    translation.TranslationApp().calibrate(config, data, model)
    assert (model.beam_width, model.length_penalty) == (4, 1.0)
    search = data["decoding_search"]
    assert (search["beam_width"], search["length_penalty"]) == (4, 1.0)
    settings = [(row["beam_width"], row["length_penalty"]) for row in search["candidates"]]
    assert settings == [(1, 0.0), (2, 0.0), (2, 1.0), (2, 1.4), (4, 0.0), (4, 1.0), (4, 1.4)]  # greedy once
    assert "| 4 | 1 | 100.00 |" in translation.decoding_table(search, 6)
    model = FakeTranslator()
    translation.TranslationApp().calibrate(config.replace(decoding_search=False), data, model)
    assert (model.beam_width, model.length_penalty) == (2, 0.6)  # left as built


@pytest.mark.parametrize("changes", [
    {"beam_widths": ()}, {"beam_widths": (2, 0)}, {"beam_widths": (2.5,)}, {"beam_widths": (True,)},
    {"length_penalties": ()}, {"length_penalties": (0.6, -0.5)}, {"length_penalties": ("1",)},
    {"length_penalties": (float("nan"),)},
])  # fmt: skip
def test_bad_decoding_grids_are_refused(changes):
    with pytest.raises(ValueError, match="Received"):
        translation.TranslationConfig(**changes)


def test_translator_keeps_its_beam_width_through_its_config():
    model = tiny_translator()
    model.beam_width, model.length_penalty = 3, 1.4
    clone = Translator.from_config(model.get_config())
    assert (clone.beam_width, clone.length_penalty) == (3, 1.4)
    with pytest.raises(ValueError, match="Received: beam_width=0"):
        Translator(["a"], ["[START]", "[END]"], ["[START]", "[END]"], beam_width=0)


def test_command_line_turns_the_search_on_and_off():
    parser = pipeline.build_parser(translation.TranslationApp())
    config = pipeline.config_from_arguments(translation.TranslationApp(), parser.parse_args(["train"]))
    assert config.decoding_search and config.beam_widths == (1, 2, 4, 8)
    arguments = parser.parse_args(["train", "--quick", "--decoding-search", "--beam-widths", "1", "3"])
    config = pipeline.config_from_arguments(translation.TranslationApp(), arguments)
    assert config.decoding_search and config.beam_widths == (1, 3)
    arguments = parser.parse_args(["train", "--no-decoding-search", "--length-penalties", "0", "2"])
    config = pipeline.config_from_arguments(translation.TranslationApp(), arguments)
    assert not config.decoding_search and config.length_penalties == (0.0, 2.0)
    config = pipeline.config_from_arguments(translation.TranslationApp(), parser.parse_args(["train", "--demo"]))
    assert not config.decoding_search  # the demo stays fast


@pytest.mark.slow
def test_quick_training_exports_the_setting_chosen_on_validation(tmp_path):
    arguments = ["train", "--quick", "--decoding-search", "--beam-widths", "1", "3", "--length-penalties", "0", "3"]
    report = pipeline.main(translation.TranslationApp(), [*arguments, *folders(tmp_path)])
    metrics = report["model"]
    candidates = {(row["beam_width"], row["length_penalty"]): row for row in metrics["decoding_candidates"]}
    assert set(candidates) == {(1, 0.0), (3, 0.0), (3, 3.0)}
    chosen = (metrics["beam_width"], metrics["length_penalty"])
    assert chosen == translation.choose_decoding(candidates) and metrics["decoding_chosen_on_validation"]
    # The export decodes validation as the search's chosen candidate did.
    assert metrics["validation_bleu"] == pytest.approx(candidates[chosen]["bleu"])
    assert (tmp_path / "reports" / "translation" / "decoding_search.md").exists()
    assert json.loads((tmp_path / "reports" / "translation" / "metrics.json").read_text())["model"]["beam_width"] == chosen[0]
    model = keras.models.load_model(tmp_path / "runs" / "translation" / "model.keras")
    assert (model.beam_width, model.length_penalty) == chosen
    loaded = tf.saved_model.load(str(tmp_path / "saved_models" / "translation" / "1"))
    texts = tf.constant(["The man went to Moab.", "And God said: let there be light."])
    np.testing.assert_array_equal(
        loaded.signatures["serving_default"](text=texts)["translation"].numpy(),
        model.translate(texts, beam_width=chosen[0])["translation"].numpy(),
    )
