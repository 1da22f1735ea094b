"""Long keyword-free audio: what a keyword spotter that is left switched on hears most of the time.

A deployed spotter is judged on false accepts per hour of audio that holds no keyword. `load_long_negatives(split)`
builds that audio once per split and caches it as WAV files of a few minutes each:

- running speech: Bible verses that contain no keyword (nor a word that sounds like one, such as "to" for "two":
  `vocabulary.HOMOPHONES`),
  read by the split's own voices (espeak-ng variants and the recorded flite/festival speaker of that split, as
  the corpus splits them), a voice reading a few verses in a row with pauses between; half of it under background
  noise (white, pink, brown, hum or babble at 5 to 20 dB SNR);
- babble: several of those readers talking at once;
- noise: coloured noise and hum whose level changes every few seconds, with quiet gaps;
- music-like sound: melodies and chords of harmonic tones with percussive noise bursts;
- real people (validation and test only, read at load time, not cached): keyword-free telephone prompts of the
  split's own speakers (`human_negatives`: validation June Wallack in French, test Allison Smith in English).

The verses of each split are its own (drawn by a fixed seed), and its voices are the corpus' voices of that split,
so the "test" audio is never heard in training or in choosing thresholds, which use "validation". The files are
cached under `.cache/speech_negatives/<split>-<key>/` with a `manifest.json` (file, kind, seconds, voices, verses);
a change to how they are made bumps `NEGATIVES_VERSION`.
"""

import dataclasses
import gzip
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd

from data.speech import augmentation, corpus, engines, sound, vocabulary

NEGATIVES_VERSION = 3
DEFAULT_CACHE_DIR = ".cache/speech_negatives"
BIBLE_PATH = pathlib.Path(__file__).resolve().parents[1] / "bundled" / "bible_en_es.tsv.gz"
# The recorded speaker of each split (corpus.RECORDED_SPEAKER_SPLITS) and the voices that render him or her.
RECORDED_VOICES = {"train": ["flite:kal", "flite:awb", "flite:slt"], "validation": ["festival:ked_diphone"],
                   "test": ["flite:rms"]}  # fmt: skip
RECORDED_SHARE = 0.25
KINDS = ("speech", "speech in noise", "babble", "noise", "music")
# The split whose long negative audio holds the keyword-free recordings of people of a `human` role.
HUMAN_ROLES = {"validation": "validation", "test": "evaluation"}


@dataclasses.dataclass(frozen=True)
class NegativesConfig:
    """How much of each kind a split's long negative audio holds, in files of `file_minutes` each."""

    speech_files: int = 4
    speech_in_noise_files: int = 4
    babble_files: int = 1
    noise_files: int = 1
    music_files: int = 1
    file_minutes: float = 5.5

    def key(self, keywords):
        text = json.dumps({**dataclasses.asdict(self), "keywords": list(keywords), "version": NEGATIVES_VERSION},
                          sort_keys=True)  # fmt: skip
        return hashlib.sha1(text.encode()).hexdigest()[:10]


def verse_words(text):
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower().replace("\u2019", "'"))


def _unit_hash(text):
    """A number in [0, 1) fixed by the text alone."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / 16**12


def keyword_free_verses(split, keywords=tuple(vocabulary.KEYWORDS), max_words=30):
    """The English verses of the bundled Bible for `split` that hold no forbidden word and no digit.

    Each verse goes to one split by a hash of its text (70/15/15, as the corpus' voices), so the splits never
    share one, not even a verse the Bible repeats.
    Returns a list of texts, in Bible order, cleaned to what the three synthesizers read safely.
    """
    with gzip.open(BIBLE_PATH, "rt", encoding="utf-8") as handle:
        table = pd.read_csv(handle, sep="\t", usecols=["english"], keep_default_na=False)
    texts = table["english"].tolist()
    # By the text's hash, not its place: the Bible repeats verses word for word, and a repeat must not be in two
    # splits.
    bounds = np.cumsum(corpus.SPLIT_FRACTIONS)
    split_of = [corpus.SPLIT_NAMES[min(int(np.searchsorted(bounds, _unit_hash(text), side="right")), 2)] for text in texts]
    forbidden = vocabulary.sounds_like_keywords(keywords)
    chosen = []
    for text, owner in zip(texts, split_of):
        if owner != split or any(character.isdigit() for character in text):
            continue
        words = verse_words(text)
        if not 4 <= len(words) <= max_words or forbidden & set(words):
            continue
        chosen.append(" ".join(re.sub(r"[^A-Za-z,.;:?!' -]", " ", text.replace("\u2019", "'")).split()))
    return chosen


def split_voices(split):
    """The corpus' voices of `split`: `{"espeak-ng": every accent with the split's variants, "recorded": the
    flite/festival voices of its recorded speaker}`."""
    variants = [variant for variant, owner in corpus.split_variant_groups(engines.espeak_variants()).items()
                if owner == split]  # fmt: skip
    espeak = [f"espeak-ng:{accent}+{variant}" for variant in variants for accent in engines.ESPEAK_ACCENTS]
    return {"espeak-ng": espeak, "recorded": RECORDED_VOICES[split]}


def synthesize_verse(voice, text, rng, folder):
    """`text` read by `voice` at a random pace and pitch, as 16 kHz float32 with its leading and trailing silence
    trimmed, peak at a random level from 0.2 to 0.7."""
    engine, name = voice.split(":", 1)
    path = pathlib.Path(folder) / "verse.wav"
    if engine == "espeak-ng":
        command = ["espeak-ng", "-v", name, "-s", str(int(rng.uniform(110, 190))), "-p", str(int(rng.uniform(20, 80))),
                   "-w", str(path), text]  # fmt: skip
    elif engine == "flite":
        command = ["flite", "-voice", name, "--setf", f"duration_stretch={rng.uniform(0.9, 1.3):.2f}", "-t", text,
                   "-o", str(path)]  # fmt: skip
    else:
        script = pathlib.Path(folder) / "verse.scm"
        quoted = text.replace('"', "")
        script.write_text(f"(voice_{name})\n(Parameter.set 'Duration_Stretch {rng.uniform(0.9, 1.3):.2f})\n"
                          f'(utt.save.wave (utt.synth (Utterance Text "{quoted}")) "{path}" \'riff)\n')  # fmt: skip
        command = ["festival", "-b", str(script)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"{voice} could not read a verse ({result.returncode}): {result.stderr.strip()[-300:]}")
    audio = sound.trim_silence(sound.read_wav(path))
    path.unlink()
    peak = np.abs(audio).max(initial=0.0)
    return audio * (rng.uniform(0.2, 0.7) / peak) if peak > 0 else audio


def running_speech(voices, verses, seconds, rng, folder):
    """About `seconds` of verses read by readers drawn from `voices` (`split_voices`' dict; a quarter of the
    readers are the recorded speaker, who sounds most like a person), 2 to 6 verses each, 0.2-1.5 s pauses.

    Returns `(audio, voices used, verses used)`.
    """
    pieces, total, used_voices, used_verses = [], 0, [], []
    while total < seconds * sound.SAMPLE_RATE:
        voice = str(rng.choice(voices["recorded"] if rng.random() < RECORDED_SHARE else voices["espeak-ng"]))
        used_voices.append(voice)
        for _ in range(int(rng.integers(2, 7))):
            verse = str(rng.choice(verses))
            used_verses.append(verse)
            audio = synthesize_verse(voice, verse, rng, folder)
            pause = np.zeros(int(rng.uniform(0.2, 1.5) * sound.SAMPLE_RATE), np.float32)
            pieces += [audio, pause]
            total += len(audio) + len(pause)
    return np.concatenate(pieces)[: int(seconds * sound.SAMPLE_RATE)].astype(np.float32), used_voices, used_verses


def changing_noise(samples, rng):
    """Coloured noise and hum in stretches of 2-20 s, each at its own level, some of them near silence."""
    pieces, total = [], 0
    while total < samples:
        length = int(rng.uniform(2, 20) * sound.SAMPLE_RATE)
        kind = str(rng.choice(["white", "pink", "brown", "hum"]))
        level = 10 ** (rng.uniform(-60, -15) / 20)
        pieces.append(augmentation.colored_noise(kind, length, rng) * level)
        total += length
    return np.concatenate(pieces)[:samples].astype(np.float32)


def music(samples, rng):
    """Music-like sound: notes of a random scale with 1-6 harmonics and decaying envelopes, chords, and
    percussive bursts of filtered noise on the beat; tempo and key change every 10-40 s."""
    out = np.zeros(samples + sound.SAMPLE_RATE * 2, np.float32)
    position = 0
    while position < samples:
        section = int(rng.uniform(10, 40) * sound.SAMPLE_RATE)
        beat = int(60 / rng.uniform(70, 160) * sound.SAMPLE_RATE)
        root = rng.uniform(110, 330)
        scale = root * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16]) / 12)
        harmonics = rng.uniform(0.2, 0.8, size=int(rng.integers(1, 7)))
        for start in range(position, min(position + section, samples), beat):
            length = beat * int(rng.integers(1, 3))
            time = np.arange(length) / sound.SAMPLE_RATE
            envelope = np.exp(-time * rng.uniform(2, 8)) * np.minimum(1.0, time / 0.01)
            notes = rng.choice(scale, size=int(rng.integers(1, 4)), replace=False)
            tone = sum(weight * np.sin(2 * np.pi * note * (index + 1) * time)
                       for note in notes for index, weight in enumerate(harmonics))  # fmt: skip
            out[start : start + length] += 0.1 * envelope * tone / len(notes)
            if rng.random() < 0.5:
                burst = min(int(0.08 * sound.SAMPLE_RATE), length)
                out[start : start + burst] += (0.15 * np.exp(-np.arange(burst) / 300.0)
                                               * rng.standard_normal(burst)).astype(np.float32)  # fmt: skip
        position += section
    return np.clip(out[:samples], -1, 1)


def _make_file(task):
    """One file of the long negative audio; runs in a worker process. Returns its manifest entry."""
    directory, name, kind, seconds, voices, verses, seed = task
    rng = np.random.default_rng(seed)
    samples = int(seconds * sound.SAMPLE_RATE)
    used_voices, used_verses = [], []
    with tempfile.TemporaryDirectory() as folder:
        if kind in ("speech", "speech in noise"):
            audio, used_voices, used_verses = running_speech(voices, verses, seconds, rng, folder)
            if kind == "speech in noise":
                noise_kind = str(rng.choice(["white", "pink", "brown", "hum", "babble"]))
                if noise_kind == "babble":
                    noise, more_voices, more_verses = running_speech(voices, verses, seconds, rng, folder)
                    used_voices += more_voices
                    used_verses += more_verses
                    noise = noise / np.sqrt(max(sound.power(noise), 1e-12))
                else:
                    noise = augmentation.colored_noise(noise_kind, samples, rng)
                snr = rng.uniform(5, 20)
                audio = audio + noise[:samples] * np.sqrt(sound.power(audio) / 10 ** (snr / 10))
                kind = f"speech in {noise_kind} noise at {snr:.0f} dB SNR"
        elif kind == "babble":
            audio = np.zeros(samples, np.float32)
            for _ in range(int(rng.integers(3, 6))):
                talker, talker_voices, talker_verses = running_speech(voices, verses, seconds, rng, folder)
                audio[: len(talker)] += talker * rng.uniform(0.4, 1.0)
                used_voices += talker_voices
                used_verses += talker_verses
        elif kind == "noise":
            audio = changing_noise(samples, rng)
        elif kind == "music":
            audio = music(samples, rng)
        else:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: {kind!r}")
    peak = np.abs(audio).max(initial=0.0)
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    sound.write_wav(pathlib.Path(directory) / name, audio)
    return {"file": name, "kind": kind, "seconds": len(audio) / sound.SAMPLE_RATE, "voices": sorted(set(used_voices)),
            "verses": len(used_verses)}  # fmt: skip


def build_long_negatives(split, keywords=tuple(vocabulary.KEYWORDS), config=None, cache_dir=DEFAULT_CACHE_DIR,
                         seed=0, processes=2):  # fmt: skip
    """Synthesizes `split`'s long negative audio once and caches it; returns the folder (with `manifest.json`).

    Needs the TTS packages (`engines.require_engines()`); `split` is "train", "validation" or "test".
    """
    if split not in corpus.SPLIT_NAMES:
        raise ValueError(f"`split` must be one of {corpus.SPLIT_NAMES}. Received: split={split!r}")
    keywords = vocabulary.check_keywords(keywords)
    config = config or NegativesConfig()
    directory = pathlib.Path(cache_dir) / f"{split}-{config.key(keywords)}"
    if (directory / "manifest.json").exists():
        return directory
    engines.require_engines()
    voices, verses = split_voices(split), keyword_free_verses(split, keywords)
    if not verses:
        raise ValueError(f"No verse of the bundled Bible is free of the keywords {list(keywords)} for {split!r}")
    counts = {"speech": config.speech_files, "speech in noise": config.speech_in_noise_files,
              "babble": config.babble_files, "noise": config.noise_files, "music": config.music_files}  # fmt: skip
    split_index = corpus.SPLIT_NAMES.index(split)
    building = directory.with_name(f"{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    tasks = [(str(building), f"{kind.replace(' ', '_')}_{index}.wav", kind, config.file_minutes * 60, voices, verses,
              [seed, 17, split_index, KINDS.index(kind), index])
             for kind, count in counts.items() for index in range(count)]  # fmt: skip
    entries = []
    with corpus._progress(None, len(tasks), f"long negative audio ({split})") as progress:
        for entry in corpus._parallel_map(_make_file, tasks, processes):
            entries.append(entry)
            progress.update(1)
    manifest = {"split": split, "keywords": list(keywords), "config": dataclasses.asdict(config),
                "version": NEGATIVES_VERSION, "packages": engines.engine_versions(), "files": entries,
                "seconds": sum(entry["seconds"] for entry in entries)}  # fmt: skip
    (building / "manifest.json").write_text(json.dumps(manifest, indent=2))
    try:
        building.rename(directory)
    except OSError:  # another process built the same audio first
        shutil.rmtree(building, ignore_errors=True)
    return directory


def human_negatives(role="evaluation", keywords=tuple(vocabulary.KEYWORDS), seed=0):
    """The real people's recordings of `role` (`human`: "validation" or "evaluation") whose words are known and say
    no keyword, no word that sounds like one and no numeral, one after another with 0.3-1.0 s pauses.

    Returns `(audio, manifest entry)`. Raises `human.HumanSpeechMissing` when their package is not installed.
    """
    from data.speech import human

    if role not in HUMAN_ROLES.values():
        raise ValueError(f"`role` must be one of {sorted(HUMAN_ROLES.values())}. Received: role={role!r}")
    keywords = vocabulary.check_keywords(keywords)
    audio, recordings = human.load_human_speech(role)
    kept = [index for index, recording in enumerate(recordings) if human.free_of(recording, keywords)]
    if not kept:
        raise ValueError(f"No {role} recording of a person is free of the keywords {list(keywords)}")
    speech = human.with_pauses([audio[index] for index in kept], np.random.default_rng([seed, 23]), 0.3, 1.0)
    used = [recordings[index] for index in kept]
    speakers = sorted({recording.speaker for recording in used})
    entry = {"file": "human", "kind": "human speech", "seconds": len(speech) / sound.SAMPLE_RATE,
             "voices": speakers, "verses": 0, "recordings": len(used),
             "sources": sorted({recording.source for recording in used})}  # fmt: skip
    return speech, entry


def load_long_negatives(split, keywords=tuple(vocabulary.KEYWORDS), config=None, cache_dir=DEFAULT_CACHE_DIR,
                        seed=0, processes=2, human=None):  # fmt: skip
    """`split`'s long negative audio, built at first use: `[(name, kind, audio float32 16 kHz)]` and the manifest.

    `human` (default: for "validation" and "test") adds the keyword-free recordings of the real people of the
    split's role (`HUMAN_ROLES`, `human_negatives`): validation's are heard where thresholds and smoothing are
    chosen, test's nowhere else; the training split has none. Not cached: they are read from the Debian packages."""
    human = split in HUMAN_ROLES if human is None else human
    if human and split not in HUMAN_ROLES:
        raise ValueError(f"Only the splits {list(HUMAN_ROLES)} have recordings of people for their long negative "
                         f"audio. Received: split={split!r}")  # fmt: skip
    directory = build_long_negatives(split, keywords, config, cache_dir, seed, processes)
    manifest = json.loads((directory / "manifest.json").read_text())
    recordings = [(entry["file"], entry["kind"], sound.read_wav(directory / entry["file"])) for entry in manifest["files"]]
    if human:
        audio, entry = human_negatives(HUMAN_ROLES[split], keywords, seed)
        recordings.append((entry["file"], entry["kind"], audio))
        manifest = {**manifest, "files": manifest["files"] + [entry], "seconds": manifest["seconds"] + entry["seconds"]}
    return recordings, manifest
