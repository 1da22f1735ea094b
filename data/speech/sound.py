"""Audio as the speech data holds it: 16 kHz mono float32 in [-1, 1], read from and written to WAV, cut to 1 s."""

import fractions
import warnings

import numpy as np
import scipy.io.wavfile
import scipy.signal

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000  # one second, Speech Commands' clip length


def to_float(audio):
    """float32 mono in [-1, 1] from a WAV array: int16, int32, uint8 or float; channels averaged."""
    audio = np.asarray(audio)
    if audio.dtype == np.uint8:
        audio = (audio.astype(np.float32) - 128) / 128
    elif np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max + 1)
    audio = audio.astype(np.float32)
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def resample(audio, rate, target_rate=SAMPLE_RATE):
    """Polyphase resampling (its anti-aliasing filter cuts at the lower Nyquist frequency)."""
    if rate == target_rate:
        return np.asarray(audio, np.float32)
    ratio = fractions.Fraction(target_rate, rate)
    return scipy.signal.resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


def read_wav(path, target_rate=SAMPLE_RATE):
    """A WAV file (PCM 8, 16, 24 or 32 bit or float, any rate, mono or stereo) as mono float32 at `target_rate`.

    Raises `ValueError` for a file that is not a WAV, or whose data stops before its header says it ends.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.io.wavfile.WavFileWarning)
        try:
            rate, audio = scipy.io.wavfile.read(path)
        except Exception as error:  # scipy raises ValueError, struct.error or EOFError for broken headers
            raise ValueError(f"{path}: not a readable WAV file ({type(error).__name__}: {error})") from None
    truncated = [str(warning.message) for warning in caught if "prematurely" in str(warning.message)]
    if truncated:
        raise ValueError(f"{path}: a truncated WAV file ({truncated[0]})")
    return resample(to_float(audio), rate, target_rate)


def write_wav(path, audio):
    """Writes 16 kHz float audio in [-1, 1] as 16-bit PCM."""
    scipy.io.wavfile.write(path, SAMPLE_RATE, to_pcm16(audio))


def voiced_extent(audio, threshold=0.05):
    """(first, last + 1) sample whose magnitude reaches `threshold` x the peak; (0, 0) for an all-zero clip."""
    magnitude = np.abs(audio)
    peak = magnitude.max(initial=0.0)
    if peak == 0:
        return 0, 0
    loud = np.flatnonzero(magnitude >= threshold * peak)
    return int(loud[0]), int(loud[-1]) + 1


def trim_silence(audio, threshold=0.02, margin=160):
    """The clip without its leading and trailing near-silence, keeping `margin` samples (10 ms) each side."""
    first, last = voiced_extent(audio, threshold)
    return audio[max(first - margin, 0) : last + margin]


def fit_to_clip(audio, length=CLIP_SAMPLES, crop="center"):
    """Exactly `length` samples: a shorter clip centered between zeros, a longer one cut to `length`.

    `crop` says where a longer clip is cut: "center" keeps its middle (a word the synthesizer centred, a speed
    change of it); "loudest" keeps the `length` samples of most energy (a recording whose word may be anywhere).
    """
    audio = np.asarray(audio, np.float32)
    if len(audio) >= length:
        if crop == "center":
            start = (len(audio) - length) // 2
        elif crop == "loudest":
            energy = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
            start = int(np.argmax(energy[length:] - energy[:-length]))
        else:
            raise ValueError(f"`crop` must be 'center' or 'loudest'. Received: crop={crop!r}")
        return audio[start : start + length].copy()
    padded = np.zeros(length, np.float32)
    start = (length - len(audio)) // 2
    padded[start : start + len(audio)] = audio
    return padded


def power(audio):
    return float(np.mean(np.square(audio, dtype=np.float64)))


def to_pcm16(audio):
    """float audio in [-1, 1] as int16 samples (how WAV files and the corpus' cached arrays hold it)."""
    return np.clip(np.round(np.asarray(audio) * 32767), -32768, 32767).astype(np.int16)
