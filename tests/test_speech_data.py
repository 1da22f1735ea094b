"""The speech data: a seed rebuilds the corpus exactly, voices never cross splits, augmentations measured back,
custom keywords, and loading never installs the TTS engines (only the explicit install step does)."""

import dataclasses
import importlib
import os
import time
import wave

import numpy as np
import pandas as pd
import pytest

from data import sources, speech
from data.speech import augmentation, corpus, engines, human, recordings, synthesis, vocabulary
from tests.helpers import FAIL_FAST_SECONDS

# Two espeak-ng voices for training, one each for validation and test, no flite or festival: about 100 clips,
# a few seconds to build, and every label still in every split.
TINY = speech.CorpusConfig(espeak_voices_per_split=(2, 1, 1), recorded_voice_renderings=0, running_speech_clips=20,
                           music_clips=5, human_unknown_copies=1, human_running_speech_clips=4)  # fmt: skip
needs_engines = pytest.mark.skipif(  # the corpus also takes its training `_unknown_` from recordings of people
    bool(engines.missing_packages()),
    reason="the TTS engines or recordings are not installed: " + " ".join(engines.install_command(engines.missing_packages())),
)


@pytest.fixture(scope="module")
def tiny_corpora(tmp_path_factory):
    """Seed 0 built twice in separate caches (in this process, then by two workers), and seed 1."""
    corpora = {}
    for name, seed, processes in (("seed0", 0, 1), ("seed0_again", 0, 2), ("seed1", 1, 1)):
        cache = tmp_path_factory.mktemp(name)
        corpora[name] = speech.load_speech_keywords(seed=seed, cache_dir=cache, config=TINY, processes=processes)
    return corpora


def manifest(loaded):
    return pd.read_csv(loaded["manifest"], keep_default_na=False)


def test_labels_are_the_twenty_keywords_then_silence_and_unknown():
    assert len(speech.KEYWORDS) == 20 and len(set(speech.LABELS)) == 22
    assert speech.LABELS[:3] == ["yes", "no", "up"] and speech.LABELS[-2:] == ["_silence_", "_unknown_"]
    assert set(vocabulary.FILLER_WORDS) <= set(vocabulary.UNKNOWN_WORDS)
    assert not set(vocabulary.UNKNOWN_WORDS) & set(speech.KEYWORDS)
    assert not {"know", "write", "won", "too", "for", "ate"} & set(vocabulary.UNKNOWN_WORDS)  # homophones
    assert not {"fine", "heaven", "hero", "free", "gate", "dive", "sick"} & set(vocabulary.UNKNOWN_WORDS)
    assert len(set(vocabulary.UNKNOWN_WORDS)) == len(vocabulary.UNKNOWN_WORDS) == 50


@needs_engines
def test_same_seed_rebuilds_the_same_corpus_and_another_seed_does_not(tiny_corpora):
    first, again, other = tiny_corpora["seed0"], tiny_corpora["seed0_again"], tiny_corpora["seed1"]
    pd.testing.assert_frame_equal(manifest(first), manifest(again))
    for split in sources.SPLIT_NAMES:
        np.testing.assert_array_equal(first[split][0], again[split][0])
        np.testing.assert_array_equal(first[split][1], again[split][1])
    assert not manifest(first)[["speed", "pitch", "word"]].equals(manifest(other)[["speed", "pitch", "word"]])
    assert not np.array_equal(first["train"][0][:10], other["train"][0][:10])
    # The voices themselves are fixed by SPLIT_SEED, so every seed is tested on the same unheard voices.
    assert first["voices"] == other["voices"]


@needs_engines
def test_no_voice_speaker_or_variant_group_is_in_two_splits(tiny_corpora):
    loaded = tiny_corpora["seed0"]
    rows = manifest(loaded)
    assert (pd.crosstab(rows["voice"], rows["split"]) > 0).sum(axis=1).max() == 1
    assert (pd.crosstab(rows["speaker"], rows["split"]) > 0).sum(axis=1).max() == 1
    # Real people in the corpus are the training role's only, single words and running speech alike.
    people = set(rows.loc[rows["engine"] == "human", "speaker"])
    assert people == {f"human:{source.name}" for source in human.SOURCES if source.role == "train"}
    assert set(rows.loc[rows["engine"] == "human", "split"]) == {"train"}
    running = rows[rows["path"].str.startswith("wav/train/human_running_speech/")]
    assert len(running) == TINY.human_running_speech_clips and set(running["label"]) == {vocabulary.UNKNOWN}
    voices = loaded["voices"]
    assert all(voices[split] for split in sources.SPLIT_NAMES)
    assert not set(voices["train"]) & set(voices["validation"]) | set(voices["train"]) & set(voices["test"])
    assert not set(voices["validation"]) & set(voices["test"])
    split_of_variant = corpus.split_variant_groups(engines.espeak_variants())
    groups = pd.Series(list(split_of_variant.values()), [engines.variant_group(v) for v in split_of_variant])
    assert groups.groupby(level=0).nunique().max() == 1


def test_recorded_speakers_stay_in_one_split():
    for voice, speaker in corpus.RECORDED_SPEAKERS.items():
        assert speaker in corpus.RECORDED_SPEAKER_SPLITS, voice
    engines_voices = {f"flite:{voice}" for voice in engines.FLITE_VOICES}
    engines_voices |= {f"festival:{voice}" for voice in engines.FESTIVAL_VOICES}
    assert engines_voices == set(corpus.RECORDED_SPEAKERS)


@needs_engines
def test_every_label_is_in_every_split_with_clips_of_one_second(tiny_corpora):
    loaded = tiny_corpora["seed0"]
    for split in sources.SPLIT_NAMES:
        audio, labels = loaded[split]
        assert audio.dtype == np.float32 and audio.shape == (len(labels), speech.CLIP_SAMPLES)
        assert labels.dtype == np.int32 and set(labels) == set(range(len(speech.LABELS)))
        assert np.abs(audio).max() <= 1.0
        assert len(loaded["words"][split]) == len(labels) == len(loaded["augmented"][split])
    assert loaded["augmented"]["train"].all()
    for split in ("validation", "test"):
        augmented = loaded["augmented"][split]
        assert augmented.sum() * 2 == len(augmented)  # every clip clean, then augmented
        np.testing.assert_array_equal(loaded[split][1][~augmented], loaded[split][1][augmented])


@needs_engines
def test_clean_clips_are_the_manifest_wavs_centered_in_one_second(tiny_corpora):
    loaded = tiny_corpora["seed0"]
    rows = manifest(loaded)
    test_rows = rows[rows["split"] == "test"]
    clean = loaded["test"][0][~loaded["augmented"]["test"]]
    directory = loaded["manifest"].parent
    for position in (0, 5, len(test_rows) - 1):
        with wave.open(str(directory / test_rows["path"].iloc[position])) as reader:
            assert reader.getframerate() == 16000 and reader.getnchannels() == 1
            pcm = np.frombuffer(reader.readframes(reader.getnframes()), np.int16) / 32768
        expected = np.zeros(16000)
        start = (16000 - len(pcm)) // 2
        expected[start : start + len(pcm)] = pcm
        np.testing.assert_allclose(clean[position], expected, atol=1.5 / 32768)
    words = loaded["words"]["test"][~loaded["augmented"]["test"]]
    assert list(words) == test_rows["word"].tolist()


def test_added_noise_has_the_requested_snr():
    rng = np.random.default_rng(0)
    clip = speech.fit_to_clip(np.sin(np.arange(8000) * 0.05).astype(np.float32) * 0.3)
    for kind in ("white", "pink", "brown", "hum"):
        for snr_db in (0.0, 10.0, 25.0):
            noisy = augmentation.add_noise(clip, augmentation.colored_noise(kind, clip.size, rng), snr_db)
            noise_power = np.mean((noisy - clip).astype(np.float64) ** 2)
            measured = 10 * np.log10(np.mean(clip.astype(np.float64) ** 2) / noise_power)
            assert measured == pytest.approx(snr_db, abs=0.01), kind


def band_power(audio, low, high, rate=16000):
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    frequencies = np.fft.rfftfreq(audio.size, 1 / rate)
    return spectrum[(frequencies >= low) & (frequencies < high)].sum()


def test_telephone_band_removes_everything_above_four_kilohertz():
    noise = augmentation.colored_noise("white", 16000, np.random.default_rng(1))
    narrow = augmentation.telephone(noise)
    assert narrow.shape == noise.shape
    assert band_power(narrow, 4100, 8000) < 1e-4 * band_power(noise, 4100, 8000)
    assert band_power(narrow, 500, 3000) > 0.8 * band_power(noise, 500, 3000)
    assert band_power(narrow, 0, 150) < 0.05 * band_power(noise, 0, 150)


def test_gain_and_shift_do_what_they_say():
    clip = np.random.default_rng(2).uniform(-0.1, 0.1, 1000).astype(np.float32)
    np.testing.assert_allclose(augmentation.apply_gain(clip, 6.0), clip * 1.99526, rtol=1e-5)
    np.testing.assert_allclose(augmentation.apply_gain(clip, -20.0), clip * 0.1, rtol=1e-5)
    later, earlier = augmentation.time_shift(clip, 100), augmentation.time_shift(clip, -100)
    np.testing.assert_array_equal(later[:100], 0)
    np.testing.assert_array_equal(later[100:], clip[:-100])
    np.testing.assert_array_equal(earlier[:-100], clip[100:])
    np.testing.assert_array_equal(earlier[-100:], 0)


def test_speed_change_scales_duration_and_pitch():
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    faster = augmentation.change_speed(tone, 1.25)
    assert faster.size == pytest.approx(16000 / 1.25, abs=1)
    peak_hertz = np.argmax(np.abs(np.fft.rfft(faster))) * 16000 / faster.size
    assert peak_hertz == pytest.approx(550, abs=2)


@pytest.mark.parametrize("kind, slope_db_per_octave", [("white", 0.0), ("pink", -3.01), ("brown", -6.02)])
def test_colored_noise_has_unit_power_and_its_spectral_slope(kind, slope_db_per_octave):
    noise = augmentation.colored_noise(kind, 160000, np.random.default_rng(3))
    assert np.mean(noise.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    octaves = [125 * 2**octave for octave in range(6)]  # 125 Hz ... 4 kHz
    levels = [10 * np.log10(band_power(noise, low, 2 * low) / low) for low in octaves]
    assert np.polyfit(np.arange(len(octaves)), levels, 1)[0] == pytest.approx(slope_db_per_octave, abs=0.5)


def test_reverberation_decays_sixty_decibels_in_the_requested_time():
    impulse = np.zeros(16000, np.float32)
    impulse[0] = 1.0
    response = augmentation.reverberate(impulse, 0.5, np.random.default_rng(4), wet=1.0)
    # Schroeder's backward-integrated energy decay; the -5 to -25 dB line extrapolated to -60 dB.
    energy = response.astype(np.float64) ** 2
    decay = 10 * np.log10(np.cumsum(energy[::-1])[::-1] / energy.sum())
    fit = (decay < -5) & (decay > -25)
    slope_db_per_second = np.polyfit(np.flatnonzero(fit) / 16000, decay[fit], 1)[0]
    assert -60 / slope_db_per_second == pytest.approx(0.5, rel=0.15)


def test_augment_is_deterministic_for_a_seed_and_stays_in_range():
    clip = speech.fit_to_clip(0.5 * np.sin(np.arange(6000) * 0.1).astype(np.float32))
    babble = np.stack([np.roll(clip, shift) for shift in range(0, 8000, 1000)])
    first = augmentation.augment(clip, np.random.default_rng(5), babble)
    np.testing.assert_array_equal(first, augmentation.augment(clip, np.random.default_rng(5), babble))
    assert not np.array_equal(first, augmentation.augment(clip, np.random.default_rng(6), babble))
    for seed in range(20):
        augmented = augmentation.augment(clip, np.random.default_rng(seed), babble)
        assert augmented.shape == clip.shape and augmented.dtype == np.float32 and np.abs(augmented).max() <= 1.0


def test_silence_clips_are_quiet():
    babble = np.random.default_rng(7).uniform(-0.5, 0.5, (8, 16000)).astype(np.float32)
    for seed in range(30):
        clip = augmentation.silence_clip(np.random.default_rng(seed), babble)
        assert clip.shape == (16000,) and 10 * np.log10(np.mean(clip.astype(np.float64) ** 2) + 1e-12) < -20


def test_fit_to_clip_centers_short_clips_and_cuts_long_ones_around_their_center():
    short = speech.fit_to_clip(np.ones(1000, np.float32))
    assert short.shape == (16000,) and np.flatnonzero(short)[[0, -1]].tolist() == [7500, 8499]
    long = speech.fit_to_clip(np.arange(20000, dtype=np.float32))
    np.testing.assert_array_equal(long, np.arange(2000, 18000))


def test_a_word_longer_than_the_clip_is_sped_up_whole_not_cut(tmp_path):
    word = np.sin(np.arange(24000) * 0.2).astype(np.float32)
    synthesis.postprocess(word, tmp_path / "long.wav")
    kept = speech.read_wav(tmp_path / "long.wav")
    assert 0.9 * synthesis.LONGEST_WORD <= kept.size <= synthesis.LONGEST_WORD
    assert np.abs(kept).max() == pytest.approx(0.5, abs=0.01)
    # Sped up, not cut: the tone's frequency rose by the length ratio.
    peak_ratio = np.argmax(np.abs(np.fft.rfft(kept))) / kept.size / (np.argmax(np.abs(np.fft.rfft(word))) / word.size)
    assert peak_ratio == pytest.approx(24000 / kept.size, rel=0.02)


def test_spokennumbers_gives_the_ten_digits_at_16_kilohertz():
    audio, labels = speech.load_spokennumbers()
    assert labels == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for path, clip in zip(recordings.spokennumbers_files(), audio):
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


def test_speech_commands_fails_fast_offline(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="load_speech_keywords"):
        speech.load_speech_commands()
    assert time.monotonic() - start < FAIL_FAST_SECONDS


def test_speech_commands_labels_map_onto_ours():
    import tensorflow_datasets

    # The installed builder's own label list, read without downloading anything.
    module = importlib.import_module(tensorflow_datasets.builder_cls("speech_commands").__module__)
    assert module.WORDS + [module.SILENCE, module.UNKNOWN] == recordings.SPEECH_COMMANDS_LABELS
    mapped = [speech.LABELS[recordings._our_label(name)] for name in recordings.SPEECH_COMMANDS_LABELS]
    assert set(mapped) == set(speech.KEYWORDS[:10]) | {"_silence_", "_unknown_"}
    assert set(recordings.OURS_MISSING_FROM_SPEECH_COMMANDS) == set(speech.LABELS) - set(mapped)


@pytest.fixture
def no_apt_get(monkeypatch):
    """Any subprocess call fails the test: nothing may be installed behind the caller's back."""

    def refuse(command, *arguments, **keyword_arguments):
        raise AssertionError(f"ran {command}")

    monkeypatch.setattr(engines.subprocess, "run", refuse)


def test_loading_the_corpus_without_engines_installs_nothing_and_says_how_to(monkeypatch, tmp_path, no_apt_get):
    monkeypatch.setattr(engines, "missing_engine_packages", lambda: ["espeak-ng", "festvox-kallpc16k"])
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # even as root
    with pytest.raises(speech.EnginesMissing) as caught:
        speech.load_speech_keywords(cache_dir=tmp_path, config=TINY)
    assert isinstance(caught.value, RuntimeError)
    message = str(caught.value)
    assert "['espeak-ng', 'festvox-kallpc16k']" in message and "make venv" in message
    assert "sudo apt-get install -y --no-install-recommends espeak-ng festvox-kallpc16k" in message
    assert not list(tmp_path.iterdir())  # no partial corpus left behind


def test_install_engines_without_root_says_what_to_install(monkeypatch, no_apt_get):
    monkeypatch.setattr(engines, "missing_packages", lambda: ["flite"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(speech.EnginesMissing, match="apt-get install -y --no-install-recommends flite"):
        speech.install_engines()


def test_install_engines_as_root_updates_the_package_list_only_when_install_fails(monkeypatch):
    missing = [["flite"], []]  # before installing, after
    commands = []

    class Result:
        def __init__(self, returncode):
            self.returncode = returncode

    def run(command, check=False, env=None):
        commands.append(command)
        return Result(1 if len(commands) == 1 else 0)  # the first install fails: a stale package list

    monkeypatch.setattr(engines, "missing_packages", lambda: missing.pop(0))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(engines.subprocess, "run", run)
    assert speech.install_engines() == ["flite"]
    install = ["apt-get", "install", "-y", "--no-install-recommends", "flite"]
    assert commands == [install, ["apt-get", "update"], install]


def test_install_engines_command_touches_the_stamp_only_when_everything_is_installed(monkeypatch, tmp_path, capsys):
    from data.speech import __main__ as command_line

    stamp = tmp_path / "stamp"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(engines, "missing_packages", lambda: ["flite"])
    command_line.main(["install-engines", "--stamp", str(stamp)])
    assert not stamp.exists() and "apt-get install -y --no-install-recommends flite" in capsys.readouterr().out
    monkeypatch.setattr(engines, "missing_packages", lambda: [])
    command_line.main(["install-engines", "--stamp", str(stamp)])
    assert stamp.exists()


def test_corpus_config_key_changes_with_any_field():
    keys = {
        speech.CorpusConfig().key(),
        speech.CorpusConfig.quick().key(),
        speech.CorpusConfig(unknown_words_per_rendering=5).key(),
        TINY.key(),
    }
    assert len(keys) == 4


def test_the_default_keywords_keep_the_cache_keys_built_before_keywords_could_be_chosen():
    assert speech.CorpusConfig().key() == "5cd59be530" and speech.CorpusConfig.quick().key() == "2bb1e5fd49"
    assert speech.CorpusConfig(keywords=list(speech.KEYWORDS)).key() == "5cd59be530"
    assert "keywords" not in speech.CorpusConfig().cache_fields()
    custom = speech.CorpusConfig(keywords=["lights on", "lights off"])
    assert custom.key() not in {speech.CorpusConfig().key(), speech.CorpusConfig(keywords=["lights on"]).key()}
    # Normalized before hashing: the same keywords written another way are the same corpus.
    assert custom.key() == speech.CorpusConfig(keywords=(" Lights  ON", "lights off")).key()


@pytest.mark.parametrize(
    "keywords, complaint",
    [([], "at least one"), ("yes", "a list"), (["yes", "Yes"], "once"), (["yes", " "], "not empty"),
     (["yes", None], "not empty"), (['say "hi"'], "letters and digits"), (["_unknown_"], "letters and digits")],
)  # fmt: skip
def test_bad_keywords_are_refused(keywords, complaint):
    with pytest.raises(ValueError, match=complaint):
        speech.load_speech_keywords(keywords=keywords)


def test_unknown_words_never_say_a_keyword_or_a_word_of_one():
    unknown = vocabulary.unknown_words_for(["light on", "open", "yeah"])
    assert not {"light", "on", "open", "yeah"} & set(unknown)
    assert set(vocabulary.UNKNOWN_WORDS) - set(unknown) == {"light", "open", "yeah"}
    assert vocabulary.unknown_words_for(speech.KEYWORDS) == vocabulary.UNKNOWN_WORDS


@needs_engines
def test_a_corpus_of_custom_keywords_says_them_with_unknown_and_silence(tmp_path):
    loaded = speech.load_speech_keywords(keywords=["light on", "Open"], cache_dir=tmp_path, config=TINY, processes=1)
    assert loaded["labels"] == ["light on", "open", "_silence_", "_unknown_"]
    assert loaded["source"] == "synthetic corpus (espeak-ng)" and loaded["dropped"] == {}
    assert loaded["manifest"].parent.name.endswith(dataclasses.replace(TINY, keywords=("light on", "open")).key())
    rows = manifest(loaded)
    for split in sources.SPLIT_NAMES:
        audio, labels = loaded[split]
        assert audio.shape == (len(labels), speech.CLIP_SAMPLES) and set(labels) == {0, 1, 2, 3}
        words = loaded["words"][split]
        assert set(words[labels == 0]) == {"light on"} and set(words[labels == 1]) == {"open"}
    unknown = set(rows.loc[rows["label"] == "_unknown_", "word"])
    assert unknown and not unknown & {"light on", "light", "on", "open"}
    assert rows.loc[rows["word"] == "light on", "path"].str.endswith("_light_on.wav").all()
    assert not rows["path"].str.contains(" ").any()


@pytest.mark.slow
@needs_engines
def test_quick_corpus_builds_within_a_minute_with_every_label(tmp_path):
    start = time.monotonic()
    loaded = speech.load_speech_keywords(quick=True, cache_dir=tmp_path)
    assert time.monotonic() - start < 60
    for split in sources.SPLIT_NAMES:
        assert set(loaded[split][1]) == set(range(22))
    assert "flite:rms" in loaded["voices"]["test"] and "flite:slt" in loaded["voices"]["train"]
