"""The user's own recordings: a folder with one subfolder of WAV files per label, Speech Commands' layout.

    my_keywords/
        lights_on/alice_nohash_0.wav, bob_nohash_0.wav, ...
        lights_off/...
        _background_noise_/kitchen.wav, street.wav     (optional: long recordings of rooms, no speech)
        validation_list.txt, testing_list.txt          (optional: the user's own split, paths relative to the folder)

Files are listed and decoded here rather than by `keras.utils.audio_dataset_from_directory`: that reads only
16-bit PCM WAV through `tf.audio.decode_wav`, cannot resample without tensorflow-io, cuts a long clip at its end
instead of around its word, and stops at a broken file without naming it.
"""

import collections
import hashlib
import pathlib

import numpy as np

from data import sources
from data.speech import augmentation, sound, vocabulary

BACKGROUND_NOISE = "_background_noise_"
SPLIT_LISTS = {"validation": "validation_list.txt", "test": "testing_list.txt"}
NOT_WAV = "non-WAV files skipped"
OUTSIDE_LABELS = "WAV files outside a label subfolder skipped"
COPIES = "copies of a WAV file under the same label"
CONFLICTING_COPIES = "copies of one WAV file under different labels"
NOT_IN_FOLDER = "files named in validation_list.txt or testing_list.txt but not in the folder"
BABBLE_CLIPS = 200  # training clips the babble noise is mixed from, as in the synthetic corpus


def load_audio_folder(path, options=None, seed=0, augmented_train_copies=1):
    """A folder of labelled recordings as 1 s clips at 16 kHz, split, checked and augmented like the corpus.

    Labels are the subfolder names, sorted (`_background_noise_` excepted). Each `.wav` file (any sample rate,
    PCM or float, mono or stereo mixed to mono) is resampled to 16 kHz and fit to 1 s: a shorter one centred
    between zeros, a longer one cut to its loudest second. Other files in the label folders (a README, a
    .DS_Store, an .mp3) are skipped and counted in "dropped". The optional `_background_noise_` recordings
    become part of the noise mixed into training clips and, when there is no `_silence_` subfolder, 1 s
    `_silence_` clips (about as many per split as the mean label has there), cut from a different stretch of
    each recording for each split, as Speech Commands does.

    The split: `validation_list.txt` and `testing_list.txt` in the folder when it has them (Speech Commands'
    files: one path per line, relative to the folder; every other clip trains); else, with
    `options.group_column == "speaker"`, whole speakers (the file name before `_nohash_`, or before its first
    `_`) go to one split; else a seeded random split stratified by label.

    Args:
        path: the folder.
        options: a `sources.SplitOptions` (seed, fractions, group column); the default splits 80/10/10.
        seed: draws the augmentations and the `_silence_` cuts (the split is drawn by `options.seed`).
        augmented_train_copies: augmented copies of each training clip, kept with the clean clip.

    Returns `sources.make_splits`' dict: "train", "validation", "test" as `(audio float32 [n, CLIP_SAMPLES],
    labels int32 [n] indexing "labels")`; "labels"; "augmented" `{split: bool [n]}` (train: the clean clips,
    then the augmented copies; validation and test are clean only); "files" `{split: [n] names}` (paths
    relative to the folder; a `_silence_` cut as "_background_noise_/ (train cut 3)"); "source" (the folder);
    "dropped" `{reason: count}`.

    Raises:
        sources.DataError: naming the file or folder and what was expected: no such folder, no label subfolders,
            a label folder without WAV files, a label with fewer than 2 clips or none in training, a split left
            empty, a WAV file that does not decode (not a WAV, truncated) or holds no samples.
    """
    if not isinstance(augmented_train_copies, int) or augmented_train_copies < 0:
        raise ValueError(
            f"`augmented_train_copies` must be an integer of 0 or more. Received: {augmented_train_copies!r}"
        )
    options = options or sources.SplitOptions()
    root = sources.require_path(path, folder=True)
    files, labels, dropped = _list_files(root)
    splits = _split(root, files, options, dropped)
    sources.check_split_sizes(splits, root)
    background_files = _background_files(root, dropped)
    names = sorted(set(labels))
    silence_cuts = []  # (split, index) of each `_silence_` clip to cut from the background recordings
    if vocabulary.SILENCE not in names and background_files:
        silence_cuts = _plan_silence(labels, splits)
        names = sorted(names + [vocabulary.SILENCE])
    all_labels = labels + [vocabulary.SILENCE] * len(silence_cuts)
    all_splits = np.concatenate([splits, np.array([split for split, _ in silence_cuts], dtype=object)])
    sources.check_classes(all_labels, all_splits, root)

    clips = np.stack([_read_clip(root / file) for file in files])
    recordings = [(file, _read_audio(root / file)) for file in background_files]
    silence = [_silence_clip(recordings, split, index, seed, options.fractions) for split, index in silence_cuts]
    if silence:
        clips = np.concatenate([clips, np.stack(silence)])
    names_of_rows = list(files) + [f"{BACKGROUND_NOISE}/ ({split} cut {index})" for split, index in silence_cuts]
    label_ids = np.array([names.index(label) for label in all_labels], np.int32)

    result = {}
    extra = {"labels": names, "augmented": {}, "files": {}}
    for split in sources.SPLIT_NAMES:
        rows = np.flatnonzero(all_splits == split)
        audio, ids, augmented = clips[rows].astype(np.float32), label_ids[rows], np.zeros(len(rows), bool)
        files_of_split = [names_of_rows[row] for row in rows]
        if split == "train" and augmented_train_copies:
            copies = _augment(audio, ids, names, recordings, seed, augmented_train_copies, options.fractions)
            audio = np.concatenate([audio, copies])
            ids = np.tile(ids, augmented_train_copies + 1)
            augmented = np.concatenate([augmented, np.ones(len(copies), bool)])
            files_of_split = files_of_split * (augmented_train_copies + 1)
        result[split] = (audio, ids)
        extra["augmented"][split] = augmented
        extra["files"][split] = files_of_split
    dropped = {reason: count for reason, count in dropped.items() if count}
    return sources.make_splits(**result, source=str(root), dropped=dropped, **extra)


def _list_files(root):
    """`(files, labels, dropped)`: every WAV file under a label subfolder (relative, POSIX), its label (the
    subfolder), and the counts of files skipped."""
    dropped = collections.Counter()
    folders = sorted(child for child in root.iterdir() if child.is_dir() and not child.name.startswith("."))
    label_folders = [folder for folder in folders if folder.name != BACKGROUND_NOISE]
    if not label_folders:
        found = sorted(child.name for child in root.iterdir())[:10]
        raise sources.DataError(
            f"{root}: expected one subfolder of .wav files per label (Speech Commands' layout, e.g. "
            f"yes/speaker1_nohash_0.wav). Received no label subfolders; the folder holds {found or 'nothing'}"
        )
    dropped[OUTSIDE_LABELS] = sum(1 for child in root.iterdir() if child.is_file() and _is_wav(child))
    files, labels = [], []
    for folder in label_folders:
        entries = sorted(entry for entry in folder.rglob("*") if entry.is_file())
        wavs = [entry for entry in entries if _is_wav(entry)]
        dropped[NOT_WAV] += len(entries) - len(wavs)
        if not wavs:
            others = [entry.name for entry in entries][:5]
            raise sources.DataError(
                f"{folder}: expected .wav files of the label {folder.name!r}. Received no .wav file"
                + (f" (only {others})" if others else " (an empty folder)")
            )
        files += [entry.relative_to(root).as_posix() for entry in wavs]
        labels += [folder.name] * len(wavs)
    return (*_without_copies(root, files, labels, dropped), dropped)


def _without_copies(root, files, labels, dropped):
    """Drops byte-identical copies of a recording, which could otherwise land in training and in the test:
    a copy under the same label keeps its first file, and copies under different labels are all dropped."""
    digests = [hashlib.sha1((root / file).read_bytes()).hexdigest() for file in files]
    labels_of = collections.defaultdict(set)
    for digest, label in zip(digests, labels):
        labels_of[digest].add(label)
    seen, kept = set(), []
    for index, (digest, label) in enumerate(zip(digests, labels)):
        if len(labels_of[digest]) > 1:
            dropped[CONFLICTING_COPIES] += 1
        elif digest in seen:
            dropped[COPIES] += 1
        else:
            seen.add(digest)
            kept.append(index)
    return [files[index] for index in kept], [labels[index] for index in kept]


def _is_wav(path):
    return path.suffix.lower() == ".wav" and not path.name.startswith(".")


def _background_files(root, dropped):
    folder = root / BACKGROUND_NOISE
    if not folder.is_dir():
        return []
    entries = sorted(entry for entry in folder.rglob("*") if entry.is_file())
    wavs = [entry.relative_to(root).as_posix() for entry in entries if _is_wav(entry)]
    dropped[NOT_WAV] += len(entries) - len(wavs)
    return wavs


def speaker_of(file):
    """The speaker of a Speech Commands file name: before `_nohash_`, else before the first `_`, else the name."""
    stem = pathlib.PurePosixPath(file).stem
    return stem.split("_nohash_")[0] if "_nohash_" in stem else stem.split("_")[0]


def _split(root, files, options, dropped):
    """The split of each file: the folder's own lists, else by speaker, else random stratified by label."""
    lists = {split: root / name for split, name in SPLIT_LISTS.items() if (root / name).is_file()}
    if lists and options.group_column:
        raise sources.DataError(
            f"{root}: its {' and '.join(SPLIT_LISTS.values())} already split the clips. Received "
            f"group_column={options.group_column!r} too; remove the lists to group by speaker"
        )
    if lists:
        splits = np.full(len(files), "train", dtype=object)
        position = {file: index for index, file in enumerate(files)}
        seen = {}
        for split, list_path in lists.items():
            for line_number, line in enumerate(list_path.read_text(errors="replace").splitlines(), start=1):
                file = line.strip().replace("\\", "/").removeprefix("./")
                if not file:
                    continue
                if file in seen and seen[file] != split:
                    raise sources.DataError(
                        f"{list_path}, line {line_number}: {file!r} is also in {SPLIT_LISTS[seen[file]]}. "
                        "Expected each file in one split only"
                    )
                seen[file] = split
                if file in position:
                    splits[position[file]] = split
                elif not file.startswith(f"{BACKGROUND_NOISE}/"):
                    dropped[NOT_IN_FOLDER] += 1
        return splits
    if options.split_column:
        raise sources.DataError(
            f"{root}: a folder gives its own split as {' and '.join(SPLIT_LISTS.values())} (one relative path per "
            f"line). Received split_column={options.split_column!r} and no such files"
        )
    labels = [pathlib.PurePosixPath(file).parts[0] for file in files]
    if options.group_column:
        if options.group_column != "speaker":
            raise sources.DataError(
                f"{root}: the clips of a folder can be grouped only by 'speaker' (the file name before _nohash_ or "
                f"its first _). Received group_column={options.group_column!r}"
            )
        return sources.grouped_split([speaker_of(file) for file in files], options.seed, options.fractions)
    return sources.random_split(len(files), options.seed, options.fractions, strata=labels)


def _plan_silence(labels, splits):
    """`(split, index)` of each `_silence_` clip: per split, about as many as the mean label has there."""
    cuts = []
    for split in sources.SPLIT_NAMES:
        in_split = [label for label, name in zip(labels, splits) if name == split]
        count = max(1, round(len(in_split) / max(len(set(in_split)), 1)))
        cuts += [(split, index) for index in range(count)]
    return cuts


def _read_audio(path):
    """A whole WAV file as 16 kHz mono float32, or a `DataError` naming it."""
    try:
        audio = sound.read_wav(path)
    except ValueError as error:
        raise sources.DataError(
            f"{path}: expected a WAV file (PCM or float samples, any rate, mono or stereo). Received: {error}"
        ) from None
    if audio.size == 0:
        raise sources.DataError(f"{path}: expected audio samples. Received a WAV file with none")
    return audio


def _read_clip(path):
    return sound.fit_to_clip(_read_audio(path), crop="loudest")


def _stretch(recording, split, fractions):
    """The part of a background recording that serves `split`: train its first share, validation the next, test
    the last, so that no stretch of noise is heard in two splits."""
    bounds = np.round(np.concatenate([[0], np.cumsum(fractions)]) * len(recording)).astype(int)
    index = sources.SPLIT_NAMES.index(split)
    return recording[bounds[index] : max(bounds[index + 1], bounds[index] + 1)]


def _silence_clip(recordings, split, index, seed, fractions):
    """A 1 s cut, as recorded, of `split`'s stretches of the background recordings."""
    rng = np.random.default_rng([seed, 11, sources.SPLIT_NAMES.index(split), index])
    stretches = [_stretch(recording, split, fractions) for _, recording in recordings]
    return augmentation.background_cut(stretches, sound.CLIP_SAMPLES, rng)


def _augment(audio, ids, names, recordings, seed, copies, fractions):
    """`copies` augmented versions of the training clips (`augmentation.augment`), all of the first copy first;
    the babble is made of training speech, the background noise of the recordings' training stretches."""
    silence_id = names.index(vocabulary.SILENCE) if vocabulary.SILENCE in names else -1
    speech = audio[ids != silence_id] if np.any(ids != silence_id) else audio
    chosen = np.random.default_rng([seed, 7]).choice(len(speech), min(BABBLE_CLIPS, len(speech)), replace=False)
    babble_clips = speech[np.sort(chosen)]
    background = [_stretch(recording, "train", fractions) for _, recording in recordings] or None
    augmented = np.empty((copies * len(audio), sound.CLIP_SAMPLES), np.float32)
    for copy in range(copies):
        for index, clip in enumerate(audio):
            rng = np.random.default_rng([seed, 13, copy, index])
            augmented[copy * len(audio) + index] = augmentation.augment(clip, rng, babble_clips, background)
    return augmented
