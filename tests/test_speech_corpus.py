"""The speech corpus: a seed rebuilds it exactly, voices never cross splits, augmentations measured back."""

import importlib
import os
import socket
import time
import wave

import numpy as np
import pandas as pd
import pytest

from data import speech_corpus

FAIL_FAST_SECONDS = 5.0
# Two espeak-ng voices for training, one each for validation and test, no flite or festival: about 100 clips,
# a few seconds to build, and every label still in every split.
TINY = speech_corpus.CorpusConfig(espeak_voices_per_split=(2, 1, 1), recorded_voice_renderings=0)
needs_engines = pytest.mark.skipif(
    bool(speech_corpus.missing_engine_packages()),
    reason="the TTS engines are not installed: "
    + " ".join(speech_corpus.install_command(speech_corpus.missing_engine_packages())),
)


@pytest.fixture(scope="module")
def tiny_corpora(tmp_path_factory):
    """Seed 0 built twice in separate caches (in this process, then by two workers), and seed 1."""
    corpora = {}
    for name, seed, processes in (("seed0", 0, 1), ("seed0_again", 0, 2), ("seed1", 1, 1)):
        cache = tmp_path_factory.mktemp(name)
        corpora[name] = speech_corpus.load_speech_keywords(seed=seed, cache_dir=cache, config=TINY, processes=processes)
    return corpora


def manifest(corpus):
    return pd.read_csv(corpus["manifest"], keep_default_na=False)


def test_labels_are_the_twenty_keywords_then_silence_and_unknown():
    assert len(speech_corpus.KEYWORDS) == 20 and len(set(speech_corpus.LABELS)) == 22
    assert speech_corpus.LABELS[:3] == ["yes", "no", "up"] and speech_corpus.LABELS[-2:] == ["_silence_", "_unknown_"]
    assert set(speech_corpus.FILLER_WORDS) <= set(speech_corpus.UNKNOWN_WORDS)
    assert not set(speech_corpus.UNKNOWN_WORDS) & set(speech_corpus.KEYWORDS)
    assert not {"know", "write", "won", "too", "for", "ate"} & set(speech_corpus.UNKNOWN_WORDS)  # homophones
    assert not {"fine", "heaven", "hero", "free", "gate", "dive", "sick"} & set(speech_corpus.UNKNOWN_WORDS)
    assert len(set(speech_corpus.UNKNOWN_WORDS)) == len(speech_corpus.UNKNOWN_WORDS) == 50


@needs_engines
def test_same_seed_rebuilds_the_same_corpus_and_another_seed_does_not(tiny_corpora):
    first, again, other = tiny_corpora["seed0"], tiny_corpora["seed0_again"], tiny_corpora["seed1"]
    pd.testing.assert_frame_equal(manifest(first), manifest(again))
    for split in speech_corpus.SPLIT_NAMES:
        np.testing.assert_array_equal(first[split][0], again[split][0])
        np.testing.assert_array_equal(first[split][1], again[split][1])
    assert not manifest(first)[["speed", "pitch", "word"]].equals(manifest(other)[["speed", "pitch", "word"]])
    assert not np.array_equal(first["train"][0][:10], other["train"][0][:10])
    # The voices themselves are fixed by SPLIT_SEED, so every seed is tested on the same unheard voices.
    assert first["voices"] == other["voices"]


@needs_engines
def test_no_voice_speaker_or_variant_group_is_in_two_splits(tiny_corpora):
    corpus = tiny_corpora["seed0"]
    rows = manifest(corpus)
    assert (pd.crosstab(rows["voice"], rows["split"]) > 0).sum(axis=1).max() == 1
    assert (pd.crosstab(rows["speaker"], rows["split"]) > 0).sum(axis=1).max() == 1
    voices = corpus["voices"]
    assert all(voices[split] for split in speech_corpus.SPLIT_NAMES)
    assert not set(voices["train"]) & set(voices["validation"]) | set(voices["train"]) & set(voices["test"])
    assert not set(voices["validation"]) & set(voices["test"])
    split_of_variant = speech_corpus.split_variant_groups(speech_corpus.espeak_variants())
    groups = pd.Series(list(split_of_variant.values()), [speech_corpus.variant_group(v) for v in split_of_variant])
    assert groups.groupby(level=0).nunique().max() == 1


def test_recorded_speakers_stay_in_one_split():
    for voice, speaker in speech_corpus.RECORDED_SPEAKERS.items():
        assert speaker in speech_corpus.RECORDED_SPEAKER_SPLITS, voice
    engines_voices = {f"flite:{voice}" for voice in speech_corpus.FLITE_VOICES}
    engines_voices |= {f"festival:{voice}" for voice in speech_corpus.FESTIVAL_VOICES}
    assert engines_voices == set(speech_corpus.RECORDED_SPEAKERS)


@needs_engines
def test_every_label_is_in_every_split_with_clips_of_one_second(tiny_corpora):
    corpus = tiny_corpora["seed0"]
    for split in speech_corpus.SPLIT_NAMES:
        audio, labels = corpus[split]
        assert audio.dtype == np.float32 and audio.shape == (len(labels), speech_corpus.CLIP_SAMPLES)
        assert labels.dtype == np.int32 and set(labels) == set(range(len(speech_corpus.LABELS)))
        assert np.abs(audio).max() <= 1.0
        assert len(corpus["words"][split]) == len(labels) == len(corpus["augmented"][split])
    assert corpus["augmented"]["train"].all()
    for split in ("validation", "test"):
        augmented = corpus["augmented"][split]
        assert augmented.sum() * 2 == len(augmented)  # every clip clean, then augmented
        np.testing.assert_array_equal(corpus[split][1][~augmented], corpus[split][1][augmented])


@needs_engines
def test_clean_clips_are_the_manifest_wavs_centered_in_one_second(tiny_corpora):
    corpus = tiny_corpora["seed0"]
    rows = manifest(corpus)
    test_rows = rows[rows["split"] == "test"]
    clean = corpus["test"][0][~corpus["augmented"]["test"]]
    directory = corpus["manifest"].parent
    for position in (0, 5, len(test_rows) - 1):
        with wave.open(str(directory / test_rows["path"].iloc[position])) as reader:
            assert reader.getframerate() == 16000 and reader.getnchannels() == 1
            pcm = np.frombuffer(reader.readframes(reader.getnframes()), np.int16) / 32768
        expected = np.zeros(16000)
        start = (16000 - len(pcm)) // 2
        expected[start : start + len(pcm)] = pcm
        np.testing.assert_allclose(clean[position], expected, atol=1.5 / 32768)
    words = corpus["words"]["test"][~corpus["augmented"]["test"]]
    assert list(words) == test_rows["word"].tolist()


def test_added_noise_has_the_requested_snr():
    rng = np.random.default_rng(0)
    clip = speech_corpus.fit_to_clip(np.sin(np.arange(8000) * 0.05).astype(np.float32) * 0.3)
    for kind in ("white", "pink", "brown", "hum"):
        for snr_db in (0.0, 10.0, 25.0):
            noisy = speech_corpus.add_noise(clip, speech_corpus.colored_noise(kind, clip.size, rng), snr_db)
            noise_power = np.mean((noisy - clip).astype(np.float64) ** 2)
            measured = 10 * np.log10(np.mean(clip.astype(np.float64) ** 2) / noise_power)
            assert measured == pytest.approx(snr_db, abs=0.01), kind


def band_power(audio, low, high, rate=16000):
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    frequencies = np.fft.rfftfreq(audio.size, 1 / rate)
    return spectrum[(frequencies >= low) & (frequencies < high)].sum()


def test_telephone_band_removes_everything_above_four_kilohertz():
    noise = speech_corpus.colored_noise("white", 16000, np.random.default_rng(1))
    narrow = speech_corpus.telephone(noise)
    assert narrow.shape == noise.shape
    assert band_power(narrow, 4100, 8000) < 1e-4 * band_power(noise, 4100, 8000)
    assert band_power(narrow, 500, 3000) > 0.8 * band_power(noise, 500, 3000)
    assert band_power(narrow, 0, 150) < 0.05 * band_power(noise, 0, 150)


def test_gain_and_shift_do_what_they_say():
    clip = np.random.default_rng(2).uniform(-0.1, 0.1, 1000).astype(np.float32)
    np.testing.assert_allclose(speech_corpus.apply_gain(clip, 6.0), clip * 1.99526, rtol=1e-5)
    np.testing.assert_allclose(speech_corpus.apply_gain(clip, -20.0), clip * 0.1, rtol=1e-5)
    later, earlier = speech_corpus.time_shift(clip, 100), speech_corpus.time_shift(clip, -100)
    np.testing.assert_array_equal(later[:100], 0)
    np.testing.assert_array_equal(later[100:], clip[:-100])
    np.testing.assert_array_equal(earlier[:-100], clip[100:])
    np.testing.assert_array_equal(earlier[-100:], 0)


def test_speed_change_scales_duration_and_pitch():
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    faster = speech_corpus.change_speed(tone, 1.25)
    assert faster.size == pytest.approx(16000 / 1.25, abs=1)
    peak_hertz = np.argmax(np.abs(np.fft.rfft(faster))) * 16000 / faster.size
    assert peak_hertz == pytest.approx(550, abs=2)


@pytest.mark.parametrize("kind, slope_db_per_octave", [("white", 0.0), ("pink", -3.01), ("brown", -6.02)])
def test_colored_noise_has_unit_power_and_its_spectral_slope(kind, slope_db_per_octave):
    noise = speech_corpus.colored_noise(kind, 160000, np.random.default_rng(3))
    assert np.mean(noise.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    octaves = [125 * 2**octave for octave in range(6)]  # 125 Hz ... 4 kHz
    levels = [10 * np.log10(band_power(noise, low, 2 * low) / low) for low in octaves]
    assert np.polyfit(np.arange(len(octaves)), levels, 1)[0] == pytest.approx(slope_db_per_octave, abs=0.5)


def test_reverberation_decays_sixty_decibels_in_the_requested_time():
    impulse = np.zeros(16000, np.float32)
    impulse[0] = 1.0
    response = speech_corpus.reverberate(impulse, 0.5, np.random.default_rng(4), wet=1.0)
    # Schroeder's backward-integrated energy decay; the -5 to -25 dB line extrapolated to -60 dB.
    energy = response.astype(np.float64) ** 2
    decay = 10 * np.log10(np.cumsum(energy[::-1])[::-1] / energy.sum())
    fit = (decay < -5) & (decay > -25)
    slope_db_per_second = np.polyfit(np.flatnonzero(fit) / 16000, decay[fit], 1)[0]
    assert -60 / slope_db_per_second == pytest.approx(0.5, rel=0.15)


def test_augment_is_deterministic_for_a_seed_and_stays_in_range():
    clip = speech_corpus.fit_to_clip(0.5 * np.sin(np.arange(6000) * 0.1).astype(np.float32))
    babble = np.stack([np.roll(clip, shift) for shift in range(0, 8000, 1000)])
    first = speech_corpus.augment(clip, np.random.default_rng(5), babble)
    np.testing.assert_array_equal(first, speech_corpus.augment(clip, np.random.default_rng(5), babble))
    assert not np.array_equal(first, speech_corpus.augment(clip, np.random.default_rng(6), babble))
    for seed in range(20):
        augmented = speech_corpus.augment(clip, np.random.default_rng(seed), babble)
        assert augmented.shape == clip.shape and augmented.dtype == np.float32 and np.abs(augmented).max() <= 1.0


def test_silence_clips_are_quiet():
    babble = np.random.default_rng(7).uniform(-0.5, 0.5, (8, 16000)).astype(np.float32)
    for seed in range(30):
        clip = speech_corpus.silence_clip(np.random.default_rng(seed), babble)
        assert clip.shape == (16000,) and 10 * np.log10(np.mean(clip.astype(np.float64) ** 2) + 1e-12) < -20


def test_fit_to_clip_centers_short_clips_and_cuts_long_ones_around_their_center():
    short = speech_corpus.fit_to_clip(np.ones(1000, np.float32))
    assert short.shape == (16000,) and np.flatnonzero(short)[[0, -1]].tolist() == [7500, 8499]
    long = speech_corpus.fit_to_clip(np.arange(20000, dtype=np.float32))
    np.testing.assert_array_equal(long, np.arange(2000, 18000))


def test_a_word_longer_than_the_clip_is_sped_up_whole_not_cut(tmp_path):
    word = np.sin(np.arange(24000) * 0.2).astype(np.float32)
    speech_corpus._postprocess(word, tmp_path / "long.wav")
    kept = speech_corpus.read_wav(tmp_path / "long.wav")
    assert 0.9 * speech_corpus.LONGEST_WORD <= kept.size <= speech_corpus.LONGEST_WORD
    assert np.abs(kept).max() == pytest.approx(0.5, abs=0.01)
    # Sped up, not cut: the tone's frequency rose by the length ratio.
    peak_ratio = np.argmax(np.abs(np.fft.rfft(kept))) / kept.size / (np.argmax(np.abs(np.fft.rfft(word))) / word.size)
    assert peak_ratio == pytest.approx(24000 / kept.size, rel=0.02)


def test_spokennumbers_gives_the_ten_digits_at_16_kilohertz():
    audio, labels = speech_corpus.load_spokennumbers()
    assert labels == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for path, clip in zip(speech_corpus.spokennumbers_files(), audio):
        with wave.open(str(path)) as reader:
            rate, frames, channels = reader.getframerate(), reader.getnframes(), reader.getnchannels()
            pcm = np.frombuffer(reader.readframes(frames), np.int16).reshape(frames, channels).mean(axis=1) / 32768
        assert clip.dtype == np.float32 and clip.size == int(np.ceil(frames * 16000 / rate))
        assert 0.3 < clip.size / 16000 < 1.0 and np.abs(clip).max() <= 1.0
        # An independent resampling: the recording's spectrum cut at 8 kHz and transformed back at 16 kHz.
        spectrum = np.fft.rfft(pcm)[: clip.size // 2 + 1]
        reference = np.fft.irfft(spectrum, clip.size) * clip.size / pcm.size
        middle = slice(200, -200)  # the FFT's circular edges differ from a filter's
        assert np.corrcoef(clip[middle], reference[middle])[0, 1] > 0.99
        assert np.std(clip[middle]) == pytest.approx(np.std(reference[middle]), rel=0.02)


def test_speech_commands_fails_fast_offline(monkeypatch, tmp_path):
    def refuse(*arguments, **keyword_arguments):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="load_speech_keywords"):
        speech_corpus.load_speech_commands("test")
    assert time.monotonic() - start < FAIL_FAST_SECONDS


def test_speech_commands_labels_map_onto_ours():
    import tensorflow_datasets

    # The installed builder's own label list, read without downloading anything.
    module = importlib.import_module(tensorflow_datasets.builder_cls("speech_commands").__module__)
    assert module.WORDS + [module.SILENCE, module.UNKNOWN] == speech_corpus.SPEECH_COMMANDS_LABELS
    mapped = [speech_corpus.LABELS[speech_corpus._our_label(name)] for name in speech_corpus.SPEECH_COMMANDS_LABELS]
    assert set(mapped) == set(speech_corpus.KEYWORDS[:10]) | {"_silence_", "_unknown_"}
    assert set(speech_corpus.OURS_MISSING_FROM_SPEECH_COMMANDS) == set(speech_corpus.LABELS) - set(mapped)


def test_missing_engines_without_root_say_what_to_install(monkeypatch):
    monkeypatch.setattr(speech_corpus, "missing_engine_packages", lambda: ["espeak-ng", "festvox-kallpc16k"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="apt-get install -y --no-install-recommends espeak-ng festvox-kallpc16k"):
        speech_corpus.ensure_engines()


def test_as_root_missing_engines_are_installed_updating_the_package_list_only_when_install_fails(monkeypatch):
    missing = [["flite"], []]  # before installing, after
    commands = []

    class Result:
        def __init__(self, returncode):
            self.returncode = returncode

    def run(command, check=False, env=None):
        commands.append(command)
        return Result(1 if len(commands) == 1 else 0)  # the first install fails: a stale package list

    monkeypatch.setattr(speech_corpus, "missing_engine_packages", lambda: missing.pop(0))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(speech_corpus.subprocess, "run", run)
    speech_corpus.ensure_engines()
    install = ["apt-get", "install", "-y", "--no-install-recommends", "flite"]
    assert commands == [install, ["apt-get", "update"], install]


def test_corpus_config_key_changes_with_any_field():
    keys = {
        speech_corpus.CorpusConfig().key(),
        speech_corpus.CorpusConfig.quick().key(),
        speech_corpus.CorpusConfig(unknown_words_per_rendering=5).key(),
        TINY.key(),
    }
    assert len(keys) == 4


@pytest.mark.slow
@needs_engines
def test_quick_corpus_builds_within_a_minute_with_every_label(tmp_path):
    start = time.monotonic()
    corpus = speech_corpus.load_speech_keywords(quick=True, cache_dir=tmp_path)
    assert time.monotonic() - start < 60
    for split in speech_corpus.SPLIT_NAMES:
        assert set(corpus[split][1]) == set(range(22))
    assert "flite:rms" in corpus["voices"]["test"] and "flite:slt" in corpus["voices"]["train"]
