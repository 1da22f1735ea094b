"""Augmentations from a synthesizer towards a real microphone: each one a plain function of a 1 s clip, so that
the tests measure it back (the SNR of added noise, a room's decay time, the telephone band)."""

import fractions
import math

import numpy as np
import scipy.signal

from data.speech import sound


def apply_gain(audio, gain_db):
    return (audio * 10 ** (gain_db / 20)).astype(np.float32)


def time_shift(audio, samples):
    """Moved `samples` later (earlier if negative), zeros filling in: no wrap-around, unlike np.roll."""
    shifted = np.zeros_like(audio)
    if samples >= 0:
        shifted[samples:] = audio[: len(audio) - samples]
    else:
        shifted[:samples] = audio[-samples:]
    return shifted


def change_speed(audio, factor):
    """Played `factor` times faster, pitch moving with it (like tape, or sox's `speed`): shorter when factor > 1."""
    ratio = fractions.Fraction(factor).limit_denominator(20)
    return scipy.signal.resample_poly(audio, ratio.denominator, ratio.numerator).astype(np.float32)


def colored_noise(kind, samples, rng):
    """Unit-power noise: "white" (flat), "pink" (power ~ 1/f), "brown" (1/f^2) or "hum" (mains 50/60 Hz)."""
    if kind == "hum":
        time = np.arange(samples) / sound.SAMPLE_RATE
        fundamental = rng.choice([50.0, 60.0])
        noise = sum(
            rng.uniform(0.2, 1.0) / harmonic
            * np.sin(2 * np.pi * fundamental * harmonic * time + rng.uniform(0, 2 * np.pi))
            for harmonic in range(1, 8)
        )
        noise = noise + 0.05 * rng.standard_normal(samples)  # a real hum always comes with some hiss
    else:
        exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}.get(kind)
        if exponent is None:
            raise ValueError(f"`kind` must be white, pink, brown or hum. Received: kind={kind!r}")
        spectrum = np.fft.rfft(rng.standard_normal(samples))
        frequencies = np.fft.rfftfreq(samples, 1 / sound.SAMPLE_RATE)
        spectrum[1:] /= frequencies[1:] ** exponent
        spectrum[0] = 0
        noise = np.fft.irfft(spectrum, samples)
    return (noise / math.sqrt(max(sound.power(noise), 1e-20))).astype(np.float32)


def babble(clips, samples, rng, talkers=(3, 7)):
    """Unit-power babble: a few other words, each at a random offset and level, talking over each other."""
    noise = np.zeros(samples, np.float32)
    for index in rng.choice(len(clips), size=rng.integers(*talkers), replace=len(clips) < talkers[1]):
        noise += np.roll(clips[index], rng.integers(samples)) * rng.uniform(0.3, 1.0)
    return (noise / math.sqrt(max(sound.power(noise), 1e-20))).astype(np.float32)


def background_cut(recordings, samples, rng):
    """`samples` consecutive samples of one of `recordings` (drawn by length) from a random start, as recorded;
    a recording shorter than that is repeated."""
    lengths = np.array([len(recording) for recording in recordings], np.float64)
    recording = recordings[rng.choice(len(recordings), p=lengths / lengths.sum())]
    if len(recording) <= samples:
        return np.resize(recording, samples).astype(np.float32)
    start = int(rng.integers(len(recording) - samples + 1))
    return np.asarray(recording[start : start + samples], np.float32)


def add_noise(audio, noise, snr_db):
    """`audio` plus `noise` scaled so that power(audio) / power(scaled noise) is `snr_db` decibels."""
    scale = math.sqrt(sound.power(audio) / (max(sound.power(noise), 1e-20) * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


def reverberate(audio, reverberation_seconds, rng, wet=0.5):
    """Mixed with itself through a synthetic room: decaying noise whose level falls 60 dB in `reverberation_seconds`."""
    taps = max(int(reverberation_seconds * sound.SAMPLE_RATE), 2)
    time = np.arange(taps) / sound.SAMPLE_RATE
    impulse_response = rng.standard_normal(taps) * np.exp(-3 * math.log(10) * time / reverberation_seconds)
    impulse_response[0] = 0.0
    impulse_response /= np.sqrt(np.sum(impulse_response**2))
    reverberant = scipy.signal.fftconvolve(audio, impulse_response)[: len(audio)]
    return ((1 - wet) * audio + wet * reverberant).astype(np.float32)


def telephone(audio):
    """A narrowband telephone line: down to 8 kHz and back, keeping its 300-3400 Hz band (nothing above 4 kHz)."""
    narrow = sound.resample(audio, sound.SAMPLE_RATE, 8000)
    narrow = scipy.signal.sosfilt(_TELEPHONE_BAND, narrow)
    return sound.resample(narrow, 8000, sound.SAMPLE_RATE)[: len(audio)]


# The low edge keeps what is left near 4 kHz from mirroring above it when the line is upsampled again.
_TELEPHONE_BAND = np.concatenate([
    scipy.signal.butter(4, 300, "highpass", fs=8000, output="sos"),
    scipy.signal.butter(8, 3400, "lowpass", fs=8000, output="sos"),
])  # fmt: skip


def microphone_coloration(audio, rng):
    """A cheap or distant microphone: a gentle random low-pass (3-7 kHz) or high-pass (80-400 Hz)."""
    if rng.random() < 0.5:
        sos = scipy.signal.butter(2, rng.uniform(3000, 7000), "lowpass", fs=sound.SAMPLE_RATE, output="sos")
    else:
        sos = scipy.signal.butter(2, rng.uniform(80, 400), "highpass", fs=sound.SAMPLE_RATE, output="sos")
    return scipy.signal.sosfilt(sos, audio).astype(np.float32)


NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")


def augment(audio, rng, babble_clips, background_recordings=None):
    """One random trip from the synthesizer to a real microphone, on a 1 s clip (`fit_to_clip`).

    In order: speed (0.85-1.15, moves pitch too), time shift within the clip's free margins, room reverberation,
    microphone coloration, telephone band, background noise at 5-35 dB SNR (white, pink, brown, mains hum or
    babble of training words), gain of -20 to +4 dB with clipping at full scale. Each step is taken with its own
    probability, so some clips stay almost clean. Moderate on purpose: the app adds its own augmentation on top,
    and a small model trained for minutes learns little from clips drowned at 0 dB in a cathedral.

    `background_recordings` (long 16 kHz recordings of real rooms, e.g. a user folder's `_background_noise_`)
    make half of the added noise a cut of one of them, at the same SNRs.
    """
    if rng.random() < 0.6:
        audio = sound.fit_to_clip(change_speed(audio, rng.uniform(0.85, 1.15)))
    first, last = sound.voiced_extent(audio)
    if last > first:
        audio = time_shift(audio, int(rng.integers(-first, len(audio) - last + 1)))
    if rng.random() < 0.3:
        audio = reverberate(audio, rng.uniform(0.1, 0.6), rng, wet=rng.uniform(0.1, 0.5))
    if rng.random() < 0.3:
        audio = microphone_coloration(audio, rng)
    if rng.random() < 0.15:
        audio = telephone(audio)
    if rng.random() < 0.8:
        if background_recordings and rng.random() < 0.5:
            noise = background_cut(background_recordings, len(audio), rng)
        else:
            kind = NOISE_KINDS[rng.integers(len(NOISE_KINDS))]
            noise = babble(babble_clips, len(audio), rng) if kind == "babble" else colored_noise(kind, len(audio), rng)
        audio = add_noise(audio, noise, rng.uniform(5, 35))
    # Clean clips peak at 0.5, so this spans peaks of 0.05 to 0.8; spokennumbers' human digits peak at 0.67-0.91.
    audio = apply_gain(audio, rng.uniform(-20, 4))
    return np.clip(audio, -1, 1).astype(np.float32)


def silence_clip(rng, babble_clips):
    """A `_silence_` clip: room tone (one kind of noise, or two) from -75 to -25 dBFS, sometimes digital zero.

    Babble stays below -45 dBFS: louder, its words would be words, and the clip no longer silence.
    """
    if rng.random() < 0.05:
        return np.zeros(sound.CLIP_SAMPLES, np.float32)
    audio = np.zeros(sound.CLIP_SAMPLES, np.float32)
    for _ in range(rng.integers(1, 3)):
        kind = NOISE_KINDS[rng.integers(len(NOISE_KINDS))]
        if kind == "babble":
            audio += apply_gain(babble(babble_clips, sound.CLIP_SAMPLES, rng), rng.uniform(-75, -45))
        else:
            audio += apply_gain(colored_noise(kind, sound.CLIP_SAMPLES, rng), rng.uniform(-75, -25))
    return np.clip(audio, -1, 1).astype(np.float32)


