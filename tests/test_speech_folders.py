"""The user's own recordings: any rate and channel count to 16 kHz mono 1 s clips, the three split rules, and a
`DataError` naming the file for every kind of bad folder."""

import numpy as np
import pandas as pd
import pytest
import scipy.io.wavfile

from data import sources, speech
from data.speech import folders


def write_tone(path, rate=16000, hertz=440.0, seconds=0.6, channels=1, level=0.3):
    """A sine as 16-bit PCM (channels identical), the folders' parent created."""
    time = np.arange(int(rate * seconds)) / rate
    pcm = np.round(level * np.sin(2 * np.pi * hertz * time) * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.wavfile.write(path, rate, np.stack([pcm] * channels, axis=1) if channels > 1 else pcm)
    return path


def peak_hertz(clip, rate=16000):
    return np.argmax(np.abs(np.fft.rfft(clip))) * rate / clip.size


def two_tone_folder(root, clips_per_label=10, speakers=5):
    """"high": 1 kHz tones at 8 kHz stereo; "low": 440 Hz tones at 48 kHz mono; Speech Commands file names."""
    for index in range(clips_per_label):
        name = f"speaker{index % speakers}_nohash_{index}.wav"
        # Each clip a little louder than the last, so that no two files are copies (which the loader drops).
        write_tone(root / "high" / name, rate=8000, hertz=1000.0, channels=2, level=0.3 + 0.0005 * index)
        write_tone(root / "low" / name, rate=48000, hertz=440.0, level=0.3 + 0.0005 * index)
    return root


def write_noise(path, seconds=10.0, level=0.05, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0, level, int(16000 * seconds)).astype(np.float32)
    scipy.io.wavfile.write(path, 16000, noise)


def test_any_rate_and_channel_count_becomes_16_kilohertz_mono_one_second_clips(tmp_path):
    root = two_tone_folder(tmp_path / "tones")
    (root / "high" / "notes.txt").write_text("not audio")
    (root / "low" / ".DS_Store").write_bytes(b"\0")
    loaded = speech.load_audio_folder(root, augmented_train_copies=0)
    assert loaded["labels"] == ["high", "low"] and loaded["source"] == str(root)
    assert loaded["dropped"] == {folders.NOT_WAV: 2}
    sizes = {}
    for split in sources.SPLIT_NAMES:
        audio, labels = loaded[split]
        assert audio.dtype == np.float32 and audio.shape == (len(labels), 16000) and labels.dtype == np.int32
        assert not loaded["augmented"][split].any() and len(loaded["files"][split]) == len(labels)
        for clip, label, file in zip(audio, labels, loaded["files"][split]):
            assert file.startswith(loaded["labels"][label] + "/")
            # The sine's frequency survives resampling from 8 and 48 kHz; the 0.6 s tone is centred at its level.
            assert peak_hertz(clip) == pytest.approx(1000.0 if label == 0 else 440.0, abs=2)
            assert np.abs(clip[5000:11000]).max() == pytest.approx(0.3, abs=0.01)
            assert not clip[:3000].any() and not clip[-3000:].any()
        sizes[split] = len(labels)
    assert sizes == {"train": 16, "validation": 2, "test": 2}  # 80/10/10 of each label's 10, stratified
    assert sum(sizes.values()) == 20


def test_a_long_recording_keeps_its_loudest_second():
    recording = np.zeros(48000, np.float32)
    recording[30000:36000] = 0.5
    np.testing.assert_array_equal(speech.fit_to_clip(recording, crop="loudest")[14000:16000], 0.5)
    assert speech.fit_to_clip(recording, crop="loudest").sum() == pytest.approx(0.5 * 6000)
    np.testing.assert_array_equal(speech.fit_to_clip(recording), recording[16000:32000])  # the default: centre


def test_background_noise_feeds_silence_and_the_training_noise(tmp_path):
    root = two_tone_folder(tmp_path / "tones")
    write_noise(root / "_background_noise_" / "hiss.wav")
    (root / "_background_noise_" / "README.md").write_text("long recordings, no speech")
    loaded = speech.load_audio_folder(root, seed=3, augmented_train_copies=2)
    assert loaded["labels"] == ["_silence_", "high", "low"]
    assert loaded["dropped"] == {folders.NOT_WAV: 1}
    train_audio, train_labels = loaded["train"]
    augmented = loaded["augmented"]["train"]
    assert len(train_labels) == 3 * 24 and augmented.sum() == 2 * 24  # clean + 2 copies of 8 + 8 + 8 silence
    np.testing.assert_array_equal(train_labels[augmented], np.tile(train_labels[~augmented], 2))
    assert not np.array_equal(train_audio[augmented][:24], train_audio[~augmented])
    for split, expected in (("train", 8), ("validation", 1), ("test", 1)):  # the mean label count of each split
        audio, labels = loaded[split]
        silence = audio[(labels == 0) & ~loaded["augmented"][split]]
        assert len(silence) == expected
        assert np.std(silence, axis=1) == pytest.approx(np.full(expected, 0.05), rel=0.1)  # the hiss, as recorded
    # Each split's silence is cut from its own stretch of the recording: no sample is in two splits.
    hiss = scipy.io.wavfile.read(root / "_background_noise_" / "hiss.wav")[1]
    for split, (low, high) in (("train", (0, 128000)), ("validation", (128000, 144000)), ("test", (144000, 160000))):
        clip = loaded[split][0][loaded[split][1] == 0][0]
        start = int(np.flatnonzero(np.isclose(hiss, clip[0]))[0])
        assert low <= start <= high - 16000 and np.allclose(hiss[start : start + 16000], clip)
    again = speech.load_audio_folder(root, seed=3, augmented_train_copies=2)
    np.testing.assert_array_equal(again["train"][0], train_audio)


def test_a_silence_folder_of_its_own_is_an_ordinary_label(tmp_path):
    root = two_tone_folder(tmp_path / "tones")
    for index in range(10):
        write_tone(root / "_silence_" / f"quiet_{index}.wav", hertz=100.0 + index, level=0.001)
    write_noise(root / "_background_noise_" / "hiss.wav")
    loaded = speech.load_audio_folder(root, augmented_train_copies=0)
    assert loaded["labels"] == ["_silence_", "high", "low"]
    assert sum(len(loaded[split][1]) for split in sources.SPLIT_NAMES) == 30


def test_the_folders_own_validation_and_testing_lists_decide_the_split(tmp_path):
    root = two_tone_folder(tmp_path / "tones")
    (root / "validation_list.txt").write_text("high/speaker1_nohash_1.wav\nlow/speaker1_nohash_1.wav\n\n")
    (root / "testing_list.txt").write_text("./high/speaker2_nohash_2.wav\nlow/speaker2_nohash_2.wav\nlow/gone.wav\n")
    loaded = speech.load_audio_folder(root, sources.SplitOptions(seed=5), augmented_train_copies=0)
    assert loaded["files"]["validation"] == ["high/speaker1_nohash_1.wav", "low/speaker1_nohash_1.wav"]
    assert loaded["files"]["test"] == ["high/speaker2_nohash_2.wav", "low/speaker2_nohash_2.wav"]
    assert len(loaded["files"]["train"]) == 16
    assert loaded["dropped"] == {folders.NOT_IN_FOLDER: 1}


def test_grouped_by_speaker_no_speaker_is_in_two_splits(tmp_path):
    root = two_tone_folder(tmp_path / "tones", clips_per_label=40, speakers=20)
    options = sources.SplitOptions(group_column="speaker")
    loaded = speech.load_audio_folder(root, options, augmented_train_copies=0)
    speakers = {split: {folders.speaker_of(file) for file in loaded["files"][split]} for split in sources.SPLIT_NAMES}
    assert all(speakers.values())
    assert not speakers["train"] & speakers["validation"] and not speakers["train"] & speakers["test"]
    assert not speakers["validation"] & speakers["test"]
    assert folders.speaker_of("yes/0a7c2a8d_nohash_0.wav") == "0a7c2a8d"
    assert folders.speaker_of("yes/alice_take2.wav") == "alice" and folders.speaker_of("yes/bob.wav") == "bob"
    # The same grouping as every other grouped split of the project.
    files = [file for split in sources.SPLIT_NAMES for file in loaded["files"][split]]
    expected = sources.grouped_split([folders.speaker_of(file) for file in sorted(files)], 0, options.fractions)
    got = {file: split for split in sources.SPLIT_NAMES for file in loaded["files"][split]}
    assert [got[file] for file in sorted(files)] == list(expected)


def break_folder(root, how):
    """`two_tone_folder` broken one way; returns the path the error must name."""
    if how == "missing":
        return root / "nowhere"
    if how == "empty":
        root.mkdir()
        return root
    two_tone_folder(root)
    if how == "no label subfolders":
        for folder in ("high", "low"):
            for file in (root / folder).iterdir():
                file.rename(root / f"{folder}_{file.name}")
            (root / folder).rmdir()
        return root
    if how == "empty label folder":
        (root / "maybe").mkdir()
        return root / "maybe"
    if how == "label folder without WAV":
        (root / "maybe").mkdir()
        (root / "maybe" / "take1.mp3").write_bytes(b"ID3")
        return root / "maybe"
    if how == "one clip":
        write_tone(root / "maybe" / "take1.wav")
        return root
    if how == "garbage":
        (root / "low" / "speaker0_nohash_3.wav").write_bytes(b"this is no RIFF header at all")
        return root / "low" / "speaker0_nohash_3.wav"
    if how == "truncated":
        path = root / "high" / "speaker4_nohash_9.wav"
        path.write_bytes(path.read_bytes()[:2000])
        return path
    if how == "no samples":
        scipy.io.wavfile.write(root / "high" / "speaker0_nohash_0.wav", 16000, np.zeros(0, np.int16))
        return root / "high" / "speaker0_nohash_0.wav"
    if how == "label only in test":
        write_tone(root / "maybe" / "a_nohash_0.wav", hertz=300.0)
        write_tone(root / "maybe" / "b_nohash_0.wav", hertz=310.0)
        (root / "validation_list.txt").write_text("high/speaker1_nohash_1.wav\nlow/speaker1_nohash_1.wav\n")
        (root / "testing_list.txt").write_text("\n".join(["low/speaker2_nohash_2.wav", "maybe/a_nohash_0.wav",
                                                          "maybe/b_nohash_0.wav"]))  # fmt: skip
        return root
    if how == "file in both lists":
        (root / "validation_list.txt").write_text("high/speaker1_nohash_1.wav\n")
        (root / "testing_list.txt").write_text("high/speaker1_nohash_1.wav\n")
        return root / "testing_list.txt"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how, expected",
    [
        ("missing", "no such folder"),
        ("empty", "Received no label subfolders; the folder holds nothing"),
        ("no label subfolders", r"Received no label subfolders; the folder holds \['high_speaker0"),
        ("empty label folder", "expected .wav files of the label 'maybe'. Received no .wav file \\(an empty folder"),
        ("label folder without WAV", r"Received no .wav file \(only \['take1.mp3'\]\)"),
        ("one clip", r"at least 2 examples. Received only one example of \['maybe'\]"),
        ("garbage", "expected a WAV file .*Received: .*not a readable WAV file"),
        ("truncated", "expected a WAV file .*Received: .*truncated WAV file"),
        ("no samples", "expected audio samples. Received a WAV file with none"),
        ("label only in test", r"must have training examples. Received labels only in \{'maybe': \['test'\]"),
        ("file in both lists", "line 1: 'high/speaker1_nohash_1.wav' is also in validation_list.txt"),
    ],
)
def test_bad_folders_raise_a_data_error_naming_the_file(tmp_path, how, expected):
    named = break_folder(tmp_path / "tones", how)
    with pytest.raises(sources.DataError, match=expected) as caught:
        speech.load_audio_folder(named if how == "missing" else tmp_path / "tones", augmented_train_copies=0)
    assert str(caught.value).startswith(str(named))


def test_split_rules_a_folder_cannot_follow_are_refused(tmp_path):
    root = two_tone_folder(tmp_path / "tones")
    with pytest.raises(sources.DataError, match="grouped only by 'speaker'.*Received group_column='movie'"):
        speech.load_audio_folder(root, sources.SplitOptions(group_column="movie"))
    with pytest.raises(sources.DataError, match="validation_list.txt and testing_list.txt"):
        speech.load_audio_folder(root, sources.SplitOptions(split_column="split"))
    with pytest.raises(ValueError, match="augmented_train_copies"):
        speech.load_audio_folder(root, augmented_train_copies=-1)


def test_training_clips_are_augmented_with_the_recordings_noise(tmp_path):
    root = two_tone_folder(tmp_path / "tones")
    write_noise(root / "_background_noise_" / "hiss.wav", level=0.2)
    loaded = speech.load_audio_folder(root, augmented_train_copies=1)
    audio, labels = loaded["train"]
    augmented = loaded["augmented"]["train"]
    clean, noisy = audio[~augmented], audio[augmented]
    assert noisy.shape == clean.shape and np.abs(noisy).max() <= 1.0
    changed = [not np.allclose(before, after) for before, after in zip(clean, noisy)]
    assert np.mean(changed) > 0.9
    assert pd.Series(labels[augmented]).equals(pd.Series(labels[~augmented]))


def test_copies_of_a_recording_are_dropped_and_counted(tmp_path):
    root = two_tone_folder(tmp_path / "tones")
    (root / "high" / "copy.wav").write_bytes((root / "high" / "speaker0_nohash_0.wav").read_bytes())
    (root / "low" / "mislabelled.wav").write_bytes((root / "high" / "speaker1_nohash_1.wav").read_bytes())
    loaded = speech.load_audio_folder(root, augmented_train_copies=0)
    files = [file for split in sources.SPLIT_NAMES for file in loaded["files"][split]]
    assert ("high/copy.wav" in files) != ("high/speaker0_nohash_0.wav" in files)  # the first of the two, only
    assert "low/mislabelled.wav" not in files and "high/speaker1_nohash_1.wav" not in files
    assert loaded["dropped"] == {folders.COPIES: 1, folders.CONFLICTING_COPIES: 2}
