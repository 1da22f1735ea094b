"""Keyword spotting on long audio: `listen`'s rule against a plain reimplementation, the batched windows against
the stream, false accepts, false rejects, the DET curve and calibration on constructed cases, the long negative
audio (keyword-free, split by voice), and calibrated thresholds through training, export and `listen`."""

import numpy as np
import pytest
import tensorflow as tf

from apps import keyword_spotting, pipeline, speech_keywords
from apps.classes import ClassProbabilities
from data import speech
from data.speech import engines, negatives, vocabulary
from tests.helpers import folders

LABELS = ["yes", "no", "_silence_", "_unknown_"]
needs_engines = pytest.mark.skipif(bool(engines.missing_packages()), reason="the TTS or recording packages are not installed")


def reference_detections(centres, probabilities, labels, thresholds):
    """`listen`'s rule as it was first written, window by window."""
    found = []
    for centre, row in zip(centres, probabilities):
        best = int(np.argmax(row))
        label = labels[best]
        if label in ("_silence_", "_unknown_") or row[best] < thresholds[label]:
            continue
        if found and centre - found[-1][0] < 1.0 - 1e-6:
            if row[best] > found[-1][2]:
                found[-1] = (centre, label, float(row[best]))
            continue
        found.append((centre, label, float(row[best])))
    return found


def random_windows(rng, count, classes=len(LABELS)):
    logits = rng.normal(0, 3, (count, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return 0.5 + 0.2 * np.arange(count), probabilities


def test_detections_follow_listens_rule_with_per_keyword_thresholds():
    rng = np.random.default_rng(0)
    centres, probabilities = random_windows(rng, 400)
    for thresholds in ({"yes": 0.6, "no": 0.9}, {"yes": 0.3, "no": 0.3}):
        expected = reference_detections(centres, probabilities, LABELS, thresholds)
        assert keyword_spotting.detections(centres, probabilities, LABELS, thresholds) == expected
        assert expected  # the case is not empty
    one = keyword_spotting.detections(centres, probabilities, LABELS, 0.6)
    assert one == reference_detections(centres, probabilities, LABELS, {"yes": 0.6, "no": 0.6})
    with pytest.raises(ValueError, match=r"labels the model does not have: \['maybe'\]"):
        keyword_spotting.detections(centres, probabilities, LABELS, {"maybe": 0.5})
    with pytest.raises(ValueError, match="from 0 to 1"):
        keyword_spotting.detections(centres, probabilities, LABELS, 1.5)


def test_window_grid_is_listens():
    # 2.05 s of audio + 1 s of silence = 30 whole chunks: windows start at 0, 0.2, ... 2.0 s.
    starts = keyword_spotting.window_starts(int(2.05 * 16000), 200)
    np.testing.assert_array_equal(starts, np.arange(0, 2.01, 0.2).round(1) * 16000)
    with pytest.raises(ValueError, match="multiple of 100"):
        keyword_spotting.window_starts(16000, 150)


def test_false_accepts_count_merged_detections_per_hour_and_kind():
    rng = np.random.default_rng(1)
    scored = []
    for index, kind in enumerate(["speech", "speech in pink noise at 5 dB SNR", "music"]):
        centres, probabilities = random_windows(rng, 300)
        scored.append((f"f{index}", kind, 0.5, centres, probabilities))
    count, hours, by_kind, by_label = keyword_spotting.false_accepts(scored, LABELS, 0.7)
    expected = [reference_detections(c, p, LABELS, {"yes": 0.7, "no": 0.7}) for _, _, _, c, p in scored]
    assert count == sum(map(len, expected)) and hours == 1.5
    assert by_kind["speech in noise"] == (len(expected[1]), 0.5) and by_kind["music"] == (len(expected[2]), 0.5)
    assert sum(by_label.values()) == count


def test_calibration_keeps_validation_false_accepts_within_the_target():
    rng = np.random.default_rng(2)
    centres, probabilities = random_windows(rng, 2000)
    scored = [("a", "speech", 1.0, centres, probabilities)]
    thresholds = keyword_spotting.calibrate(scored, LABELS, target_per_hour=0.5)
    assert keyword_spotting.false_accepts(scored, LABELS, thresholds)[0] == 0  # 1 h at 0.5/h allows none
    for label in ("yes", "no"):  # just above the keyword's highest probability on the negatives
        rows = probabilities.argmax(axis=1) == LABELS.index(label)
        assert thresholds[label] == pytest.approx(max(0.5, probabilities[rows, LABELS.index(label)].max()), abs=1e-6)
    # 8 h at 0.5 per hour allows 4 false accepts, 2 per keyword.
    many = [("a", "speech", 8.0, centres, probabilities)]
    assert keyword_spotting.false_accepts(many, LABELS, keyword_spotting.calibrate(many, LABELS))[0] <= 4
    # Never below the floor, even for a keyword the negatives never gave.
    quiet = np.tile([[0.01, 0.01, 0.97, 0.01]], (50, 1))
    assert keyword_spotting.calibrate([("q", "noise", 1.0, centres[:50], quiet)], LABELS) == {"yes": 0.5, "no": 0.5}


def test_false_rejects_and_det_curve_on_placed_clips():
    # Two placed clips, 11 windows each around the clip's centre: the first is found by a "yes" window 0.1 s
    # from its centre at p 0.8; the second only by a window 0.7 s away (too far), at p 0.95.
    offsets = np.tile(np.linspace(-1, 1, 11), (2, 1))
    scores = np.tile([0.0, 0.0, 1.0, 0.0], (2, 11, 1))
    scores[0, 5] = [0.8, 0.1, 0.05, 0.05]
    scores[1, 1] = [0.95, 0.0, 0.05, 0.0]
    placed = (scores, offsets + np.array([[0.1], [0.1]]), np.array([0, 0]))
    missed, labels = keyword_spotting.false_rejects(placed, LABELS, 0.7)
    assert missed.tolist() == [False, True] and labels.tolist() == [0, 0]
    assert keyword_spotting.false_rejects(placed, LABELS, 0.9)[0].tolist() == [True, True]
    negative = [("n", "speech", 2.0, np.array([0.5, 3.0]), np.array([[0.85, 0.05, 0.05, 0.05], [0.1, 0.1, 0.1, 0.7]]))]
    curve = keyword_spotting.det_curve(negative, placed, LABELS, sweep=[0.7, 0.9])
    assert curve == [(0.7, 0.5, 0.5), (0.9, 0.0, 1.0)]


def test_placed_keywords_score_the_windows_around_each_clip():
    """The placed windows are the clip's own samples where they overlap it, the background elsewhere."""
    audio = np.zeros((3, 16000), np.float32)
    audio[:, 4000:12000] = 1.0  # a "word" in the middle of each clip
    labels = np.array([0, 3, 1])  # yes, _unknown_ (not placed), no
    seen = []

    def probabilities_of(clips):
        seen.append(clips.copy())
        return np.tile([0.1, 0.1, 0.7, 0.1], (len(clips), 1))

    scores, offsets, clip_labels = keyword_spotting.score_placed_keywords(
        probabilities_of, audio, labels, LABELS, np.zeros((5, 16000), np.float32), np.random.default_rng(0)
    )
    assert scores.shape == (2, 11, 4) and clip_labels.tolist() == [0, 1]
    windows = np.concatenate(seen).reshape(2, 11, 16000)
    for row in range(2):
        assert np.all(np.diff(offsets[row]) == pytest.approx(0.2)) and 0.0 <= offsets[row, 5] < 0.2
        centre_window = windows[row, 5]  # up to 0.2 s late: still holds the whole word (0.25-0.75 s of the clip)
        assert centre_window.sum() == pytest.approx(8000)


def test_keyword_free_verses_say_no_keyword_nor_a_homophone():
    for keywords in (vocabulary.KEYWORDS, ["lights on", "music"]):
        forbidden = vocabulary.sounds_like_keywords(keywords)
        verses = negatives.keyword_free_verses("validation", keywords)
        assert len(verses) > 500
        assert not any(forbidden & set(negatives.verse_words(verse)) for verse in verses)
    assert {"to", "two", "for", "oh", "know"} <= vocabulary.sounds_like_keywords(vocabulary.KEYWORDS)
    assert not set(negatives.keyword_free_verses("test")) & set(negatives.keyword_free_verses("validation"))


def test_music_and_noise_are_long_bounded_audio():
    rng = np.random.default_rng(0)
    for audio in (negatives.music(5 * 16000, rng), negatives.changing_noise(5 * 16000, rng)):
        assert audio.shape == (80000,) and audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
        assert np.abs(audio).max() > 0


@needs_engines
def test_long_negatives_are_built_once_from_the_splits_own_voices(tmp_path):
    tiny = negatives.NegativesConfig(speech_files=1, speech_in_noise_files=1, babble_files=1, noise_files=1,
                                     music_files=1, file_minutes=0.1)  # fmt: skip
    folder = negatives.build_long_negatives("validation", config=tiny, cache_dir=tmp_path)
    assert negatives.build_long_negatives("validation", config=tiny, cache_dir=tmp_path) == folder  # cached
    recordings, manifest = negatives.load_long_negatives("validation", config=tiny, cache_dir=tmp_path)
    assert [kind.split(" in ")[0] for _, kind, _ in recordings] == ["speech", "speech", "babble", "noise", "music"]
    assert all(len(audio) == 96000 for _, _, audio in recordings)
    test_voices = negatives.split_voices("test")
    used = {voice for entry in manifest["files"] for voice in entry["voices"]}
    assert used and used <= set(sum(negatives.split_voices("validation").values(), []))
    assert not used & set(sum(test_voices.values(), []))
    with pytest.raises(ValueError, match="test split only"):
        negatives.load_long_negatives("validation", config=tiny, cache_dir=tmp_path, human=True)


def test_head_thresholds_are_checked_and_kept():
    head = ClassProbabilities(LABELS, thresholds={"yes": 0.8})
    assert ClassProbabilities.from_config(head.get_config()).thresholds == {"yes": 0.8}
    with pytest.raises(ValueError, match=r"unknown labels \['maybe'\]"):
        head.set_thresholds({"maybe": 0.5})
    with pytest.raises(ValueError, match=r"out of range \{'no': 2\}"):
        head.set_thresholds({"no": 2})


@needs_engines
def test_calibrated_thresholds_go_through_the_export_to_listen(trained_app, tmp_path, monkeypatch):
    """Calibration on a short validation audio, then the export's `labels` signature, `listen`'s default and
    the long-audio evaluation all use the same thresholds, and the validation audio gets no false accept."""
    _, trained_path, _ = trained_app("speech_keywords")
    app = speech_keywords.SpeechKeywordsApp()
    config = pipeline.config_from_arguments(app, pipeline.build_parser(app).parse_args(
        ["train", "--quick", *folders(tmp_path)]))  # fmt: skip
    config.calibrate, config.long_negative_minutes = True, 0.1
    data = app.load_data(config)
    import keras

    model = keras.saving.load_model(trained_path / "runs" / "speech_keywords" / "model.keras")
    app.calibrate(config, data, model)
    thresholds = model.get_layer("probabilities").thresholds
    assert set(thresholds) == set(speech.KEYWORDS) and min(thresholds.values()) >= keyword_spotting.MIN_THRESHOLD
    recordings, _ = speech_keywords.negatives_for(config, data, "validation")
    scored = keyword_spotting.score_negatives(speech_keywords.model_probabilities(model), recordings)
    assert keyword_spotting.false_accepts(scored, list(data["labels"]), thresholds)[0] == 0
    version_dir = pipeline.export(app, model, config, data)
    signatures = tf.saved_model.load(str(version_dir)).signatures
    exported = speech_keywords.signature_thresholds(signatures, list(data["labels"]))
    assert exported == pytest.approx(thresholds)
    assert signatures["labels"]()["thresholds"].numpy()[-2:].tolist() == [1.0, 1.0]  # silence, unknown
    used = {}
    monkeypatch.setattr(speech_keywords, "detect", lambda stream, audio, labels, threshold, hop: used.update(t=threshold) or [])
    recording = tmp_path / "quiet.wav"
    speech.write_wav(recording, np.zeros(16000, np.float32))
    pipeline.main(app, ["listen", str(recording), "--quick", *folders(tmp_path)])
    assert used["t"] == pytest.approx(thresholds)
    pipeline.main(app, ["listen", str(recording), "--threshold", "0.3", "--quick", *folders(tmp_path)])
    assert used["t"] == 0.3
    with pytest.raises(ValueError, match="from 0 to 1. Received: 3.0"):
        pipeline.main(app, ["listen", str(recording), "--threshold", "3", "--quick", *folders(tmp_path)])


def test_a_recording_is_keyword_free_only_when_its_words_are_known_and_say_none():
    from data.speech import human

    def recording(transcript):
        return human.Recording("s", "p.wav", "someone", "evaluation", transcript, None)

    assert human.free_of(recording("Please hold."), vocabulary.KEYWORDS)
    for transcript in ("Press 1.", "Go ahead.", "Thank you for calling.", "Oh.", None):  # a numeral, "go", "for", "oh"
        assert not human.free_of(recording(transcript), vocabulary.KEYWORDS), transcript
    assert human.free_of(recording("Go ahead."), ["lights on"]) and not human.free_of(recording("Turn it on."), ["lights on"])
