"""The speed levers of our recurrent layers, each timed beside the others and Keras' built-in layer in one run.

Training (forward, mean-squared loss on the last output, backward, SGD update) with the generic loop and
automatic differentiation, with the hand-written backward pass (inputs projected per step, as the layers
do; projected in one product before the loop; both loops compiled by XLA), and Keras' layer; inference
with the generic loop (per step, as the layers do; projected before the loop; compiled by XLA) and Keras'.
Medians of interleaved repeats, and each training variant's peak memory (see `rnn_speed`). The variant
the layers do not expose (projection before the loop) is made by passing `project_before_loop=True` to
`layers.time_loop.hand_written_gradient_loop`.

    python -m benchmarks.rnn_levers [--repeats 7] [--kinds LSTM GRU] [--output reports/benchmarks]
"""

import functools
import json
import pathlib

import keras
import tensorflow as tf

import layers.rnn
from benchmarks import rnn_speed
from layers import time_loop

TRAINING = {  # name: (layer arguments, hand-written loop arguments)
    "generic": ({"hand_written_gradient": False}, {}),
    "hand-written": ({"hand_written_gradient": True}, {}),
    "hand-written, inputs projected first": ({"hand_written_gradient": True}, {"project_before_loop": True}),
    "hand-written under XLA": ({"hand_written_gradient": True, "jit_compile": True}, {}),
}
INFERENCE = ("generic", "generic, inputs projected first", "generic under XLA")


def training_step(kind, units, inputs, targets, name):
    layer_arguments, loop_arguments = TRAINING[name]
    layer = rnn_speed.OURS[kind](units, **layer_arguments)
    loop = functools.partial(time_loop.hand_written_gradient_loop, **loop_arguments)
    train_step, _ = rnn_speed.keras_functions(layer, inputs, targets)

    def traced_with_the_variant():
        original = layers.rnn.hand_written_gradient_loop
        layers.rnn.hand_written_gradient_loop = loop  # read while the step is traced
        try:
            return train_step()
        finally:
            layers.rnn.hand_written_gradient_loop = original

    return traced_with_the_variant


def inference_call(kind, units, inputs, name):
    if name == "generic under XLA":
        layer = rnn_speed.OURS[kind](units, jit_compile=True)
    else:
        layer = rnn_speed.OURS[kind](units)
    layer(inputs)
    if name != "generic, inputs projected first":
        return tf.function(lambda: layer(inputs, training=False))
    cell = layer.cell

    @tf.function
    def projected_before():
        recurrent_kernel = cell.prepare_recurrent_kernel(cell.recurrent_kernel)
        states = cell.get_initial_state(tf.shape(inputs)[0])
        _, final_states = time_loop.run_time_loop(
            lambda projected_t, states_t: cell.step(projected_t, states_t, recurrent_kernel=recurrent_kernel),
            cell.project_inputs(inputs),
            states,
        )
        return final_states[0]

    return projected_before


def measure_step_memory(kind, shape, seed):
    """The child's side of `rnn_speed.step_memory_megabytes` for these variants."""
    batch, time_steps, input_dim, units = shape
    keras.utils.set_random_seed(seed)
    inputs = tf.random.normal((batch, time_steps, input_dim))
    targets = tf.random.normal((batch, units))
    steps = {name: training_step(kind, units, inputs, targets, name) for name in TRAINING}
    steps["keras"] = rnn_speed.keras_functions(rnn_speed.builtin_layer(kind, units), inputs, targets)[0]
    return {name: rnn_speed.peak_megabytes(step) for name, step in steps.items()}


def benchmark(kinds, repeats, seed):
    rows = []
    for shape in rnn_speed.SHAPES:
        batch, time_steps, input_dim, units = shape
        for kind in kinds:
            keras.utils.set_random_seed(seed)
            inputs = tf.random.normal((batch, time_steps, input_dim))
            targets = tf.random.normal((batch, units))
            builtin = rnn_speed.builtin_layer(kind, units)
            keras_train, keras_infer = rnn_speed.keras_functions(builtin, inputs, targets)
            train = {name: training_step(kind, units, inputs, targets, name) for name in TRAINING}
            infer = {name: inference_call(kind, units, inputs, name) for name in INFERENCE}
            train_seconds = rnn_speed.median_times({**train, "keras": keras_train}, repeats)
            infer_seconds = rnn_speed.median_times({**infer, "keras": keras_infer}, repeats)
            memory = rnn_speed.step_memory_megabytes(kind, shape, seed, module="benchmarks.rnn_levers")
            row = {
                "kind": kind,
                "shape": f"B{batch} T{time_steps} D{input_dim} H{units}",
                "train_ms": {name: 1000 * value for name, value in train_seconds.items()},
                "infer_ms": {name: 1000 * value for name, value in infer_seconds.items()},
                "train_step_peak_mb": memory,
            }
            rows.append(row)
            print(format_row(row), flush=True)
    return {"repeats": repeats, "rows": rows}


TABLE_HEADER = (
    f"| layer | shape | train ms: {' / '.join(TRAINING)} / keras | train step MB, same order "
    f"| infer ms: {' / '.join(INFERENCE)} / keras |\n|---|---|---|---|---|"
)


def format_row(row):
    def values(numbers):
        return " / ".join(f"{value:.1f}" for value in numbers.values())

    return (
        f"| {row['kind']} | {row['shape']} | {values(row['train_ms'])} | {values(row['train_step_peak_mb'])} "
        f"| {values(row['infer_ms'])} |"
    )


def main(argv=None):
    arguments = rnn_speed.parse_arguments(__doc__.splitlines()[0], argv, 7, "rnn_levers", measure_step_memory)
    if arguments is None:
        return None
    print(TABLE_HEADER)
    results = benchmark(arguments.kinds, arguments.repeats, arguments.seed)
    output = pathlib.Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "rnn_levers.json").write_text(json.dumps(results, indent=2))
    table = "\n".join([TABLE_HEADER] + [format_row(row) for row in results["rows"]])
    (output / "rnn_levers.md").write_text(f"{table}\n\nMedians of {results['repeats']} interleaved repeats.\n")
    return results


if __name__ == "__main__":
    main()
