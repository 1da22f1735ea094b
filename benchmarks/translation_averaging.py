"""Checkpoint averaging of a finished translation run, measured: the best epoch's weights against the mean of
the last k epochs' weights, each with its own decoding search on validation, and its test scores at the setting
that validation chose (reported, never used to choose).

    python -m apps.translation train --average-epochs 3 --runs-dir R --reports-dir P ...   # keeps 3 epochs' weights
    python -m benchmarks.translation_averaging P/translation/metrics.json [--counts 1 2 3] [--last-epoch N]

The run's report gives its config (so the same data and vocabularies) and its best epoch; its `model.keras`
gives the architecture, whose weights are replaced by each average in turn.
"""

import argparse
import json
import pathlib

import keras

from apps import training, translation


def config_from_report(report):
    """The run's `TranslationConfig`, from its metrics.json (JSON turns tuples into lists)."""
    settings = {name: tuple(value) if isinstance(value, list) else value for name, value in report["config"].items()}
    return translation.TranslationConfig(**settings)


def measure(report_path, counts, last_epoch=None):
    report = json.loads(pathlib.Path(report_path).read_text())
    config = config_from_report(report)
    run_dir = pathlib.Path(config.runs_dir) / translation.TranslationApp.name
    data = translation.TranslationApp().load_data(config)
    model = keras.models.load_model(run_dir / "model.keras")
    last_epoch = last_epoch or report["fitting"]["best_epoch"]
    rows = []
    for count in counts:
        epochs = training.average_epoch_weights(model, run_dir / "epoch_weights", last_epoch, count)
        scores = translation.decoding_scores(model, *data["validation"], config.beam_widths, config.length_penalties)
        width, alpha = translation.choose_decoding(scores)
        test = translation.decoding_scores(model, *data["test"], [width], [alpha])[width, alpha]
        rows.append({"epochs": epochs, "beam_width": width, "length_penalty": alpha, "validation": scores[width, alpha],
                     "test": test})  # fmt: skip
        print(table(rows), flush=True)
    return rows


def table(rows):
    lines = ["| weights | beam, alpha (chosen on validation) | validation BLEU | validation chrF | test BLEU | test chrF |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        epochs = row["epochs"]
        name = f"epoch {epochs[0]}" if len(epochs) == 1 else f"mean of epochs {epochs[0]}-{epochs[-1]}"
        lines.append(f"| {name} | {row['beam_width']}, {row['length_penalty']:g} | {row['validation']['bleu']:.2f} | "
                     f"{row['validation']['chrf']:.2f} | {row['test']['bleu']:.2f} | {row['test']['chrf']:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.translation_averaging", description=__doc__)
    parser.add_argument("report", help="the run's metrics.json")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 3], help="epochs averaged, one row each")
    parser.add_argument("--last-epoch", dest="last_epoch", type=int,
                        help="average the epochs ending at this one (default: the run's best; its files must be kept)")
    parser.add_argument("--output", help="also write the table (Markdown) here")
    arguments = parser.parse_args(argv)
    rows = measure(arguments.report, arguments.counts, arguments.last_epoch)
    if arguments.output:
        pathlib.Path(arguments.output).write_text(table(rows))
    return rows


if __name__ == "__main__":
    main()
