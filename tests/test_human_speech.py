"""The recordings of people from Debian packages: roles that never share a speaker or a file, a clear error when a
package is missing, 16 kHz mono float32 audio in [-1, 1], and keyword flags from the transcripts."""

import dataclasses

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
