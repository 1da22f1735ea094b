"""Server-side batching: concurrent requests to one signature run as one call, as TF Serving's batcher does.

The first request to arrive waits `timeout_seconds` for others (or until `max_batch_size` rows are
queued), then runs them all in one call of the signature and hands each request its own rows back.
Requests whose inputs cannot be stacked (other trailing shapes, e.g. price windows of other lengths)
run in groups of equal shapes. If a combined call fails, every request is rerun alone, so one client's
bad input never fails another's request.
"""

import threading
import time

import tensorflow as tf

from serving.models import ServingError


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


class Pending:
    def __init__(self, tensors):
        self.tensors = tensors
        self.rows = batch_rows(tensors)
        self.done = threading.Event()
        self.outputs = None
        self.error = None


def run(function, tensors):
    return {name: value.numpy() for name, value in function(**tensors).items()}


class Batcher:
    def __init__(self, max_batch_size=32, timeout_seconds=0.002):
        if max_batch_size < 1 or timeout_seconds < 0:
            raise ValueError(f"Batching needs max_batch_size >= 1 and timeout >= 0. Received: {max_batch_size}, "
                             f"{timeout_seconds}")
        self.max_batch_size = max_batch_size
        self.timeout_seconds = timeout_seconds
        self.lock = threading.Lock()
        self.queues = {}

    def run(self, key, function, tensors):
        """`function(**tensors)` as numpy outputs, possibly batched with concurrent calls under the same key."""
        pending = Pending(tensors)
        with self.lock:
            queue = self.queues.setdefault(key, [])
            queue.append(pending)
            leader = len(queue) == 1
        if leader:
            deadline = time.perf_counter() + self.timeout_seconds
            while time.perf_counter() < deadline and sum(item.rows for item in self.queues.get(key, [])) < self.max_batch_size:
                time.sleep(self.timeout_seconds / 4 or 0)
            with self.lock:
                batch = self.queues.pop(key)
            self.execute(function, batch)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.outputs

    def execute(self, function, batch):
        groups = {}
        for item in batch:
            shape_key = tuple((name, tuple(value.shape[1:]), value.dtype) for name, value in sorted(item.tensors.items()))
            groups.setdefault(shape_key, []).append(item)
        for group in groups.values():
            try:
                if len(group) == 1:
                    raise ValueError("alone")  # no stacking needed: the except branch runs it
                stacked = {name: tf.concat([item.tensors[name] for item in group], axis=0) for name in group[0].tensors}
                outputs = run(function, stacked)
                begin = 0
                for item in group:
                    item.outputs = {name: value[begin : begin + item.rows] for name, value in outputs.items()}
                    begin += item.rows
            except Exception:  # noqa: BLE001 -- rerun alone: each request gets its own answer or error
                for item in group:
                    try:
                        item.outputs = run(function, item.tensors)
                    except Exception as error:  # noqa: BLE001 -- handed to that request's caller
                        item.error = error
            for item in group:
                item.done.set()
