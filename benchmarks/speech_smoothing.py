"""Smoothing the keyword spotter's windows, measured on a trained model without training it again: for each
number of windows averaged (k), the thresholds calibrated on the validation split's keyword-free hour, the
validation false accepts per hour and false-reject rate (what calibration chooses k by), and at the same
thresholds and k the test split's (reported, never used to choose).

    python -m benchmarks.speech_smoothing runs/speech_keywords/model.keras saved_models/speech_keywords/5 \\
        [--smoothing 1 2 3 4] [--scores /tmp/speech_smoothing_scores.npz] [--output reports/benchmarks]

The model scores every window once (the validation split with the `.keras` model, as `train`'s calibration
does; the test split with the export, as `evaluate` does), kept in `--scores`, so that a second analysis reads
them back instead of scoring hours of audio again. Everything after the scoring is the functions `train` and
`evaluate` call: `keyword_spotting.calibrate_smoothing`, `false_accepts`, `false_rejects`.
"""

import argparse
import json
import pathlib

import numpy as np

from apps import keyword_spotting, pipeline, speech_keywords
from apps.config import validate_integer


def score_split(config, data, split, probabilities_of, history):
    """The split's long negatives and its placed keyword clips, scored as `calibrate` and `evaluate` score them."""
    recordings, manifest = speech_keywords.negatives_for(config, data, split)
    negatives = keyword_spotting.score_negatives(probabilities_of, recordings)
    placed = speech_keywords.score_split_placed_keywords(config, data, split, probabilities_of, history)
    return negatives, placed


DET_THRESHOLDS = (0.7, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999)  # one threshold for every keyword, as the DET curve


def save_scores(path, scores):
    arrays, meta = {}, {}
    for split, (negatives, placed) in scores.items():
        meta[split] = {"negatives": [(name, kind, hours) for name, kind, hours, _, _ in negatives], "history": placed[3]}
        for index, (_, _, _, centres, probabilities) in enumerate(negatives):
            arrays[f"{split}_centres_{index}"], arrays[f"{split}_probabilities_{index}"] = centres, probabilities
        arrays[f"{split}_placed"], arrays[f"{split}_offsets"], arrays[f"{split}_labels"] = placed[:3]
    np.savez(path, meta=json.dumps(meta), **arrays)


def load_scores(path):
    stored = np.load(path)
    meta = json.loads(str(stored["meta"]))
    scores = {}
    for split, entry in meta.items():
        negatives = [(name, kind, hours, stored[f"{split}_centres_{index}"], stored[f"{split}_probabilities_{index}"])
                     for index, (name, kind, hours) in enumerate(entry["negatives"])]  # fmt: skip
        placed = (stored[f"{split}_placed"], stored[f"{split}_offsets"], stored[f"{split}_labels"], entry["history"])
        scores[split] = (negatives, placed)
    return scores


def measure(model_path, export_path, candidates, scores_path):
    app = speech_keywords.SpeechKeywordsApp()
    config = app.Config()
    data = speech_keywords.load_splits(config)
    names = list(data["labels"])
    if pathlib.Path(scores_path).exists():
        scores = load_scores(scores_path)
    else:
        import keras

        model = keras.saving.load_model(model_path)
        predict = pipeline.load_predictor(export_path)
        speech_keywords.check_export_labels(predict.signatures, names, export_path)
        history = max(candidates) - 1
        scores = {
            "validation": score_split(config, data, "validation", speech_keywords.model_probabilities(model), history),
            "test": score_split(config, data, "test", lambda clips: predict({"audio": clips})["probabilities"], history),
        }
        save_scores(scores_path, scores)
    rows, chosen = keyword_spotting.calibrate_smoothing(*scores["validation"], names, candidates)
    test_negatives, test_placed = scores["test"]
    for row in rows:
        count, hours, by_kind, _ = keyword_spotting.false_accepts(test_negatives, names, row["thresholds"], row["smoothing"])
        missed, _ = keyword_spotting.false_rejects(test_placed, names, row["thresholds"], row["smoothing"])
        row["test"] = {"false_accepts": count, "hours": hours, "false_reject_rate": float(missed.mean()),
                       "by_kind": {kind: {"false_accepts": kind_count, "hours": kind_hours}
                                   for kind, (kind_count, kind_hours) in by_kind.items()},
                       "det_curve": keyword_spotting.det_curve(test_negatives, test_placed, names, DET_THRESHOLDS,
                                                               row["smoothing"])}  # fmt: skip
    return rows, chosen, scores


def kinds_of(negatives):
    """`[(name, kind group, hours)]`: the kinds as `false_accepts` groups them."""
    return [(name, "speech in noise" if kind.startswith("speech in") else kind, hours) for name, kind, hours, _, _ in negatives]


def report(rows, chosen, command, scores):
    """`speech_smoothing.md`: the table, what each number is, and the command."""
    validation_negatives, validation_placed = scores["validation"]
    test_negatives, test_placed = scores["test"]
    hours = {split: sum(entry[2] for entry in scores[split][0]) for split in scores}
    lines = [f"# Smoothing the keyword spotter's windows: k windows averaged before the thresholds", "",
             f"Each k at its own per-keyword thresholds, calibrated on the validation split's {hours['validation']:.2f} h "
             "of keyword-free audio for at most 0.5 false accepts per hour (`keyword_spotting.calibrate_smoothing`, "
             "as `train` calibrates). False-reject rates: the split's keyword clips placed one at a time in long "
             f"audio ({len(validation_placed[0])} validation, {len(test_placed[0])} test clips), found when a "
             "detection of the keyword lies within 0.5 s of the clip's centre. Validation chooses k (lowest "
             f"false-reject rate, the smaller k on a tie); the test split's {hours['test']:.2f} h and clips are "
             "reported only.", "", table(rows, chosen)]  # fmt: skip
    first = rows[0]
    if chosen is not first:
        lines += [f"Validation chose k = {chosen['smoothing']}: its false-reject rate went from "
                  f"{100 * first['false_reject_rate']:.1f}% (k = {first['smoothing']}) to "
                  f"{100 * chosen['false_reject_rate']:.1f}% at {chosen['false_accepts']} false accepts. On the test "
                  f"split the false-reject rate went from {100 * first['test']['false_reject_rate']:.1f}% to "
                  f"{100 * chosen['test']['false_reject_rate']:.1f}% and the false accepts per hour from "
                  f"{first['test']['false_accepts'] / first['test']['hours']:.2f} to "
                  f"{chosen['test']['false_accepts'] / chosen['test']['hours']:.2f}.", ""]  # fmt: skip
    unseen = sorted({kind for _, kind, _ in kinds_of(test_negatives)} - {kind for _, kind, _ in kinds_of(validation_negatives)})
    if unseen:
        lines += [f"The test split's negatives hold kinds of audio that the validation split's do not: "
                  f"{', '.join(unseen)}.", ""]  # fmt: skip
    lines += [f"Reproduce: `{command}`", ""]
    return "\n".join(lines)


def table(rows, chosen):
    lines = ["| windows averaged (k) | validation FA/h | validation false-reject rate | test FA/h | "
             "test false-reject rate |", "|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        mark = " (chosen on validation)" if row is chosen else ""
        test = row["test"]
        lines.append(f"| {row['smoothing']}{mark} | {row['false_accepts'] / row['hours']:.2f} ({row['false_accepts']}) | "
                     f"{100 * row['false_reject_rate']:.1f}% | {test['false_accepts'] / test['hours']:.2f} "
                     f"({test['false_accepts']}) | {100 * test['false_reject_rate']:.1f}% |")  # fmt: skip
    kinds = list(rows[0]["test"]["by_kind"])
    lines += ["", "Test false accepts per hour by kind of audio, at each k's calibrated thresholds:", "",
              "| k | " + " | ".join(f"{kind} ({rows[0]['test']['by_kind'][kind]['hours']:.2f} h)" for kind in kinds) + " |",
              "|---|" + "---|" * len(kinds)]  # fmt: skip
    for row in rows:
        by_kind = row["test"]["by_kind"]
        lines.append(f"| {row['smoothing']} | " + " | ".join(
            f"{by_kind[kind]['false_accepts'] / by_kind[kind]['hours']:.1f} ({by_kind[kind]['false_accepts']})"
            for kind in kinds) + " |")  # fmt: skip
    lines += ["", "The calibrated thresholds of each k (20 keywords; the floor is "
              f"{keyword_spotting.MIN_THRESHOLD}):", "", "| k | at the floor | median | highest |", "|---|---|---|---|"]
    for row in rows:
        values = np.array(list(row["thresholds"].values()))
        lines.append(f"| {row['smoothing']} | {int(np.sum(values <= keyword_spotting.MIN_THRESHOLD))} | "
                     f"{np.median(values):.4f} | {values.max():.4f} |")  # fmt: skip
    lines += ["", "Test DET points, one threshold for every keyword (`keyword_spotting.det_curve`, as `evaluate`): "
              "false accepts per hour / false-reject rate. Reported only: the whole curve moves with k, not just the "
              "calibrated point.", "", "| threshold | " + " | ".join(f"k = {row['smoothing']}" for row in rows) + " |",
              "|---|" + "---|" * len(rows)]  # fmt: skip
    for index, threshold in enumerate(DET_THRESHOLDS):
        cells = [row["test"]["det_curve"][index] for row in rows]
        lines.append(f"| {threshold:g} | " + " | ".join(f"{rate:.1f} / {100 * rejects:.1f}%" for _, rate, rejects in cells)
                     + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speech_smoothing", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the trained model's .keras file (scores the validation split)")
    parser.add_argument("export", help="its export's version folder (scores the test split)")
    parser.add_argument("--smoothing", type=int, nargs="+", default=list(speech_keywords.SpeechConfig.smoothing_windows),
                        help="numbers of windows averaged, one row each")  # fmt: skip
    parser.add_argument("--scores", default="/tmp/speech_smoothing_scores.npz",
                        help="the scored windows: read when the file exists, else scored and written")
    parser.add_argument("--output", default="reports/benchmarks", help="folder for speech_smoothing.json and .md")
    arguments = parser.parse_args(argv)
    candidates = tuple(validate_integer("--smoothing", value) for value in arguments.smoothing)
    rows, chosen, scores = measure(arguments.model, arguments.export, candidates, arguments.scores)
    command = (f"python -m benchmarks.speech_smoothing {arguments.model} {arguments.export} --smoothing "
               f"{' '.join(map(str, candidates))} --scores {arguments.scores}")  # fmt: skip
    text = report(rows, chosen, command, scores)
    print(text)
    output = pathlib.Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "speech_smoothing.json").write_text(
        json.dumps({"command": command, "chosen": chosen["smoothing"], "rows": rows}, indent=2) + "\n")
    (output / "speech_smoothing.md").write_text(text)
    return rows, chosen


if __name__ == "__main__":
    main()
