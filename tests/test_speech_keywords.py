"""The speech keyword app: features against a NumPy log-mel, quick training end to end, the export's three
signatures in a fresh process, streaming against the whole clip, odd and bad audio, and the CLI verbs.
(Training on the user's own folder and on chosen keywords: test_speech_keywords_user_data.py.)"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps import pipeline, speech_keywords
from apps.speech_keywords import CLIP_SAMPLES, SAMPLE_RATE
from data import speech
from tests.helpers import folders, run_without_our_code

NAME = "speech_keywords"
LABELS = list(speech.LABELS)  # the quick corpus speaks the default keywords


# ---------------------------------------------------------------------------------------------------------
# An independent log-mel in NumPy, written from the definitions
# ---------------------------------------------------------------------------------------------------------


def hertz_to_mel(hertz):
    return 1127.0 * np.log1p(np.asarray(hertz, np.float64) / 700.0)


def vtlp_warp(hertz, alpha, boundary_hertz=4800.0, nyquist_hertz=8000.0):
    """Jaitly & Hinton (2013): f -> alpha f up to f0 = F_hi min(alpha, 1) / alpha, then the straight line from
    (f0, alpha f0) to (S/2, S/2)."""
    hertz = np.asarray(hertz, np.float64)
    start = boundary_hertz * min(alpha, 1.0) / alpha
    line = alpha * start + (hertz - start) * (nyquist_hertz - alpha * start) / (nyquist_hertz - start)
    return np.where(hertz <= start, alpha * hertz, line)


def mel_weights(bands, bins, sample_rate, lower_hertz, upper_hertz, alpha=1.0):
    """Triangles evenly spaced on the mel scale, over the bins' centre frequencies (warped by `alpha`, VTLP);
    the DC bin in none."""
    bin_mels = hertz_to_mel(vtlp_warp(np.linspace(0.0, sample_rate / 2, bins), alpha))[:, None]
    edges = np.linspace(hertz_to_mel(lower_hertz), hertz_to_mel(upper_hertz), bands + 2)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((bin_mels - left) / (centre - left), (right - bin_mels) / (right - centre)))
    weights[0] = 0.0
    return weights


def numpy_log_mel(audio, mean=None, std=None):
    frame_length, frame_step, fft_length = 400, 160, 512
    count = max(0, 1 + (len(audio) - frame_length) // frame_step)
    frames = np.stack([audio[index * frame_step : index * frame_step + frame_length] for index in range(count)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame_length) / frame_length)  # periodic Hann
    magnitudes = np.abs(np.fft.rfft(frames.astype(np.float64) * window, n=fft_length))
    log_mel = np.log(magnitudes @ mel_weights(40, fft_length // 2 + 1, 16000, 20.0, 7600.0) + 1e-2)
    if mean is not None:
        log_mel = (log_mel - np.asarray(mean)) / np.asarray(std)
    return log_mel


def assert_close_log_mel(ours, reference):
    """Unnormalized log-mel frames agree to 1e-4 where the band's energy is well above the log offset (mel
    energy > 1), and to 1e-3 near the floor, where float32 FFT round-off (about 1e-7 of a frame's peak
    magnitude) is a visible fraction of the 1e-2 offset."""
    difference = np.abs(ours - reference)
    assert difference.max() < 1e-3, difference.max()
    assert difference.max(where=reference > 0, initial=0.0) < 1e-4


def test_features_match_a_numpy_log_mel():
    rng = np.random.default_rng(0)
    time = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    chirp = 0.5 * np.sin(2 * np.pi * (100 + 3000 * time) * time)
    audio = np.stack([chirp, rng.normal(0, 0.05, CLIP_SAMPLES), np.zeros(CLIP_SAMPLES)]).astype(np.float32)
    mean, std = rng.normal(0, 1, 40), rng.uniform(0.5, 2, 40)
    plain = speech_keywords.LogMelSpectrogram()(tf.constant(audio)).numpy()
    normalized = speech_keywords.LogMelSpectrogram(mean, std)(tf.constant(audio)).numpy()
    assert plain.shape == normalized.shape == (3, 98, 40)
    for row in range(3):
        reference = numpy_log_mel(audio[row])
        assert_close_log_mel(plain[row], reference)
        assert_close_log_mel(normalized[row] * std + mean, reference)
        np.testing.assert_allclose(normalized[row], numpy_log_mel(audio[row], mean, std), atol=1e-3 / std.min())
    # Any length: 25 ms gives one frame, anything shorter none.
    assert speech_keywords.LogMelSpectrogram()(tf.zeros((2, 399))).shape == (2, 0, 40)
    assert_close_log_mel(speech_keywords.LogMelSpectrogram()(tf.constant(audio[:1, :560])).numpy()[0],
                         numpy_log_mel(audio[0, :560]))


def test_loudest_second_and_padding():
    rng = np.random.default_rng(1)
    long = rng.normal(0, 0.001, (2, 5 * SAMPLE_RATE)).astype(np.float32)
    long[0, 36000:44000] = 0.5  # a loud half second at 2.25-2.75 s
    crops = speech_keywords.loudest_second(tf.constant(long)).numpy()
    assert crops.shape == (2, CLIP_SAMPLES)
    assert np.sum(crops[0] == 0.5) == 8000  # the whole burst is inside the chosen second
    short = np.arange(1, 6001, dtype=np.float32)[None, :]
    padded = speech_keywords.loudest_second(tf.constant(short)).numpy()[0]
    np.testing.assert_array_equal(padded[5000:11000], short[0])  # centred between zeros
    assert not padded[:5000].any() and not padded[11000:].any()
    np.testing.assert_array_equal(speech_keywords.loudest_second(tf.constant(long[:, :CLIP_SAMPLES])).numpy(),
                                  long[:, :CLIP_SAMPLES])  # fmt: skip


def test_stacked_frames_and_config_errors():
    frames = tf.reshape(tf.range(2 * 5 * 3, dtype=tf.float32), (2, 5, 3))
    stacked = speech_keywords.StackFrames(2)(frames).numpy()
    assert stacked.shape == (2, 2, 6)
    np.testing.assert_array_equal(stacked[1, 1], np.r_[frames[1, 2], frames[1, 3]])
    with pytest.raises(ValueError, match="Received: 'rnn'"):
        speech_keywords.SpeechConfig(cell="rnn")
    with pytest.raises(ValueError, match="Received: pooling='first'"):
        speech_keywords.SpeechConfig(pooling="first")
    with pytest.raises(ValueError, match="Received: count=0"):
        speech_keywords.StackFrames(0)
    for keywords, message in [(("on", " on "), r"given once. Received \['on'\]"), (("on", ""), "Received: ''"),
                              (("_silence_",), "Received: '_silence_'")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            speech_keywords.SpeechConfig(keywords=keywords)
    with pytest.raises(ValueError, match=r"Received: keywords=\('on',\) with data_path='here'"):
        speech_keywords.SpeechConfig(keywords=("on",), data_path="here")
    assert speech_keywords.SpeechConfig(keywords=[" lights on", "lights off "]).keywords == ("lights on", "lights off")


def test_head_keeps_its_labels_through_a_saved_model(tmp_path):
    head = speech_keywords.ClassProbabilities(["go", "_silence_", "stop"], name="probabilities")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, head(inputs))
    assert model.output.shape == (None, 3)
    model.save(tmp_path / "model.keras")
    assert speech_keywords.model_labels(keras.models.load_model(tmp_path / "model.keras")) == ["go", "_silence_", "stop"]
    for labels in [["go"], ["go", "go"]]:
        with pytest.raises(ValueError, match="Received: labels="):
            speech_keywords.ClassProbabilities(labels)


def test_metrics_find_the_keywords_wherever_silence_and_unknown_are():
    names = ["_silence_", "left", "_unknown_", "right"]
    truth = np.array([0, 1, 2, 3, 3])
    predicted = np.array([1, 1, 2, 0, 3])
    metrics = speech_keywords.classification_metrics(truth, predicted, names)
    assert metrics["accuracy"] == 0.6
    assert metrics["false_accept_silence"] == 1.0 and metrics["false_accept_unknown"] == 0.0
    assert metrics["keyword_miss_rate"] == pytest.approx(1 / 3)
    assert metrics["per_class_accuracy"] == {"_silence_": 0.0, "left": 1.0, "_unknown_": 1.0, "right": 0.5}
    assert "accuracy_augmented" not in speech_keywords.classification_metrics(truth, predicted, names, [False] * 5)
    without = speech_keywords.classification_metrics(truth[1:2], predicted[1:2], ["a", "left"])
    assert without["false_accept_silence"] is None and without["false_accept_unknown"] is None


# ---------------------------------------------------------------------------------------------------------
# The trained export
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def trained_speech(trained_app):
    return trained_app(NAME)


def export_dir(trained):
    return trained[1] / "saved_models" / NAME / "1"


def test_train_quick_reports_accuracy_false_accepts_and_human_digits(trained_speech):
    _, tmp_path, report = trained_speech
    model = report["model"]
    for name in ("accuracy", "false_accept_unknown", "false_accept_silence", "spokennumbers_accuracy",
                 "validation_accuracy", "validation_false_accept_unknown"):
        assert 0.0 <= model[name] <= 1.0, name
    assert len(model["spokennumbers_predictions"]) == 10
    assert {"majority class", "logistic regression on mean+std log-mel"} <= set(report["baselines"])
    saved = json.loads((tmp_path / "reports" / NAME / "metrics.json").read_text())
    assert any(path.endswith("confusion_matrix.png") for path in saved["plots"])
    assert (export_dir(trained_speech) / "assets" / "labels.txt").read_text().split() == list(LABELS)


def test_export_in_a_fresh_process_classifies_any_length(trained_speech):
    script = f"""
import json, sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load({str(export_dir(trained_speech))!r})
signatures = loaded.signatures
found = {{"names": sorted(signatures)}}
for name, signature in signatures.items():
    found[name] = {{
        "inputs": {{key: spec.dtype.name for key, spec in signature.structured_input_signature[1].items()}},
        "outputs": {{key: spec.dtype.name for key, spec in signature.structured_outputs.items()}},
    }}
rng = np.random.default_rng(0)
shapes = []
for batch, samples in ((1, 8000), (3, 16000), (2, 48000), (2, 0)):
    outputs = signatures["serving_default"](audio=tf.constant(rng.normal(0, 0.1, (batch, samples)), tf.float32))
    shapes.append({{key: list(value.shape) for key, value in outputs.items()}})
    assert np.allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)
found["shapes"] = shapes
found["label_names"] = [label.decode() for label in signatures["labels"]()["labels"].numpy()]
assert "rnn_suite" not in sys.modules and "layers" not in sys.modules and "apps" not in sys.modules
print(json.dumps(found))
"""
    found = run_without_our_code(script, trained_speech[1])
    assert found["names"] == ["labels", "serving_default", "stream"]
    assert found["serving_default"] == {"inputs": {"audio": "float32"},
                                        "outputs": {"label": "string", "probabilities": "float32"}}  # fmt: skip
    assert found["stream"] == {
        "inputs": {"audio": "float32", "pending": "float32", "state": "float32"},
        "outputs": {"label": "string", "probabilities": "float32", "pending": "float32", "state": "float32"},
    }
    assert found["labels"] == {"inputs": {}, "outputs": {"labels": "string", "thresholds": "float32",
                                                         "smoothing": "int32"}}  # fmt: skip
    assert found["label_names"] == list(LABELS)
    for batch, shapes in zip((1, 3, 2, 2), found["shapes"]):
        assert shapes == {"label": [batch], "probabilities": [batch, len(LABELS)]}


def stream_through(signature, audio, chunk):
    pending = np.zeros((len(audio), 0), np.float32)
    state = np.zeros((len(audio), 0), np.float32)
    for begin in range(0, audio.shape[1], chunk):
        piece = audio[:, begin : begin + chunk]
        outputs = signature(audio=tf.constant(piece), pending=tf.constant(pending), state=tf.constant(state))
        pending, state = outputs["pending"].numpy(), outputs["state"].numpy()
    return outputs


def test_streaming_in_chunks_matches_the_whole_clip(trained_speech):
    signatures = tf.saved_model.load(str(export_dir(trained_speech))).signatures
    audio = np.random.default_rng(2).normal(0, 0.1, (3, CLIP_SAMPLES)).astype(np.float32)
    audio[0, 4000:9000] *= 5  # something louder in the middle
    whole = signatures["serving_default"](audio=tf.constant(audio))
    for chunk in (1600, 480, 37, CLIP_SAMPLES):
        streamed = stream_through(signatures["stream"], audio, chunk)
        np.testing.assert_allclose(streamed["probabilities"].numpy(), whole["probabilities"].numpy(), atol=1e-4)
        np.testing.assert_array_equal(streamed["label"].numpy(), whole["label"].numpy())
        assert streamed["pending"].shape == (3, CLIP_SAMPLES - 98 * 160)  # 98 frames used, 20 ms pending
    first = signatures["stream"](audio=tf.zeros((2, 100)), pending=tf.zeros((2, 0)), state=tf.zeros((2, 0)))
    assert first["pending"].shape == (2, 100)  # under one frame: nothing consumed, state unchanged (zeros)
    assert not first["state"].numpy().any()


@pytest.mark.parametrize(
    "audio",
    [
        np.zeros((2, CLIP_SAMPLES)),  # silence
        np.sign(np.sin(np.arange(CLIP_SAMPLES) / 5.0))[None, :] * 1.0,  # a fully clipped square wave
        np.full((1, CLIP_SAMPLES), 7.0),  # beyond [-1, 1]: clipped
        np.zeros((2, 0)),  # empty clips: silence
        np.zeros((0, CLIP_SAMPLES)),  # an empty batch
        np.random.default_rng(3).normal(0, 0.1, (1, 120 * SAMPLE_RATE)),  # two minutes
    ],
    ids=["silence", "clipping", "out_of_range", "empty_clips", "empty_batch", "very_long"],
)
def test_odd_audio_gets_an_answer(trained_speech, audio):
    signature = tf.saved_model.load(str(export_dir(trained_speech))).signatures["serving_default"]
    outputs = signature(audio=tf.constant(audio, tf.float32))
    assert outputs["label"].shape == (len(audio),)
    assert np.all(np.isfinite(outputs["probabilities"].numpy()))
    assert set(outputs["label"].numpy()) <= {label.encode() for label in LABELS}


def test_bad_audio_gives_clear_errors(trained_speech):
    signatures = tf.saved_model.load(str(export_dir(trained_speech))).signatures
    nan = np.zeros((1, CLIP_SAMPLES), np.float32)
    nan[0, 100] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="audio must not hold NaN"):
        signatures["serving_default"](audio=tf.constant(nan))
    for shape in [(CLIP_SAMPLES,), (1, 2, CLIP_SAMPLES), ()]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"audio must have rank 2: \[batch, samples\]"):
            signatures["serving_default"](audio=tf.zeros(shape))
    with pytest.raises(tf.errors.InvalidArgumentError, match="state must have rank 2"):
        signatures["stream"](audio=tf.zeros((1, 1600)), pending=tf.zeros((1, 0)), state=tf.zeros((5,)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="state must have 0 columns"):
        signatures["stream"](audio=tf.zeros((1, 1600)), pending=tf.zeros((1, 0)), state=tf.zeros((1, 5)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="audio must not hold NaN"):
        signatures["stream"](audio=tf.constant(nan), pending=tf.zeros((1, 0)), state=tf.zeros((1, 0)))


def test_predict_listen_and_demo_recording_verbs(trained_speech, tmp_path, capsys):
    _, trained_path, _ = trained_speech
    recording = tmp_path / "demo.wav"
    truth = pipeline.main(speech_keywords.SpeechKeywordsApp(),
                          ["demo-recording", str(recording), "--quick", "--words", "yes", "two", *folders(trained_path)])  # fmt: skip
    assert [word for _, word in truth] == ["yes", "two"]
    audio = speech.read_wav(recording)
    assert len(audio) == 2 * CLIP_SAMPLES + 3 * int(0.8 * SAMPLE_RATE)
    detections = pipeline.main(speech_keywords.SpeechKeywordsApp(),
                               ["listen", str(recording), "--threshold", "0", *folders(trained_path)])  # fmt: skip
    assert "keyword(s)" in capsys.readouterr().out
    assert all(0 <= seconds <= len(audio) / SAMPLE_RATE + 1 for seconds, _, _ in detections)
    short = tmp_path / "short.wav"
    speech.write_wav(short, audio[:9000])
    outputs = pipeline.main(speech_keywords.SpeechKeywordsApp(), ["predict", str(recording), str(short), *folders(trained_path)])
    assert outputs["label"].shape == (2,) and "clip 2:" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"--words must be keywords of the data.*Received: \['bed'\]"):
        pipeline.main(speech_keywords.SpeechKeywordsApp(),
                      ["demo-recording", str(recording), "--quick", "--words", "yes", "bed", *folders(trained_path)])  # fmt: skip
    with pytest.raises(ValueError, match="Could not read a WAV file"):
        speech_keywords.read_wav(tmp_path / "missing.wav")


def test_evaluate_and_export_verbs(trained_speech, tmp_path):
    app, trained_path = speech_keywords.SpeechKeywordsApp(), trained_speech[1]
    arguments = ["--quick", "--export-dir", str(trained_path / "saved_models"), "--runs-dir",
                 str(trained_path / "runs"), "--reports-dir", str(tmp_path / "reports")]  # fmt: skip
    assert 0 <= pipeline.main(app, ["evaluate", *arguments])["model"]["accuracy"] <= 1
    latest = pipeline.version_numbers(trained_path / "saved_models" / NAME)[-1]  # other tests may export too
    version_dir = pipeline.main(app, ["export", *arguments])  # from runs/<app>/model.keras, checked and numbered
    assert int(version_dir.name) == latest + 1
    assert speech_keywords.export_labels(version_dir) == LABELS
    assert sorted(tf.saved_model.load(str(version_dir)).signatures) == ["labels", "serving_default", "stream"]


def test_listen_windows_are_the_whole_clip_answers(trained_speech):
    """Each 1 s window `detect` reads from its streams is what serving_default says about that window."""
    signatures = tf.saved_model.load(str(export_dir(trained_speech))).signatures
    audio = np.random.default_rng(4).normal(0, 0.05, 3 * SAMPLE_RATE).astype(np.float32)
    windows = list(speech_keywords.stream_windows(signatures["stream"], audio, hop_ms=500))
    assert [round(centre, 2) for centre, _ in windows[:3]] == [0.5, 1.0, 1.5]
    padded = np.concatenate([audio, np.zeros(CLIP_SAMPLES, np.float32)])
    for centre, probabilities in windows:
        begin = int(round((centre - 0.5) * SAMPLE_RATE))
        whole = signatures["serving_default"](audio=tf.constant(padded[None, begin : begin + CLIP_SAMPLES]))
        np.testing.assert_allclose(probabilities, whole["probabilities"].numpy()[0], atol=1e-4)


def test_batched_windows_are_listens_stream_windows(trained_speech):
    """The long-audio evaluation scores `listen`'s windows in batches through serving_default: the same
    windows, the same probabilities as the streams."""
    from apps import keyword_spotting

    signatures = tf.saved_model.load(str(export_dir(trained_speech))).signatures
    audio = np.random.default_rng(5).normal(0, 0.05, int(2.55 * SAMPLE_RATE)).astype(np.float32)
    windows = list(speech_keywords.stream_windows(signatures["stream"], audio, hop_ms=200))
    centres, probabilities = keyword_spotting.window_probabilities(
        lambda clips: signatures["serving_default"](audio=tf.constant(clips))["probabilities"].numpy(), audio, 200
    )
    np.testing.assert_allclose(centres, [centre for centre, _ in windows])
    np.testing.assert_allclose(probabilities, np.stack([row for _, row in windows]), atol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# The CRNN frontend: a causal convolution that streams
# ---------------------------------------------------------------------------------------------------------


def numpy_causal_convolution(inputs, kernel, bias, activation="relu"):
    """y[t] = g(b + sum_j x[t - k + 1 + j] W_j), with zeros before the first step, one step at a time."""
    taps = len(kernel)
    padded = np.concatenate([np.zeros((len(inputs), taps - 1, inputs.shape[2])), inputs], axis=1)
    outputs = np.zeros((len(inputs), inputs.shape[1], kernel.shape[2]))
    for step in range(inputs.shape[1]):
        for tap in range(taps):
            outputs[:, step] += padded[:, step + tap] @ kernel[tap]
    return np.maximum(outputs + bias, 0.0) if activation == "relu" else outputs + bias


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_causal_convolution_matches_numpy_and_sees_no_later_step(activation):
    rng = np.random.default_rng(4)
    layer = speech_keywords.CausalConvolution(5, kernel_size=3, activation=activation)
    inputs = rng.normal(size=(2, 7, 4)).astype(np.float32)
    layer(tf.constant(inputs))  # builds the weights
    layer.bias.assign(rng.normal(size=5).astype(np.float32))
    outputs = layer(tf.constant(inputs)).numpy()
    reference = numpy_causal_convolution(inputs, layer.kernel.numpy(), layer.bias.numpy(), activation)
    np.testing.assert_allclose(outputs, reference, atol=1e-5)
    later = inputs.copy()
    later[:, 4:] += 1.0
    np.testing.assert_array_equal(layer(tf.constant(later)).numpy()[:, :4], outputs[:, :4])
    assert layer(tf.zeros((2, 0, 4))).shape == (2, 0, 5)  # a chunk of no steps
    with pytest.raises(ValueError, match="kernel_size.*Received: kernel_size=0"):
        speech_keywords.CausalConvolution(5, kernel_size=0)
    with pytest.raises(ValueError, match="activation.*Received: activation='tanh'"):
        speech_keywords.CausalConvolution(5, activation="tanh")


def tiny_crnn(pooling="mean", **settings):
    """An untrained CRNN of a few units, with its config and the data dict `build_model` reads."""
    keras.utils.set_random_seed(5)
    config = speech_keywords.SpeechConfig(frontend="crnn", convolution_filters=6, convolution_kernel=4, units=(5, 4),
                                          pooling=pooling, epochs=1, **settings)  # fmt: skip
    audio = np.random.default_rng(7).normal(0, 0.1, (3, CLIP_SAMPLES)).astype(np.float32)
    data = {"labels": LABELS, "feature_mean": None, "feature_std": None, "train": (audio, np.zeros(3, int)),
            "test": (audio, np.zeros(3, int))}  # fmt: skip
    return speech_keywords.SpeechKeywordsApp().build_model(config, data), config, data


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_crnn_streams_chunk_by_chunk_as_the_whole_clip(pooling):
    """A tiny random CRNN, not trained: the stream function, fed chunks of any size, ends where the model
    applied to the whole clip ends; its state carries the convolution's left context."""
    model, _, _ = tiny_crnn(pooling)
    assert model.get_layer("convolution").kernel.shape == (4, 80, 6)
    stream = speech_keywords.make_stream_function(model, lambda probabilities: {"probabilities": probabilities})
    audio = np.random.default_rng(6).normal(0, 0.1, (2, CLIP_SAMPLES)).astype(np.float32)
    whole = model(audio, training=False).numpy()
    for chunk in (1600, 333, CLIP_SAMPLES):
        pending, state = np.zeros((2, 0), np.float32), np.zeros((2, 0), np.float32)
        for begin in range(0, CLIP_SAMPLES, chunk):
            outputs = stream(tf.constant(audio[:, begin : begin + chunk]), tf.constant(pending), tf.constant(state))
            pending, state = outputs["pending"].numpy(), outputs["state"].numpy()
        np.testing.assert_allclose(outputs["probabilities"].numpy(), whole, atol=1e-5)
    context = 3 * 80  # kernel 4: three stacked steps of two 40-band frames
    assert state.shape == (2, context + 5 + 4 + ({"mean": 4 + 1, "last": 0}[pooling]))


def test_frontend_and_unknown_weight_errors():
    with pytest.raises(ValueError, match="frontend.*Received: frontend='cnn'"):
        speech_keywords.SpeechConfig(frontend="cnn")
    with pytest.raises(ValueError, match="convolution_kernel.*Received: convolution_kernel=0"):
        speech_keywords.SpeechConfig(convolution_kernel=0)
    with pytest.raises(ValueError, match="convolution_activation.*Received: convolution_activation='tanh'"):
        speech_keywords.SpeechConfig(convolution_activation="tanh")
    with pytest.raises(ValueError, match="unknown_weight.*Received: unknown_weight=-1"):
        speech_keywords.SpeechConfig(unknown_weight=-1)


def test_crnn_export_streams_as_its_serving_default(tmp_path):
    """The tiny CRNN exported (traced signatures, reloaded): `stream` in chunks gives `serving_default`'s answer."""
    model, config, data = tiny_crnn(export_dir=str(tmp_path))
    version_dir = pipeline.export(speech_keywords.SpeechKeywordsApp(), model, config, data)
    signatures = tf.saved_model.load(str(version_dir)).signatures
    audio = data["test"][0]
    whole = signatures["serving_default"](audio=tf.constant(audio))
    for chunk in (1600, 37):
        streamed = stream_through(signatures["stream"], audio, chunk)
        np.testing.assert_allclose(streamed["probabilities"].numpy(), whole["probabilities"].numpy(), atol=1e-5)
        assert streamed["state"].shape == (3, 3 * 80 + 5 + 4 + 4 + 1)


# ---------------------------------------------------------------------------------------------------------
# Vocal-tract-length perturbation: the paper's warp, training only
# ---------------------------------------------------------------------------------------------------------


def vtlp_clips(count):
    """`count` copies of a clip with energy across the band: a chirp from 100 Hz to 7 kHz over noise."""
    time = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    chirp = 0.5 * np.sin(2 * np.pi * (100 + 3450 * time) * time)
    clip = chirp + np.random.default_rng(2).normal(0, 0.02, CLIP_SAMPLES)
    return tf.constant(np.tile(clip, (count, 1)).astype(np.float32))


def test_vtlp_warp_and_mel_matrices_match_the_papers_formula():
    layer = speech_keywords.LogMelSpectrogram(vtlp_range=0.2)
    plain = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 7600.0).numpy()
    np.testing.assert_allclose(layer.warped_mel_matrices([1.0]).numpy()[0], plain, atol=1e-6)
    alphas = [0.8, 0.9, 0.97, 1.0, 1.04, 1.1, 1.2]
    matrices = layer.warped_mel_matrices(alphas).numpy()
    for alpha, matrix in zip(alphas, matrices):
        np.testing.assert_allclose(matrix, mel_weights(40, 257, 16000, 20.0, 7600.0, alpha), atol=1e-4)
    hertz = np.linspace(0.0, 8000.0, 801)
    for alpha in alphas:
        warped = speech_keywords.vtlp_warp(tf.constant(hertz, tf.float32), alpha, 4800.0, 8000.0).numpy()
        np.testing.assert_allclose(warped, vtlp_warp(hertz, alpha), atol=1e-3)
        assert warped[0] == 0 and abs(warped[-1] - 8000.0) < 1e-3  # the band's ends stay put
    # Below the boundary the warp is a scaling: a band centred at c Hz collects the energy of c / alpha Hz.
    bin_hertz = np.linspace(0.0, 8000.0, 257)
    low_bands = np.flatnonzero(bin_hertz[plain.argmax(axis=0)] < 3000)
    for alpha, matrix in zip(alphas, matrices):
        centres = (matrix[:, low_bands] * bin_hertz[:, None]).sum(axis=0) / matrix[:, low_bands].sum(axis=0)
        plain_centres = (plain[:, low_bands] * bin_hertz[:, None]).sum(axis=0) / plain[:, low_bands].sum(axis=0)
        np.testing.assert_allclose(centres[5:], plain_centres[5:] / alpha, rtol=0.02)


def test_vtlp_leaves_inference_and_a_zero_range_untouched():
    rng = np.random.default_rng(3)
    mean, std = rng.normal(0, 1, 40), rng.uniform(0.5, 2, 40)
    audio = vtlp_clips(3)
    plain = speech_keywords.LogMelSpectrogram(mean, std)(audio).numpy()
    warping = speech_keywords.LogMelSpectrogram(mean, std, vtlp_range=0.1, seed=0)
    np.testing.assert_array_equal(warping(audio).numpy(), plain)
    np.testing.assert_array_equal(warping(audio, training=False).numpy(), plain)
    off = speech_keywords.LogMelSpectrogram(mean, std, vtlp_range=0.0, seed=0)
    np.testing.assert_array_equal(off(audio, training=True).numpy(), plain)
    assert not off.variables  # no seed generator: the same state as a layer from before VTLP
    # An old config, without the VTLP keys, loads as a layer without VTLP.
    old = {key: value for key, value in warping.get_config().items() if key not in ("vtlp_range", "vtlp_boundary_hz", "seed")}
    np.testing.assert_array_equal(speech_keywords.LogMelSpectrogram.from_config(old)(audio, training=True).numpy(), plain)
    round_trip = speech_keywords.LogMelSpectrogram.from_config(warping.get_config())
    assert round_trip.get_config() == warping.get_config() and round_trip.vtlp_range == 0.1


@pytest.mark.parametrize("vtlp_range", [0.1, 0.02])
def test_vtlp_gives_each_training_example_its_own_warp_in_range(vtlp_range):
    audio = vtlp_clips(6)
    layer = speech_keywords.LogMelSpectrogram(vtlp_range=vtlp_range, seed=0)
    warped = layer(audio, training=True).numpy()
    plain = layer(audio[:1]).numpy()[0]
    # Each row is the clip under one warp factor: find it on a grid wider than the range.
    grid = np.linspace(0.8, 1.2, 801)
    candidates = layer.log_mel_with(tf.repeat(audio[:1], len(grid), axis=0), layer.warped_mel_matrices(grid)).numpy()
    found = []
    for row in warped:
        errors = np.abs(candidates - row).max(axis=(1, 2))
        best = errors.argmin()
        assert errors[best] < 0.1 * np.abs(row - plain).max(), (errors[best], np.abs(row - plain).max())
        found.append(grid[best])
    found = np.array(found)
    assert np.all(np.abs(found - 1) <= vtlp_range + 0.0005), found
    assert len(np.unique(found)) == len(found), found  # one warp per example, not one per batch
    assert not np.allclose(layer(audio, training=True).numpy(), warped)  # drawn afresh each call


def test_vtlp_in_the_model_flag_and_errors():
    for value, shown in [(-0.1, "-0.1"), (1.0, "1.0"), (float("nan"), "nan"), ("0.1", "'0.1'"), (True, "True")]:
        with pytest.raises(ValueError, match=rf"vtlp_range.*\[0, 1\).*Received: vtlp_range={shown}"):
            speech_keywords.SpeechConfig(vtlp_range=value)
    with pytest.raises(ValueError, match=r"Received: vtlp_range=1.5"):
        speech_keywords.LogMelSpectrogram(vtlp_range=1.5)
    with pytest.raises(ValueError, match=r"vtlp_boundary_hz.*8000 Hz. Received: vtlp_boundary_hz=9000"):
        speech_keywords.LogMelSpectrogram(vtlp_boundary_hz=9000)
    app = speech_keywords.SpeechKeywordsApp()
    arguments = pipeline.build_parser(app).parse_args(["train", "--vtlp-range", "0.05"])
    assert pipeline.config_from_arguments(app, arguments).vtlp_range == 0.05
    assert speech_keywords.SpeechConfig().vtlp_range == 0.0  # off until validation says otherwise
    # The model's features warp with the config's range, from a seed apart from SpecAugment's; at inference
    # the model answers as the same weights without VTLP do.
    data = {"feature_mean": [0.0] * 40, "feature_std": [1.0] * 40, "labels": LABELS,
            "train": (np.zeros((4, CLIP_SAMPLES), np.float32), np.zeros(4, np.int32))}  # fmt: skip
    config = speech_keywords.SpeechConfig(units=(8,), vtlp_range=0.1, seed=4)
    warping = app.build_model(config, data)
    plain = app.build_model(config.replace(vtlp_range=0.0), data)
    plain.set_weights(warping.get_weights())
    log_mel = warping.get_layer("log_mel")
    assert (log_mel.vtlp_range, log_mel.seed, warping.get_layer("spec_augment").seed) == (0.1, 5, 4)
    audio = vtlp_clips(2)
    np.testing.assert_array_equal(warping(audio, training=False).numpy(), plain(audio, training=False).numpy())
