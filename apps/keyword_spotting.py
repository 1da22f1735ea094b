"""Keyword spotting measured as the field measures it, on windows exactly as `listen` sees them.

`listen` starts a one-second window every `hop_ms` (200 ms) on a recording followed by 1 s of silence, streams
each window from a zero state, replaces each window's probabilities by their mean over it and the windows before
it (`smooth`: k windows in all, the model's calibrated `smoothing`; 1 keeps them as they are) and keeps a
window's most probable class when it is a keyword at or above that keyword's threshold; of detections less than
1 s apart only the most probable stays. A window's probabilities through the `stream` signature equal the
model's on that one-second clip (the streaming tests check it), so this module scores the same windows in large
batches and applies the same rule (`detections`, smoothing included), which `listen` also calls:

- false accepts per hour: detections on long audio that holds no keyword (`data.speech.negatives`);
- false rejects: keyword clips of the split placed in long audio between stretches of the split's background
  (`_silence_` clips), one clip at a time at a random offset to the window grid; a clip is found when a
  detection of its keyword lies within 0.5 s of its centre;
- the DET curve: both, for one threshold shared by every keyword swept from 0.3 to 0.9999;
- `calibrate`: a threshold per keyword, the lowest that keeps its false accepts on the validation split's long
  negative audio within the target (0.5 per hour), never below `MIN_THRESHOLD`, for a given smoothing (the app
  chooses the smoothing on validation too: `SpeechKeywordsApp.calibrate`).
"""

import math

import numpy as np

from apps.config import validate_integer
from data import speech

SAMPLE_RATE = speech.SAMPLE_RATE
WINDOW = speech.CLIP_SAMPLES  # one second
CHUNK = 1600  # 100 ms, `listen`'s stream chunk; windows start on this grid
DEFAULT_HOP_MS = 200
MIN_THRESHOLD = 0.5  # calibration never goes below: under it a keyword need not be the model's clear choice
TARGET_FALSE_ACCEPTS_PER_HOUR = 0.5
MATCH_SECONDS = 0.5  # a detection this close to a keyword clip's centre finds it
SWEEP = np.concatenate([np.linspace(0.3, 0.9, 13), [0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999]])


def keyword_mask(labels):
    return np.array([label not in (speech.SILENCE, speech.UNKNOWN) for label in labels])


def threshold_vector(thresholds, labels):
    """Per-class thresholds from one number, a `{label: threshold}` dict (keywords it lacks get 1.0), or a vector."""
    if isinstance(thresholds, dict):
        unknown = sorted(set(thresholds) - set(labels))
        if unknown:
            raise ValueError(f"Thresholds name labels the model does not have: {unknown}. Received labels {labels}")
        return np.array([float(thresholds.get(label, 1.0)) for label in labels])
    vector = np.broadcast_to(np.asarray(thresholds, np.float64), (len(labels),)).copy()
    if not np.all((vector >= 0) & (vector <= 1)):
        raise ValueError(f"Thresholds are probabilities, from 0 to 1. Received: {thresholds!r}")
    return vector


def window_starts(samples, hop_ms=DEFAULT_HOP_MS):
    """The first sample of each of `listen`'s windows on a recording of `samples` (padded with 1 s of silence)."""
    if hop_ms < 100 or hop_ms % 100 or hop_ms > 1000:
        raise ValueError(f"`hop_ms` must be a multiple of 100 from 100 to 1000. Received: hop_ms={hop_ms}")
    chunks = (samples + WINDOW) // CHUNK
    hop = hop_ms // 100
    return np.arange(0, chunks - WINDOW // CHUNK + 1, hop) * CHUNK


def window_probabilities(probabilities_of, audio, hop_ms=DEFAULT_HOP_MS, batch_size=1024):
    """`(centres in seconds, probabilities [windows, classes])` of `listen`'s windows of `audio`.

    `probabilities_of(clips [n, 16000] float32) -> [n, classes]` scores one-second clips (the model, or the
    export's `serving_default`).
    """
    audio = np.concatenate([np.asarray(audio, np.float32), np.zeros(WINDOW, np.float32)])
    starts = window_starts(len(audio) - WINDOW, hop_ms)
    windows = np.lib.stride_tricks.sliding_window_view(audio, WINDOW)[::CHUNK]  # a view: no copy of the hour
    index = starts // CHUNK
    scores = [np.asarray(probabilities_of(np.ascontiguousarray(windows[index[begin : begin + batch_size]])))
              for begin in range(0, len(index), batch_size)]  # fmt: skip
    return (starts + WINDOW / 2) / SAMPLE_RATE, np.concatenate(scores) if scores else np.zeros((0, 0))


def smooth(probabilities, smoothing=1, history=0):
    """Each window's probabilities replaced by the mean of its own and the `smoothing - 1` windows' before it.

    Causal, so `listen` can decide on a window as soon as it has been heard. Where fewer than `smoothing`
    windows precede (the start of a recording), the mean is over those there are: the first window keeps its
    own. `probabilities` is `[windows, classes]` or `[rows, windows, classes]` (windows in time order on the
    second to last axis). The first `history` windows are only what comes before: they are averaged into the
    later ones but not returned (placed keywords are scored with `smoothing - 1` such windows, so that each window
    that can find the clip is averaged over as many windows as in `listen`).

    `smoothing=1` returns the windows as they are (the same array, not a copy).
    """
    smoothing = validate_integer("smoothing", smoothing)
    probabilities = np.asarray(probabilities)
    if smoothing == 1:
        return probabilities[..., history:, :] if history else probabilities
    count = probabilities.shape[-2]
    total = np.zeros(probabilities.shape, np.float64)
    for back in range(min(smoothing, count)):  # window t gets window t - back
        total[..., back:, :] += probabilities[..., : count - back, :]
    averaged = np.minimum(np.arange(1, count + 1), smoothing)[:, None]
    return (total / averaged)[..., history:, :]


def detections(centres, probabilities, labels, thresholds, smoothing=1, history=0):
    """`listen`'s rule on scored windows: `[(seconds, label, probability)]`.

    The windows' probabilities are first averaged over `smoothing` windows (`smooth`; the first `history`
    windows only feed the average and have no entry in `centres`). A window counts when its most probable
    (averaged) class is a keyword at or above that keyword's threshold (`thresholds`: one number,
    `{label: threshold}`, or a vector per class). Of counted windows less than 1 s apart (they overlap) only the
    most probable stays, so a word is reported once; its probability is the averaged one.
    """
    thresholds = threshold_vector(thresholds, labels)
    probabilities = smooth(probabilities, smoothing, history)
    if len(probabilities) == 0:
        return []
    best = np.argmax(probabilities, axis=1)
    top = probabilities[np.arange(len(best)), best]
    counted = np.flatnonzero(keyword_mask(labels)[best] & (top >= thresholds[best]))
    found = []
    for index in counted:
        centre, probability = float(centres[index]), float(top[index])
        if found and centre - found[-1][0] < 1.0 - 1e-6:
            if probability > found[-1][2]:
                found[-1] = (centre, labels[best[index]], probability)
            continue
        found.append((centre, labels[best[index]], probability))
    return found


# ---------------------------------------------------------------------------------------------------------
# Long negative audio and placed keywords
# ---------------------------------------------------------------------------------------------------------


def score_negatives(probabilities_of, recordings, hop_ms=DEFAULT_HOP_MS):
    """`[(name, kind, hours, centres, probabilities)]` of `negatives.load_long_negatives`' recordings."""
    return [(name, kind, len(audio) / SAMPLE_RATE / 3600, *window_probabilities(probabilities_of, audio, hop_ms))
            for name, kind, audio in recordings]  # fmt: skip


def score_placed_keywords(probabilities_of, audio, labels, names, background, rng, hop_ms=DEFAULT_HOP_MS,
                          clips_per_batch=96, history=0):  # fmt: skip
    """Each keyword clip of `(audio, labels)` in long audio, as `listen` would see it, scored window by window.

    Each clip lies between two seconds of background (random `_silence_` clips of the split, `background`
    [n, 16000]) at a random offset to the window grid. The windows whose centre is within 1 s of the clip's
    centre are the ones that can find it or, through the 1 s rule, hide it; `history` windows before them are
    scored too, so that smoothing over up to `history + 1` windows averages each of them over the same windows as
    `listen` (more background is drawn before the clip where they need it). The random draws are the same
    whatever `history` while the two seconds before the clip suffice (up to 5 windows at the default hop).

    Returns `(probabilities [clips, history + windows, classes], window centre minus clip centre in seconds
    [clips, windows], label per clip, history)`: the offsets are those of the windows that decide.
    """
    history = validate_integer("history", history, lowest=0)
    keywords = np.flatnonzero(keyword_mask(names)[labels])
    hop = hop_ms // 100 * CHUNK
    count = 2 * WINDOW // hop + 1
    scored = history + count
    scores, offsets = [], np.empty((len(keywords), count))
    for begin in range(0, len(keywords), clips_per_batch):
        rows = keywords[begin : begin + clips_per_batch]
        windows = np.empty((len(rows), scored, WINDOW), np.float32)
        for row, clip_index in enumerate(rows):
            before, after = background[rng.integers(len(background), size=4)].reshape(2, -1)
            # The grid's phase is random: the window starting nearest 2 s is `shift` samples late.
            shift = int(rng.integers(hop))
            earliest = 2 * WINDOW + shift - (count // 2 + history) * hop  # the first history window's start
            extra = math.ceil(max(0, -earliest) / WINDOW)  # background seconds the history windows need before
            if extra:
                before = np.concatenate([*background[rng.integers(len(background), size=extra)], before])
            buffer = np.concatenate([before, audio[clip_index], after])  # the clip at [2 + extra, 3 + extra) s
            starts = extra * WINDOW + 2 * WINDOW + shift + (np.arange(-history, count) - count // 2) * hop
            windows[row] = np.stack([buffer[start : start + WINDOW] for start in starts])
            offsets[begin + row] = (starts[history:] + WINDOW / 2 - (extra + 2.5) * WINDOW) / SAMPLE_RATE
        scores.append(np.asarray(probabilities_of(windows.reshape(-1, WINDOW))).reshape(len(rows), scored, -1))
    return np.concatenate(scores), offsets, labels[keywords], history


def false_rejects(scored_placed, labels, thresholds, smoothing=1):
    """`(missed [clips] bool, keyword label [clips])` at `thresholds`, the windows averaged over `smoothing`.

    `scored_placed` is `score_placed_keywords`' answer; its `history` must hold the `smoothing - 1` windows
    the first deciding window averages over (a 3-tuple has none)."""
    scores, offsets, keyword_labels = scored_placed[:3]
    history = scored_placed[3] if len(scored_placed) > 3 else 0
    if validate_integer("smoothing", smoothing) - 1 > history:
        raise ValueError(f"Placed keywords scored with {history} window(s) of history cannot be smoothed over "
                         f"more than {history + 1}; score them with history={smoothing - 1}. Received: "
                         f"smoothing={smoothing}")  # fmt: skip
    missed = np.ones(len(scores), bool)
    for row in range(len(scores)):
        found = detections(offsets[row], scores[row], labels, thresholds, smoothing, history)
        missed[row] = not any(abs(seconds) <= MATCH_SECONDS and label == labels[keyword_labels[row]]
                              for seconds, label, _ in found)  # fmt: skip
    return missed, keyword_labels


def false_accepts(scored_negatives, labels, thresholds, smoothing=1):
    """`(count, hours, {kind: (count, hours)}, {label: count})` of detections on the long negative audio, the
    windows averaged over `smoothing`."""
    by_kind, by_label, total, hours = {}, {}, 0, 0.0
    for _, kind, recording_hours, centres, probabilities in scored_negatives:
        found = detections(centres, probabilities, labels, thresholds, smoothing)
        group = "speech in noise" if kind.startswith("speech in") else kind  # one group whatever the noise
        count, seconds = by_kind.get(group, (0, 0.0))
        by_kind[group] = (count + len(found), seconds + recording_hours)
        for _, label, _ in found:
            by_label[label] = by_label.get(label, 0) + 1
        total, hours = total + len(found), hours + recording_hours
    return total, hours, by_kind, by_label


def det_curve(scored_negatives, scored_placed, labels, sweep=SWEEP, smoothing=1):
    """`[(threshold, false accepts per hour, false-reject rate)]` for one threshold shared by every keyword."""
    curve = []
    for threshold in sweep:
        count, hours, _, _ = false_accepts(scored_negatives, labels, threshold, smoothing)
        missed, _ = false_rejects(scored_placed, labels, threshold, smoothing)
        curve.append((float(threshold), count / hours, float(missed.mean())))
    return curve


def calibrate(scored_negatives, labels, target_per_hour=TARGET_FALSE_ACCEPTS_PER_HOUR, floor=MIN_THRESHOLD,
              smoothing=1):  # fmt: skip
    """`{keyword: threshold}`: per keyword, the lowest threshold at which its windows on the negative audio,
    averaged over `smoothing` windows as `listen` averages them, give at most `floor(target x hours / keywords)`
    false accepts (with an hour of audio and 0.5 per hour: none), and not below `floor`. A keyword whose false
    accepts reach probability 1.0 gets 1.0 (it is then reported only at p = 1.0)."""
    keywords = np.flatnonzero(keyword_mask(labels))
    hours = sum(recording_hours for _, _, recording_hours, _, _ in scored_negatives)
    allowed = math.floor(target_per_hour * hours / len(keywords))
    peaks = {int(index): [] for index in keywords}  # per keyword: the top probability of each merged detection
    for _, _, _, centres, probabilities in scored_negatives:
        probabilities = smooth(probabilities, smoothing)
        best = np.argmax(probabilities, axis=1)
        top = probabilities[np.arange(len(best)), best]
        for index in keywords:
            rows = np.flatnonzero(best == index)
            # Windows under 1 s apart merge into one detection: keep each run's highest probability.
            runs = np.split(rows, np.flatnonzero(np.diff(centres[rows]) >= 1.0 - 1e-6) + 1) if len(rows) else []
            peaks[int(index)] += [float(top[run].max()) for run in runs if len(run)]
    thresholds = {}
    for index, values in peaks.items():
        values = sorted(values, reverse=True)
        limit = values[allowed] if len(values) > allowed else 0.0  # the (allowed + 1)-th highest must not count
        thresholds[labels[index]] = float(min(1.0, max(floor, np.nextafter(np.float32(limit), np.float32(2)))))
    return thresholds


def calibrate_smoothing(scored_negatives, scored_placed, labels, candidates, target_per_hour=TARGET_FALSE_ACCEPTS_PER_HOUR,
                        floor=MIN_THRESHOLD):  # fmt: skip
    """The smoothing (windows averaged) and its thresholds, chosen on one split: for each k of `candidates`,
    thresholds calibrated on the split's negatives with k (`calibrate`), then the false-reject rate of the split's
    placed keywords (`score_placed_keywords` with a `history` of at least `max(candidates) - 1`) at them; the k
    with the lowest false-reject rate wins, the smaller k on a tie.

    Returns `(rows, chosen row)`, a row per k in the order given: `{"smoothing", "thresholds", "false_accepts",
    "hours", "false_reject_rate"}`.
    """
    candidates = [validate_integer("candidates", value) for value in candidates]
    if not candidates:
        raise ValueError("`candidates` must name at least one number of windows to average. Received: []")
    rows = []
    for smoothing in candidates:
        thresholds = calibrate(scored_negatives, labels, target_per_hour, floor, smoothing)
        count, hours, _, _ = false_accepts(scored_negatives, labels, thresholds, smoothing)
        missed, _ = false_rejects(scored_placed, labels, thresholds, smoothing)
        rows.append({"smoothing": smoothing, "thresholds": thresholds, "false_accepts": count, "hours": hours,
                     "false_reject_rate": float(missed.mean())})  # fmt: skip
    chosen = min(rows, key=lambda row: (row["false_reject_rate"], row["smoothing"]))
    return rows, chosen
