"""The vanishing-gradient demo: its agreement data, its step-by-step gradient loop and a quick end-to-end run."""

import json

import keras
import numpy as np
import pytest

from benchmarks import vanishing_gradient


@pytest.mark.parametrize("distance", [0, 3, 17])
def test_agreement_data_label_distance_and_fillers(distance):
    tokens, labels = vanishing_gradient.make_agreement_data(200, distance, seed=1)
    index = vanishing_gradient.TOKEN_INDEX
    filler_tokens = {index[word] for word in vanishing_gradient.FILLERS}
    assert set(np.unique(labels)) == {0.0, 1.0}
    for sentence, label in zip(tokens, labels):
        words = [vanishing_gradient.VOCABULARY[token] for token in sentence if token != 0]
        subject = words.index("cat") if "cat" in words else words.index("cats")
        assert words[subject] == vanishing_gradient.SUBJECTS[int(label)]
        assert words[subject + 1 : subject + 3] == [",", "which"] and words[-1] == ","
        fillers = words[subject + 3 : -1]
        assert len(fillers) == distance
        assert all(index[word] in filler_tokens for word in fillers)
        # The number is said once, by the subject, and nowhere else in the sentence.
        assert sum(word in vanishing_gradient.SUBJECTS for word in words) == 1
        # Padding only at the end, so the mask is a prefix of ones.
        assert np.all(sentence[: len(words)] != 0) and np.all(sentence[len(words) :] == 0)
    assert not filler_tokens & {index[word] for word in vanishing_gradient.SUBJECTS + (",", "which", "the")}


def test_agreement_data_depends_on_the_seed_only():
    first = vanishing_gradient.make_agreement_data(50, 5, seed=[0, 5, 0])
    again = vanishing_gradient.make_agreement_data(50, 5, seed=[0, 5, 0])
    other = vanishing_gradient.make_agreement_data(50, 5, seed=[0, 5, 1])
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])


def test_agreement_data_rejects_bad_distance():
    with pytest.raises(ValueError, match="Received: distance=-1"):
        vanishing_gradient.make_agreement_data(10, -1, seed=0)


@pytest.mark.parametrize("cell", vanishing_gradient.CELLS)
def test_stepwise_loop_reproduces_the_model(cell):
    keras.utils.set_random_seed(0)
    config = vanishing_gradient.Config(units=8, embedding_dim=4)
    model = vanishing_gradient.build_model(cell, config)
    tokens, labels = vanishing_gradient.make_agreement_data(6, 4, seed=0)  # mixed lengths: the mask matters
    norms, probabilities = vanishing_gradient.stepwise_gradient_norms(model, tokens, labels)
    np.testing.assert_allclose(probabilities, model.predict(tokens, verbose=0)[:, 0], atol=1e-5)
    assert norms.shape == (tokens.shape[1],) and np.all(np.isfinite(norms)) and np.all(norms > 0)


def recurrent_layer(cell, **config_overrides):
    keras.utils.set_random_seed(0)
    config = vanishing_gradient.Config(units=64, embedding_dim=4, **config_overrides)
    return vanishing_gradient.build_model(cell, config).get_layer("recurrent")


def test_gaussian_setting_draws_the_recurrent_matrix_at_its_gain():
    gain = vanishing_gradient.SETTINGS["gaussian_0.5"]["recurrent_gain"]
    matrix = recurrent_layer("SimpleRNN", recurrent_gain=gain).cell.recurrent_kernel.numpy()
    assert abs(matrix.std() * np.sqrt(64) - gain) < 0.03  # 4096 draws: the std is within 1% of gain / sqrt(64)
    assert abs(np.abs(np.linalg.eigvals(matrix)).max() - gain) < 0.1  # circular law: spectral radius ≈ gain
    orthogonal = recurrent_layer("SimpleRNN").cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(orthogonal @ orthogonal.T, np.eye(64), atol=1e-5)


def test_cells_are_the_notes_three_and_the_gru_with_an_update_gate_bias():
    assert recurrent_layer("GRU bu=-3").cell.notation_weights()["bu"].tolist() == [-3.0] * 64
    assert recurrent_layer("GRU").cell.notation_weights()["bu"].tolist() == [0.0] * 64
    assert [type(recurrent_layer(cell)).__name__ for cell in ("SimpleRNN", "LSTM")] == ["SimpleRNN", "LSTM"]
    with pytest.raises(ValueError, match=r"Received: cell='RNN'"):
        recurrent_layer("RNN")


def test_quick_run_writes_the_report_of_each_setting(tmp_path):
    vanishing_gradient.main(["--quick", "--seed", "0", "--output-dir", str(tmp_path)])
    for setting, overrides in vanishing_gradient.SETTINGS.items():
        folder = tmp_path / setting
        for name in ("accuracy_vs_distance.png", "gradient_norm_vs_time.png", "results.json", "results.md"):
            assert (folder / name).stat().st_size > 0
        results = json.loads((folder / "results.json").read_text())
        assert results["config"]["recurrent_gain"] == overrides.get("recurrent_gain")
        distances = results["config"]["distances"]
        for cell in vanishing_gradient.CELLS:
            assert sorted(results["accuracy"][cell]) == sorted(str(distance) for distance in distances)
            for scores in results["accuracy"][cell].values():
                assert 0.0 <= scores["test_accuracy"] <= 1.0
            for stage in ("initial", "trained"):
                gradients = results["gradients"][cell][stage]
                assert len(gradients["norms"]) == results["config"]["gradient_distance"] + 5
                assert np.all(np.isfinite(gradients["norms"])) and np.isfinite(gradients["first_over_last"])
