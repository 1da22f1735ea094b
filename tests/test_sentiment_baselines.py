"""The sentiment app's NBSVM baseline, on data small enough to check by hand."""

import numpy as np

from apps.sentiment import NBSVM

TEXTS = ["good fun", "good film", "bad film", "bad dull"]
LABELS = np.array([1, 1, 0, 0])


def test_log_count_ratio_by_hand():
    model = NBSVM(beta=1.0).fit(TEXTS, LABELS)
    ratio = dict(zip(model.vectorizer.get_feature_names_out(), model.ratio))
    # 9 features (5 unigrams, 4 bigrams), binary counts + 1. Positive: good 2+1, film 1+1, bad 0+1, ...,
    # in all 6 + 9 = 15; negative: good 0+1, film 1+1, "bad dull" 1+1, ..., in all 6 + 9 = 15.
    assert len(ratio) == 9
    assert np.isclose(ratio["good"], np.log((3 / 15) / (1 / 15)))
    assert np.isclose(ratio["film"], 0.0)
    assert np.isclose(ratio["bad dull"], np.log((1 / 15) / (2 / 15)))


def test_separates_the_training_snippets_and_labels_new_ones_by_their_words():
    model = NBSVM(beta=1.0).fit(TEXTS, LABELS)
    assert model.predict(TEXTS).tolist() == [1, 1, 0, 0]
    assert model.predict(["a good one", "so dull"]).tolist() == [1, 0]


def test_interpolation_moves_weights_towards_their_mean_magnitude():
    plain, interpolated = NBSVM(beta=1.0).fit(TEXTS, LABELS), NBSVM(beta=0.25).fit(TEXTS, LABELS)
    expected = 0.75 * np.mean(np.abs(plain.weights)) + 0.25 * plain.weights
    np.testing.assert_allclose(interpolated.weights, expected, rtol=1e-3)  # two SVM fits, each to a tolerance


def test_settings_are_chosen_on_validation():
    validation = (["good", "bad"], np.array([1, 0]))
    model = NBSVM.chosen_on_validation((TEXTS, LABELS), validation)
    assert dict(C=model.C, beta=model.beta) in NBSVM.GRID
    assert np.mean(model.predict(validation[0]) == validation[1]) == 1.0
