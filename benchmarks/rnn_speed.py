"""Speed of our recurrent layers next to Keras' built-ins and PyTorch, measured side by side in one run.

For SimpleRNN, GRU and LSTM at two shapes it times a training step (forward, mean-squared loss on the
last output, backward, SGD update) and an inference call of our layers (as they come, and with
`jit_compile=True`), Keras' built-ins and PyTorch's, interleaving the implementations in every repeat so
that machine noise hits them alike, and prints medians, the speed-ups of ours over Keras and PyTorch,
and the achieved GFLOP/s as a fraction of this machine's float32 matmul peak. The peak memory of a
training step is measured in a child process whose TensorFlow counts its allocations
(`TF_CPU_ALLOCATOR_USE_BFC`, which the timed process does not use).

    python -m benchmarks.rnn_speed [--repeats 15] [--kinds LSTM GRU] [--output reports/benchmarks]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import layers

SHAPES = [(64, 100, 32, 128), (32, 50, 128, 512)]  # (batch, time, input_dim, units), as the issue fixes
GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}
OURS = {"SimpleRNN": layers.SimpleRNN, "GRU": layers.GRU, "LSTM": layers.LSTM}
# Our layers as they come, and with their loops compiled by XLA (time padded to a bucket of lengths).
OUR_VARIANTS = {"ours": {}, "ours_xla": {"jit_compile": True}}


def builtin_layer(kind, units):
    if kind == "GRU":
        return keras.layers.GRU(units, reset_after=False)  # the notes' GRU; reset_after=True is another model
    return getattr(keras.layers, kind)(units)


def keras_functions(layer, inputs, targets):
    optimizer = keras.optimizers.SGD(1e-4)
    layer(inputs)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(inputs, training=True) - targets))
        gradients = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply(gradients, layer.trainable_variables)
        return loss

    @tf.function
    def infer():
        return layer(inputs, training=False)

    return train_step, infer


def torch_functions(kind, inputs, targets):
    try:
        import torch
    except ImportError:
        return None
    module = getattr(torch.nn, {"SimpleRNN": "RNN"}.get(kind, kind))(
        inputs.shape[-1], targets.shape[-1], batch_first=True
    )
    optimizer = torch.optim.SGD(module.parameters(), lr=1e-4)
    torch_inputs = torch.from_numpy(inputs.numpy())
    torch_targets = torch.from_numpy(targets.numpy())

    def last_output(outputs):
        return outputs[:, -1]

    def train_step():
        optimizer.zero_grad()
        loss = torch.mean((last_output(module(torch_inputs)[0]) - torch_targets) ** 2)
        loss.backward()
        optimizer.step()
        return loss.item()

    def infer():
        with torch.no_grad():
            return last_output(module(torch_inputs)[0]).numpy()

    return train_step, infer



def run_once(function):
    start = time.perf_counter()
    result = function()
    if isinstance(result, tf.Tensor):
        result.numpy()
    return time.perf_counter() - start


def median_times(functions, repeats, warmup=3):
    """Median seconds per call of each function, interleaved so that noise hits them alike. The order
    rotates every repeat, so that each function follows each other one equally often: PyTorch's OpenMP
    threads busy-wait for a moment after a call, which slowed whatever was timed next (in a fixed order,
    ours, right after torch, ran 0.84-0.95x Keras where it had run 1.0-1.4x without torch). Making torch's
    threads sleep instead (OMP_WAIT_POLICY=PASSIVE) slowed torch itself 2-3x, and a pause before every
    timed call slowed every small-shape call by cooling the threads."""
    for function in functions.values():
        for _ in range(warmup):
            run_once(function)
    samples = {name: [] for name in functions}
    names = list(functions)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(run_once(functions[name]))
    return {name: float(np.median(values)) for name, values in samples.items()}


def matmul_peak_gflops(size=2048, repeats=10):
    """This machine's float32 matmul rate, measured now with TensorFlow on a large square product."""
    matrix = tf.random.normal((size, size))
    product = tf.function(lambda: tf.matmul(matrix, matrix))
    seconds = median_times({"matmul": product}, repeats)["matmul"]
    return 2 * size**3 / seconds / 1e9


def layer_flops(kind, batch, time_steps, input_dim, units):
    """Matmul FLOPs of one forward pass; a training step is counted as 3x (forward, two backward products)."""
    return 2 * batch * time_steps * (input_dim + units) * GATES[kind] * units


def step_memory_megabytes(kind, shape, seed, module="benchmarks.rnn_speed"):
    """`{"ours": MB, "ours_xla": MB, "keras": MB}` (or the names `module` measures): what one training step
    allocates at its peak above what was allocated before it (weights, inputs), measured by `module`'s
    `--memory-of` in a child process."""
    command = [sys.executable, "-m", module, "--seed", str(seed), "--memory-of", kind]
    command += [str(size) for size in shape]
    environment = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"}  # the allocator that keeps statistics
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_megabytes(function):
    """What a call of `function` allocates at its peak above what was allocated before it: after two calls,
    the median of three (the peak varies with the order in which the two cores run independent ops)."""
    for _ in range(2):
        run_once(function)
    peaks = []
    for _ in range(3):
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        run_once(function)
        peaks.append((tf.config.experimental.get_memory_info("CPU:0")["peak"] - before) / 2**20)
    return float(np.median(peaks))


def measure_step_memory(kind, shape, seed):
    """The child's side of `step_memory_megabytes`."""
    batch, time_steps, input_dim, units = shape
    keras.utils.set_random_seed(seed)
    inputs = tf.random.normal((batch, time_steps, input_dim))
    targets = tf.random.normal((batch, units))
    candidates = {name: OURS[kind](units, **options) for name, options in OUR_VARIANTS.items()}
    candidates["keras"] = builtin_layer(kind, units)
    return {name: peak_megabytes(keras_functions(layer, inputs, targets)[0]) for name, layer in candidates.items()}


def benchmark(kinds, repeats, seed):
    peak = matmul_peak_gflops()
    rows = []
    for batch, time_steps, input_dim, units in SHAPES:
        for kind in kinds:
            keras.utils.set_random_seed(seed)
            inputs = tf.random.normal((batch, time_steps, input_dim))
            targets = tf.random.normal((batch, units))
            implementations = {
                name: keras_functions(OURS[kind](units, **options), inputs, targets)
                for name, options in OUR_VARIANTS.items()
            }
            implementations["keras"] = keras_functions(builtin_layer(kind, units), inputs, targets)
            torch_pair = torch_functions(kind, inputs, targets)
            if torch_pair is not None:
                implementations["torch"] = torch_pair
            train = median_times({name: pair[0] for name, pair in implementations.items()}, repeats)
            infer = median_times({name: pair[1] for name, pair in implementations.items()}, repeats)
            flops = layer_flops(kind, batch, time_steps, input_dim, units)
            memory = step_memory_megabytes(kind, (batch, time_steps, input_dim, units), seed)
            row = {
                "kind": kind,
                "shape": f"B{batch} T{time_steps} D{input_dim} H{units}",
                "train_ms": {name: 1000 * value for name, value in train.items()},
                "infer_ms": {name: 1000 * value for name, value in infer.items()},
                "train_seq_per_s": {name: batch / value for name, value in train.items()},
                "infer_seq_per_s": {name: batch / value for name, value in infer.items()},
                "train_gflops_fraction_of_peak": {name: 3 * flops / train[name] / 1e9 / peak for name in OUR_VARIANTS},
                "infer_gflops_fraction_of_peak": {name: flops / infer[name] / 1e9 / peak for name in OUR_VARIANTS},
                "train_step_peak_mb": memory,
                "train_memory_ratio_vs_keras": {name: memory[name] / memory["keras"] for name in OUR_VARIANTS},
            }
            for other in ("keras", "torch"):
                if other in train:
                    row[f"train_speedup_vs_{other}"] = {name: train[other] / train[name] for name in OUR_VARIANTS}
                    row[f"infer_speedup_vs_{other}"] = {name: infer[other] / infer[name] for name in OUR_VARIANTS}
            rows.append(row)
            print(format_row(row), flush=True)
    return {"matmul_peak_gflops": peak, "repeats": repeats, "rows": rows}


TABLE_HEADER = (
    "| layer | shape | train ms ours / XLA / keras / torch | infer ms ours / XLA / keras / torch "
    "| train speed-up vs keras: ours, XLA | infer speed-up vs keras: ours, XLA "
    "| vs torch: train ours, XLA; infer ours, XLA | train step MB ours / XLA / keras | % of peak, train ours, XLA |\n"
    "|---|---|---|---|---|---|---|---|---|"
)
IMPLEMENTATIONS = (*OUR_VARIANTS, "keras", "torch")


def format_row(row):
    def values(numbers, names=IMPLEMENTATIONS):
        return " / ".join(f"{numbers[name]:.1f}" if name in numbers else "-" for name in names)

    def speedups(key):
        if key not in row:
            return "-, -"
        return ", ".join(f"{row[key][name]:.2f}x" for name in OUR_VARIANTS)

    fractions = ", ".join(f"{100 * row['train_gflops_fraction_of_peak'][name]:.0f}%" for name in OUR_VARIANTS)
    return (
        f"| {row['kind']} | {row['shape']} | {values(row['train_ms'])} | {values(row['infer_ms'])} "
        f"| {speedups('train_speedup_vs_keras')} | {speedups('infer_speedup_vs_keras')} "
        f"| {speedups('train_speedup_vs_torch')}; {speedups('infer_speedup_vs_torch')} "
        f"| {values(row['train_step_peak_mb'], (*OUR_VARIANTS, 'keras'))} | {fractions} |"
    )


def parse_arguments(description, argv, repeats, report_name, measure_memory):
    """The speed benchmarks' common command line (`--repeats`, `--kinds`, `--seed`, `--output` and the internal
    `--memory-of`). With `--memory-of`, prints `measure_memory(kind, shape, seed)` as JSON and returns None."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=repeats, help="timed calls per variant (median)")
    parser.add_argument("--kinds", nargs="+", default=list(GATES), choices=list(GATES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="reports/benchmarks", help=f"folder for {report_name}.json and .md")
    parser.add_argument(
        "--memory-of", nargs=5, metavar=("KIND", "BATCH", "TIME", "INPUT_DIM", "UNITS"),
        help="(internal) print one training step's peak memory as JSON; run with TF_CPU_ALLOCATOR_USE_BFC=true",
    )  # fmt: skip
    arguments = parser.parse_args(argv)
    if arguments.memory_of:
        kind, *shape = arguments.memory_of
        print(json.dumps(measure_memory(kind, tuple(map(int, shape)), arguments.seed)))
        return None
    if arguments.repeats < 1:
        parser.error(f"--repeats must be at least 1. Received: {arguments.repeats}")
    return arguments


def main(argv=None):
    arguments = parse_arguments(__doc__.splitlines()[0], argv, 15, "rnn_speed", measure_step_memory)
    if arguments is None:
        return None

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores")
    print(TABLE_HEADER)
    results = benchmark(arguments.kinds, arguments.repeats, arguments.seed)
    print(f"\nfloat32 matmul peak measured in this run: {results['matmul_peak_gflops']:.0f} GFLOP/s")
    output = pathlib.Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "rnn_speed.json").write_text(json.dumps(results, indent=2))
    table = "\n".join([TABLE_HEADER] + [format_row(row) for row in results["rows"]])
    (output / "rnn_speed.md").write_text(
        f"{table}\n\nMedians of {results['repeats']} interleaved repeats; "
        f"matmul peak {results['matmul_peak_gflops']:.0f} GFLOP/s.\n"
    )
    return results


if __name__ == "__main__":
    main()
