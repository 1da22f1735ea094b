"""The notes' vanishing-gradient example, measured: how far back can SimpleRNN, GRU and LSTM carry "cat" vs "cats"?

"The cat, which already ate ..., was full" / "The cats, which already ate ..., were full": the verb must
agree with a noun many words back. This script builds that task synthetically, with `distance` filler
words between the clause's commas, so the only evidence for singular or plural sits `distance + 3`
tokens before the verb. For each distance it trains each of our recurrent layers on the same data with
the same seed and budget and measures accuracy on a test set drawn with another seed (chance is 50%).
Then it runs each cell step by step over long sentences and measures the norm of the loss gradient
with respect to every activation a<t>, at initialisation and after training, to show how much of the
error signal reaches the early steps.

The cells are the notes' three, plus the GRU with a negative update-gate bias (`update_gate_bias`). Each
runs in two settings of the recurrent initialisation (`SETTINGS`): the layers' default orthogonal
matrix, where the vanilla RNN keeps its gradient, and a Gaussian one of gain 0.5, where it vanishes.

    python -m benchmarks.vanishing_gradient [--setting all] [--quick] [--seed 0] [--output-dir reports/vanishing_gradient]

It writes `accuracy_vs_distance.png`, `gradient_norm_vs_time.png`, `results.json` and `results.md` into
one folder per setting under the output folder.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import time

import matplotlib

matplotlib.use("Agg")  # files only: the demo runs on machines without a display
import keras
import numpy as np
import tensorflow as tf
import tqdm
from matplotlib import pyplot

import layers

# ---------------------------------------------------------------------------------------------------------
# Data: "the [adjective] cat|cats , which <distance filler words> ," -> was (0) | were (1)
# ---------------------------------------------------------------------------------------------------------

PADDING = "<pad>"  # index 0, so that Embedding(mask_zero=True) masks it
SUBJECTS = ("cat", "cats")  # index in this tuple is the label: 0 singular ("was"), 1 plural ("were")
VERBS = ("was", "were")  # what the model predicts, shown in the report; never part of the inputs
# Optional adjectives before the noun make sentences of one distance differ in length by one token, so
# batches are padded and the mask is what lets the model ignore the padding. They carry no number.
ADJECTIVES = ("old", "black", "little", "hungry")
# Fillers: past-tense verbs, adverbs, prepositions and adjectives, none of which is marked for number,
# sampled independently of the label, so they carry no evidence about it.
FILLERS = (
    "already", "ate", "quickly", "yesterday", "after", "slept", "quietly", "near", "warm", "then",
    "very", "soft", "long", "under", "happily", "again", "often", "there", "purred", "outside",
)
VOCABULARY = (PADDING, "the", *SUBJECTS, ",", "which", *ADJECTIVES, *FILLERS)
TOKEN_INDEX = {word: index for index, word in enumerate(VOCABULARY)}


def make_agreement_data(count, distance, seed, adjective_rate=0.5):
    """Sentences `the [adjective] cat|cats , which <distance fillers> ,` and their labels.

    Args:
        count: number of sentences.
        distance: number of filler words between "which" and the closing comma.
        seed: seed of this draw; training and test sets use different seeds.
        adjective_rate: fraction of sentences with an adjective before the noun (one token longer).

    Returns:
        `(tokens, labels)`: int32 `(count, longest sentence)` right-padded with 0 (the longest sentence
        has `distance + 5` or `distance + 6` tokens), and float32 `(count,)`, 1.0 where the subject is
        plural ("were").
    """
    if isinstance(distance, bool) or not isinstance(distance, (int, np.integer)) or distance < 0:
        raise ValueError(f"`distance` must be a non-negative integer. Received: distance={distance!r}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count <= 0:
        raise ValueError(f"`count` must be a positive integer. Received: count={count!r}")
    random = np.random.default_rng(seed)
    labels = random.integers(0, 2, size=count)
    has_adjective = random.random(count) < adjective_rate
    adjectives = random.choice([TOKEN_INDEX[word] for word in ADJECTIVES], size=count)
    fillers = random.choice([TOKEN_INDEX[word] for word in FILLERS], size=(count, distance))
    sentences = []
    for row in range(count):
        sentence = [TOKEN_INDEX["the"]]
        if has_adjective[row]:
            sentence.append(adjectives[row])
        sentence += [TOKEN_INDEX[SUBJECTS[labels[row]]], TOKEN_INDEX[","], TOKEN_INDEX["which"]]
        sentence += list(fillers[row]) + [TOKEN_INDEX[","]]
        sentences.append(sentence)
    tokens = keras.utils.pad_sequences(sentences, padding="post", value=0)
    return tokens.astype("int32"), labels.astype("float32")


def decode(tokens):
    """The words of one padded sentence, for printing an example."""
    return " ".join(VOCABULARY[index] for index in tokens if index != 0)


# ---------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Config:
    distances: tuple = (2, 5, 10, 20, 40, 80, 160)  # doubling from trivial up to what fits the 4-minute demo
    train_examples: int = 2048  # each (cell, distance) sees the same sentences; enough for the short ones
    test_examples: int = 1024  # held out, other seed: a 95% interval of about +-3 points at 50%
    epochs: int = 8  # a small fixed budget: the question is what each cell learns with the same effort
    batch_size: int = 64  # 32 updates per epoch
    learning_rate: float = 3e-3  # Adam; at 1e-3 the GRU is only starting to solve d=20 in the last epoch
    clip_norm: float = 1.0  # SimpleRNN gradients can also explode; clipping keeps the comparison about reach
    embedding_dim: int = 16  # 30 words need little room
    units: int = 32  # the same for every cell, so the comparison is about the recurrence, not the size
    gradient_distance: int = 80  # the sentence length of the gradient measurement
    gradient_examples: int = 128  # averaged over this many sentences
    # None: the layers' default (orthogonal) recurrent matrix; a number g: Gaussian N(0, g^2 / units), whose
    # spectral radius is about g, so the vanilla RNN's Jacobian shrinks a gradient about g-fold per step.
    recurrent_gain: float = None


# --quick, for the test: the whole pipeline in seconds, one distance per cell and setting; its accuracies mean nothing.
QUICK = dict(
    distances=(5,), train_examples=256, test_examples=128, epochs=1, gradient_distance=5, gradient_examples=16
)
# The study's rows: a name, our layer and its arguments. Γu starts at σ(-3) ≈ 0.05 in "GRU bu=-3", so the
# memory keeps 95% per step instead of the notes' GRU's 50%.
CELLS = {
    "SimpleRNN": ("SimpleRNN", {}),
    "GRU": ("GRU", {}),
    "GRU bu=-3": ("GRU", {"update_gate_bias": -3.0}),
    "LSTM": ("LSTM", {}),
}
# The recurrent initialisations compared, each a Config override. Orthogonal (Keras' and our default) keeps
# a gradient's norm through the near-linear tanh; gain 0.5 shrinks it about 2-fold per step, 1e-24 over 80.
# The Gaussian setting stops at 80, where the vanilla RNN already fails, to keep `make study` to minutes.
SETTINGS = {
    "orthogonal": {},
    "gaussian_0.5": {"recurrent_gain": 0.5, "distances": (5, 10, 20, 40, 80)},
}


# ---------------------------------------------------------------------------------------------------------
# Model: Embedding(mask_zero) -> one of our recurrent layers -> Dense(1, sigmoid)
# ---------------------------------------------------------------------------------------------------------


def recurrent_initializer(config):
    if config.recurrent_gain is None:
        return "orthogonal"
    return keras.initializers.RandomNormal(stddev=config.recurrent_gain / np.sqrt(config.units))


def build_model(cell, config):
    """The model of one row of `CELLS`, its weights drawn from Keras' global seed."""
    if cell not in CELLS:
        raise ValueError(f"`cell` must be one of {list(CELLS)}. Received: cell={cell!r}")
    layer_name, layer_arguments = CELLS[cell]
    inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(len(VOCABULARY), config.embedding_dim, mask_zero=True, name="embedding")(inputs)
    recurrent = getattr(layers, layer_name)(
        config.units, recurrent_initializer=recurrent_initializer(config), name="recurrent", **layer_arguments
    )
    final_activation = recurrent(embedded)
    probability = keras.layers.Dense(1, activation="sigmoid", name="plural")(final_activation)
    model = keras.Model(inputs, probability, name=f"agreement_{layer_name}")
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clip_norm),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def data_seed(seed, distance, split):
    # A separate stream per (seed, distance, split): the test sentences are never drawn from the training stream.
    return [seed, distance, {"train": 0, "test": 1, "gradient": 2}[split]]


def train_and_evaluate(cell, distance, config, seed):
    keras.utils.set_random_seed(seed)  # the same initial weights and batch order for every run of this pair
    train_tokens, train_labels = make_agreement_data(
        config.train_examples, distance, data_seed(seed, distance, "train")
    )
    test_tokens, test_labels = make_agreement_data(config.test_examples, distance, data_seed(seed, distance, "test"))
    model = build_model(cell, config)
    # No validation split: nothing is selected or stopped early, so the test set is only read once, below.
    history = model.fit(train_tokens, train_labels, batch_size=config.batch_size, epochs=config.epochs, verbose=0)
    _, test_accuracy = model.evaluate(test_tokens, test_labels, batch_size=256, verbose=0)
    return model, {"train_accuracy": float(history.history["accuracy"][-1]), "test_accuracy": float(test_accuracy)}


# ---------------------------------------------------------------------------------------------------------
# Gradient norms: run the cell one step at a time and ask the tape for dL/da<t> at every step
# ---------------------------------------------------------------------------------------------------------


def stepwise_gradient_norms(model, tokens, labels):
    """Mean over the batch of `||dL/da<t>||` for every step t, with L the summed cross-entropy.

    The loop below is the model's own computation written out: the embedding layer's vectors go through
    `cell(x<t>, states)` one step at a time, padded steps keep the state (as the layer's mask does), and
    the final a<t> goes through the model's Dense layer. Summing the loss over the batch makes each
    sentence's gradient its own, not divided by the batch size.

    Returns:
        `(norms, probabilities)`: float64 `(time,)` and the model's predictions `(batch,)` from this loop.
    """
    embedding, recurrent, dense = (model.get_layer(name) for name in ("embedding", "recurrent", "plural"))
    inputs = embedding(tokens)
    real = tokens != 0
    states = recurrent.cell.get_initial_state(tokens.shape[0])
    activations = []
    with tf.GradientTape() as tape:
        for step in range(tokens.shape[1]):
            activation, new_states = recurrent.cell(inputs[:, step], states)
            activations.append(activation)
            keep = real[:, step : step + 1]
            states = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
        probabilities = dense(states[0])[:, 0]
        loss = tf.reduce_sum(keras.losses.binary_crossentropy(labels[:, None], probabilities[:, None]))
    gradients = np.stack([gradient.numpy() for gradient in tape.gradient(loss, activations)], axis=1)
    # Average over the sentences that are real (not padding) at each step.
    norms = (np.linalg.norm(gradients.astype("float64"), axis=-1) * real).sum(axis=0) / np.maximum(real.sum(axis=0), 1)
    return norms, probabilities.numpy()


def gradient_profile(model, config, seed):
    # No adjectives, so every sentence has the same length and step t is the same word position in all.
    tokens, labels = make_agreement_data(
        config.gradient_examples, config.gradient_distance, data_seed(seed, config.gradient_distance, "gradient"),
        adjective_rate=0.0,
    )
    norms, _ = stepwise_gradient_norms(model, tokens, labels)
    return norms


def summarize(norms):
    """How much of the last step's gradient reaches the first step, and the subject ("cat"/"cats", t=1)."""
    last = norms[-1]
    return {
        "norms": [float(value) for value in norms],
        "first_over_last": float(norms[0] / last) if last > 0 else 0.0,
        "subject_over_last": float(norms[1] / last) if last > 0 else 0.0,
    }


# ---------------------------------------------------------------------------------------------------------
# Report: table, plots, files
# ---------------------------------------------------------------------------------------------------------


def format_table(results):
    distances = results["config"]["distances"]
    distance = results["config"]["gradient_distance"]
    header = (
        "| cell | " + " | ".join(f"d={d}" for d in distances)
        + f" | grad t=0 / last, init (d={distance}) | same, trained |"
    )
    lines = [header, "|---" * (len(distances) + 3) + "|"]
    for cell in CELLS:
        accuracies = " | ".join(f"{100 * results['accuracy'][cell][str(d)]['test_accuracy']:.1f}%" for d in distances)
        ratios = [results["gradients"][cell][stage]["first_over_last"] for stage in ("initial", "trained")]
        lines.append(f"| {cell} | {accuracies} | {ratios[0]:.2e} | {ratios[1]:.2e} |")
    return "\n".join(lines)


def plot_accuracy(results, path):
    distances = results["config"]["distances"]
    figure, axis = pyplot.subplots(figsize=(6, 4))
    for cell in CELLS:
        accuracies = [results["accuracy"][cell][str(d)]["test_accuracy"] for d in distances]
        axis.plot(distances, accuracies, marker="o", label=cell)
    axis.axhline(0.5, color="grey", linestyle="--", label="chance")
    axis.set_xscale("log")
    axis.set_xticks(distances, [str(d) for d in distances])
    axis.set_ylim(0.4, 1.02)
    axis.set_xlabel("filler words between the subject and the verb (distance)")
    axis.set_ylabel("test accuracy (was / were)")
    axis.set_title(f"Accuracy vs distance, recurrent init {setting_description(results['config'])}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


def plot_gradients(results, path):
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, stage in zip(axes, ("initial", "trained")):
        for cell in CELLS:
            norms = np.array(results["gradients"][cell][stage]["norms"])
            # Norms that underflow to 0 in float32 would vanish from a log plot; show them at the floor.
            axis.plot(np.maximum(norms, 1e-30), label=cell)
        axis.axvline(1, color="grey", linestyle=":", label='"cat"/"cats" (t=1)')
        axis.set_yscale("log")
        axis.set_xlabel("time step t")
        axis.set_title(f"{'at initialisation' if stage == 'initial' else 'after training'}")
    axes[0].set_ylabel("mean ||dL/da<t>||")
    axes[0].legend()
    figure.suptitle(
        f"Gradient reaching each step, sentences with {results['config']['gradient_distance']} fillers; "
        f"recurrent init {setting_description(results['config'])}"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


def setting_description(config):
    """The recurrent initialisation of a config dict, in words."""
    gain = config["recurrent_gain"]
    return "orthogonal" if gain is None else f"Gaussian N(0, {gain}^2 / units)"


def write_report(results, output_dir):
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_accuracy(results, output_dir / "accuracy_vs_distance.png")
    plot_gradients(results, output_dir / "gradient_norm_vs_time.png")
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    config = results["config"]
    (output_dir / "results.md").write_text(
        "# Vanishing gradient: long-range subject-verb agreement\n\n"
        f"Example ({config['distances'][0]} fillers): `{results['example']}` -> {results['example_verb']}\n\n"
        f"Test accuracy ({config['test_examples']} held-out sentences per distance, chance 50%) after "
        f"{config['epochs']} epochs on {config['train_examples']} sentences; gradient ratios are mean "
        f"||dL/da<t>|| at the first step (t=0) over the last step, on {config['gradient_examples']} sentences "
        f"with {config['gradient_distance']} fillers, at initialisation and for the model trained at that distance.\n\n"
        f"Recurrent initialisation: {setting_description(config)}.\n\n"
        f"{format_table(results)}\n\n"
        f"Seed {results['seed']}, {results['seconds']:.0f} s on {os.cpu_count()} CPU cores.\n"
        "![accuracy](accuracy_vs_distance.png)\n![gradients](gradient_norm_vs_time.png)\n"
    )


# ---------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------


def run(config, seed):
    start = time.perf_counter()
    if config.gradient_distance not in config.distances:
        raise ValueError(
            f"`gradient_distance` must be one of the trained distances, so a trained model exists for it. "
            f"Received: gradient_distance={config.gradient_distance}, distances={config.distances}"
        )
    example_tokens, example_labels = make_agreement_data(1, config.distances[0], seed)
    results = {
        "seed": seed,
        "config": dataclasses.asdict(config),
        "example": decode(example_tokens[0]),
        "example_verb": VERBS[int(example_labels[0])],
        "chance_accuracy": 0.5,
        "accuracy": {cell: {} for cell in CELLS},
        "gradients": {cell: {} for cell in CELLS},
    }
    print(f"Task: {results['example']} -> {results['example_verb']}")
    runs = [(cell, distance) for cell in CELLS for distance in config.distances]
    progress = tqdm.tqdm(runs, desc="training", unit="run")
    for cell, distance in progress:
        progress.set_postfix_str(f"{cell} d={distance}")
        if distance == config.gradient_distance:
            keras.utils.set_random_seed(seed)  # the same initial weights as the training run below
            initial_model = build_model(cell, config)
            results["gradients"][cell]["initial"] = summarize(gradient_profile(initial_model, config, seed))
        model, scores = train_and_evaluate(cell, distance, config, seed)
        results["accuracy"][cell][str(distance)] = scores
        if distance == config.gradient_distance:
            results["gradients"][cell]["trained"] = summarize(gradient_profile(model, config, seed))
        progress.write(f"{cell:>9} d={distance:<3} test accuracy {100 * scores['test_accuracy']:5.1f}%")
    results["seconds"] = time.perf_counter() - start
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=[*SETTINGS, "all"], default="all", help="recurrent initialisation")
    parser.add_argument("--quick", action="store_true", help="two distances, tiny data, one epoch (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="reports/vanishing_gradient")
    arguments = parser.parse_args(argv)

    settings = list(SETTINGS) if arguments.setting == "all" else [arguments.setting]
    all_results = {}
    for setting in settings:
        config = Config(**{**SETTINGS[setting], **(QUICK if arguments.quick else {})})
        print(f"Setting {setting}: recurrent init {setting_description(dataclasses.asdict(config))}")
        results = run(config, arguments.seed)
        output_dir = pathlib.Path(arguments.output_dir) / setting
        write_report(results, output_dir)
        all_results[setting] = results
    for setting, results in all_results.items():
        print(f"\n{setting}, {results['seconds']:.0f} s (chance is 50%):")
        print(format_table(results))
    print(f"\nWrote results.md, results.json and two PNGs under {arguments.output_dir}/{{{','.join(settings)}}}.")
    return all_results


if __name__ == "__main__":
    main()
