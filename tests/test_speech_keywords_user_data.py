"""The speech keyword app on the user's data: a folder of labelled WAVs trained, predicted, listened to and
evaluated through the CLI, with the export naming the folder's labels; chosen keywords spoken by the TTS
voices; and bad folders stopped with a `DataError` naming the file before anything is written."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from apps import pipeline, speech_keywords
from apps.speech_keywords import CLIP_SAMPLES, SAMPLE_RATE
from data import sources, speech
from tests.helpers import folders, nothing_written

NAME = "speech_keywords"
SOUNDS = ("chirp", "high", "low")  # the labels of the user's folder, one synthetic sound each
CLIPS_PER_LABEL = 12


def sound(kind, rng):
    """About half a second of one kind of sound at a random place in one second, with noise."""
    length = int(rng.uniform(0.4, 0.7) * SAMPLE_RATE)
    time = np.arange(length) / SAMPLE_RATE
    pitch = rng.uniform(0.9, 1.1)
    if kind == "chirp":
        wave = np.sin(2 * np.pi * pitch * (400 * time + 2500 * time**2))  # a sweep up from 400 Hz
    else:
        wave = np.sin(2 * np.pi * pitch * {"high": 2400.0, "low": 300.0}[kind] * time)
    clip = rng.normal(0, 0.01, CLIP_SAMPLES)
    start = rng.integers(0, CLIP_SAMPLES - length)
    clip[start : start + length] += rng.uniform(0.2, 0.6) * wave * np.hanning(length)
    return np.clip(clip, -1, 1).astype(np.float32)


def write_folder(path, clips_per_label=CLIPS_PER_LABEL, seed=0):
    """The layout `--data` reads: a subfolder of WAVs per label, and background noise for `_silence_`."""
    rng = np.random.default_rng(seed)
    for kind in SOUNDS:
        (path / kind).mkdir(parents=True)
        for index in range(clips_per_label):
            speech.write_wav(path / kind / f"{kind}_{index}.wav", sound(kind, rng))
    (path / "_background_noise_").mkdir()
    speech.write_wav(path / "_background_noise_" / "noise.wav", rng.normal(0, 0.05, 20 * SAMPLE_RATE).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def trained_on_folder(tmp_path_factory):
    """The quick model trained on a user's folder, once for this module: (folder, output folders' root, report)."""
    root = tmp_path_factory.mktemp("speech_user_data")
    folder = write_folder(root / "my_sounds")
    report = pipeline.main(speech_keywords.SpeechKeywordsApp(), ["train", "--quick", "--data", str(folder), *folders(root)])
    return folder, root, report


def folder_labels(folder):
    return list(speech.load_audio_folder(folder, sources.SplitOptions())["labels"])


def test_train_on_a_folder_exports_its_labels(trained_on_folder):
    folder, root, report = trained_on_folder
    labels = folder_labels(folder)
    assert sorted(labels) == sorted([*SOUNDS, speech.SILENCE])
    assert report["model"]["labels"] == labels
    assert report["data"]["source"] and 0 <= report["model"]["accuracy"] <= 1
    assert "spokennumbers_accuracy" not in report["model"]  # the digits are not among the labels
    version_dir = root / "saved_models" / NAME / "1"
    assert speech_keywords.export_labels(version_dir) == labels
    assert (version_dir / "assets" / "labels.txt").read_text().splitlines() == labels
    signatures = tf.saved_model.load(str(version_dir)).signatures
    outputs = signatures["serving_default"](audio=tf.zeros((2, CLIP_SAMPLES)))
    assert outputs["probabilities"].shape == (2, len(labels))
    assert set(outputs["label"].numpy()) <= {label.encode() for label in labels}
    assert not (root / "runs" / NAME / "labels.txt").exists()  # building the export writes nothing of its own


def test_predict_listen_and_evaluate_on_the_folder(trained_on_folder, tmp_path, capsys):
    folder, root, _ = trained_on_folder
    app = speech_keywords.SpeechKeywordsApp()
    rng = np.random.default_rng(1)
    clip = tmp_path / "high.wav"
    speech.write_wav(clip, sound("high", rng))
    outputs = pipeline.main(app, ["predict", str(clip), *folders(root)])
    assert outputs["probabilities"].shape == (1, len(folder_labels(folder)))
    assert "clip 1:" in capsys.readouterr().out

    recording = tmp_path / "recording.wav"
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    speech.write_wav(recording, np.concatenate([gap, sound("low", rng), gap, sound("chirp", rng), gap]))
    detections = pipeline.main(app, ["listen", str(recording), "--threshold", "0", *folders(root)])
    assert {label for _, label, _ in detections} <= set(SOUNDS)  # keywords only: never _silence_
    assert "keyword(s)" in capsys.readouterr().out

    evaluated = pipeline.main(app, ["evaluate", "--quick", "--data", str(folder), *folders(root)])
    assert evaluated["model"]["labels"] == folder_labels(folder)
    other = write_folder(tmp_path / "other", clips_per_label=6, seed=2)
    (other / "_background_noise_" / "noise.wav").unlink()
    (other / "_background_noise_").rmdir()
    with pytest.raises(ValueError, match=r"Received: export labels \[.*'chirp'"):
        pipeline.main(app, ["evaluate", "--quick", "--data", str(other), *folders(root)])


def test_train_on_chosen_keywords(tmp_path):
    report = pipeline.main(speech_keywords.SpeechKeywordsApp(),
                           ["train", "--quick", "--keywords", "lights on,lights off", *folders(tmp_path)])  # fmt: skip
    expected = ["lights on", "lights off", speech.SILENCE, speech.UNKNOWN]
    assert report["model"]["labels"] == expected
    assert speech_keywords.export_labels(tmp_path / "saved_models" / NAME / "1") == expected


def test_bad_folders_stop_before_anything_is_written(tmp_path, monkeypatch):
    app = speech_keywords.SpeechKeywordsApp()
    missing = tmp_path / "missing"
    with pytest.raises(sources.DataError, match="missing: no such folder"):
        pipeline.main(app, ["train", "--quick", "--data", str(missing), *folders(tmp_path)])
    monkeypatch.setattr(sys, "argv", ["speech_keywords", "train", "--quick", "--data", str(missing), *folders(tmp_path)])
    with pytest.raises(SystemExit) as exit:
        pipeline.command_line(app)  # one line, no traceback
    assert str(exit.value.code).startswith("error: ") and str(missing) in str(exit.value.code)

    lonely = write_folder(tmp_path / "lonely")
    for index in range(1, CLIPS_PER_LABEL):
        (lonely / "low" / f"low_{index}.wav").unlink()
    with pytest.raises(sources.DataError, match="low"):
        pipeline.main(app, ["train", "--quick", "--data", str(lonely), *folders(tmp_path)])

    garbage = write_folder(tmp_path / "garbage")
    (garbage / "high" / "broken.wav").write_bytes(b"RIFF this is not audio")
    with pytest.raises(sources.DataError, match="broken.wav"):
        pipeline.main(app, ["train", "--quick", "--data", str(garbage), *folders(tmp_path)])
    assert nothing_written(tmp_path)
