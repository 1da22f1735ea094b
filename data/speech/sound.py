"""Audio as the speech data holds it: 16 kHz mono float32 in [-1, 1], read from and written to WAV, cut to 1 s.

`read_wav` reads a clip whole; `WavBlocks` reads a recording of any length in blocks, sample for sample the
same audio, in memory that does not grow with the file.
"""

import fractions
import os
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
    check_rate(path, rate)
    return resample(to_float(audio), rate, target_rate)


def check_rate(path, rate):
    """A header whose sample rate is 0 passes scipy's checks when its byte rate is 0 too."""
    if rate <= 0:
        raise ValueError(f"{path}: not a readable WAV file (its header gives a sample rate of {rate} Hz; expected "
                         f"a positive rate)")  # fmt: skip


class WavBlocks:
    """A WAV file read in blocks: iterating yields consecutive float32 arrays whose concatenation is
    `read_wav(path, target_rate)`, sample for sample, and `len()` is that concatenation's length.

    For recordings too long to hold (an hour of 48 kHz stereo is 0.7 GB of 16-bit samples, and `read_wav` holds
    several times that while it converts and resamples): about `block_seconds` of the file is in memory at a
    time, however long it is. The header is parsed, and checked, when the object is made, by the same scipy
    reader as `read_wav` (memory-mapped, so no sample is read then), so the two accept the same files and refuse
    the same ones with a `ValueError`; a truncated file is refused up front.

    scipy cannot memory-map samples of 3 bytes (24-bit PCM): such a file is read whole, as `read_wav` does.
    """

    def __init__(self, path, target_rate=SAMPLE_RATE, block_seconds=10.0):
        if not block_seconds > 0:
            raise ValueError(f"`block_seconds` must be positive. Received: block_seconds={block_seconds!r}")
        self.path = path
        self.target_rate = int(target_rate)
        self.whole = None  # the audio of a file read whole (24-bit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.io.wavfile.WavFileWarning)  # unknown chunks, as read_wav
            try:
                self.rate, samples = scipy.io.wavfile.read(path, mmap=True)
            except ValueError as error:
                if "greater than file size" in str(error):
                    raise ValueError(
                        f"{path}: a truncated WAV file (its header promises more audio than the file's "
                        f"{os.path.getsize(path)} bytes hold)"
                    ) from None
                if "not compatible with" not in str(error):
                    raise ValueError(f"{path}: not a readable WAV file (ValueError: {error})") from None
                self.whole = read_wav(path, target_rate)
                self.rate = None
            except Exception as error:  # struct.error or EOFError for a header cut short
                raise ValueError(f"{path}: not a readable WAV file ({type(error).__name__}: {error})") from None
        if self.whole is None:
            check_rate(path, self.rate)
            self.offset, self.dtype = samples.offset, samples.dtype
            self.frames = len(samples)
            self.channels = samples.shape[1] if samples.ndim == 2 else 1
            del samples  # unmaps the file
            self.block_frames = max(int(block_seconds * self.rate), 1)

    def __len__(self):
        if self.whole is not None:
            return len(self.whole)
        ratio = fractions.Fraction(self.target_rate, self.rate)
        return -(-self.frames * ratio.numerator // ratio.denominator)  # resample_poly's ceil(frames * up / down)

    def __iter__(self):
        if self.whole is not None:
            yield self.whole
            return
        yield from resample_blocks(self.float_blocks(), self.rate, self.target_rate)

    def float_blocks(self):
        """The file's samples as `to_float` makes them (mono float32), `block_frames` at a time, at its own rate."""
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            for begin in range(0, self.frames, self.block_frames):
                count = min(self.block_frames, self.frames - begin) * self.channels
                samples = np.fromfile(file, self.dtype, count)
                if len(samples) < count:  # the file shrank since the header was read
                    raise ValueError(
                        f"{self.path}: a truncated WAV file (it ended {count - len(samples)} samples early)"
                    )
                yield to_float(samples.reshape(-1, self.channels) if self.channels > 1 else samples)


def resample_blocks(blocks, rate, target_rate=SAMPLE_RATE):
    """`resample` of the concatenated `blocks` (1-D float arrays), yielded in blocks as they arrive.

    The polyphase filter makes output sample `j` from the input samples `k` with
    `|j * down - k * up| <= reach` (`up / down` = `target_rate / rate`, `reach` the filter's half-length,
    `10 * max(up, down)` in `resample_poly`), and from nothing else. So each block is resampled together with
    the few input samples before it that its first outputs need, starting at a multiple of `down` (which maps
    to a whole output sample), and only the outputs whose inputs have all arrived are yielded: they are the
    whole-signal outputs exactly, computed by the same `resample_poly`.
    """
    if rate == target_rate:
        for block in blocks:
            yield np.asarray(block, np.float32)
        return
    ratio = fractions.Fraction(target_rate, rate)
    up, down = ratio.numerator, ratio.denominator
    # resample_poly's default filter half-length, in upsampled samples (scipy is pinned; the tests compare the
    # blocks with the whole signal's resampling bit for bit, so a change there would show).
    reach = 10 * max(up, down)
    held, start, emitted = np.zeros(0, np.float32), 0, 0  # inputs from `start` on; outputs yielded so far
    for block in blocks:
        held = np.concatenate([held, np.asarray(block, np.float32)])
        ready = ((start + len(held) - 1) * up - reach) // down + 1  # outputs whose last input has arrived
        if ready <= emitted:
            continue
        first_output = start * up // down
        yield resample(held, rate, target_rate)[emitted - first_output : ready - first_output]
        emitted = ready
        needed = max(-(-(emitted * down - reach) // up), 0)  # the first input that the next output uses
        drop = needed // down * down - start
        held, start = held[drop:], start + drop
    first_output = start * up // down
    yield resample(held, rate, target_rate)[emitted - first_output :]


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
