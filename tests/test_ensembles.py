"""The shared ensemble pieces (`apps/ensembles.py`) against NumPy, and the one flag both apps take."""

import argparse

import keras
import numpy as np
import pytest

from apps import ensembles, sentiment, stock_forecast


def test_stack_members_puts_members_on_axis_1_for_any_rank_and_the_mean_is_numpys():
    rng = np.random.default_rng(0)
    for shape in [(5, 1), (5, 2, 3)]:
        members = [rng.normal(size=shape).astype("float32") for _ in range(3)]
        layer = ensembles.StackMembers()
        stacked = keras.ops.convert_to_numpy(layer(members))
        np.testing.assert_array_equal(stacked, np.stack(members, axis=1))
        assert layer.compute_output_shape([(None, *shape[1:])] * 3) == (None, 3, *shape[1:])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ensembles.mean_of_members(stacked)),
                                   np.mean(members, axis=0), rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "3", None])
def test_bad_sizes_raise_value_errors_naming_what_was_received(size):
    with pytest.raises(ValueError, match=f"Received: ensemble_size={size!r}"):
        ensembles.validate_size(size)


@pytest.mark.parametrize("config_class", [sentiment.SentimentConfig, stock_forecast.StockConfig])
def test_both_apps_take_the_same_flag_and_validate_it_alike(config_class):
    parser = argparse.ArgumentParser()
    ensembles.add_argument(parser)
    assert parser.parse_args(["--ensemble-size", "2"]).ensemble_size == 2
    assert config_class(ensemble_size=2).ensemble_size == 2
    with pytest.raises(ValueError, match="Received: ensemble_size=0"):
        config_class(ensemble_size=0)


def test_member_names_keep_the_single_model_names():
    assert ensembles.member_name("deep_lstm", 0, 1) == "deep_lstm"
    assert [ensembles.member_name("deep_lstm", index, 2) for index in range(2)] == ["deep_lstm_0", "deep_lstm_1"]
