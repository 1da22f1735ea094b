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

    scores, offsets, clip_labels, history = keyword_spotting.score_placed_keywords(
        probabilities_of, audio, labels, LABELS, np.zeros((5, 16000), np.float32), np.random.default_rng(0)
    )
    assert scores.shape == (2, 11, 4) and clip_labels.tolist() == [0, 1] and history == 0
    windows = np.concatenate(seen).reshape(2, 11, 16000)
    for row in range(2):
        assert np.all(np.diff(offsets[row]) == pytest.approx(0.2)) and 0.0 <= offsets[row, 5] < 0.2
        centre_window = windows[row, 5]  # up to 0.2 s late: still holds the whole word (0.25-0.75 s of the clip)
        assert centre_window.sum() == pytest.approx(8000)


def reference_smooth(probabilities, smoothing):
    """The causal moving mean from its definition: window t is the mean of windows max(0, t - k + 1) .. t."""
    return np.array([probabilities[max(0, index - smoothing + 1) : index + 1].mean(axis=0)
                     for index in range(len(probabilities))])  # fmt: skip


def test_smoothing_is_a_causal_moving_mean_and_one_window_is_the_identity():
    rng = np.random.default_rng(3)
    _, probabilities = random_windows(rng, 50)
    for smoothing in (2, 3, 4, 7, 60):  # 60: longer than the recording, every window averages all before it
        np.testing.assert_allclose(keyword_spotting.smooth(probabilities, smoothing),
                                   reference_smooth(probabilities, smoothing), rtol=1e-12)  # fmt: skip
    assert keyword_spotting.smooth(probabilities, 1) is probabilities
    # Rows of placed clips: smoothed along the windows, and the history windows only feed the mean.
    rows = np.stack([probabilities[:20], probabilities[20:40]])
    smoothed = keyword_spotting.smooth(rows, 3, history=2)
    assert smoothed.shape == (2, 18, 4)
    np.testing.assert_allclose(smoothed[1], reference_smooth(probabilities[20:40], 3)[2:], rtol=1e-12)
    # Causal: a window's mean does not change when later windows do.
    changed = probabilities.copy()
    changed[30:] = rng.permutation(changed[30:])
    np.testing.assert_array_equal(keyword_spotting.smooth(changed, 4)[:30], keyword_spotting.smooth(probabilities, 4)[:30])
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=rf"`smoothing` must be a positive integer. Received: smoothing={bad!r}"):
            keyword_spotting.smooth(probabilities, bad)


def test_detections_apply_the_rule_to_the_averaged_windows():
    rng = np.random.default_rng(4)
    centres, probabilities = random_windows(rng, 400)
    thresholds = {"yes": 0.5, "no": 0.55}
    assert keyword_spotting.detections(centres, probabilities, LABELS, thresholds, 1) == reference_detections(
        centres, probabilities, LABELS, thresholds)  # fmt: skip
    for smoothing in (2, 3):
        expected = reference_detections(centres, reference_smooth(probabilities, smoothing), LABELS, thresholds)
        found = keyword_spotting.detections(centres, probabilities, LABELS, thresholds, smoothing)
        assert [(c, label) for c, label, _ in found] == [(c, label) for c, label, _ in expected] and expected
        np.testing.assert_allclose([p for _, _, p in found], [p for _, _, p in expected], rtol=1e-12)
    # A lone confident window is a detection alone, not averaged with the silence before it; a word held over
    # three windows is found either way.
    silence, word = [0.0, 0.0, 1.0, 0.0], [0.8, 0.0, 0.2, 0.0]
    crafted = np.array([silence] * 5 + [[0.9, 0.0, 0.1, 0.0]] + [silence] * 5 + [word] * 3 + [silence] * 5)
    times = 0.5 + 0.2 * np.arange(len(crafted))
    assert [label for _, label, _ in keyword_spotting.detections(times, crafted, LABELS, 0.7)] == ["yes", "yes"]
    assert [(round(c, 1), label) for c, label, _ in keyword_spotting.detections(times, crafted, LABELS, 0.7, 3)] == [
        (3.1, "yes")]  # the third window of the held word, where its mean first has three windows of it


def test_false_accepts_rejects_and_det_curve_use_the_smoothing():
    rng = np.random.default_rng(5)
    centres, probabilities = random_windows(rng, 300)
    scored = [("a", "speech", 0.5, centres, probabilities)]
    assert keyword_spotting.false_accepts(scored, LABELS, 0.6, 3)[0] == len(
        reference_detections(centres, reference_smooth(probabilities, 3), LABELS, {"yes": 0.6, "no": 0.6}))  # fmt: skip
    offsets = np.tile(0.2 * np.arange(-5, 6), (2, 1))
    scores = np.tile([0.0, 0.0, 1.0, 0.0], (2, 13, 1))  # 2 history windows, then 11 that decide
    scores[:, 7:9] = [0.9, 0.0, 0.1, 0.0]  # the word in the two windows before the clip's centre (offsets -0.4, -0.2)
    scores[1, 0:2] = [0.9, 0.0, 0.1, 0.0]  # clip 2: history windows that say "yes" (a word 1.2 s earlier)
    placed = (scores, offsets, np.array([0, 0]), 2)
    assert keyword_spotting.false_rejects(placed, LABELS, 0.7, 1)[0].tolist() == [False, False]
    # Averaged over 3: 0.6 at the word's second window, under 0.7; with 2 of history clip 2's first window
    # averages its history (0.6), which the rule would count were the history windows not excluded.
    assert keyword_spotting.false_rejects(placed, LABELS, 0.7, 3)[0].tolist() == [True, True]
    assert keyword_spotting.false_rejects(placed, LABELS, 0.55, 3)[0].tolist() == [False, False]
    with pytest.raises(ValueError, match="2 window\\(s\\) of history cannot be smoothed over more than 3"):
        keyword_spotting.false_rejects(placed, LABELS, 0.7, 4)
    curve = keyword_spotting.det_curve(scored, placed, LABELS, sweep=[0.55, 0.7], smoothing=3)
    assert [rejects for _, _, rejects in curve] == [0.0, 1.0]
    # The history decides through the 1 s rule: "no" in the 3 windows before the first deciding one makes that
    # window (offset -1.0) a detection at 0.75 with k = 4, which hides the "yes" found 0.4 s before the clip's
    # centre (0.6); without the history the first windows average only themselves, and "yes" is found.
    hidden = np.tile([0.0, 0.0, 1.0, 0.0], (1, 3 + 11, 1))
    hidden[0, :3] = [0.0, 1.0, 0.0, 0.0]
    hidden[0, 3 + 1 : 3 + 4] = [0.8, 0.0, 0.2, 0.0]
    with_history = (hidden, offsets[:1], np.array([0]), 3)
    assert keyword_spotting.false_rejects(with_history, LABELS, 0.5, 4)[0].tolist() == [True]
    assert keyword_spotting.detections(offsets[0], hidden[0, 3:], LABELS, 0.5, 4) == [
        (pytest.approx(-0.4), "yes", pytest.approx(0.6))]  # the same windows with no history before them


def test_placed_keywords_history_windows_continue_the_same_long_audio():
    """With `history`, the placed windows are the same as without, preceded by the windows `listen` saw before
    them on the same audio; the random draws do not change."""
    rng = np.random.default_rng(6)
    audio = rng.uniform(-1, 1, (3, 16000)).astype(np.float32)
    labels = np.array([0, 3, 1])  # yes, _unknown_ (not placed), no
    background = rng.uniform(-1, 1, (5, 16000)).astype(np.float32)

    def placed_windows(history, clips=audio, clip_labels=labels):
        seen = []

        def probabilities_of(clips):
            seen.append(clips.copy())
            return np.tile([0.1, 0.1, 0.7, 0.1], (len(clips), 1))

        result = keyword_spotting.score_placed_keywords(probabilities_of, clips, clip_labels, LABELS, background,
                                                        np.random.default_rng(0), history=history)  # fmt: skip
        return result, np.concatenate(seen).reshape(len(result[0]), -1, 16000)

    (scores, offsets, _, history), plain = placed_windows(0)
    assert history == 0
    for more in (3, 8):  # 8 windows of history need background before the two seconds
        clips, labelled = (audio, labels) if more == 3 else (audio[:1], labels[:1])  # one clip: same draws
        (scores, more_offsets, _, history), windows = placed_windows(more, clips, labelled)
        placed = len(scores)  # the keyword clips: 2, or the first alone
        assert history == more and scores.shape == (placed, 11 + more, 4) and placed == (2 if more == 3 else 1)
        np.testing.assert_array_equal(windows[:, more:], plain[:placed])
        np.testing.assert_allclose(more_offsets, offsets[:placed])
        hop = 3200
        np.testing.assert_array_equal(windows[:, 1:, : 16000 - hop], windows[:, :-1, hop:])  # one stretch of audio
    with pytest.raises(ValueError, match="`history` must be an integer >= 0. Received: history=-1"):
        placed_windows(-1)


def lone_spikes_and_held_words(kind="speech"):
    """Negatives where one window alone says a keyword at 0.95, and keyword clips said over two windows at 0.8.
    k = 1: the threshold must pass 0.95, every clip is missed. k = 2: the lone window averages under silence,
    the thresholds fall to the floor 0.5 and the word's second window (0.8) finds each clip. k = 3: the word's
    mean 0.53 still does (a tie: the smaller k wins). k = 4: 0.4, under silence's 0.55, finds none."""
    silence, word = [0.0, 0.0, 1.0, 0.0], [0.8, 0.0, 0.2, 0.0]
    spikes = [[0.95, 0.0, 0.05, 0.0], [0.0, 0.95, 0.05, 0.0]]  # "yes", then "no"
    negatives = np.array(([silence] * 10 + spikes[:1] + [silence] * 10 + spikes[1:]) * 10 + [silence] * 10)
    scored = [("n", kind, 1.0, 0.5 + 0.2 * np.arange(len(negatives)), negatives)]
    scores = np.tile(silence, (4, 3 + 11, 1))  # 3 windows of history
    scores[:, 3 + 5 : 3 + 7] = word  # the clip's centre window and the one after: "yes"
    scores[1::2, 3 + 5 : 3 + 7] = np.array(word)[[1, 0, 2, 3]]  # "no" for the clips of "no"
    placed = (scores, np.tile(0.2 * np.arange(-5, 6), (4, 1)), np.array([0, 1, 0, 1]), 3)
    return scored, placed


def test_calibration_chooses_the_smoothing_with_the_fewest_validation_false_rejects():
    """`lone_spikes_and_held_words`: k = 2 and 3 find every clip at no false accept, k = 2 is chosen."""
    scored, placed = lone_spikes_and_held_words()
    rows, chosen = keyword_spotting.calibrate_smoothing(scored, placed, LABELS, (1, 2, 3, 4))
    assert [row["false_reject_rate"] for row in rows] == [1.0, 0.0, 0.0, 1.0]
    assert [row["false_accepts"] for row in rows] == [0, 0, 0, 0]
    assert min(rows[0]["thresholds"].values()) > 0.95 and rows[1]["thresholds"] == {"yes": 0.5, "no": 0.5}
    assert chosen is rows[1] and chosen["smoothing"] == 2 and chosen["hours"] == 1.0
    assert keyword_spotting.calibrate_smoothing(scored, placed, LABELS, (4, 3, 1))[1]["smoothing"] == 3
    with pytest.raises(ValueError, match="at least one"):
        keyword_spotting.calibrate_smoothing(scored, placed, LABELS, ())


def test_smoothing_windows_config_is_checked():
    assert speech_keywords.SpeechConfig().smoothing_windows == (1, 2, 3, 4)
    assert speech_keywords.SpeechConfig(smoothing_windows=[1, 3]).smoothing_windows == (1, 3)
    for bad in ((), (0, 2), (1, 2.5), (True,), 2):
        with pytest.raises(ValueError, match=rf"non-empty tuple of positive integers.*Received: smoothing_windows="):
            speech_keywords.SpeechConfig(smoothing_windows=bad)


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
    recordings, manifest = negatives.load_long_negatives("validation", config=tiny, cache_dir=tmp_path, human=False)
    assert [kind.split(" in ")[0] for _, kind, _ in recordings] == ["speech", "speech", "babble", "noise", "music"]
    assert all(len(audio) == 96000 for _, _, audio in recordings)
    test_voices = negatives.split_voices("test")
    used = {voice for entry in manifest["files"] for voice in entry["voices"]}
    assert used and used <= set(sum(negatives.split_voices("validation").values(), []))
    assert not used & set(sum(test_voices.values(), []))
    with pytest.raises(ValueError, match="Received: split='train'"):
        negatives.load_long_negatives("train", config=tiny, cache_dir=tmp_path, human=True)


def test_head_thresholds_and_smoothing_are_checked_and_kept():
    head = ClassProbabilities(LABELS, thresholds={"yes": 0.8}, smoothing=3)
    restored = ClassProbabilities.from_config(head.get_config())
    assert restored.thresholds == {"yes": 0.8} and restored.smoothing == 3
    old = {key: value for key, value in head.get_config().items() if key != "smoothing"}  # saved before smoothing
    assert ClassProbabilities.from_config(old).smoothing == 1
    with pytest.raises(ValueError, match="`smoothing` must be a positive integer. Received: smoothing=0"):
        head.set_smoothing(0)
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
    head = model.get_layer("probabilities")
    thresholds, smoothing = head.thresholds, head.smoothing
    assert set(thresholds) == set(speech.KEYWORDS) and min(thresholds.values()) >= keyword_spotting.MIN_THRESHOLD
    # The smoothing is the validation choice, made by the same function on the same scored windows.
    calibration = data["calibration"]
    assert [row["smoothing"] for row in calibration["smoothing_candidates"]] == list(config.smoothing_windows)
    names, probabilities_of = list(data["labels"]), speech_keywords.model_probabilities(model)
    recordings, _ = speech_keywords.negatives_for(config, data, "validation")
    scored = keyword_spotting.score_negatives(probabilities_of, recordings)
    placed = speech_keywords.score_split_placed_keywords(config, data, "validation", probabilities_of, history=3)
    rows, chosen = keyword_spotting.calibrate_smoothing(scored, placed, names, config.smoothing_windows)
    assert smoothing == calibration["smoothing"] == chosen["smoothing"] and thresholds == chosen["thresholds"]
    assert calibration["validation_false_reject_rate"] == min(row["false_reject_rate"] for row in rows)
    assert keyword_spotting.false_accepts(scored, names, thresholds, smoothing)[0] == 0
    version_dir = pipeline.export(app, model, config, data)
    signatures = tf.saved_model.load(str(version_dir)).signatures
    exported = speech_keywords.signature_thresholds(signatures, names)
    assert exported == pytest.approx(thresholds)
    assert signatures["labels"]()["thresholds"].numpy()[-2:].tolist() == [1.0, 1.0]  # silence, unknown
    assert speech_keywords.signature_smoothing(signatures) == smoothing
    used = {}

    def recording_detect(stream, audio, labels, threshold, hop, smoothing):
        used.update(t=threshold, k=smoothing)
        return []

    monkeypatch.setattr(speech_keywords, "detect", recording_detect)
    recording = tmp_path / "quiet.wav"
    speech.write_wav(recording, np.zeros(16000, np.float32))
    pipeline.main(app, ["listen", str(recording), "--quick", *folders(tmp_path)])
    assert used["t"] == pytest.approx(thresholds) and used["k"] == smoothing
    pipeline.main(app, ["listen", str(recording), "--threshold", "0.3", "--smoothing", "5", "--quick", *folders(tmp_path)])
    assert used["t"] == 0.3 and used["k"] == 5
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


def test_smoothing_benchmark_keeps_its_scores_and_reports_the_validation_choice(tmp_path, monkeypatch):
    """The benchmark's analysis on the constructed scores (stored and read back as it keeps the real ones): the
    choice and every number are `calibrate_smoothing`'s and `false_accepts`' / `false_rejects`'."""
    from benchmarks import speech_smoothing

    scores = {"validation": lone_spikes_and_held_words(), "test": lone_spikes_and_held_words("human speech")}
    path = tmp_path / "scores.npz"
    speech_smoothing.save_scores(path, scores)
    loaded = speech_smoothing.load_scores(path)
    for split in scores:
        (name, kind, hours, centres, probabilities), = loaded[split][0]
        assert (name, kind, hours) == scores[split][0][0][:3]
        np.testing.assert_array_equal(probabilities, scores[split][0][0][4])
        for stored, kept in zip(loaded[split][1], scores[split][1]):
            np.testing.assert_array_equal(stored, kept)
    monkeypatch.setattr(speech_keywords, "load_splits", lambda config: {"labels": LABELS})
    results = speech_smoothing.main(["model.keras", "export", "--scores", str(path), "--output", str(tmp_path)])
    rows, chosen = results
    assert chosen["smoothing"] == 2 and [row["test"]["false_reject_rate"] for row in rows] == [1.0, 0.0, 0.0, 1.0]
    text = (tmp_path / "speech_smoothing.md").read_text()
    assert "| 2 (chosen on validation) | 0.00 (0) | 0.0% | 0.00 (0) | 0.0% |" in text
    assert "do not: human speech" in text and f"--scores {path}" in text
