"""Speech keyword spotting (many-to-one, streamable): raw 16 kHz audio in, one of its keywords, silence or unknown out.

    python -m apps.speech_keywords train [--quick] [--bidirectional]   # synthetic TTS corpus, unseen test voices
    python -m apps.speech_keywords train --keywords "lights on,lights off"   # your words, spoken by the TTS voices
    python -m apps.speech_keywords train --data FOLDER                 # your WAVs, a subfolder per label
    python -m apps.speech_keywords predict clip.wav other.wav
    python -m apps.speech_keywords demo-recording demo.wav             # test-voice words with silence between
    python -m apps.speech_keywords listen demo.wav                     # time-stamped detections, streamed, any length

The exported graph computes its own features (a log-mel spectrogram with `tf.signal`: 25 ms Hann windows,
10 ms hop, 40 mel bands, normalized with fixed statistics of the training split), so a client sends raw
audio. A deep unidirectional GRU from our layers reads the frames in order, and the mean of its top layer's
outputs over time gives the class. Nothing looks ahead, so the same weights run incrementally: the `stream` signature takes one chunk
of audio with the state the previous call returned, and after a whole clip gives what `serving_default`
gives for that clip. `--bidirectional` trains the variant whose backward half must wait for the whole
utterance, to measure what that wait buys.

`listen` classifies every 1 s window of a recording on a 200 ms grid. It reads the WAV in blocks
(`speech.WavBlocks`) and runs the overlapping windows' streams as one batch per 100 ms chunk, so an hour of
audio takes bounded memory and runs at 47.6x real time on 2 cores (`benchmarks/listen_speed.py`).

The labels come from the data (the 20 default keywords, `--keywords`, or the subfolders of `--data`) and are
saved with the model, in its `ClassProbabilities` head, so the export's `labels` signature and
`assets/labels.txt` always name the head's outputs.

A spotter left switched on is judged by false accepts per hour of keyword-free audio and the keywords it then
misses (`apps/keyword_spotting.py`). After training, a threshold per keyword is chosen on an hour of the
validation split's keyword-free audio (`data/speech/negatives.py`) for at most 0.5 false accepts per hour, for
each number k of consecutive windows whose probabilities `listen` may average before the thresholds
(`smoothing_windows`); the k whose thresholds miss the fewest of the validation split's keyword clips placed in
long audio is kept with them. The head keeps both, the `labels` signature returns both (`thresholds`,
`smoothing`), and `listen` uses them unless `--threshold` or `--smoothing` is given. The report measures both
numbers and the DET curve on the test split's own hour, real people's speech included.
"""

import argparse
import dataclasses
import itertools
import math
import pathlib
import shutil
import tempfile
import weakref

import keras
import numpy as np
import tensorflow as tf

import layers
from apps import keyword_spotting, pipeline, training
from apps.classes import ClassProbabilities, model_labels
from apps.config import Config, layer_sizes, validate_integer
from data import sources, speech
from data.speech import human
from serving import formats

SAMPLE_RATE = speech.SAMPLE_RATE
CLIP_SAMPLES = speech.CLIP_SAMPLES  # serving_default classifies one second
FRAME_LENGTH = 400  # 25 ms at 16 kHz: short enough that a frame's spectrum is stationary speech
FRAME_STEP = 160  # 10 ms hop: 98 frames per second of audio
FFT_LENGTH = 512  # the next power of two above the frame
MEL_BANDS = 40
LOWER_HZ, UPPER_HZ = 20.0, 7600.0  # speech energy; stops short of the 8 kHz Nyquist edge
LOG_OFFSET = 1e-2  # log(mel + 1e-2): quiet bands sit at a floor instead of spreading down to log(0)
VTLP_BOUNDARY_HZ = 4800.0  # Jaitly & Hinton's F_hi: below it the warp is a pure scaling by alpha
STREAM_CHUNK = 1600  # 100 ms, the chunk `listen` sends


@dataclasses.dataclass
class SpeechConfig(Config):
    dataset: str = "bundled"  # the synthetic TTS corpus, built offline at first use; or "speech_commands" (online)
    keywords: tuple = ()  # the bundled corpus' words (--keywords "lights on,lights off"); () means its default 20
    cell: str = "gru"  # with mean pooling no state must last the clip; GRU reached 65% vs LSTM 54% in 2 short epochs
    units: tuple = (128, 128)  # a deep RNN: two layers of 128 fit the time budget on 2 cores
    bidirectional: bool = False  # the comparison variant: cannot stream, exports no `stream` signature
    pooling: str = "mean"  # ŷ from the mean of the top layer's a<t> over the clip ("max", or "last": a<T>)
    stacked_frames: int = 2  # the RNN steps every 20 ms on two 10 ms frames side by side: half the steps, 2x faster
    # "crnn": a causal convolution over the stacked frames feeds the RNN (the CRNN of Arik et al. 2017, in 1-D
    # and causal so that it still streams); "rnn": the stacked frames feed the RNN directly. "rnn" won on
    # validation (seed 0, 12 epochs): 88.6% and loss 0.377, against 85.6% and 0.486 for the ReLU CRNN and
    # 80.4% and 0.659 for the linear one; the CRNN learned slower from the first epoch.
    frontend: str = "rnn"
    convolution_filters: int = 128  # as wide as the GRU it feeds
    convolution_kernel: int = 3  # stacked steps: the present and the two before, 60 ms of context
    convolution_activation: str = "relu"  # as in the CRNN; "linear" keeps every direction of the frames for the GRU
    # The loss weight of `_unknown_` training clips: 3 took validation `_unknown_` false accepts from 41% to 21%
    # but accuracy from 88.6% to 87.1% (seed 0), so validation accuracy keeps 1.
    unknown_weight: float = 1.0
    dropout: float = 0.2  # on the second layer's inputs and on the head
    time_masks: int = 1  # SpecAugment: masked spans of frames per training clip (mild: the corpus is noisy already)
    time_mask_frames: int = 10  # at most 100 ms
    frequency_masks: int = 1  # masked runs of mel bands per training clip
    frequency_mask_bands: int = 5
    speed_range: float = 0.1  # training clips are resampled by a factor in [1 - r, 1 + r]: tempo and pitch
    # Vocal-tract-length perturbation (`LogMelSpectrogram`): each training clip's mel bands are read on a frequency
    # axis warped by a factor alpha drawn in [1 - r, 1 + r], another speaker's formants; 0 turns it off. On validation
    # (seed 0, 12 epochs) 0.1 lost (87.9%, loss 0.412) and 0.05 tied (88.7%, 0.373) against 0 (88.6%, 0.377):
    # off until a second seed settles 0.05; tempo and pitch already vary with `speed_range`.
    vtlp_range: float = 0.0
    shift_samples: int = 1600  # training clips move by up to 100 ms either way
    epochs: int = 12  # about 12 minutes on 2 cores; the learning rate decays to zero over them
    batch_size: int = 32  # more, smaller steps: 32 learned faster than 64 per second of training
    learning_rate: float = 5e-3  # Adam's starting step (5e-3 beat 2e-3 in 2 short epochs), cosine-decayed to 0
    patience: int = 3
    # After training, a threshold per keyword chosen on the validation split's hour of keyword-free audio for at
    # most 0.5 false accepts per hour (`keyword_spotting.calibrate`); the export ships them and `listen` uses them.
    # The report then measures false accepts per hour and false rejects on the test split's long audio too.
    calibrate: bool = True
    # Calibration also chooses how many consecutive windows `listen` averages before its rule (causal: a window
    # and the ones before it), by the lowest validation false-reject rate at each k's calibrated thresholds
    # (`keyword_spotting.calibrate_smoothing`); 1 is no smoothing. The head keeps k, the export ships it.
    smoothing_windows: tuple = (1, 2, 3, 4)
    long_negative_minutes: float = 5.5  # each of the 11 files of a split's long keyword-free audio: 1 h in all

    small_corpus: bool = False  # the quick corpus (about 1.6k clips, 40 espeak-ng voices): --demo trains on it
    QUICK = dict(units=(16,), epochs=1, batch_size=32, calibrate=False)
    # 20 epochs of the full model on the quick corpus: 84% test accuracy, 9/10 human digits and the demo
    # recording's four words found, in 76 s in all (measured once, seed 0).
    DEMO = dict(small_corpus=True, epochs=20, calibrate=False)  # listen keeps 0.7: the demo stays fast

    def __post_init__(self):
        super().__post_init__()
        layers.recurrent_layer_class(self.cell)
        if self.pooling not in POOLING:
            raise ValueError(f"`pooling` must be one of {POOLING}. Received: pooling={self.pooling!r}")
        if self.frontend not in FRONTENDS:
            raise ValueError(f"`frontend` must be one of {FRONTENDS}. Received: frontend={self.frontend!r}")
        if self.convolution_activation not in CONVOLUTION_ACTIVATIONS:
            raise ValueError(f"`convolution_activation` must be one of {CONVOLUTION_ACTIVATIONS}. Received: "
                             f"convolution_activation={self.convolution_activation!r}")  # fmt: skip
        for name in ("convolution_filters", "convolution_kernel"):
            validate_integer(name, getattr(self, name))
        if not isinstance(self.smoothing_windows, (tuple, list)) or not self.smoothing_windows or any(
            isinstance(value, bool) or not isinstance(value, int) or value < 1 for value in self.smoothing_windows
        ):
            raise ValueError("`smoothing_windows` must be a non-empty tuple of positive integers, the numbers of "
                             f"windows averaged that calibration chooses from. Received: "
                             f"smoothing_windows={self.smoothing_windows!r}")  # fmt: skip
        self.smoothing_windows = tuple(self.smoothing_windows)
        if isinstance(self.unknown_weight, bool) or not isinstance(self.unknown_weight, (int, float)) or not (
            0 < self.unknown_weight < math.inf
        ):
            raise ValueError(f"`unknown_weight` must be a positive number. Received: unknown_weight={self.unknown_weight!r}")
        check_vtlp_range(self.vtlp_range)
        self.units = layer_sizes(self.units)
        if self.keywords:
            self.keywords = speech.check_keywords(self.keywords)
        if self.keywords and (self.data_path or self.dataset != "bundled"):
            raise ValueError(
                "`keywords` chooses the words of the bundled synthetic corpus; your own data and speech_commands "
                f"bring their labels. Received: keywords={self.keywords!r} with data_path={self.data_path!r}, "
                f"dataset={self.dataset!r}"
            )


POOLING = ("mean", "max", "last")
FRONTENDS = ("rnn", "crnn")
CONVOLUTION_ACTIVATIONS = ("relu", "linear")
DEFAULT_THRESHOLD = 0.7  # `listen`'s threshold for an export without calibrated ones
DEMO_WORDS = ("yes", "stop", "seven", "go")  # demo-recording's default words, where they are keywords of the data


# ---------------------------------------------------------------------------------------------------------
# Features and augmentation, all graph code
# ---------------------------------------------------------------------------------------------------------


def check_vtlp_range(vtlp_range):
    """`vtlp_range` if it is a number in [0, 1) (warp factors in [1 - r, 1 + r] stay positive), else a ValueError."""
    if isinstance(vtlp_range, bool) or not isinstance(vtlp_range, (int, float)) or not 0 <= vtlp_range < 1:
        raise ValueError(f"`vtlp_range` must be a number in [0, 1): warp factors are drawn in [1 - r, 1 + r]. "
                         f"Received: vtlp_range={vtlp_range!r}")  # fmt: skip
    return float(vtlp_range)


def hertz_to_mel(hertz):
    """The mel scale of `tf.signal.linear_to_mel_weight_matrix`: 1127 ln(1 + f / 700)."""
    return 1127.0 * tf.math.log(1.0 + hertz / 700.0)


def vtlp_warp(hertz, alpha, boundary_hz, nyquist_hz):
    """Jaitly & Hinton's (2013) piecewise-linear warp of the frequency axis by `alpha`:

        f' = alpha f                                                     if f <= f0 = F_hi min(alpha, 1) / alpha
        f' = S/2 - (S/2 - F_hi min(alpha, 1)) / (S/2 - f0) (S/2 - f)     otherwise

    with F_hi = `boundary_hz` and S/2 = `nyquist_hz`: a scaling by `alpha` up to the boundary, then the line that
    takes the rest of the band onto the rest, so that 0 and the Nyquist frequency map to themselves and no energy
    leaves the band. `hertz` and `alpha` broadcast against each other."""
    corner = boundary_hz * tf.minimum(alpha, 1.0)  # f0's image
    start = corner / alpha  # f0
    upper = nyquist_hz - (nyquist_hz - corner) / (nyquist_hz - start) * (nyquist_hz - hertz)
    return tf.where(hertz <= start, alpha * hertz, upper)


@keras.saving.register_keras_serializable(package="rnn_suite")
class LogMelSpectrogram(keras.layers.Layer):
    """Audio `(batch, samples)` -> normalized log-mel frames `(batch, frames, mel_bands)`.

    Frame `t` covers samples `[t * frame_step, t * frame_step + frame_length)` and only those (no padding),
    so a stream cut anywhere gives the same frames as the whole clip. Each frame is multiplied by a
    periodic Hann window, zero-padded to `fft_length`, and its `|rfft|` is mapped to mel bands (triangles
    evenly spaced on the mel scale, `tf.signal.linear_to_mel_weight_matrix`). Then `log(mel + log_offset)`,
    minus `mean`, divided by `std`: per-band statistics fixed from the training split, never from the
    utterance, because an utterance's own statistics are not known until it ends.

    Training only, with `vtlp_range` r > 0: vocal-tract-length perturbation (Jaitly & Hinton 2013). Each
    example draws its own warp factor alpha uniformly in [1 - r, 1 + r], and its mel matrix becomes the
    triangles evaluated at the warped bin frequencies, `W_alpha[k, m] = triangle_m(vtlp_warp(f_k, alpha))`
    (the paper's piecewise-linear warp with a boundary frequency, not the simple f' = alpha f that would push
    energy past the band's top): the energy of frequency f is counted at alpha f, as a speaker with a vocal
    tract 1 / alpha as long would put it. alpha = 1 is the plain matrix. At inference, and whenever r = 0, the
    layer computes exactly what it computes without VTLP, so the export and its `stream` signature do not change.

    Args:
        mean, std: `mel_bands` floats each (default 0 and 1: unnormalized).
        vtlp_range: r in [0, 1); 0 (default) turns VTLP off.
        vtlp_boundary_hz: the warp's boundary frequency F_hi (the paper's 4800 Hz).
        seed: seeds the warp factors' draws.

    Call arguments:
        audio: `(batch, samples)`.
        training: whether to warp (when `vtlp_range` > 0).
    """

    def __init__(self, mean=None, std=None, sample_rate=SAMPLE_RATE, frame_length=FRAME_LENGTH,
                 frame_step=FRAME_STEP, fft_length=FFT_LENGTH, mel_bands=MEL_BANDS, lower_hz=LOWER_HZ,
                 upper_hz=UPPER_HZ, log_offset=LOG_OFFSET, vtlp_range=0.0, vtlp_boundary_hz=VTLP_BOUNDARY_HZ,
                 seed=None, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.mean = [0.0] * mel_bands if mean is None else [float(value) for value in mean]
        self.std = [1.0] * mel_bands if std is None else [float(value) for value in std]
        if len(self.mean) != mel_bands or len(self.std) != mel_bands or min(self.std) <= 0:
            raise ValueError(f"`mean` and `std` need {mel_bands} values each, `std` positive. Received: "
                             f"{len(self.mean)} means, {len(self.std)} stds, smallest std {min(self.std)}")
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.fft_length = int(fft_length)
        self.mel_bands = int(mel_bands)
        self.lower_hz = float(lower_hz)
        self.upper_hz = float(upper_hz)
        self.log_offset = float(log_offset)
        self.vtlp_range = check_vtlp_range(vtlp_range)
        if isinstance(vtlp_boundary_hz, bool) or not isinstance(vtlp_boundary_hz, (int, float)) or not (
            0 < vtlp_boundary_hz < self.sample_rate / 2
        ):
            raise ValueError(f"`vtlp_boundary_hz` must lie between 0 and the Nyquist frequency, "
                             f"{self.sample_rate / 2:g} Hz. Received: vtlp_boundary_hz={vtlp_boundary_hz!r}")
        self.vtlp_boundary_hz = float(vtlp_boundary_hz)
        self.seed = seed
        # Only a warping layer owns a seed generator, so a layer without VTLP holds the same state as before it.
        self.seed_generator = keras.random.SeedGenerator(seed) if self.vtlp_range > 0 else None

    def warped_mel_matrices(self, alphas):
        """`(batch,)` warp factors -> `(batch, fft_length // 2 + 1, mel_bands)` mel matrices, the DC bin in no band."""
        alphas = tf.convert_to_tensor(alphas, tf.float32)
        bins = self.fft_length // 2 + 1
        nyquist = self.sample_rate / 2
        warped = vtlp_warp(tf.linspace(0.0, nyquist, bins)[None, :], alphas[:, None], self.vtlp_boundary_hz, nyquist)
        bin_mels = hertz_to_mel(warped)[:, :, None]
        edges = tf.linspace(hertz_to_mel(self.lower_hz), hertz_to_mel(self.upper_hz), self.mel_bands + 2)
        left, centre, right = edges[:-2], edges[1:-1], edges[2:]
        weights = tf.maximum(0.0, tf.minimum((bin_mels - left) / (centre - left), (right - bin_mels) / (right - centre)))
        return tf.concat([tf.zeros_like(weights[:, :1]), weights[:, 1:]], axis=1)

    def call(self, audio, training=False):
        if training and self.vtlp_range > 0:
            alphas = keras.random.uniform(tf.shape(audio)[:1], 1.0 - self.vtlp_range, 1.0 + self.vtlp_range,
                                          seed=self.seed_generator)  # fmt: skip
            return self.log_mel_with(audio, self.warped_mel_matrices(alphas))
        return self.log_mel_with(audio)

    def log_mel_with(self, audio, mel_matrices=None):
        """The normalized log-mel frames of `audio`, with `(batch, bins, mel_bands)` matrices, one per example,
        or (None) the plain mel matrix."""
        frames = tf.signal.frame(audio, self.frame_length, self.frame_step)
        frames = frames * tf.signal.hann_window(self.frame_length, periodic=True, dtype=audio.dtype)
        # Padding by hand: the RFFT op refuses an empty batch of frames shorter than fft_length, which a
        # stream chunk of under 25 ms produces.
        frames = tf.pad(frames, [[0, 0], [0, 0], [0, self.fft_length - self.frame_length]])
        magnitudes = tf.abs(tf.signal.rfft(frames))
        if mel_matrices is None:
            mel_matrix = tf.signal.linear_to_mel_weight_matrix(
                self.mel_bands, self.fft_length // 2 + 1, self.sample_rate, self.lower_hz, self.upper_hz,
                dtype=audio.dtype,
            )  # fmt: skip
            mel = tf.tensordot(magnitudes, mel_matrix, 1)
        else:
            mel = tf.einsum("btk,bkm->btm", magnitudes, tf.cast(mel_matrices, audio.dtype))
        log_mel = tf.math.log(mel + self.log_offset)
        return (log_mel - tf.constant(self.mean, audio.dtype)) / tf.constant(self.std, audio.dtype)

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else max(0, 1 + (samples - self.frame_length) // self.frame_step)
        return (input_shape[0], frames, self.mel_bands)

    def get_config(self):
        config = {
            "mean": self.mean, "std": self.std, "sample_rate": self.sample_rate,
            "frame_length": self.frame_length, "frame_step": self.frame_step, "fft_length": self.fft_length,
            "mel_bands": self.mel_bands, "lower_hz": self.lower_hz, "upper_hz": self.upper_hz,
            "log_offset": self.log_offset, "vtlp_range": self.vtlp_range, "vtlp_boundary_hz": self.vtlp_boundary_hz,
            "seed": self.seed,
        }  # fmt: skip
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="rnn_suite")
class StackFrames(keras.layers.Layer):
    """`(batch, frames, bands)` -> `(batch, frames // count, count * bands)`: each group of `count`
    consecutive frames side by side (a last incomplete group is dropped), so the RNN takes fewer, wider
    steps. A stream keeps the samples of an incomplete group pending until the group is whole."""

    def __init__(self, count=2, **kwargs):
        super().__init__(**kwargs)
        self.count = validate_integer("count", count)

    def call(self, frames):
        groups = tf.shape(frames)[1] // self.count
        width = frames.shape[-1] * self.count
        return tf.reshape(frames[:, : groups * self.count], [tf.shape(frames)[0], groups, width])

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else input_shape[1] // self.count
        return (input_shape[0], frames, input_shape[2] * self.count)

    def get_config(self):
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package="rnn_suite")
class CausalConvolution(keras.layers.Layer):
    """`(batch, steps, features)` -> `(batch, steps, filters)`: a 1-D convolution over time that sees the
    present step and the `kernel_size - 1` steps before it, never a later one, then its activation g
    (a ReLU, or none):

        y<t> = g(b + sum_{j=0}^{k-1} x<t - k + 1 + j> W_j)

    Steps before the first are zeros (the training average, the features being normalized), unless `context`
    gives them: a stream passes the last `kernel_size - 1` steps of what it has heard, so that chunk by chunk
    it computes what the whole clip gives (`context_after`).

    Args:
        filters: output features per step.
        kernel_size: steps each output sees, the present one included.
        activation: "relu" or "linear".

    Call arguments:
        inputs: `(batch, steps, features)`.
        context: optional `(batch, kernel_size - 1, features)`, the steps just before `inputs`.
    """

    def __init__(self, filters, kernel_size=3, activation="relu", **kwargs):
        super().__init__(**kwargs)
        if activation not in CONVOLUTION_ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {CONVOLUTION_ACTIVATIONS}. Received: activation={activation!r}")
        self.activation = activation
        self.filters = validate_integer("filters", filters)
        self.kernel_size = validate_integer("kernel_size", kernel_size)

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(shape=(self.kernel_size, features, self.filters), initializer="glorot_uniform",
                                      name="kernel")  # fmt: skip
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, inputs, context=None):
        if context is None:
            context = tf.zeros([tf.shape(inputs)[0], self.kernel_size - 1, inputs.shape[-1]], inputs.dtype)
        padded = tf.concat([context, inputs], axis=1)
        steps = tf.shape(inputs)[1]
        # A sum over the taps rather than a convolution op: it takes a chunk of no steps, as a stream may send.
        total = self.bias
        for tap in range(self.kernel_size):
            total = total + tf.tensordot(padded[:, tap : tap + steps], self.kernel[tap], 1)
        return tf.nn.relu(total) if self.activation == "relu" else total

    def context_after(self, inputs, context):
        """The `context` of the steps that follow `inputs`: the last `kernel_size - 1` of context and inputs."""
        padded = tf.concat([context, inputs], axis=1)
        return padded[:, tf.shape(padded)[1] - (self.kernel_size - 1) :]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        config = {"filters": self.filters, "kernel_size": self.kernel_size, "activation": self.activation}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="rnn_suite")
class SpecAugment(keras.layers.Layer):
    """Training only: zeroes random spans of frames and runs of mel bands in each example (SpecAugment,
    Park et al. 2019), so that no single band or moment decides; the features are normalized, so zero is
    the training average. Identity at inference."""

    def __init__(self, time_masks=2, time_mask_frames=12, frequency_masks=2, frequency_mask_bands=6, seed=None,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.time_masks = int(time_masks)
        self.time_mask_frames = int(time_mask_frames)
        self.frequency_masks = int(frequency_masks)
        self.frequency_mask_bands = int(frequency_mask_bands)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def spans(self, batch, length, count, widest):
        """A `(batch, length)` float mask with `count` random spans of up to `widest` positions zeroed."""
        positions = tf.range(length, dtype=tf.float32)[None, :]
        keep = tf.ones((batch, length))
        for _ in range(count):
            width = tf.floor(keras.random.uniform((batch, 1), 0, widest + 1, seed=self.seed_generator))
            start = tf.floor(keras.random.uniform((batch, 1), seed=self.seed_generator) * tf.cast(length, tf.float32))
            keep *= 1.0 - tf.cast((positions >= start) & (positions < start + width), tf.float32)
        return keep

    def call(self, features, training=False):
        if not training:
            return features
        batch, frames, bands = tf.shape(features)[0], tf.shape(features)[1], tf.shape(features)[2]
        keep = self.spans(batch, frames, self.time_masks, self.time_mask_frames)[:, :, None]
        keep *= self.spans(batch, bands, self.frequency_masks, self.frequency_mask_bands)[:, None, :]
        return features * tf.cast(keep, features.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {
            "time_masks": self.time_masks, "time_mask_frames": self.time_mask_frames,
            "frequency_masks": self.frequency_masks, "frequency_mask_bands": self.frequency_mask_bands,
            "seed": self.seed,
        }  # fmt: skip
        return {**super().get_config(), **config}


def keyword_positions(labels):
    """The positions in `labels` of the keywords: every label but `_silence_` and `_unknown_`, wherever they are."""
    return [index for index, label in enumerate(labels) if label not in (speech.SILENCE, speech.UNKNOWN)]


def augment_audio(audio, generator, config):
    """A training batch `(batch, CLIP_SAMPLES)` spoken a little faster or slower, earlier or later, louder
    or softer. The corpus has already added noise, rooms and microphones to every training clip; these are
    drawn afresh each epoch, so no clip is seen twice the same way.

    One speed factor per batch (resampling changes tempo and pitch together, like another speaker), then
    per clip a shift in time and a gain.
    """
    batch = tf.shape(audio)[0]
    factor = generator.uniform([], 1.0 - config.speed_range, 1.0 + config.speed_range)
    length = tf.cast(tf.round(CLIP_SAMPLES / factor), tf.int32)
    resampled = tf.image.resize(audio[:, :, None, None], [length, 1])[:, :, 0, 0]
    audio = fit_to_length(resampled, CLIP_SAMPLES)

    shift = generator.uniform([batch, 1], -config.shift_samples, config.shift_samples + 1, dtype=tf.int32)
    source = tf.range(CLIP_SAMPLES)[None, :] - shift
    inside = (source >= 0) & (source < CLIP_SAMPLES)
    audio = tf.where(inside, tf.gather(audio, tf.clip_by_value(source, 0, CLIP_SAMPLES - 1), batch_dims=1), 0.0)

    gain = tf.pow(10.0, generator.uniform([batch, 1], -0.5, 0.3))  # -10 dB to +6 dB
    return tf.clip_by_value(audio * gain, -1.0, 1.0)


def fit_to_length(audio, samples):
    """Pads `(batch, n)` with zeros on both sides, or crops it around its centre, to `(batch, samples)`."""
    length = tf.shape(audio)[1]
    missing = tf.maximum(samples - length, 0)
    audio = tf.pad(audio, [[0, 0], [missing // 2, missing - missing // 2]])
    start = (tf.shape(audio)[1] - samples) // 2
    return audio[:, start : start + samples]


def loudest_second(audio):
    """Serving's rule for any length: shorter clips are padded with silence on both sides (centred, as
    the corpus centres its words), longer ones cropped to the 1 s window, on a 10 ms grid, that holds the
    most energy (the first such window where several tie, e.g. all silence). Returns `(batch, CLIP_SAMPLES)`."""
    length = tf.shape(audio)[1]
    missing = tf.maximum(CLIP_SAMPLES - length, 0)
    audio = tf.pad(audio, [[0, 0], [missing // 2, missing - missing // 2]])
    energy = tf.pad(tf.cumsum(tf.cast(audio, tf.float64) ** 2, axis=1), [[0, 0], [1, 0]])
    starts = tf.range(0, tf.shape(audio)[1] - CLIP_SAMPLES + 1, FRAME_STEP)
    window_energy = tf.gather(energy, starts + CLIP_SAMPLES, axis=1) - tf.gather(energy, starts, axis=1)
    best = tf.gather(starts, tf.argmax(window_energy, axis=1, output_type=tf.int32))
    return tf.gather(audio, best[:, None] + tf.range(CLIP_SAMPLES)[None, :], batch_dims=1)


def checked_rank(tensor, name, shape="[batch, samples]"):
    """`tensor` once it is known to be a matrix. A loaded signature does not enforce its input's rank, and
    the graph folds `tf.rank` to the declared 2, so the rank is read at run time from a serialized copy of
    the (tiny) shape vector."""
    dimensions = tf.io.parse_tensor(tf.io.serialize_tensor(tf.shape(tensor)), tf.int32)
    check = tf.debugging.assert_equal(tf.size(dimensions), 2, message=f"{name} must have rank 2: {shape}")
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def checked_audio(audio, name="audio"):
    """NaN or infinite samples and a wrong rank are a client's error, said clearly; samples beyond [-1, 1]
    are clipped (a clipping microphone), not refused."""
    audio = checked_rank(audio, name)
    check = tf.debugging.assert_all_finite(audio, message=f"{name} must not hold NaN or infinite samples")
    with tf.control_dependencies([check]):
        return tf.clip_by_value(audio, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------------------


class SpeechKeywordsApp(pipeline.App):
    """Keyword spotting on raw 16 kHz audio with a deep unidirectional GRU from our layers, streamable."""

    name = "speech_keywords"
    Config = SpeechConfig

    def add_arguments(self, parser):
        parser.add_argument("--bidirectional", action="store_true", default=None,
                            help="train the bidirectional variant (no `stream` signature)")
        parser.add_argument("--cell", choices=sorted(layers.LAYER_TYPES))
        parser.add_argument("--pooling", choices=POOLING)
        parser.add_argument("--units", type=int, nargs="+", help="units of each stacked recurrent layer")
        parser.add_argument("--frontend", choices=FRONTENDS,
                            help="crnn: a causal convolution over the frames feeds the RNN (default: rnn)")
        parser.add_argument("--convolution-activation", choices=CONVOLUTION_ACTIVATIONS,
                            dest="convolution_activation", help="the crnn convolution's activation (default: relu)")
        parser.add_argument("--vtlp-range", type=float, dest="vtlp_range",
                            help="vocal-tract-length perturbation: training warp factors in [1 - r, 1 + r] (default 0: off)")
        parser.add_argument("--unknown-weight", type=float, dest="unknown_weight",
                            help="loss weight of `_unknown_` training clips (default 1)")
        parser.add_argument("--keywords", type=keywords_argument,
                            help='the bundled corpus\' words: "lights on,lights off" (default: its 20)')

    # Data ------------------------------------------------------------------------------------------------

    def load_data(self, config):
        """The loader's splits and `labels`, the human digits where they are all labels, and the feature
        statistics of the training split."""
        data = load_splits(config)
        if set(speech.DIGIT_WORDS) <= set(data["labels"]):
            data["spokennumbers"] = speech.load_spokennumbers()
            try:  # a second person's digits, from a Debian package that `make venv` installs
                data["second_speaker_digits"] = human.load_digits()
            except human.HumanSpeechMissing as error:
                print(f"Second speaker's digits skipped: {error}")
        data["feature_mean"], data["feature_std"] = feature_statistics(data["train"][0])
        return data

    def make_dataset(self, config, data, split, training):
        audio, labels = data[split]
        dataset = tf.data.Dataset.from_tensor_slices((audio, labels.astype("int32")))
        if training:
            dataset = dataset.shuffle(len(audio), seed=config.seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(config.batch_size)
        if training:
            generator = tf.random.Generator.from_seed(config.seed)
            dataset = dataset.map(lambda clips, targets: (augment_audio(clips, generator, config), targets))
        if training and config.unknown_weight != 1 and speech.UNKNOWN in data["labels"]:
            # Training only: the validation loss stays the plain cross-entropy that early stopping compares.
            unknown = list(data["labels"]).index(speech.UNKNOWN)
            weight = lambda targets: tf.where(targets == unknown, float(config.unknown_weight), 1.0)  # noqa: E731
            dataset = dataset.map(lambda clips, targets: (clips, targets, weight(targets)))
        return dataset.prefetch(tf.data.AUTOTUNE)

    # Model -----------------------------------------------------------------------------------------------

    def build_model(self, config, data):
        audio = keras.Input(shape=(None,), name="audio")
        # A seed of its own: a SeedGenerator's draws are keyed by (seed, count), so with SpecAugment's seed the
        # warp factors would repeat SpecAugment's mask draws.
        features = LogMelSpectrogram(data["feature_mean"], data["feature_std"], vtlp_range=config.vtlp_range,
                                     seed=config.seed + 1, name="log_mel")(audio)  # fmt: skip
        features = SpecAugment(config.time_masks, config.time_mask_frames, config.frequency_masks,
                               config.frequency_mask_bands, seed=config.seed, name="spec_augment")(features)  # fmt: skip
        features = StackFrames(config.stacked_frames, name="stack_frames")(features)
        if config.frontend == "crnn":
            features = CausalConvolution(config.convolution_filters, config.convolution_kernel,
                                         config.convolution_activation, name="convolution")(features)  # fmt: skip
        sequences = config.pooling != "last"
        if config.bidirectional:
            sequence = layers.DeepRNN(config.cell, units=list(config.units), bidirectional=True,
                                      return_sequences=sequences, name="deep_bidirectional_rnn")(features)  # fmt: skip
        else:
            sequence = features
            for depth, size in enumerate(config.units):
                top = depth == len(config.units) - 1
                outputs = layers.recurrent_layer_class(config.cell)(
                    size, return_sequences=sequences or not top, return_state=True,
                    dropout=config.dropout if depth else 0.0, name=f"{config.cell}_{depth}",
                )(sequence)  # fmt: skip
                sequence = outputs[0]
        # Pooling over time gives every step a direct path to the loss, which trains much faster than
        # reading a<T> alone, and stays streamable: a running sum and count, or a running maximum.
        if config.pooling == "mean":
            sequence = keras.layers.GlobalAveragePooling1D(name="pool")(sequence)
        elif config.pooling == "max":
            sequence = keras.layers.GlobalMaxPooling1D(name="pool")(sequence)
        summary = keras.layers.Dropout(config.dropout, name="head_dropout")(sequence)
        probabilities = ClassProbabilities(data["labels"], name="probabilities")(summary)
        model = keras.Model(audio, probabilities, name="speech_keywords")
        schedule = training.cosine_decay(config.learning_rate, config.epochs, len(data["train"][1]), config.batch_size)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    # Serving ---------------------------------------------------------------------------------------------

    def serving_resources(self, model, config):
        """The model's class names as `assets/labels.txt` in the export, read through a lookup table, so
        clients can read them from the SavedModel's files or from the `labels` signature."""
        return {"labels": labels_table(model_labels(model))}

    def serving_endpoints(self, model, config, resources):
        table, count = resources["labels"], len(model_labels(model))

        def answer(probabilities):
            return {"label": table.lookup(tf.argmax(probabilities, axis=-1)), "probabilities": probabilities}

        def serve(audio):
            return answer(model(loudest_second(checked_audio(audio)), training=False))

        thresholds = tf.constant(export_thresholds(model), tf.float32)
        smoothing = tf.constant(model.get_layer("probabilities").smoothing, tf.int32)

        def labels():
            return {"labels": table.lookup(tf.range(count, dtype=tf.int64)), "thresholds": thresholds,
                    "smoothing": smoothing}  # fmt: skip

        endpoints = {
            "serving_default": (serve, [tf.TensorSpec([None, None], tf.float32, name="audio")]),
            "labels": (labels, []),
        }
        if not is_bidirectional(model):
            stream = make_stream_function(model, answer)
            endpoints["stream"] = (stream, [
                tf.TensorSpec([None, None], tf.float32, name="audio"),
                tf.TensorSpec([None, None], tf.float32, name="pending"),
                tf.TensorSpec([None, None], tf.float32, name="state"),
            ])  # fmt: skip
        return endpoints

    def calibrate(self, config, data, model):
        """The smoothing and per-keyword thresholds, chosen on the validation split, kept in the model's head (so
        in its `.keras` file and its exports): for each k of `config.smoothing_windows`, the thresholds for at
        most 0.5 false accepts per hour on the split's long keyword-free audio with k windows averaged, and the
        false-reject rate of the split's keyword clips placed in long audio at them; the k with the lowest
        false-reject rate wins, the smaller on a tie (`keyword_spotting.calibrate_smoothing`)."""
        if not config.calibrate or is_bidirectional(model):
            return
        names = list(data["labels"])
        try:
            recordings, manifest = negatives_for(config, data, "validation")
        except speech.EnginesMissing as error:
            print(f"Thresholds not calibrated (listen keeps its default {DEFAULT_THRESHOLD}): {error}")
            return
        probabilities_of = model_probabilities(model)
        scored = keyword_spotting.score_negatives(probabilities_of, recordings)
        placed = score_split_placed_keywords(config, data, "validation", probabilities_of,
                                             history=max(config.smoothing_windows) - 1)  # fmt: skip
        rows, chosen = keyword_spotting.calibrate_smoothing(scored, placed, names, config.smoothing_windows)
        head = model.get_layer("probabilities")
        head.set_thresholds(chosen["thresholds"])
        head.set_smoothing(chosen["smoothing"])
        hours = chosen["hours"]
        data["calibration"] = {
            "validation_hours": hours, "validation_false_accepts": chosen["false_accepts"],
            "validation_false_reject_rate": chosen["false_reject_rate"], "thresholds": chosen["thresholds"],
            "smoothing": chosen["smoothing"], "validation_placed_clips": int(len(placed[0])),
            "smoothing_candidates": [{key: row[key] for key in ("smoothing", "false_accepts", "false_reject_rate")}
                                     for row in rows],
        }  # fmt: skip
        print(smoothing_table(rows, chosen, hours, len(placed[0])))
        print(f"Thresholds for <= {keyword_spotting.TARGET_FALSE_ACCEPTS_PER_HOUR} false accepts per hour with "
              f"{chosen['smoothing']} window(s) averaged, chosen on {hours:.2f} h of the validation split's "
              f"keyword-free audio ({chosen['false_accepts']} false accepts there): "
              + ", ".join(f"{label} {value:.3f}" for label, value in chosen["thresholds"].items()))  # fmt: skip

    def example_inputs(self, config, data):
        audio = data["test"][0]
        return [{"audio": audio[:3]}, {"audio": audio[:1, : CLIP_SAMPLES // 2]}]

    # Evaluation ------------------------------------------------------------------------------------------

    def evaluate(self, config, data, predict):
        names = check_export_labels(predict.signatures, data["labels"], predict.path)
        audio, labels = data["test"]
        probabilities = predict({"audio": audio})["probabilities"]
        augmented = data.get("augmented", {}).get("test")
        metrics = classification_metrics(labels, probabilities.argmax(axis=1), names, augmented)
        # Levers are chosen on validation, so the report says how the export does there too.
        validation_audio, validation_labels = data["validation"]
        validation_guesses = predict({"audio": validation_audio})["probabilities"].argmax(axis=1)
        validation = classification_metrics(validation_labels, validation_guesses, names)
        for name in ("accuracy", "false_accept_unknown", "keyword_miss_rate"):
            metrics[f"validation_{name}"] = validation[name]
        if "spokennumbers" in data:
            clips, words = data["spokennumbers"]
            guesses = [(predict({"audio": clip[None, :]})) for clip in clips]
            predicted = [guess["label"][0].decode() for guess in guesses]
            metrics.update(spokennumbers_metrics(words, predicted))
            metrics["spokennumbers_predictions"] = [
                {"clip": index, "truth": word, "predicted": label,
                 "probability": float(guess["probabilities"][0].max())}
                for index, (word, label, guess) in enumerate(zip(words, predicted, guesses))
            ]
        if "second_speaker_digits" in data:
            clips, words = data["second_speaker_digits"]
            guesses = [predict({"audio": clip[None, :]}) for clip in clips]
            predicted = [guess["label"][0].decode() for guess in guesses]
            metrics["second_speaker_digits_correct"] = int(sum(word == guess for word, guess in zip(words, predicted)))
            metrics["second_speaker_digits_predictions"] = [
                {"truth": word, "predicted": label, "probability": float(guess["probabilities"][0].max())}
                for word, label, guess in zip(words, predicted, guesses)
            ]  # fmt: skip
        if config.calibrate:
            metrics.update(spotting_evaluation(config, data, predict, names))
        metrics["labels"] = names
        return metrics

    def baselines(self, config, data):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        names = list(data["labels"])
        train_audio, train_labels = data["train"]
        test_audio, test_labels = data["test"]
        augmented = data.get("augmented", {}).get("test")
        majority = int(np.bincount(train_labels, minlength=len(names)).argmax())
        features = lambda audio: mean_log_mel(audio, data["feature_mean"], data["feature_std"])  # noqa: E731
        regression = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
        regression.fit(features(train_audio), train_labels)
        majority_guesses = np.full(len(test_labels), majority)
        regression_guesses = regression.predict(features(test_audio))
        results = {
            "majority class": classification_metrics(test_labels, majority_guesses, names, augmented),
            "logistic regression on mean+std log-mel": classification_metrics(
                test_labels, regression_guesses, names, augmented
            ),
        }
        if "spokennumbers" in data:
            clips, words = data["spokennumbers"]
            results["majority class"].update(spokennumbers_metrics(words, [names[majority]] * len(words)))
            results["logistic regression on mean+std log-mel"].update(spokennumbers_metrics(
                words, [names[regression.predict(features(clip[None, :]))[0]] for clip in clips]
            ))  # fmt: skip
        return results

    def plot(self, config, data, predict, report_dir):
        names = list(data["labels"])
        audio, labels = data["test"]
        predicted = predict({"audio": audio})["probabilities"].argmax(axis=1)
        matrix = np.zeros((len(names), len(names)), dtype=int)
        np.add.at(matrix, (labels, predicted), 1)
        size = 4 + 0.3 * len(names)
        figure, axis = pipeline.pyplot().subplots(figsize=(size + 1, size))
        rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        axis.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                axis.text(column, row, str(count), ha="center", va="center", fontsize=7,
                          color="white" if rows[row, column] > 0.5 else "black")  # fmt: skip
        axis.set_xticks(range(len(names)), names, rotation=90)
        axis.set_yticks(range(len(names)), names)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"Test confusion matrix ({len(labels)} clips; colour: row fraction)")
        plots = [pipeline.save_figure(figure, report_dir / "confusion_matrix.png")]
        if "spotting" in data:
            plots.append(plot_det_curve(data["spotting"], report_dir / "det_curve.png"))
        return plots

    def report_files(self, config, data, predict, report_dir):
        if "spotting" not in data:
            return []
        path = report_dir / "long_audio.md"
        path.write_text(long_audio_report(data["spotting"]))
        return [path]

    # Command line ----------------------------------------------------------------------------------------

    def format_outputs(self, inputs, outputs):
        return formats.format_speech_keywords(inputs, outputs)

    def extra_verbs(self):
        return {
            "listen": ("stream a WAV recording through the export and print time-stamped detections",
                       add_listen_arguments, listen),
            "demo-recording": ("write a WAV of test-voice words separated by silence, for `listen`",
                               add_demo_recording_arguments, demo_recording),
        }  # fmt: skip


def load_splits(config):
    """The loader's dict for the config: the user's folder (`--data`), Speech Commands, or the bundled corpus
    of the default or the given keywords. Its `labels` name the classes its label numbers index."""
    if config.data_path:
        return speech.load_audio_folder(config.data_path, sources.SplitOptions.from_config(config), seed=config.seed)
    if config.dataset == "speech_commands":
        return speech.load_speech_commands()
    if config.dataset == "bundled":
        keywords = list(config.keywords) or None  # None: the corpus' default keywords
        return speech.load_speech_keywords(seed=config.seed, quick=config.quick or config.small_corpus, keywords=keywords)
    raise ValueError(f"`dataset` must be 'bundled' or 'speech_commands'. Received: {config.dataset!r}")


def keywords_argument(text):
    """`--keywords "lights on,lights off"` -> ("lights on", "lights off")."""
    words = tuple(word.strip() for word in text.split(","))
    if not all(words):
        raise argparse.ArgumentTypeError(
            f'expected comma-separated words like "lights on,lights off". Received: {text!r}'
        )
    return words


# ---------------------------------------------------------------------------------------------------------
# Labels: saved with the model, shipped with the export
# ---------------------------------------------------------------------------------------------------------


def labels_table(labels):
    """Index -> class name, initialized from a `labels.txt` asset that the export copies into its `assets/`.

    The file is written to a private temporary folder, removed when the table is, so building an export
    leaves nothing behind.
    """
    folder = pathlib.Path(tempfile.mkdtemp(prefix="speech_keywords_labels-"))
    path = folder / "labels.txt"
    path.write_text("".join(f"{label}\n" for label in labels))
    initializer = tf.lookup.TextFileInitializer(
        str(path), tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE
    )
    table = tf.lookup.StaticHashTable(initializer, default_value="")
    weakref.finalize(table, shutil.rmtree, folder, True)
    return table


def export_labels(version_dir):
    """The class names of an export, from its `labels` signature."""
    return labels_of(tf.saved_model.load(str(version_dir)).signatures)


def labels_of(signatures):
    """The class names that a loaded export's `labels` signature gives."""
    return [label.decode() for label in signatures["labels"]()["labels"].numpy()]


def check_export_labels(signatures, labels, version_dir):
    """The loaded export's class names, once they are the data's (same names, same order); else a ValueError."""
    names = labels_of(signatures)
    if names != list(labels):
        raise ValueError(
            f"The export {version_dir} was trained on other labels than this data's {list(labels)}; evaluate it on "
            f"the data it was trained on (the same --data or --keywords). Received: export labels {names}"
        )
    return names


def is_bidirectional(model):
    return any(isinstance(layer, layers.DeepRNN) and layer.bidirectional for layer in model.layers)


def recurrent_stack(model):
    """The unidirectional model's recurrent layers, bottom first."""
    return [layer for layer in model.layers if isinstance(layer, layers.RNN)]


def pooling_of(model):
    """"mean", "max" or "last", read from the model's layers (a loaded model brings no config)."""
    names = {layer.name: layer for layer in model.layers}
    if "pool" not in names:
        return "last"
    return "mean" if isinstance(names["pool"], keras.layers.GlobalAveragePooling1D) else "max"


def make_stream_function(model, answer):
    """The `stream` signature's function.

    Inputs: `audio` (batch, n) the next chunk, any n >= 0; `pending` (batch, p) the samples of earlier chunks
    not yet used (p = 0 on the first call); `state` (batch, 0) on the first call, which means zeros, then
    (batch, state size) as returned. Outputs: `label`, `probabilities` for everything heard so far, and the
    new `pending` and `state`.

    The state's columns: with a convolution frontend, the last `kernel_size - 1` stacked frames it has read,
    oldest first (its left context); for each recurrent layer, bottom first, `a<t>` then (LSTM) `c<t>`; then
    the pooling's running statistics of the top layer's outputs: with "mean" their sum and the number of
    steps, with "max" their maximum plus 1 (outputs are above -1, so the zero start is exact).
    """
    log_mel = model.get_layer("log_mel")
    stack_frames = model.get_layer("stack_frames")
    convolution = {layer.name: layer for layer in model.layers}.get("convolution")
    recurrent = recurrent_stack(model)
    head = model.get_layer("probabilities")
    pooling = pooling_of(model)
    top_units = recurrent[-1].units
    context_steps, stacked_width = 0, stack_frames.count * log_mel.mel_bands
    if convolution is not None:
        context_steps = convolution.kernel_size - 1
    sizes = [context_steps * stacked_width]
    sizes += [size for layer in recurrent for size in [layer.units] * layer.cell.state_count]
    sizes += {"mean": [top_units, 1], "max": [top_units], "last": []}[pooling]
    total = sum(sizes)

    def stream(audio, pending, state):
        audio, pending = checked_audio(audio), checked_audio(pending, "pending")
        state = checked_rank(state, "state", "[batch, 0] first, then [batch, state size]")
        batch, width = tf.shape(audio)[0], tf.shape(state)[1]
        checks = [
            tf.debugging.assert_equal(
                (width == 0) | (width == total), True,
                message=f"state must have 0 columns (first call) or {total}, as the last call returned it",
            ),
            tf.debugging.assert_equal(tf.shape(pending)[0], batch, message="pending must have a row per audio row"),
            tf.debugging.assert_equal(tf.shape(state)[0], batch, message="state must have a row per audio row"),
        ]  # fmt: skip
        with tf.control_dependencies(checks):
            buffer = tf.concat([pending, audio], axis=1)
            state = tf.concat([state, tf.zeros([batch, total - width])], axis=1)
        features = stack_frames(log_mel(buffer))
        frames = tf.shape(features)[1] * stack_frames.count  # the frames used; the rest stay pending
        states = tf.split(state, sizes, axis=1)

        def run():
            sequence, new_states, offset = features, [states[0]], 1
            if convolution is not None:
                context = tf.reshape(states[0], [batch, context_steps, stacked_width])
                sequence = convolution(features, context=context)
                new_states = [tf.reshape(convolution.context_after(features, context), [batch, -1])]
            for layer in recurrent:
                count = layer.cell.state_count
                outputs = layer(sequence, initial_state=states[offset : offset + count], training=False)
                sequence, offset = outputs[0], offset + count
                new_states += outputs[1:]
            if pooling == "mean":
                new_states += [states[-2] + tf.reduce_sum(sequence, axis=1),
                               states[-1] + tf.cast(tf.shape(sequence)[1], sequence.dtype)]  # fmt: skip
            elif pooling == "max":
                new_states += [tf.maximum(states[-1], tf.reduce_max(sequence, axis=1) + 1.0)]
            return new_states

        # With no whole group of frames yet (a chunk under 35 ms) the state stands still.
        new_states = tf.cond(frames > 0, run, lambda: states)
        if pooling == "mean":
            summary = new_states[-2] / tf.maximum(new_states[-1], 1.0)
        elif pooling == "max":
            summary = new_states[-1] - 1.0
        else:  # a<T> of the top layer: its first state
            summary = new_states[1 + sum(layer.cell.state_count for layer in recurrent[:-1])]
        outputs = answer(head(summary))
        outputs["pending"] = buffer[:, frames * FRAME_STEP :]
        outputs["state"] = tf.concat(new_states, axis=1)
        return outputs

    return stream


# ---------------------------------------------------------------------------------------------------------
# Long audio: thresholds, false accepts per hour, false rejects, the DET curve
# ---------------------------------------------------------------------------------------------------------


def export_thresholds(model):
    """The threshold of each class, in label order, as the export's `labels` signature gives them: the head's
    calibrated ones, else `DEFAULT_THRESHOLD` for keywords; 1.0 for `_silence_` and `_unknown_`, never reported."""
    labels = model_labels(model)
    calibrated = model.get_layer("probabilities").thresholds or {}
    keywords = keyword_spotting.keyword_mask(labels)
    return [calibrated.get(label, DEFAULT_THRESHOLD) if keyword else 1.0 for label, keyword in zip(labels, keywords)]


def smoothing_table(rows, chosen, hours, clips):
    """Calibration's choice of smoothing as printed: a line per k, the chosen one marked."""
    lines = [f"Smoothing chosen on the validation split ({hours:.2f} h of keyword-free audio, {clips} placed "
             "keyword clips), each k at its own calibrated thresholds:",
             "  windows averaged | false accepts per hour | false-reject rate"]  # fmt: skip
    lines += [f"  {row['smoothing']:16d} | {row['false_accepts'] / hours:22.2f} | {100 * row['false_reject_rate']:16.1f}%"
              + ("  <- chosen" if row is chosen else "") for row in rows]  # fmt: skip
    return "\n".join(lines)


def signature_smoothing(signatures):
    """The number of windows `listen` averages, from a loaded (or served) export's `labels` signature; 1 for an
    export made before smoothing was calibrated (its `labels` signature has no `smoothing`)."""
    outputs = signatures["labels"]()
    if "smoothing" not in outputs:
        return 1
    return int(np.asarray(outputs["smoothing"]))


def signature_thresholds(signatures, labels):
    """`{keyword: threshold}` from a loaded (or served) export's `labels` signature; None for an export made
    before thresholds were calibrated (its `labels` signature has no `thresholds`)."""
    outputs = signatures["labels"]()
    if "thresholds" not in outputs:
        return None
    values = outputs["thresholds"].numpy()
    keywords = keyword_spotting.keyword_mask(labels)
    return {label: float(value) for label, value, keyword in zip(labels, values, keywords) if keyword}


def negatives_for(config, data, split):
    """The long keyword-free audio of `split` for this data's keywords (`data.speech.negatives`)."""
    from data.speech import negatives

    keywords = [label for label in data["labels"] if label not in (speech.SILENCE, speech.UNKNOWN)]
    settings = negatives.NegativesConfig(file_minutes=config.long_negative_minutes)
    return negatives.load_long_negatives(split, keywords, settings)  # one fixed audio, whatever the training seed


def model_probabilities(model):
    """One-second clips `[n, 16000]` -> the Keras model's probabilities, as the export computes them."""
    return lambda clips: model.predict_on_batch(np.asarray(clips, np.float32))


def score_split_placed_keywords(config, data, split, probabilities_of, history=0):
    """The split's keyword clips placed in long audio between its `_silence_` clips
    (`keyword_spotting.score_placed_keywords`), at the offsets `config.seed` draws, with `history` windows before."""
    names = list(data["labels"])
    audio, labels = data[split]
    background = audio[labels == names.index(speech.SILENCE)] if speech.SILENCE in names else np.zeros((1, CLIP_SAMPLES))
    return keyword_spotting.score_placed_keywords(probabilities_of, audio, labels, names, background,
                                                  np.random.default_rng(config.seed), history=history)  # fmt: skip


def spotting_evaluation(config, data, predict, names):
    """False accepts per hour on the test split's long keyword-free audio and false rejects of its keyword clips
    placed in long audio, at the export's thresholds and at `DEFAULT_THRESHOLD`, and the DET curve, all with the
    windows averaged over the export's smoothing as `listen` averages them. Keeps the details in
    `data["spotting"]` for the plot and `long_audio.md`; returns the report's numbers."""
    try:
        recordings, manifest = negatives_for(config, data, "test")
    except speech.EnginesMissing as error:
        print(f"No long-audio evaluation: {error}")
        return {}
    probabilities_of = lambda clips: predict({"audio": clips})["probabilities"]  # noqa: E731
    thresholds = signature_thresholds(predict.signatures, names)
    smoothing = signature_smoothing(predict.signatures)
    scored = keyword_spotting.score_negatives(probabilities_of, recordings)
    placed = score_split_placed_keywords(config, data, "test", probabilities_of, history=smoothing - 1)
    metrics, points = {}, {}
    settings = [(f"at {DEFAULT_THRESHOLD}", DEFAULT_THRESHOLD)]
    if thresholds is not None:  # an export made before calibration has none
        settings.insert(0, ("calibrated", thresholds))
    for name, setting in settings:
        count, hours, by_kind, by_label = keyword_spotting.false_accepts(scored, names, setting, smoothing)
        missed, clip_labels = keyword_spotting.false_rejects(placed, names, setting, smoothing)
        points[name] = {
            "false_accepts": count, "false_accepts_per_hour": count / hours, "false_reject_rate": float(missed.mean()),
            "by_kind": {kind: {"false_accepts": kind_count, "hours": kind_hours}
                        for kind, (kind_count, kind_hours) in by_kind.items()},
            "false_accepts_by_keyword": by_label,
            "false_reject_rate_by_keyword": {names[index]: float(missed[clip_labels == index].mean())
                                             for index in np.unique(clip_labels)},
        }  # fmt: skip
        suffix = "" if name == "calibrated" else f"_at_{DEFAULT_THRESHOLD}"
        metrics[f"false_accepts_per_hour{suffix}"] = count / hours
        metrics[f"false_reject_rate{suffix}"] = float(missed.mean())
    metrics["long_negative_hours"] = sum(hours for _, _, hours, _, _ in scored)
    metrics["placed_keyword_clips"] = int(len(placed[0]))
    metrics["smoothing"] = smoothing
    curve = keyword_spotting.det_curve(scored, placed, names, smoothing=smoothing)
    data["spotting"] = {"thresholds": thresholds, "smoothing": smoothing, "points": points, "det_curve": curve,
                        "manifest": manifest, "calibration": data.get("calibration"),
                        "placed_clips": int(len(placed[0]))}  # fmt: skip
    metrics["spotting"] = {key: value for key, value in data["spotting"].items() if key != "manifest"}
    return metrics


def plot_det_curve(spotting, path):
    """False-reject rate against false accepts per hour, one threshold shared by all keywords, and the
    calibrated per-keyword operating point."""
    figure, axis = pipeline.pyplot().subplots(figsize=(6.5, 4.5))
    curve = np.array(spotting["det_curve"])
    shown = np.maximum(curve[:, 1], 0.05)  # zero false accepts drawn at the axis' floor
    axis.plot(shown, 100 * curve[:, 2], marker="o", markersize=3, label="one threshold for every keyword")
    for threshold, rate, rejects in curve[:: max(1, len(curve) // 8)]:
        axis.annotate(f"{threshold:g}", (max(rate, 0.05), 100 * rejects), fontsize=7, xytext=(3, 3),
                      textcoords="offset points")  # fmt: skip
    point = spotting["points"].get("calibrated")
    if point is not None:
        axis.plot(max(point["false_accepts_per_hour"], 0.05), 100 * point["false_reject_rate"], "r*", markersize=12,
                  label="per-keyword thresholds (chosen on validation)")  # fmt: skip
    axis.axvline(keyword_spotting.TARGET_FALSE_ACCEPTS_PER_HOUR, color="grey", linestyle=":", label="target: 0.5 FA/h, 5% FRR")
    axis.axhline(5, color="grey", linestyle=":")
    axis.set_xscale("log")
    axis.set_xlabel("false accepts per hour (test split's keyword-free audio; 0 drawn at 0.05)")
    axis.set_ylabel("false-reject rate (%)")
    axis.set_title(f"DET curve: {spotting['placed_clips']} test keyword clips, "
                   f"{spotting['manifest']['seconds'] / 3600:.2f} h of negatives")  # fmt: skip
    axis.legend(fontsize=8)
    axis.grid(True, which="both", alpha=0.3)
    return pipeline.save_figure(figure, path)


def long_audio_report(spotting):
    """`long_audio.md`: the operating points, per keyword and per kind of audio, the DET curve's points, and
    what the long negative audio holds."""
    lines = ["# Keyword spotting on long audio (test split)", ""]
    if spotting.get("smoothing", 1) > 1:
        before = "the window" if spotting["smoothing"] == 2 else f"the {spotting['smoothing'] - 1} windows"
        lines += [f"Each window's probabilities are the mean of its own and {before} before it, as `listen` averages "
                  "them with this export (every setting below).", ""]  # fmt: skip
    lines += ["| setting | false accepts per hour | false-reject rate |", "|---|---|---|"]
    for name, point in spotting["points"].items():
        lines.append(f"| {name} | {point['false_accepts_per_hour']:.2f} ({point['false_accepts']}) | "
                     f"{100 * point['false_reject_rate']:.1f}% |")  # fmt: skip
    default = spotting["points"][f"at {DEFAULT_THRESHOLD}"]
    calibrated = spotting["points"].get("calibrated")
    thresholds = spotting["thresholds"] or {}

    def cells(point, label):
        if point is None:
            return "- | -"
        return f"{100 * point['false_reject_rate_by_keyword'].get(label, 0):.1f}% | {point['false_accepts_by_keyword'].get(label, 0)}"

    lines += ["", "| keyword | threshold | false-reject rate | false accepts | "
              f"at {DEFAULT_THRESHOLD}: false-reject rate | false accepts |", "|---|---|---|---|---|---|"]
    for label in default["false_reject_rate_by_keyword"]:
        threshold = f"{thresholds[label]:.4f}" if label in thresholds else "-"
        lines.append(f"| {label} | {threshold} | {cells(calibrated, label)} | {cells(default, label)} |")
    lines += ["", "| kind of audio | hours | false accepts per hour, calibrated | "
              f"at {DEFAULT_THRESHOLD} |", "|---|---|---|---|"]
    for kind, values in default["by_kind"].items():
        rate = "-" if calibrated is None else f"{calibrated['by_kind'][kind]['false_accepts'] / values['hours']:.1f}"
        lines.append(f"| {kind} | {values['hours']:.2f} | {rate} | {values['false_accepts'] / values['hours']:.1f} |")
    lines += ["", "DET curve (one threshold for every keyword):", "", "| threshold | false accepts per hour | "
              "false-reject rate |", "|---|---|---|"]
    lines += [f"| {threshold:g} | {rate:.2f} | {100 * rejects:.1f}% |" for threshold, rate, rejects in spotting["det_curve"]]
    manifest = spotting["manifest"]
    synthetic = [entry for entry in manifest["files"] if entry["kind"] != "human speech"]
    voices = sorted({voice for entry in synthetic for voice in entry["voices"]})
    lines += ["", f"The negative audio: {manifest['seconds'] / 3600:.2f} h of the test split. Synthetic "
              f"(`data/speech/negatives.py`): {sum(entry['seconds'] for entry in synthetic) / 3600:.2f} h, "
              f"{len(voices)} test voices reading keyword-free Bible verses, babble, noise and music-like sound. "
              "None of it, nor any of its voices, is heard in training or in choosing the thresholds (validation "
              "audio of validation voices)."]  # fmt: skip
    for entry in manifest["files"]:
        if entry["kind"] == "human speech":
            lines.append(f"Real people (`data/speech/human.py`, evaluation role, never trained on): "
                         f"{entry['seconds'] / 60:.1f} min, {entry['recordings']} keyword-free recordings of "
                         f"{', '.join(entry['voices'])} ({', '.join(entry['sources'])}).")  # fmt: skip
    lines.append("")
    lines += ["| file | kind | seconds | voices | verses |", "|---|---|---|---|---|"]
    lines += [f"| {entry['file']} | {entry['kind']} | {entry['seconds']:.0f} | {len(entry['voices'])} | {entry['verses']} |"
              for entry in manifest["files"]]  # fmt: skip
    if spotting.get("calibration"):
        calibration = spotting["calibration"]
        lines += ["", f"Thresholds chosen on {calibration['validation_hours']:.2f} h of the validation split's "
                  f"long audio, where they give {calibration['validation_false_accepts']} false accepts."]
        if "smoothing_candidates" in calibration:
            lines += ["", "Windows averaged, chosen with the thresholds on the validation split (lowest false-reject "
                      f"rate of its {calibration['validation_placed_clips']} placed keyword clips, each k at its "
                      "own thresholds):", "", "| windows averaged | validation false accepts per hour | "
                      "validation false-reject rate |", "|---|---|---|"]  # fmt: skip
            lines += [f"| {row['smoothing']}{' (chosen)' if row['smoothing'] == calibration['smoothing'] else ''} | "
                      f"{row['false_accepts'] / calibration['validation_hours']:.2f} | "
                      f"{100 * row['false_reject_rate']:.1f}% |" for row in calibration["smoothing_candidates"]]  # fmt: skip
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Metrics, baseline features
# ---------------------------------------------------------------------------------------------------------


def feature_statistics(audio, batch_size=512):
    """Per-band mean and standard deviation of the unnormalized log-mel frames of `audio`."""
    layer = LogMelSpectrogram()
    total = np.zeros(MEL_BANDS)
    squares = np.zeros(MEL_BANDS)
    count = 0
    for begin in range(0, len(audio), batch_size):
        frames = layer(tf.constant(audio[begin : begin + batch_size])).numpy().reshape(-1, MEL_BANDS)
        total += frames.sum(axis=0, dtype=np.float64)
        squares += (frames.astype(np.float64) ** 2).sum(axis=0)
        count += len(frames)
    mean = total / count
    return mean.tolist(), np.sqrt(np.maximum(squares / count - mean**2, 1e-6)).tolist()


def mean_log_mel(audio, mean, std, batch_size=512):
    """The baseline's features: each clip's normalized log-mel averaged over time, and its spread."""
    layer = LogMelSpectrogram(mean, std)
    rows = []
    for begin in range(0, len(audio), batch_size):
        frames = layer(tf.constant(audio[begin : begin + batch_size], tf.float32)).numpy()
        rows.append(np.concatenate([frames.mean(axis=1), frames.std(axis=1)], axis=1))
    return np.concatenate(rows)


def classification_metrics(labels, predicted, names, augmented=None):
    """Accuracy (also apart on the corpus' clean and augmented copies of each test clip, when it has
    both); false accepts (unknown or silence clips taken for a keyword, where the data has them); keywords
    missed. `names` are the class names the label numbers index."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    keywords = keyword_positions(names)
    keyword = np.isin(predicted, keywords)
    metrics = {"accuracy": float(np.mean(predicted == labels))}
    augmented = None if augmented is None else np.asarray(augmented, bool)
    if augmented is not None and augmented.any() and not augmented.all():
        metrics["accuracy_clean"] = float(np.mean((predicted == labels)[~augmented]))
        metrics["accuracy_augmented"] = float(np.mean((predicted == labels)[augmented]))
    for name in (speech.UNKNOWN, speech.SILENCE):
        rows = labels == (list(names).index(name) if name in names else -1)
        metrics[f"false_accept_{name.strip('_')}"] = float(np.mean(keyword[rows])) if rows.any() else None
    spoken = np.isin(labels, keywords)
    metrics["keyword_miss_rate"] = float(np.mean(~keyword[spoken])) if spoken.any() else None
    metrics["examples"] = int(len(labels))
    metrics["per_class_accuracy"] = {
        name: float(np.mean(predicted[labels == index] == index)) for index, name in enumerate(names)
        if (labels == index).any()
    }  # fmt: skip
    return metrics


def spokennumbers_metrics(words, predicted):
    correct = sum(word == guess for word, guess in zip(words, predicted))
    return {"spokennumbers_accuracy": float(correct / max(len(words), 1)), "spokennumbers_correct": int(correct)}


# ---------------------------------------------------------------------------------------------------------
# WAV files, `listen`, `demo-recording`
# ---------------------------------------------------------------------------------------------------------


read_wav = formats.read_wav  # `listen` reads its recording as `predict` reads clips (in blocks)


def add_listen_arguments(parser):
    parser.add_argument("file", help="a WAV recording (any rate, mono or stereo)")
    parser.add_argument("--threshold", type=float,
                        help="lowest keyword probability reported, for every keyword (default: the export's "
                             f"per-keyword thresholds, calibrated for <= 0.5 false accepts per hour; "
                             f"{DEFAULT_THRESHOLD} for an export without them)")  # fmt: skip
    parser.add_argument("--smoothing", type=int,
                        help="windows whose probabilities are averaged before the thresholds (a window and the ones "
                             "before it; default: the export's, chosen with its thresholds; 1 for an export without "
                             "it, and 1 is no smoothing). The export's thresholds were calibrated for its own k: "
                             "another k with them is not a calibrated operating point")  # fmt: skip
    parser.add_argument("--hop-ms", type=int, default=200, dest="hop_ms",
                        help="a new 1 s window starts every hop (a multiple of 100 ms)")  # fmt: skip
    parser.add_argument("--server", help="HOST:PORT of a model server's gRPC port: stream through its speech_keywords "
                                         "model instead of the local export")  # fmt: skip


def stream_windows(stream_signature, audio, hop_ms=200):
    """The probabilities of every 1 s window of `audio` on a `hop_ms` grid, through the `stream` signature.

    `audio` is 16 kHz mono float32: one array, or an iterable of consecutive arrays of any lengths (a
    `speech.WavBlocks`), read as it goes, so an hour of audio never has to be in memory.

    The model learned one-second clips that start from a zero state, so this runs several streams, a new
    one every `hop_ms`, each fed 100 ms chunks for one second and then dropped: every window costs only
    its new chunks. The recording is followed by 1 s of silence, so its end is heard too (a last chunk
    shorter than 100 ms is not).

    The streams' rows are independent, so they run as one batch per chunk: every stream that has begun
    takes the chunk in one call. A stream's first call has no pending samples yet, and the others have some,
    so the first chunks of the windows that begin within the next second are run together, in one call, a
    second at a time: about 1.1 calls per chunk, where one stream per call took 5 (at the default hop).
    Each stream is fed the same samples in the same calls as alone, and its answers are the same.

    Yields `(seconds at the window's centre, probabilities)`, in time order.
    """
    if hop_ms < 100 or hop_ms % 100 or hop_ms > 1000:
        raise ValueError(f"`hop_ms` must be a multiple of 100 from 100 to 1000. Received: hop_ms={hop_ms}")
    hop_chunks, window_chunks = hop_ms // 100, CLIP_SAMPLES // STREAM_CHUNK
    chunks = stream_chunks([audio] if isinstance(audio, np.ndarray) else audio)
    streams = {}  # first chunk -> (pending, state), each a row
    for second in itertools.count(0, window_chunks):
        chunk_group = list(itertools.islice(chunks, window_chunks))  # chunks [second, second + window_chunks)
        if not chunk_group:
            return
        firsts = [first for first in range(second, second + len(chunk_group)) if first % hop_chunks == 0]
        if firsts:
            nothing = np.zeros((len(firsts), 0), np.float32)  # no pending samples, and the zero state
            begun = call_stream(stream_signature, np.stack([chunk_group[first - second] for first in firsts]),
                                nothing, nothing)  # fmt: skip
            for row, first in enumerate(firsts):
                streams[first] = (begun["pending"][row], begun["state"][row])
        for index, chunk in enumerate(chunk_group, start=second):
            going = [first for first in streams if first < index]  # begun at an earlier chunk
            if not going:
                continue
            # Rows of one call need pending samples of one width; with 100 ms chunks all have the same.
            for width in sorted({len(streams[first][0]) for first in going}):
                rows = [first for first in going if len(streams[first][0]) == width]
                outputs = call_stream(stream_signature, np.tile(chunk, (len(rows), 1)),
                                      np.stack([streams[first][0] for first in rows]),
                                      np.stack([streams[first][1] for first in rows]))  # fmt: skip
                for row, first in enumerate(rows):
                    if index - first + 1 == window_chunks:
                        del streams[first]
                        centre = (first * STREAM_CHUNK + CLIP_SAMPLES / 2) / SAMPLE_RATE
                        yield centre, outputs["probabilities"][row]
                    else:
                        streams[first] = (outputs["pending"][row], outputs["state"][row])
        # A window ends at the chunk `window_chunks - 1` after its first, and windows begin in time order, so
        # they were yielded in time order too.


def stream_chunks(blocks):
    """The consecutive `STREAM_CHUNK`-sample chunks of the concatenated `blocks`, then of 1 s of silence; a last
    chunk shorter than `STREAM_CHUNK` is dropped."""
    held = np.zeros(0, np.float32)
    for block in itertools.chain(blocks, [np.zeros(CLIP_SAMPLES, np.float32)]):
        held = np.concatenate([held, np.asarray(block, np.float32)])
        whole = len(held) // STREAM_CHUNK * STREAM_CHUNK
        yield from held[:whole].reshape(-1, STREAM_CHUNK)
        held = held[whole:]


def call_stream(stream_signature, audio, pending, state):
    """One call of the `stream` signature on NumPy rows; its outputs as NumPy arrays."""
    outputs = stream_signature(audio=tf.constant(audio), pending=tf.constant(pending), state=tf.constant(state))
    return {name: value.numpy() for name, value in outputs.items()}


def detect(stream_signature, audio, labels, threshold=DEFAULT_THRESHOLD, hop_ms=200, smoothing=1):
    """Time-stamped keyword detections in a long recording: the windows of `stream_windows`, their
    probabilities averaged over `smoothing` windows (the window and the ones before it: `keyword_spotting.smooth`),
    whose most probable class is a keyword (of `labels`, the export's class names) at its threshold or above
    (`threshold`: one number for every keyword, or `{keyword: threshold}` as the export's `labels` signature
    gives them). Of detections less than 1 s apart (overlapping windows) only the most probable is kept: a word
    is reported once, and a window that catches only the end of "stop" does not add an "up"
    (`keyword_spotting.detections`, the rule the long-audio evaluation applies).

    Returns `[(seconds at the window's centre, label, probability)]`.
    """
    windows = list(stream_windows(stream_signature, audio, hop_ms))  # 22 numbers a window: 3 MB for an hour
    centres = np.array([centre for centre, _ in windows])
    probabilities = np.array([row for _, row in windows]).reshape(len(windows), len(labels))
    return keyword_spotting.detections(centres, probabilities, labels, threshold, smoothing)


def served_signatures(address):
    """The `stream` and `labels` signatures of the speech_keywords model of the server at `address` (HOST:PORT,
    gRPC), as callables that answer as a loaded export's signatures do."""
    from serving import client

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--server is HOST:PORT of a gRPC port, e.g. 127.0.0.1:8500. Received: {address!r}")
    return {name: client.remote_signature(SpeechKeywordsApp.name, name, host, int(port)) for name in ("stream", "labels")}


def listen(config, arguments):
    if getattr(arguments, "server", None):
        return listen_to_server(arguments)
    version_dir = pipeline.latest_version(SpeechKeywordsApp(), config, arguments.version)
    signatures = tf.saved_model.load(str(version_dir)).signatures
    return listen_with(signatures, arguments, f"export {version_dir}")


def listen_to_server(arguments):
    """`listen` through a model server: every `stream` call is a gRPC request, its state carried by the client."""
    from serving import client

    try:
        return listen_with(served_signatures(arguments.server), arguments, f"served at {arguments.server}")
    except client.ServingError as error:
        raise ValueError(f"The server could not stream. Received: {error}") from None


def listen_with(signatures, arguments, source):
    """Prints and returns the keywords of `arguments.file` found through `signatures` (`stream` and `labels`)."""
    if "stream" not in signatures:
        raise ValueError(f"The model ({source}) has no `stream` signature (a bidirectional model cannot "
                         f"stream). Received signatures: {sorted(signatures)}")  # fmt: skip
    audio = read_wav(arguments.file, blocks=True)  # read as it is streamed: memory does not grow with the file
    labels = labels_of(signatures)
    threshold = arguments.threshold
    if threshold is None:
        threshold = signature_thresholds(signatures, labels) or DEFAULT_THRESHOLD
    elif not 0 <= threshold <= 1:
        raise ValueError(f"--threshold is a probability, from 0 to 1. Received: {threshold}")
    smoothing = getattr(arguments, "smoothing", None)
    if smoothing is None:
        smoothing = signature_smoothing(signatures)
    elif smoothing < 1:
        raise ValueError(f"--smoothing is the number of windows averaged, a positive integer (1: none). "
                         f"Received: {smoothing}")  # fmt: skip
    detections = detect(signatures["stream"], audio, labels, threshold, arguments.hop_ms, smoothing=smoothing)
    print(f"{arguments.file}: {len(audio) / SAMPLE_RATE:.1f} s, {len(detections)} keyword(s), {source}"
          + (f", {smoothing} windows averaged" if smoothing > 1 else ""))
    for seconds, label, probability in detections:
        print(f"  {seconds:7.2f} s  {label:<8} p={probability:.2f}")
    return detections


def add_demo_recording_arguments(parser):
    parser.add_argument("file", help="the WAV file to write")
    parser.add_argument("--words", nargs="+",
                        help=f"keywords of the data (default: {' '.join(DEMO_WORDS)}, or its first four keywords)")
    parser.add_argument("--gap-seconds", type=float, default=0.8, dest="gap_seconds")
    parser.add_argument("--data", dest="data_path", help="your own folder of labelled WAVs instead of --dataset")


def demo_recording(config, arguments):
    """Test-split clips (voices never trained on) of the given words, with silence between and around."""
    data = load_splits(config)
    audio, labels = data["test"]
    keywords = [data["labels"][index] for index in keyword_positions(data["labels"])]
    words = arguments.words or (list(DEMO_WORDS) if set(DEMO_WORDS) <= set(keywords) else keywords[:4])
    unknown = [word for word in words if word not in keywords]
    if unknown:
        raise ValueError(f"--words must be keywords of the data: {keywords}. Received: {unknown}")
    gap = np.zeros(int(arguments.gap_seconds * SAMPLE_RATE), np.float32)
    pieces, cursor, truth = [gap], len(gap), []
    for word in words:
        rows = np.flatnonzero(labels == data["labels"].index(word))
        if not len(rows):
            raise ValueError(f"No test clip of {word!r} in the data. Received: --words {words}")
        pieces += [audio[rows[0]], gap]
        truth.append(((cursor + CLIP_SAMPLES / 2) / SAMPLE_RATE, word))
        cursor += CLIP_SAMPLES + len(gap)
    speech.write_wav(arguments.file, np.concatenate(pieces))
    print(f"Wrote {arguments.file}: " + ", ".join(f"{word} at {seconds:.2f} s" for seconds, word in truth))
    return truth


def main(argv=None):
    return pipeline.main(SpeechKeywordsApp(), argv)


if __name__ == "__main__":
    pipeline.command_line(SpeechKeywordsApp())
