"""Server-side batching by TF Serving's rules (batching_session.cc), so that the local server fails where TF Serving fails.

Which versions are batched: with `--enable_batching`, every version, with the parameters of
`--batching_parameters_file`; with `--enable_per_model_batching_parameters` too, only the versions whose
folder holds `batching_params.pbtxt`, with its parameters (TF Serving's GetPerModelBatchingParams).

How a batched version runs a request: each signature has a queue; a batch closes when it holds
`max_batch_size` rows or `batch_timeout_micros` after its first request, and runs as one call. As in TF Serving:
- a request without inputs, with a scalar input or with inputs of different row counts is refused, and so
  is one of more rows than `max_batch_size` (INVALID_ARGUMENT);
- requests whose tensors differ beyond the batch dimension fail together (FAILED_PRECONDITION), unless
  `pad_variable_length_inputs` pads each tensor with its first element to the batch's widest;
- a batched call that fails, fails every request of the batch: nothing is rerun alone.

The export writes `batching_params.pbtxt` only for a model where none of this can happen to a valid request
(`unbatchable_reasons`), and none of it can change an answer.
"""

import pathlib
import threading

import tensorflow as tf
from google.protobuf import text_format

from serving.models import ServingError
from serving.protos import batching_parameters_class

PER_MODEL_FILENAME = "batching_params.pbtxt"
# The SavedModel's own signature that runs its initializers at load; no request names it.
INIT_OP_SIGNATURE = "__saved_model_init_op"

# What the export writes into a batchable model's version folder. Measured with the local server
# (benchmarks/serving_speed.py, sentiment, 2 CPU cores, clients on the same machine): a 2 ms window made a
# lone request slower (REST p50 3.9 -> 6.8 ms) and 8 concurrent clients no faster, so `make serve` runs
# without batching; these values keep the window that small if it is turned on.
PER_MODEL_PARAMETERS = """\
# TF Serving's batching of this model (a BatchingParameters text proto), read when the server runs with
# --enable_batching --enable_per_model_batching_parameters. Written by the export (serving/batching.py),
# only because every signature of this model batches safely.
max_batch_size { value: 64 }            # the largest batch one call gets; the apps train at 64 and 256
batch_timeout_micros { value: 2000 }    # wait at most 2 ms for a batch to fill: small next to an RNN's run time
max_enqueued_batches { value: 100 }     # beyond 100 waiting batches, requests fail fast (UNAVAILABLE)
pad_variable_length_inputs: false       # this model's inputs have one width; padding would only hide a bad request
"""

# TF Serving's defaults for parameters a file leaves out (BasicBatchScheduler's options).
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_TIMEOUT_MICROS = 0


def parse_parameters(text, source="text"):
    """A `BatchingParameters` message from its text proto; a misspelled field fails, as in TF Serving."""
    try:
        return text_format.Parse(text, batching_parameters_class()())
    except text_format.ParseError as error:
        raise ValueError(f"Cannot parse the batching parameters in {source}. Received: {error}") from None


# ---------------------------------------------------------------------------------------------------------
# Which exports may be batched
# ---------------------------------------------------------------------------------------------------------


def shape_of(tensor_info):
    """A TensorInfo's shape as a list (-1: any), or None when even its rank is unknown."""
    shape = tensor_info.tensor_shape
    return None if shape.unknown_rank else [dim.size for dim in shape.dim]


def unbatchable_reasons(signature_defs):
    """Why TF Serving's batching would refuse a valid request to this model or change its answer; empty when
    every signature batches safely. TF Serving batches every signature of a batched model, so one is enough:
    - a signature without inputs is refused outright;
    - an input whose width varies (stock windows, speech clips, stream state) fails every request of a
      batch that mixes widths, since padding is off;
    - an output whose width varies is padded to the batch's widest, so the answer depends on other requests.
    `signature_defs` is `{name: SignatureDef}`, as the SavedModel stores them."""
    reasons = []
    for name, signature_def in sorted(signature_defs.items()):
        if name == INIT_OP_SIGNATURE:
            continue
        if not signature_def.inputs:
            reasons.append(f"signature {name!r} has no inputs")
        for kind, tensors in (("input", signature_def.inputs), ("output", signature_def.outputs)):
            for tensor_name, tensor_info in sorted(tensors.items()):
                shape = shape_of(tensor_info)
                if shape is None:
                    reasons.append(f"{kind} {tensor_name!r} of {name!r} has an unknown rank")
                elif not shape:
                    reasons.append(f"{kind} {tensor_name!r} of {name!r} is a scalar: it has no batch dimension")
                elif any(size < 0 for size in shape[1:]):
                    reasons.append(f"{kind} {tensor_name!r} of {name!r} has shape {shape}: its width beyond the batch "
                                   "dimension is not fixed")
    return reasons


def write_parameters_if_batchable(version_dir, signature_defs):
    """Writes `batching_params.pbtxt` into `version_dir` when the model batches safely; returns the reasons
    it does not (then no file is written, and TF Serving with per-model parameters serves it unbatched)."""
    reasons = unbatchable_reasons(signature_defs)
    if not reasons:
        (pathlib.Path(version_dir) / PER_MODEL_FILENAME).write_text(PER_MODEL_PARAMETERS)
    return reasons


# ---------------------------------------------------------------------------------------------------------
# Which loaded versions are batched
# ---------------------------------------------------------------------------------------------------------


class BatchingConfig:
    """The server's batching flags: `batcher_for(version_dir)` gives the `Batcher` TF Serving would use for a
    version loaded from that folder, or None when TF Serving would not batch it.

    Args:
        common_parameters: `BatchingParameters` of `--batching_parameters_file` (an empty message: defaults).
        per_model: `--enable_per_model_batching_parameters`.
    """

    def __init__(self, common_parameters=None, per_model=False):
        self.common_parameters = common_parameters if common_parameters is not None else parse_parameters("")
        self.per_model = per_model

    @classmethod
    def from_flags(cls, parameters_file=None, per_model=False):
        text = pathlib.Path(parameters_file).read_text() if parameters_file else ""
        return cls(parse_parameters(text, parameters_file or "the defaults"), per_model)

    def batcher_for(self, version_dir):
        if not self.per_model:
            return Batcher(self.common_parameters)
        path = pathlib.Path(version_dir) / PER_MODEL_FILENAME
        if not path.exists():
            return None
        return Batcher(parse_parameters(path.read_text(), path))  # a bad file fails the load, as in TF Serving


# ---------------------------------------------------------------------------------------------------------
# Running batches
# ---------------------------------------------------------------------------------------------------------


def batch_rows(tensors):
    """The rows of one request, as TF Serving's batching counts them (ComputeTensorBatchSize): every input's
    first dimension, which must exist and agree. A request it cannot count is refused with TF Serving's words."""
    if not tensors:
        raise ServingError(400, "Batching Run() must have at least one input tensor. Received: a signature without "
                           "inputs, which TF Serving cannot batch; serve this model without batching")
    if any(value.shape.rank == 0 for value in tensors.values()):
        raise ServingError(400, "Batching Run() input tensors must have at least one dimension. Received: shapes "
                           f"{ {name: value.shape.as_list() for name, value in tensors.items()} }")
    sizes = {int(value.shape[0]) for value in tensors.values()}
    if len(sizes) != 1:
        raise ServingError(400, f"Batching Run() input tensors must have equal 0th-dimension size. Received: {sorted(sizes)}")
    return sizes.pop()


def failed_precondition(message):
    return ServingError(400, message, status="FAILED_PRECONDITION")


def padded(tensor, widths):
    """`tensor` padded at the end of each dimension after the first to `widths`, with its first element, as
    TF Serving's AddPadding does."""
    paddings = [[0, 0]] + [[0, width - size] for width, size in zip(widths, tensor.shape[1:])]
    return tf.pad(tensor, paddings, constant_values=tf.reshape(tensor, [-1])[0])


class Task:
    """One request in a batch: its inputs, rows, and once run, its outputs or error."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.rows = batch_rows(tensors)
        self.done = threading.Event()
        self.outputs = None
        self.error = None


class Batch:
    def __init__(self):
        self.tasks = []
        self.rows = 0
        self.closed = threading.Event()

    def add(self, task):
        self.tasks.append(task)
        self.rows += task.rows


class Batcher:
    """The batching of one model version: a queue per signature, batches of at most `max_batch_size` rows.

    Args:
        parameters: a `BatchingParameters` message (`parse_parameters`); fields left out take TF Serving's
            defaults. `num_batch_threads` and `max_enqueued_batches` are not modelled: a batch runs on the
            thread of its first request.
    """

    def __init__(self, parameters=None):
        parameters = parameters if parameters is not None else parse_parameters("")
        self.max_batch_size = parameters.max_batch_size.value if parameters.HasField("max_batch_size") else DEFAULT_MAX_BATCH_SIZE
        micros = parameters.batch_timeout_micros.value if parameters.HasField("batch_timeout_micros") else DEFAULT_BATCH_TIMEOUT_MICROS
        self.timeout_seconds = micros / 1e6
        self.allowed_batch_sizes = sorted(parameters.allowed_batch_sizes)
        self.pad_variable_length_inputs = parameters.pad_variable_length_inputs
        if self.max_batch_size < 1 or self.timeout_seconds < 0:
            raise ValueError(f"Batching needs max_batch_size >= 1 and batch_timeout_micros >= 0. Received: "
                             f"{self.max_batch_size}, {micros}")
        self.lock = threading.Lock()
        self.open_batches = {}  # signature name -> the batch still taking requests

    def run(self, key, function, tensors):
        """`function(**tensors)` as NumPy outputs, run in one batch with concurrent calls under the same key."""
        task = Task(tensors)
        if task.rows > self.max_batch_size:
            raise ServingError(400, f"Task size {task.rows} is larger than maximum input batch size {self.max_batch_size}")
        with self.lock:
            batch = self.open_batches.get(key)
            if batch is not None and batch.rows + task.rows > self.max_batch_size:
                batch.closed.set()  # full: its first request runs it now
                batch = None
            if batch is None:
                batch = self.open_batches[key] = Batch()
            batch.add(task)
            leader = len(batch.tasks) == 1
            if batch.rows == self.max_batch_size:
                batch.closed.set()
        if leader:
            batch.closed.wait(self.timeout_seconds)
            with self.lock:
                if self.open_batches.get(key) is batch:
                    del self.open_batches[key]
            self.execute(function, batch.tasks)
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def merged_inputs(self, tasks):
        """Each input of all tasks concatenated along the batch, after TF Serving's checks and padding."""
        merged = {}
        for name in tasks[0].tensors:
            tensors = [task.tensors[name] for task in tasks]
            widths = [max(sizes) for sizes in zip(*(tensor.shape[1:] for tensor in tensors))]
            if self.pad_variable_length_inputs:
                tensors = [padded(tensor, widths) for tensor in tensors]
            elif any(tensor.shape[1:] != tensors[0].shape[1:] for tensor in tensors):
                raise failed_precondition(
                    f"Tensors with name '{name}' from different tasks have different shapes and padding is turned "
                    f"off. Set pad_variable_length_inputs to true, or ensure that all tensors with the same name have "
                    f"equal dimensions starting with the first dim. Received: shapes "
                    f"{[tensor.shape.as_list() for tensor in tensors]}")  # fmt: skip
            extra = self.padding_rows(sum(task.rows for task in tasks))
            merged[name] = tf.concat(tensors + [tensors[-1][:1]] * extra, axis=0)
        return merged

    def padding_rows(self, rows):
        """Rows added to reach the smallest of `allowed_batch_sizes` that holds `rows` (none without the list)."""
        larger = [size for size in self.allowed_batch_sizes if size >= rows]
        return larger[0] - rows if larger else 0

    def execute(self, function, tasks):
        """Runs `tasks` as one call and hands each its rows; an error is every task's error."""
        try:
            merged = self.merged_inputs(tasks)
            outputs = {name: value.numpy() for name, value in function(**merged).items()}
            total = sum(task.rows for task in tasks) + self.padding_rows(sum(task.rows for task in tasks))
            for name, value in outputs.items():
                if value.ndim == 0:
                    raise failed_precondition(f"Batched output tensor has 0 dimensions. Received: output {name!r}")
                if value.shape[0] != total:
                    raise failed_precondition(
                        "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes of "
                        f"the input tensors. Received: output {name!r} with {value.shape[0]} rows for {total}")
            begin = 0
            for task in tasks:
                task.outputs = {name: value[begin : begin + task.rows] for name, value in outputs.items()}
                begin += task.rows
        except Exception as error:  # noqa: BLE001 -- handed to every request of the batch, as TF Serving does
            for task in tasks:
                task.error = error
        finally:
            for task in tasks:
                task.done.set()
