"""Streaming through the server: the speech app's `listen --server` carries the `stream` state over gRPC, one
request per 100 ms chunk for all the windows it hears at once (a batch), and hears a 10-second recording
exactly as `listen` on the export does."""

import argparse

import numpy as np
import pytest
import scipy.io.wavfile
import tensorflow as tf

from apps import keyword_spotting, speech_keywords
from serving.batching import BatchingConfig
from serving.models import LoadOptions, Model, ModelManager
from serving.server import ModelServer
from tests.helpers import copy_exports


@pytest.fixture(scope="module")
def speech_server(tmp_path_factory, trained_app):
    """The quick speech export behind the local server, configured as docker-compose.yml configures TF Serving."""
    exports = copy_exports(trained_app, ["speech_keywords"], tmp_path_factory.mktemp("stream"))
    manager = ModelManager([Model("speech_keywords", exports["speech_keywords"])], poll_seconds=0,
                           options=LoadOptions(BatchingConfig(per_model=True)))  # fmt: skip
    server = ModelServer(manager, grpc_port=0, rest_port=0).start()
    yield server, exports["speech_keywords"] / "1"
    server.stop()


def recording(path, seconds=10.0, rate=16000):
    """A WAV file of tone bursts and noise, different every second, so the windows' answers vary."""
    rng = np.random.default_rng(0)
    time = np.arange(int(seconds * rate)) / rate
    audio = 0.02 * rng.normal(size=time.shape)
    for second in range(int(seconds)):
        burst = (time >= second + 0.2) & (time < second + 0.2 + rng.uniform(0.2, 0.6))
        audio[burst] += 0.4 * np.sin(2 * np.pi * rng.uniform(150, 900) * time[burst])
    scipy.io.wavfile.write(path, rate, np.clip(audio, -1, 1).astype(np.float32))
    return path


def test_listen_through_the_server_equals_listen_on_the_export(speech_server, tmp_path, capsys, monkeypatch):
    server, version_dir = speech_server
    wav = recording(tmp_path / "ten_seconds.wav")
    local = tf.saved_model.load(str(version_dir)).signatures
    served = speech_keywords.served_signatures(f"127.0.0.1:{server.grpc_port}")
    assert speech_keywords.labels_of(served) == speech_keywords.labels_of(local)
    audio = speech_keywords.read_wav(wav)
    assert len(audio) == 10 * 16000
    local_windows = list(speech_keywords.stream_windows(local["stream"], audio))
    served_windows = list(speech_keywords.stream_windows(served["stream"], audio))  # batched requests
    assert len(served_windows) == len(local_windows) == 51  # every 200 ms over 10 s and the 1 s of silence after
    for (centre, probabilities), (local_centre, local_probabilities) in zip(served_windows, local_windows):
        assert centre == local_centre
        np.testing.assert_allclose(probabilities, local_probabilities, rtol=1e-5, atol=1e-6)

    # The command line: the same detections. A threshold of 0, and every class counted as a keyword (the quick
    # model may put no window on a keyword), so there are some.
    monkeypatch.setattr(keyword_spotting, "keyword_mask", lambda labels: np.ones(len(labels), bool))
    arguments = argparse.Namespace(file=str(wav), threshold=0.0, hop_ms=200, server=f"127.0.0.1:{server.grpc_port}")
    through_server = speech_keywords.listen(None, arguments)
    assert f"served at 127.0.0.1:{server.grpc_port}" in capsys.readouterr().out
    expected = speech_keywords.detect(local["stream"], audio, speech_keywords.labels_of(local), threshold=0.0)
    assert through_server and [(centre, label) for centre, label, _ in through_server] == [
        (centre, label) for centre, label, _ in expected]
    np.testing.assert_allclose([p for _, _, p in through_server], [p for _, _, p in expected], rtol=1e-5)


def test_listen_says_clearly_when_the_server_cannot_be_reached(tmp_path):
    arguments = argparse.Namespace(file=str(recording(tmp_path / "one.wav", seconds=1.0)), threshold=0.7, hop_ms=200,
                                   server="127.0.0.1:1")  # fmt: skip
    with pytest.raises(ValueError, match="could not stream.*127.0.0.1:1"):
        speech_keywords.listen(None, arguments)
    with pytest.raises(ValueError, match="HOST:PORT"):
        speech_keywords.served_signatures("localhost")
