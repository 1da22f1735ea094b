"""The synthetic keyword corpus: planned, synthesized, cached, augmented into arrays, loaded.

`load_speech_keywords()` builds the corpus at first use (`build_corpus()`) and caches it under a folder keyed by
the seed and the `CorpusConfig` (keywords included); a change to synthesis or augmentation bumps `CORPUS_VERSION`,
so the next load rebuilds the cache (the default corpus in about 5 minutes on 2 cores, the quick one in 25 s).
"""

import dataclasses
import hashlib
import json
import multiprocessing
import os
import pathlib
import shutil
import tempfile

import numpy as np
import pandas as pd

from data import sources
from data.speech import augmentation, engines, sound, synthesis, vocabulary

SPLIT_NAMES = sources.SPLIT_NAMES
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
CORPUS_VERSION = 8
DEFAULT_CACHE_DIR = ".cache/speech_keywords"


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """What `build_corpus` synthesizes. Every field enters the cache key (the default keywords excepted, so that
    caches built before keywords could be chosen stay valid).

    Args:
        keywords: the words or short phrases to spot (`words.check_keywords` normalizes them); the labels are
            these, then `_silence_` and `_unknown_`.
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
        running_speech_clips: `_unknown_` training clips cut at random from running speech: keyword-free Bible
            verses read by the training voices (`negatives.running_speech`), a fifth of them several readers at
            once. A spotter left switched on hears mostly such speech, never a word alone; without these clips
            the model had heard no word outside its list of `_unknown_` words and took running speech for
            keywords (510 false accepts per hour at p >= 0.7 on the test split's long negative audio).
        music_clips: `_silence_` training clips of music-like sound (`negatives.music`), which the spotter
            otherwise took for keywords about 1,000 times an hour.
        human_unknown_copies: times each keyword-free training recording of a real person saying single words
            (`human`, role "train": four English voices, about 170 words and letters) enters training as
            `_unknown_`, each copy augmented its own way; 0 leaves them out.
        human_running_speech_clips: `_unknown_` training clips cut at random from the keyword-free telephone
            prompts of the training role's running speech (`human`: an Italian man and a Russian woman, about
            1,000 prompts, 28 min), as many from each speaker: real people talking, which the test split's long
            audio holds and the synthetic verses imitate poorly (real people gave 61 false accepts per hour
            against 24 overall). Not English, so no word of them can be a keyword, and 8 kHz like the test
            speaker's. 400 is about as many as the real single words with their copies.
    """

    keywords: tuple = tuple(vocabulary.KEYWORDS)
    espeak_voices_per_split: tuple | None = None
    recorded_voice_renderings: int = 12
    unknown_words_per_rendering: int = 2
    silence_fraction: float = 1.0
    augmented_train_copies: int = 1
    running_speech_clips: int = 2500
    music_clips: int = 600
    human_unknown_copies: int = 3
    human_running_speech_clips: int = 400

    def __post_init__(self):
        object.__setattr__(self, "keywords", vocabulary.check_keywords(self.keywords))

    @classmethod
    def quick(cls, **overrides):
        """About 1.6k clips, every label in every split: for tests and `train --quick`."""
        return cls(**{"espeak_voices_per_split": (40, 10, 10), "recorded_voice_renderings": 1,
                      "running_speech_clips": 150, "music_clips": 40,
                      "human_unknown_copies": 1, "human_running_speech_clips": 40, **overrides})  # fmt: skip

    @property
    def labels(self):
        return vocabulary.labels_for(self.keywords)

    def cache_fields(self):
        """The fields as the cache key and `corpus.json` record them: the default keywords left out."""
        fields = dataclasses.asdict(self)
        if list(fields["keywords"]) == vocabulary.KEYWORDS:
            del fields["keywords"]
        return fields

    def key(self):
        text = json.dumps({**self.cache_fields(), "version": CORPUS_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]


def split_variant_groups(variants, seed=SPLIT_SEED):
    """`{variant: split}`: whole variant groups in a seeded order fill the splits' `SPLIT_FRACTIONS` of variants."""
    splits = sources.grouped_split([engines.variant_group(variant) for variant in variants], seed, SPLIT_FRACTIONS)
    return dict(zip(variants, splits))


def corpus_plan(seed, config):
    """The manifest before synthesis: one row per spoken clip (word, voice, split, speed, pitch, path)."""
    split_of_variant = split_variant_groups(engines.espeak_variants())
    voice_rng = np.random.default_rng(SPLIT_SEED)
    espeak_voices = []
    for split_index, split in enumerate(SPLIT_NAMES):
        variants = [variant for variant, name in split_of_variant.items() if name == split]
        voices = [(accent, variant) for variant in variants for accent in engines.ESPEAK_ACCENTS]
        if config.espeak_voices_per_split is not None:
            wanted = config.espeak_voices_per_split[split_index]
            voices = [voices[index] for index in sorted(voice_rng.choice(len(voices), wanted, replace=False))]
        espeak_voices += [(split, accent, variant) for accent, variant in voices]

    keywords = list(config.keywords)
    unknown_words = vocabulary.unknown_words_for(keywords)
    rng = np.random.default_rng(seed)
    rows = []

    def add_rendering(engine, voice, speaker, split, rendering, base_speed, speed_of_word, pitch):
        words = keywords + list(rng.choice(unknown_words, config.unknown_words_per_rendering, replace=False))
        folder = f"wav/{split}/{voice.replace(':', '/').replace('+', '_')}"
        for word in words:
            rows.append({
                "path": f"{folder}/{rendering}_{vocabulary.file_stem(word)}.wav",
                "word": word, "label": word if word in keywords else vocabulary.UNKNOWN, "engine": engine,
                "voice": voice, "speaker": speaker, "split": split, "rendering": rendering,
                "base_speed": round(float(base_speed), 3), "speed": round(float(speed_of_word()), 3),
                "pitch": round(float(pitch), 1),
            })  # fmt: skip

    for split, accent, variant in espeak_voices:
        # espeak-ng's words per minute (80-450, default 175) and pitch (0-99, default 50): a voice gets its own pace
        # and pitch, each word some jitter in pace around it. Slower than espeak-ng's default because people say a
        # keyword alone slowly: spokennumbers' digits last 0.6-0.75 s, espeak-ng's at 175 about 0.4 s.
        base_speed, pitch = int(rng.uniform(80, 170)), int(rng.uniform(20, 80))
        add_rendering(
            "espeak-ng", f"espeak-ng:{accent}+{variant}", f"espeak-ng:{engines.variant_group(variant)}", split, 0,
            base_speed, lambda: int(np.clip(base_speed * rng.normal(1, 0.08), 80, 220)), pitch,
        )  # fmt: skip
    recorded = [("flite", voice) for voice in engines.FLITE_VOICES]
    recorded += [("festival", voice) for voice in engines.FESTIVAL_VOICES]
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


def corpus_config(quick=False, config=None, keywords=None):
    """`config`, else the quick or default `CorpusConfig`; with `keywords`, saying those instead."""
    config = config or (CorpusConfig.quick() if quick else CorpusConfig())
    return config if keywords is None else dataclasses.replace(config, keywords=vocabulary.check_keywords(keywords))


def corpus_directory(seed=0, quick=False, cache_dir=DEFAULT_CACHE_DIR, config=None, keywords=None):
    config = corpus_config(quick, config, keywords)
    return pathlib.Path(cache_dir) / f"seed{seed}-{config.key()}", config


def read_manifest(path):
    """The manifest CSV with its text columns as text (a keyword such as "nan" or "7" stays a string)."""
    return pd.read_csv(path, keep_default_na=False, dtype={"path": str, "word": str, "label": str})


def build_corpus(seed=0, quick=False, cache_dir=DEFAULT_CACHE_DIR, config=None, processes=2, keywords=None):
    """Synthesizes the corpus once and caches it; returns the path of its manifest CSV.

    The manifest has one row per clip: `path` (a 16 kHz mono WAV, relative to the manifest), `word`, `label`,
    `engine`, `voice`, `speaker` (the unit the splits keep apart), `split`, `rendering`, `base_speed` and `speed`
    (espeak-ng: words per minute of the voice and of the word; flite, festival: duration stretch), `pitch`
    (espeak-ng's 0-99, flite's target mean in Hz; 0 where the voice's own pitch is kept). The folder
    is keyed by the seed and the config, so a second call returns at once; the same seed rebuilds the same corpus.
    Installs nothing: a build without the TTS packages raises `engines.EnginesMissing`, naming them and the command
    that installs them (`make venv` as root).

    Args:
        seed: draws the voices' speeds, pitches and `_unknown_` words and the `_silence_` clips (the split into
            voices is fixed by `SPLIT_SEED`).
        quick: `CorpusConfig.quick()` (about 1.6k clips) instead of the default (about 24k).
        config: a `CorpusConfig` to use instead of either.
        processes: synthesizer processes (the engines are single-threaded); 1 runs everything in this process.
        keywords: words or short phrases to say instead of the config's keywords (see `CorpusConfig.keywords`).
    """
    directory, config = corpus_directory(seed, quick, cache_dir, config, keywords)
    manifest_path = directory / "manifest.csv"
    if manifest_path.exists():
        return manifest_path
    engines.require_engines()
    if config.human_unknown_copies or config.human_running_speech_clips:
        from data.speech import human

        missing = human.missing_packages("train")
        if missing:  # before minutes of synthesis, not after
            raise human.HumanSpeechMissing(human.missing_message(missing))
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
        for done, fell_back in _parallel_map(synthesis.synthesize_rendering, tasks, processes):
            progress.update(done)
            espeak_fallbacks += fell_back
    extra_rows = [_silence_rows(building, plan, seed, config), _training_negative_rows(building, seed, config, processes),
                  _human_rows(building, config), _human_running_speech_rows(building, seed, config)]
    manifest = pd.concat([plan, *extra_rows], ignore_index=True)
    manifest.to_csv(building / "manifest.csv", index=False)
    (building / "corpus.json").write_text(
        json.dumps(
            {"seed": seed, "config": config.cache_fields(), "version": CORPUS_VERSION,
             "packages": engines.engine_versions(), "espeak_renderings_synthesized_word_by_word": espeak_fallbacks,
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
    speech = manifest[(manifest["split"] == "train") & (manifest["label"] != vocabulary.SILENCE)]
    chosen = np.random.default_rng([seed, 7]).choice(len(speech), min(count, len(speech)), replace=False)
    paths = [directory / speech["path"].iloc[index] for index in sorted(chosen)]
    return np.stack([sound.fit_to_clip(sound.read_wav(path)) for path in paths])


def _silence_rows(directory, plan, seed, config):
    babble_clips = _babble_clips(directory, plan, seed)
    rows = []
    for split_index, split in enumerate(SPLIT_NAMES):
        keyword_clips = plan[(plan["split"] == split) & (plan["label"] != vocabulary.UNKNOWN)]
        count = max(1, round(config.silence_fraction * len(keyword_clips) / len(config.keywords)))
        (directory / "wav" / split / "silence").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            path = f"wav/{split}/silence/{index}.wav"
            rng = np.random.default_rng([seed, 11, split_index, index])
            sound.write_wav(directory / path, augmentation.silence_clip(rng, babble_clips))
            rows.append({"path": path, "word": "", "label": vocabulary.SILENCE, "engine": "noise",
                         "voice": f"noise:{split}", "speaker": f"noise:{split}", "split": split, "rendering": index,
                         "base_speed": 0.0, "speed": 0.0, "pitch": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


def _training_negative_piece(task):
    """One stretch of the training split's running speech (or babble) or music, cut into 1 s clips; runs in a
    worker process. Returns the manifest rows of the clips it wrote."""
    from data.speech import negatives  # it imports this module

    directory, kind, index, clips, keywords, seed = task
    rng = np.random.default_rng(seed)
    folder = pathlib.Path(directory) / "wav" / "train" / kind
    folder.mkdir(parents=True, exist_ok=True)
    seconds = 1.6 * clips + 2
    if kind == "music":
        audio, voice = negatives.music(int(seconds * sound.SAMPLE_RATE), rng), "music:train"
    else:
        voices, verses = negatives.split_voices("train"), negatives.keyword_free_verses("train", keywords)
        with tempfile.TemporaryDirectory() as scratch:
            audio, readers, _ = negatives.running_speech(voices, verses, seconds, rng, scratch)
            talkers = 1 if rng.random() >= 0.2 else int(rng.integers(2, 5))
            for _ in range(talkers - 1):
                other, more, _ = negatives.running_speech(voices, verses, seconds, rng, scratch)
                audio = audio + other[: len(audio)] * rng.uniform(0.4, 1.0)
                readers += more
        audio = audio * (0.9 / max(np.abs(audio).max(), 1e-6)) if talkers > 1 else audio
    voice = f"{kind}:train"  # training voices only (`negatives.split_voices("train")`), several per stretch
    rows = []
    for written, clip in enumerate(_random_clips(audio, clips, rng, speech=kind != "music")):
        path = f"wav/train/{kind}/{index}_{written}.wav"
        sound.write_wav(pathlib.Path(directory) / path, clip)
        label = vocabulary.SILENCE if kind == "music" else vocabulary.UNKNOWN
        rows.append({"path": path, "word": "", "label": label, "engine": kind, "voice": voice,
                     "speaker": f"{kind}:train", "split": "train", "rendering": index, "base_speed": 0.0,
                     "speed": 0.0, "pitch": 0.0})  # fmt: skip
    return rows


def _random_clips(audio, count, rng, speech=True):
    """`count` one-second clips of `audio` at random starts (`rng`); with `speech`, a clip voiced for less than
    0.3 s is drawn again: it is mostly a pause between sentences, which is `_silence_`, not speech."""
    found = 0
    while found < count:
        start = int(rng.integers(len(audio) - sound.CLIP_SAMPLES))
        clip = audio[start : start + sound.CLIP_SAMPLES]
        first, last = sound.voiced_extent(clip, 0.1)
        if speech and last - first < 0.3 * sound.SAMPLE_RATE:
            continue
        found += 1
        yield clip


def _training_negative_rows(directory, seed, config, processes):
    """`config.running_speech_clips` `_unknown_` clips of running speech and `config.music_clips` `_silence_`
    clips of music, all in the training split, from training voices and verses only."""
    per_piece = 50
    tasks = []
    for kind, count in (("running_speech", config.running_speech_clips), ("music", config.music_clips)):
        for index, begin in enumerate(range(0, count, per_piece)):
            tasks.append((str(directory), kind, index, min(per_piece, count - begin), config.keywords,
                          [seed, 19, len(kind), index]))  # fmt: skip
    rows = []
    with _progress(None, config.running_speech_clips + config.music_clips, "running speech and music") as progress:
        for piece in _parallel_map(_training_negative_piece, tasks, processes):
            rows += piece
            progress.update(len(piece))
    return pd.DataFrame(rows, columns=["path", "word", "label", "engine", "voice", "speaker", "split", "rendering",
                                       "base_speed", "speed", "pitch"])  # fmt: skip


def _human_rows(directory, config):
    """`_unknown_` training rows of the real people's training recordings whose words are known and say no
    keyword (nor a word that sounds like one), each cut to its loudest second."""
    from data.speech import human

    if not config.human_unknown_copies:
        return pd.DataFrame()
    audio, recordings = human.load_human_speech("train")
    folder = pathlib.Path(directory) / "wav" / "train" / "human"
    folder.mkdir(parents=True, exist_ok=True)
    running = {source.name for source in human.SOURCES if source.running_speech}  # `_human_running_speech_rows`
    rows = []
    for index, (clip, recording) in enumerate(zip(audio, recordings)):
        if recording.source in running or not human.free_of(recording, config.keywords):
            continue
        path = f"wav/train/human/{index}.wav"
        sound.write_wav(pathlib.Path(directory) / path, sound.fit_to_clip(clip, crop="loudest"))
        for copy in range(config.human_unknown_copies):
            rows.append({"path": path, "word": recording.transcript, "label": vocabulary.UNKNOWN, "engine": "human",
                         "voice": f"human:{recording.source}", "speaker": f"human:{recording.source}",
                         "split": "train", "rendering": copy, "base_speed": 0.0, "speed": 0.0, "pitch": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


def _human_running_speech_rows(directory, seed, config):
    """`config.human_running_speech_clips` `_unknown_` training rows cut at random from the keyword-free prompts of
    the training role's running-speech sources (`human.Source.running_speech`), each source's prompts in a row
    with 0.2-1.0 s pauses; as many clips from each source, none mostly pause."""
    from data.speech import human

    sources = [source.name for source in human.SOURCES if source.role == "train" and source.running_speech]
    if not config.human_running_speech_clips or not sources:
        return pd.DataFrame()
    audio, recordings = human.load_human_speech("train")
    rng = np.random.default_rng([seed, 29])
    folder = pathlib.Path(directory) / "wav" / "train" / "human_running_speech"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for source_index, source in enumerate(sources):
        prompts = [clip for clip, recording in zip(audio, recordings)
                   if recording.source == source and human.free_of(recording, config.keywords)]  # fmt: skip
        if not prompts:
            raise ValueError(f"No prompt of {source} is free of the keywords {list(config.keywords)}")
        speech = human.with_pauses(prompts, rng, 0.2, 1.0)
        share, extra = divmod(config.human_running_speech_clips, len(sources))
        for written, clip in enumerate(_random_clips(speech, share + (source_index < extra), rng)):
            path = f"wav/train/human_running_speech/{source}_{written}.wav"
            sound.write_wav(pathlib.Path(directory) / path, clip)
            rows.append({"path": path, "word": "", "label": vocabulary.UNKNOWN, "engine": "human",
                         "voice": f"human:{source}", "speaker": f"human:{source}", "split": "train",
                         "rendering": written, "base_speed": 0.0, "speed": 0.0, "pitch": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


_worker_babble_clips = None


def _set_babble_clips(clips):
    global _worker_babble_clips
    _worker_babble_clips = clips


def _augment_rows(task):
    """Reads clips and returns them as int16 PCM, augmented with a per-clip seed; runs in a worker process."""
    directory, paths, clip_seeds = task
    babble_clips = _worker_babble_clips
    out = np.empty((len(paths), sound.CLIP_SAMPLES), np.int16)
    for index, (path, clip_seed) in enumerate(zip(paths, clip_seeds)):
        audio = sound.fit_to_clip(sound.read_wav(pathlib.Path(directory) / path))
        if clip_seed is not None:
            audio = augmentation.augment(audio, np.random.default_rng(clip_seed), babble_clips)
        out[index] = sound.to_pcm16(audio)
    return out


def _build_arrays(manifest_path, seed, config, processes):
    """Every split as 1 s int16 clips: train augmented `augmented_train_copies` times; validation and test clean,
    then once augmented (so the app reports both)."""
    directory = manifest_path.parent
    manifest = read_manifest(manifest_path)
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
        labels = [config.labels.index(label) for index in mine for label in jobs[index][3]]
        arrays[f"{split}_labels"] = np.array(labels, np.int32)
        arrays[f"{split}_words"] = np.array([word for index in mine for word in jobs[index][4]])
        arrays[f"{split}_augmented"] = np.concatenate([np.full(len(jobs[index][1]), jobs[index][5]) for index in mine])
    return arrays


def load_speech_keywords(seed=0, quick=False, keywords=None, cache_dir=DEFAULT_CACHE_DIR, config=None, processes=2):
    """The bundled synthetic corpus as arrays, built and cached on first use (`build_corpus`).

    Args:
        seed: draws the corpus (see `build_corpus`).
        quick: the quick corpus (`CorpusConfig.quick()`, about 1.6k clips) instead of the default (about 24k).
        keywords: words or short phrases ("lights on") to say instead of the 20 default keywords; each is a
            label, and `_unknown_` never says one of them or one of their words. `ValueError` unless at least one,
            unique, letters and digits.
        cache_dir: where corpora are cached, one folder per seed and config.
        config: a `CorpusConfig` instead of the quick or default one (`keywords` still replaces its keywords).
        processes: worker processes for synthesis and augmentation.

    Returns `sources.make_splits`' dict:
        "train", "validation", "test": `(audio, labels)`, audio float32 `[n, CLIP_SAMPLES]` in [-1, 1] (words
            centered, then shifted by augmentation), labels int32 `[n]` indexing "labels". Train holds augmented
            clips only; validation and test hold every clip twice, clean then augmented (see "augmented").
        "labels": the keywords, then `_silence_` and `_unknown_` (`LABELS` for the default keywords).
        "source": which synthesizers spoke, e.g. "synthetic corpus (espeak-ng, flite, festival)".
        "dropped": `{}` (a synthetic corpus drops nothing).
        "augmented": `{split: bool [n]}`, which rows are augmented (report clean and augmented accuracy apart).
        "words": `{split: str [n]}`, the word spoken ("" for `_silence_`), e.g. which `_unknown_` word.
        "voices": `{split: sorted voice names}`, e.g. "espeak-ng:en-gb-scotland+m3", "flite:slt"; no voice (and
            no espeak-ng variant group or recorded speaker) is in two splits.
        "manifest": the manifest's path.
    """
    manifest_path = build_corpus(seed, quick, cache_dir, config, processes, keywords)
    _, config = corpus_directory(seed, quick, cache_dir, config, keywords)
    arrays_path = manifest_path.parent / "arrays.npz"
    if not arrays_path.exists():
        arrays = _build_arrays(manifest_path, seed, config, processes)
        partial = arrays_path.with_name(f"arrays.partial-{os.getpid()}.npz")
        np.savez(partial, **arrays)
        partial.replace(arrays_path)
    manifest = read_manifest(manifest_path)
    splits = {}
    extra = {"labels": config.labels, "augmented": {}, "words": {}, "voices": {}, "manifest": manifest_path}
    with np.load(arrays_path) as arrays:
        for split in SPLIT_NAMES:
            audio = arrays[f"{split}_audio"].astype(np.float32) / 32768
            splits[split] = (audio, arrays[f"{split}_labels"])
            extra["augmented"][split] = arrays[f"{split}_augmented"]
            extra["words"][split] = arrays[f"{split}_words"]
            voices = manifest.loc[(manifest["split"] == split) & (manifest["label"] != vocabulary.SILENCE), "voice"]
            extra["voices"][split] = sorted(set(voices))
    engines = ["espeak-ng"] + (["flite", "festival"] if config.recorded_voice_renderings else [])
    return sources.make_splits(**splits, source=f"synthetic corpus ({', '.join(engines)})", **extra)
