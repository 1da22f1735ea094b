"""The speech app's `listen` on long and odd recordings: the WAV read in blocks equals the whole-file reader
sample for sample, in memory that does not grow with the file; the batched window streams equal one stream per
call (the path they replaced, benchmarks/listen_speed.py keeps it); stereo, 8 and 48 kHz, silence, clipping and
broken files through `listen` and `predict` get a result or a clear error."""

import json
import struct
import tracemalloc
import wave

import numpy as np
import pytest
import scipy.io.wavfile
import tensorflow as tf

from apps import pipeline, speech_keywords
from apps.speech_keywords import SAMPLE_RATE
from benchmarks import listen_speed
from benchmarks.listen_speed import stream_windows_one_per_call
from data import speech
from data.speech import sound
from tests.helpers import folders

NAME = "speech_keywords"


def tone_bursts(seconds, rate, seed=0):
    """Noise with a tone burst of random pitch in every second, so that windows differ, as float64 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * rate)) / rate
    audio = 0.02 * rng.normal(size=time.shape)
    for second in range(int(np.ceil(seconds))):
        burst = (time >= second + 0.2) & (time < second + 0.2 + rng.uniform(0.2, 0.6))
        audio[burst] += 0.4 * np.sin(2 * np.pi * rng.uniform(150, 900) * time[burst])
    return np.clip(audio, -1, 1)


def write_pcm24(path, rate, audio):
    """A 24-bit PCM WAV (scipy writes none), by its RIFF layout: header, fmt chunk, data chunk."""
    samples = np.round(audio * (2**23 - 1)).astype("<i4")
    data = samples.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()  # the low three bytes, little-endian
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 3, 3, 24)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 24 + 8 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
                     + fmt + b"data" + struct.pack("<I", len(data)) + data)  # fmt: skip
    return path


def write_file(path, kind, seconds=1.3):
    """A WAV file of `kind`: what `listen` and `predict` must read (or refuse) clearly."""
    audio = tone_bursts(seconds, 16000)
    if kind == "mono 16 kHz":
        scipy.io.wavfile.write(path, 16000, sound.to_pcm16(audio))
    elif kind == "stereo":  # two different channels, mixed to their mean
        scipy.io.wavfile.write(path, 16000, np.stack([sound.to_pcm16(audio), sound.to_pcm16(audio[::-1])], axis=1))
    elif kind in ("8 kHz", "48 kHz", "44.1 kHz float stereo", "22.05 kHz 8-bit"):
        rate = {"8 kHz": 8000, "48 kHz": 48000, "44.1 kHz float stereo": 44100, "22.05 kHz 8-bit": 22050}[kind]
        audio = tone_bursts(seconds, rate)
        if kind == "44.1 kHz float stereo":
            samples = np.stack([audio, -audio], axis=1).astype(np.float32)
        elif kind == "22.05 kHz 8-bit":
            samples = np.round(audio * 127 + 128).astype(np.uint8)
        else:
            samples = sound.to_pcm16(audio)
        scipy.io.wavfile.write(path, rate, samples)
    elif kind == "24-bit":
        write_pcm24(path, 16000, audio)
    elif kind == "silence":
        scipy.io.wavfile.write(path, 16000, np.zeros(int(seconds * 16000), np.int16))
    elif kind == "clipping":  # a full-scale square wave: every sample at the rails
        square = np.where(np.sin(2 * np.pi * 440 * np.arange(int(seconds * 16000)) / 16000) >= 0, 32767, -32768)
        scipy.io.wavfile.write(path, 16000, square.astype(np.int16))
    elif kind == "no samples":
        scipy.io.wavfile.write(path, 16000, np.zeros(0, np.int16))
    elif kind == "truncated data":  # the header promises 1.3 s, the file holds a quarter of it
        write_file(path, "mono 16 kHz", seconds)
        path.write_bytes(path.read_bytes()[: 44 + len(audio) // 2])
    elif kind == "cut in the header":
        write_file(path, "mono 16 kHz", seconds)
        path.write_bytes(path.read_bytes()[:30])
    elif kind == "not a WAV":
        path.write_bytes(b"ID3\x03 this is an MP3, not a WAV")
    elif kind == "a rate of 0 Hz":  # a corrupt header that scipy accepts: its byte rate is 0 too
        write_file(path, "mono 16 kHz", seconds)
        header = bytearray(path.read_bytes())
        header[24:32] = bytes(8)
        path.write_bytes(header)
    else:
        raise AssertionError(kind)
    return path


READABLE = ["mono 16 kHz", "stereo", "8 kHz", "48 kHz", "44.1 kHz float stereo", "22.05 kHz 8-bit", "24-bit", "silence",
            "clipping", "no samples"]  # fmt: skip
BROKEN = {  # what the error names (`read_wav`, which reads the data, says also how many bytes it expected)
    "truncated data": "a truncated WAV file",
    "cut in the header": "not a readable WAV file",
    "not a WAV": "not a readable WAV file",
    "a rate of 0 Hz": r"its header gives a sample rate of 0 Hz; expected a positive rate",
}


# ---------------------------------------------------------------------------------------------------------
# Reading in blocks
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", READABLE)
def test_wav_blocks_are_the_whole_file_reader_sample_for_sample(tmp_path, kind):
    path = write_file(tmp_path / "file.wav", kind)
    whole = speech.read_wav(path)
    reader = speech.WavBlocks(path, block_seconds=0.07)  # many blocks, none a multiple of a resampling period
    blocks = list(reader)
    assert len(reader) == len(whole)
    assert all(block.dtype == np.float32 for block in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks) if blocks else np.zeros(0, np.float32), whole)
    if kind in ("mono 16 kHz", "stereo") and len(blocks) > 1:
        assert len(blocks[0]) == round(0.07 * 16000)


@pytest.mark.parametrize("rate", [8000, 11025, 44100, 48000, 7999])
def test_resampling_in_blocks_of_any_sizes_is_resampling_the_whole(rate):
    audio = np.random.default_rng(rate).normal(0, 0.3, int(rate * 2.3)).astype(np.float32)
    sizes = np.random.default_rng(1).integers(1, rate // 3, 200)
    cuts = np.cumsum(np.concatenate([[1, 1, 1], sizes]))  # three one-sample blocks first, then random sizes
    blocks = np.split(audio, cuts[cuts < len(audio)])
    resampled = np.concatenate(list(sound.resample_blocks(blocks, rate)))
    np.testing.assert_array_equal(resampled, sound.resample(audio, rate))


def test_wav_blocks_memory_does_not_grow_with_the_file(tmp_path):
    """Three minutes of 48 kHz stereo (33 MB as a file; 11 MB as the 16 kHz float32 that `read_wav` returns):
    reading it in blocks holds a few blocks' worth of NumPy memory (tracemalloc sees NumPy's allocations)."""
    path, rate = tmp_path / "long.wav", 48000
    with wave.open(str(path), "wb") as file:
        file.setnchannels(2)
        file.setsampwidth(2)
        file.setframerate(rate)
        for second in range(180):
            pcm = sound.to_pcm16(tone_bursts(1.0, rate, seed=second))
            file.writeframes(np.stack([pcm, pcm], axis=1).tobytes())
    reader = speech.WavBlocks(path, block_seconds=1.0)
    tracemalloc.start()
    try:
        samples = sum(len(block) for block in reader)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert samples == len(reader) == 180 * 16000
    assert peak < 3 * 2**20, f"{peak / 2**20:.1f} MB held while reading; the whole recording is 11 MB"


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_files_are_refused_before_any_audio_is_read(tmp_path, kind):
    path = write_file(tmp_path / "broken.wav", kind)
    with pytest.raises(ValueError, match=BROKEN[kind]) as error:
        speech.WavBlocks(path)
    if kind == "truncated data":
        assert "its header promises more audio than the file's 10444 bytes hold" in str(error.value)
    with pytest.raises(ValueError, match=f"Could not read a WAV file at {path}. Received: .*{BROKEN[kind]}"):
        speech_keywords.read_wav(path, blocks=True)


def test_wav_blocks_need_a_positive_block_length(tmp_path):
    with pytest.raises(ValueError, match="`block_seconds` must be positive. Received: block_seconds=0"):
        speech.WavBlocks(write_file(tmp_path / "file.wav", "mono 16 kHz"), block_seconds=0)


# ---------------------------------------------------------------------------------------------------------
# Through the quick model: batched streams, the verbs
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_speech(trained_app):
    return trained_app(NAME)


@pytest.fixture(scope="module")
def signatures(trained_speech):
    return tf.saved_model.load(str(trained_speech[1] / "saved_models" / NAME / "1")).signatures


def test_batched_windows_and_detections_equal_one_stream_per_call(trained_speech, signatures, tmp_path, monkeypatch):
    """On test-voice words from the quick corpus, at hops that divide the second and one that does not, and read
    whole or in blocks: the same windows, bit for bit, and so the same detections."""
    recording = tmp_path / "demo.wav"
    pipeline.main(speech_keywords.SpeechKeywordsApp(),
                  ["demo-recording", str(recording), "--quick", "--words", "yes", "two", "stop",
                   "--gap-seconds", "0.55", *folders(trained_speech[1])])  # fmt: skip
    audio = speech.read_wav(recording)
    labels = speech_keywords.labels_of(signatures)
    for hop_ms in (100, 200, 300, 1000):
        expected = stream_windows_one_per_call(signatures["stream"], audio, hop_ms)
        for source in (audio, speech.WavBlocks(recording, block_seconds=0.37)):
            windows = list(speech_keywords.stream_windows(signatures["stream"], source, hop_ms))
            assert [centre for centre, _ in windows] == [centre for centre, _ in expected], hop_ms
            for (_, probabilities), (_, reference) in zip(windows, expected):
                np.testing.assert_array_equal(probabilities, reference)
    # The quick model may rank `_unknown_` or `_silence_` first in every window (it did on corpus version 8), which
    # would leave both sides empty; named as keywords here, every class can be detected, so the rule has windows to
    # pick from and merge on both sides.
    every_class = [f"class {index}" for index in range(len(labels))]
    detections = speech_keywords.detect(signatures["stream"], speech.WavBlocks(recording), every_class, threshold=0.0)
    monkeypatch.setattr(speech_keywords, "stream_windows", stream_windows_one_per_call)
    assert detections and detections == speech_keywords.detect(signatures["stream"], audio, every_class, threshold=0.0)


def test_one_call_per_chunk_and_one_more_a_second(signatures):
    """Five concurrent windows at the default hop take one call per 100 ms chunk, and one call per second begins
    the windows of the second ahead: a second of audio and the second of silence after it take 21 calls (the
    first chunk has no stream to continue yet), where one stream per call took 80."""
    batches, singles = [], []

    def counting(calls):
        def call(**inputs):
            calls.append(inputs["audio"].shape[0])
            return signatures["stream"](**inputs)

        return call

    audio = np.zeros(SAMPLE_RATE, np.float32)
    windows = list(speech_keywords.stream_windows(counting(batches), audio))
    assert len(windows) == len(stream_windows_one_per_call(counting(singles), audio)) == 6  # begun at 0, 0.2, ..., 1 s
    assert len(batches) == 21 and max(batches) == 5
    assert len(singles) == 80 and max(singles) == 1


@pytest.mark.parametrize("kind", READABLE)
def test_listen_and_predict_answer_odd_files(trained_speech, tmp_path, capsys, kind):
    path = write_file(tmp_path / "odd.wav", kind)
    app, arguments = speech_keywords.SpeechKeywordsApp(), folders(trained_speech[1])
    detections = pipeline.main(app, ["listen", str(path), "--threshold", "0", *arguments])
    seconds = len(speech.read_wav(path)) / SAMPLE_RATE
    assert f"{path}: {seconds:.1f} s, {len(detections)} keyword(s)" in capsys.readouterr().out
    assert all(0 <= centre <= seconds + 1 and 0 <= probability <= 1 for centre, _, probability in detections)
    outputs = pipeline.main(app, ["predict", str(path), *arguments])
    assert outputs["label"].shape == (1,) and np.all(np.isfinite(outputs["probabilities"]))
    assert "clip 1:" in capsys.readouterr().out


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_listen_and_predict_refuse_broken_files_clearly(trained_speech, tmp_path, kind):
    path = write_file(tmp_path / "broken.wav", kind)
    expected = f"Could not read a WAV file at {path}. Received: .*{BROKEN[kind]}"
    for verb in ("listen", "predict"):
        with pytest.raises(ValueError, match=expected):
            pipeline.main(speech_keywords.SpeechKeywordsApp(), [verb, str(path), *folders(trained_speech[1])])


def test_listen_speed_benchmark_writes_its_report(trained_speech, tmp_path):
    """A few seconds of the benchmark's recording through both paths: its report and numbers are written, and
    the two paths' windows are identical (the timings themselves are not checked: the cores are shared)."""
    export = trained_speech[1] / "saved_models" / NAME / "1"
    wav = listen_speed.write_recording(tmp_path / "recording.wav", 6)
    assert speech.WavBlocks(wav).frames == 6 * SAMPLE_RATE
    results = listen_speed.main(["--export", str(export), "--wav", str(wav), "--old-seconds", "2",
                                 "--output", str(tmp_path / "reports")])  # fmt: skip
    assert results["audio_seconds"] == 6 and results["slice_seconds"] == 2 and results["slice_windows_identical"]
    assert results["real_time_factor"] > 0 and results["peak_resident_mb_after"] >= results["peak_resident_mb_before"]
    assert json.loads((tmp_path / "reports" / "listen_speed.json").read_text())["command"] == results["command"]
    assert f"--wav {wav}" in (tmp_path / "reports" / "listen_speed.md").read_text()


def crafted_windows(labels):
    """Windows on `listen`'s grid, in place of the stream's: a lone window that says the first keyword at 0.9,
    then the second keyword held over three windows at 0.8. One window: both found; three windows averaged: the
    lone one falls to 0.3 (silence wins), the held word is found at its third window."""
    keyword = [index for index, label in enumerate(labels) if label not in (speech.SILENCE, speech.UNKNOWN)][:2]
    silence = np.zeros(len(labels))
    silence[labels.index(speech.SILENCE)] = 1.0
    lone, held = 0.1 * silence, 0.2 * silence
    lone[keyword[0]], held[keyword[1]] = 0.9, 0.8
    rows = [silence] * 5 + [lone] + [silence] * 5 + [held] * 3 + [silence] * 5

    def stream_windows(stream_signature, audio, hop_ms=200):
        yield from ((0.5 + 0.2 * index, row.astype(np.float32)) for index, row in enumerate(rows))

    return stream_windows, [labels[index] for index in keyword]


def test_export_ships_its_smoothing_and_listen_averages_that_many_windows(trained_speech, tmp_path, monkeypatch):
    """The head's smoothing goes through the export's `labels` signature to `listen`; `--smoothing` overrides it
    and is checked; an export without `smoothing` (made before it) listens with 1."""
    import keras

    app = speech_keywords.SpeechKeywordsApp()
    config = pipeline.config_from_arguments(app, pipeline.build_parser(app).parse_args(
        ["train", "--quick", *folders(tmp_path)]))  # fmt: skip
    data = app.load_data(config)
    model = keras.saving.load_model(trained_speech[1] / "runs" / NAME / "model.keras")
    assert model.get_layer("probabilities").smoothing == 1  # --quick does not calibrate
    model.get_layer("probabilities").set_smoothing(3)
    version_dir = pipeline.export(app, model, config, data)
    signatures = tf.saved_model.load(str(version_dir)).signatures
    answer = signatures["labels"]()["smoothing"]
    assert answer.dtype == tf.int32 and answer.shape == () and speech_keywords.signature_smoothing(signatures) == 3
    labels = speech_keywords.labels_of(signatures)
    stream_windows, (first, second) = crafted_windows(labels)
    monkeypatch.setattr(speech_keywords, "stream_windows", stream_windows)
    recording = tmp_path / "quiet.wav"
    speech.write_wav(recording, np.zeros(16000, np.float32))
    found = pipeline.main(app, ["listen", str(recording), *folders(tmp_path)])  # thresholds: 0.7, not calibrated
    assert [(round(centre, 1), label) for centre, label, _ in found] == [(3.1, second)]
    assert found[0][2] == pytest.approx(0.8)
    one = pipeline.main(app, ["listen", str(recording), "--smoothing", "1", *folders(tmp_path)])
    assert [(round(centre, 1), label) for centre, label, _ in one] == [(1.5, first), (2.7, second)]
    for bad in ("0", "-2"):
        with pytest.raises(ValueError, match=f"--smoothing is the number of windows averaged.*Received: {bad}"):
            pipeline.main(app, ["listen", str(recording), "--smoothing", bad, *folders(tmp_path)])
    with pytest.raises(SystemExit):  # not an integer: argparse refuses it
        pipeline.main(app, ["listen", str(recording), "--smoothing", "2.5", *folders(tmp_path)])
    # An export made before smoothing: its `labels` signature has no `smoothing`.
    old = {"stream": signatures["stream"],
           "labels": lambda: {key: value for key, value in signatures["labels"]().items() if key != "smoothing"}}
    assert speech_keywords.signature_smoothing(old) == 1
    arguments = pipeline.build_parser(app).parse_args(["listen", str(recording), *folders(tmp_path)])
    assert speech_keywords.listen_with(old, arguments, "an old export") == one
