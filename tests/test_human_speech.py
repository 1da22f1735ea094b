"""The recordings of people from Debian packages: roles that never share a speaker or a file, a clear error when a
package is missing, 16 kHz mono float32 audio in [-1, 1], and keyword flags from the transcripts."""

import dataclasses
import pathlib

import numpy as np
import pytest

from data.speech import engines, human, sound

needs_recordings = pytest.mark.skipif(
    bool(human.missing_packages()),
    reason="the human speech packages are not installed: "
    + " ".join(engines.install_command(human.missing_packages())),
)


@pytest.fixture(scope="module")
def by_role():
    return {role: human.recordings(role) for role in human.ROLES}


def test_every_source_has_one_role_and_the_roles_share_no_speaker_or_folder():
    assert {source.role for source in human.SOURCES} == set(human.ROLES)
    assert len({source.name for source in human.SOURCES}) == len(human.SOURCES)
    for field in ("speaker", "folder"):
        for role in human.ROLES:
            mine = {getattr(source, field) for source in human.SOURCES if source.role == role}
            others = {getattr(source, field) for source in human.SOURCES if source.role != role}
            assert not mine & others, (field, role)


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="Received: role='test'"):
        human.recordings("test")


def test_a_missing_package_is_named_with_its_install_command(monkeypatch, tmp_path):
    absent = dataclasses.replace(human.SOURCES[1], package="ktuberling-data", folder=str(tmp_path / "absent"))
    monkeypatch.setattr(human, "SOURCES", (human.SOURCES[0], absent))
    assert human.missing_packages(absent.role) == ["ktuberling-data"]
    with pytest.raises(human.HumanSpeechMissing) as caught:
        human.load_human_speech(absent.role)
    message = str(caught.value)
    assert "ktuberling-data" in message and "apt-get install" in message and "make venv" in message
    assert "ktuberling-data" in engines.missing_packages()  # the explicit install step installs it


def test_keywords_are_found_in_words_homophones_and_numerals():
    assert human.keywords_in("Front Left") == ("left",)
    assert human.keywords_in("Please press 1, or 20 to go back.") == ("one", "two", "zero", "go")
    assert human.keywords_in("I know it's too late for that.") == ("no", "two", "four")
    assert human.keywords_in("The party you are calling is busy.") == ()


@needs_recordings
def test_the_roles_share_no_recording_or_speaker(by_role):
    for role, recordings in by_role.items():
        assert recordings and {recording.role for recording in recordings} == {role}
        others = [recording for other, more in by_role.items() if other != role for recording in more]
        assert not {recording.path for recording in recordings} & {recording.path for recording in others}
        assert not {recording.speaker for recording in recordings} & {recording.speaker for recording in others}


@needs_recordings
def test_keyword_free_keeps_only_recordings_known_to_hold_no_keyword(by_role):
    evaluation = by_role["evaluation"]
    assert all(recording.transcript is not None for recording in evaluation)  # every prompt has its transcript
    free = [recording for recording in evaluation if recording.contains_keyword is False]
    assert 0 < len(free) < len(evaluation)
    _, chosen = human.load_human_speech("evaluation", keyword_free=True)
    assert chosen == free


@needs_recordings
def test_audio_is_16_khz_mono_float32_within_one(by_role):
    import soundfile

    for source in human.SOURCES:
        recordings = [recording for recording in by_role[source.role] if recording.source == source.name][:3]
        assert recordings, source.name
        for recording in recordings:
            audio = human.read_audio(recording.path)
            original = soundfile.info(recording.path)
            assert audio.dtype == np.float32 and audio.ndim == 1
            assert np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0.01
            assert abs(audio.size - original.duration * sound.SAMPLE_RATE) <= 2, recording.path


def test_each_source_has_its_documented_role():
    roles = {source.name: source.role for source in human.SOURCES}
    assert roles == {"asterisk-allison": "evaluation", "asterisk-june-fr": "validation", "asterisk-carlo-it": "train",
                     "asterisk-ivrvoice-ru": "train", "ktuberling-en": "train", "klettres-en": "train",
                     "klettres-en-gb": "train", "alsa-channels": "train"}  # fmt: skip
    assert {source.language for source in human.SOURCES if source.role != "evaluation"} >= {"fr", "it", "ru"}
    # Every running-speech language but the test speaker's English has its sound-alike words written down.
    assert {source.language for source in human.SOURCES if source.language != "en"} <= set(human.SOUNDALIKES)


def test_allison_smith_speaks_only_in_evaluation_in_any_language():
    allison = [source for source in human.SOURCES if "Allison" in source.speaker or "Allison" in source.folder]
    assert [source.name for source in allison] == ["asterisk-allison"]
    assert {source.role for source in allison} == {"evaluation"}
    # Her Spanish prompts are left out, and no source, so no install step, takes them.
    spanish = "/usr/share/asterisk/sounds/es_MX_f_Allison"
    assert spanish in human.EXCLUDED and "Allison Smith" in human.EXCLUDED[spanish]
    assert not set(human.EXCLUDED) & {source.folder for source in human.SOURCES}
    assert "asterisk-core-sounds-es-wav" not in {package for source in human.SOURCES for package in source.packages()}


def test_keyword_like_words_of_each_language_are_found():
    assert human.keywords_in("Non-identifié ou retenu", "fr") == ("no",)
    assert human.keywords_in("Salut tout le monde.", "fr") == ("two",)
    assert human.keywords_in("pour l'aide, appuyez sur 0.", "fr") == ("zero",)
    assert human.keywords_in("Извините, но голосовой ящик абонента переполнен.", "ru") == ("no",)
    assert human.keywords_in("Per bloccare, o sbloccare la conferenza", "it") == ("zero",)  # "o", the letter O
    assert human.keywords_in("Prego lasciare un messaggio dopo il segnale acustico.", "it") == ()
    assert human.keywords_in("sei", "it") == () and human.keywords_in("три", "ru") == ()  # "say", "tree"
    # The foreign words are not read as English, nor the English as foreign: "tout" is a French word only.
    assert human.keywords_in("tout", "en") == () and human.keywords_in("n'êtes", "fr") == ()


def test_a_foreign_prompt_is_keyword_free_for_the_keywords_it_does_not_sound_like():
    prompt = human.Recording("asterisk-june-fr", "hello-world.wav", "June", "validation", "Salut tout le monde.",
                             ("two",), "fr")  # fmt: skip
    assert not human.free_of(prompt, ["two", "yes"])
    assert human.free_of(prompt, ["yes", "no"])
    assert not human.free_of(dataclasses.replace(prompt, transcript=None, keywords=None), ["yes"])


@needs_recordings
def test_keyword_like_and_untranscribed_prompts_are_never_keyword_free(by_role):
    from data.speech import vocabulary

    for role, recordings in by_role.items():
        free = [recording for recording in recordings if human.free_of(recording, vocabulary.KEYWORDS)]
        assert free, role
        for recording in free:
            assert recording.keywords == () and recording.transcript is not None, recording.path
    french = {pathlib.Path(recording.path).name: recording for recording in by_role["validation"]}
    assert french["hello-world.wav"].keywords == ("two",)  # "Salut tout le monde."
    assert french["unidentified-no-callback.wav"].keywords == ("no",)  # "Non-identifié ..."
    assert french["beep.wav"].transcript is None  # no transcript: never taken for keyword-free speech
    # Tones transcribed in words ("un suono di beep", "<beep ascending>") are no speech.
    foreign = [recording for role in ("train", "validation") for recording in by_role[role]]
    tones = [recording.path for recording in foreign if recording.keywords == () and "beep" in recording.transcript]
    assert not tones


@needs_recordings
def test_validation_and_test_negatives_hold_their_own_people_only(monkeypatch, tmp_path):
    from data.speech import negatives, vocabulary

    (tmp_path / "manifest.json").write_text('{"files": [], "seconds": 0}')  # no synthetic audio: only the people
    monkeypatch.setattr(negatives, "build_long_negatives", lambda *arguments: tmp_path)
    by_split = {split: negatives.load_long_negatives(split)[1]["files"] for split in ("validation", "test")}
    assert negatives.load_long_negatives("validation", human=False)[1]["files"] == []
    sources = {split: set(entry["sources"]) for split, (entry,) in by_split.items()}
    assert sources == {"validation": {"asterisk-june-fr"}, "test": {"asterisk-allison"}}
    for split, role in negatives.HUMAN_ROLES.items():
        (entry,) = by_split[split]
        free = [recording for recording in human.recordings(role) if human.free_of(recording, vocabulary.KEYWORDS)]
        assert entry["recordings"] == len(free) and entry["kind"] == "human speech"
        assert set(entry["voices"]) == {source.speaker for source in human.SOURCES if source.role == role}
    with pytest.raises(ValueError, match="Received: split='train'"):
        negatives.load_long_negatives("train", human=True)


@needs_recordings
def test_training_running_speech_clips_come_from_training_sources_only(monkeypatch, tmp_path):
    from data.speech import corpus, vocabulary

    config = corpus.CorpusConfig(human_running_speech_clips=7)
    rows = corpus._human_running_speech_rows(tmp_path, 0, config)
    assert rows["speaker"].value_counts().to_dict() == {"human:asterisk-carlo-it": 4, "human:asterisk-ivrvoice-ru": 3}
    assert set(rows["label"]) == {vocabulary.UNKNOWN} and set(rows["split"]) == {"train"}
    for path in rows["path"]:
        clip = sound.read_wav(tmp_path / path)
        first, last = sound.voiced_extent(clip, 0.1)
        assert clip.shape == (sound.CLIP_SAMPLES,) and last - first >= 0.3 * sound.SAMPLE_RATE
    # Roles decide: a running-speech source moved out of training gives no clip.
    moved = tuple(dataclasses.replace(source, role="validation") if source.name == "asterisk-carlo-it" else source
                  for source in human.SOURCES)  # fmt: skip
    monkeypatch.setattr(human, "SOURCES", moved)
    rows = corpus._human_running_speech_rows(tmp_path / "moved", 0, config)
    assert set(rows["speaker"]) == {"human:asterisk-ivrvoice-ru"} and len(rows) == 7
    # The single-word rows never take the prompts.
    assert not corpus._human_rows(tmp_path / "words", config)["speaker"].str.contains("asterisk").any()
