"""The time loops every recurrent layer runs: a step function applied along the time axis, differentiated
automatically, and the same for our cells with a backward pass written by hand."""

import keras
from keras import ops


def run_time_loop(step, inputs, initial_states, mask=None, return_sequences=False, zero_output_for_mask=False):
    """Runs `step(inputs_t, states) -> (output_t, new_states)` over time.

    Args:
        step: one time step; its output must be its first new state (true of every cell here).
        inputs: `(batch, time, features)`, already in processing order (reversed for `go_backwards`).
        initial_states: list of `(batch, units)` tensors.
        mask: optional boolean `(batch, time)`. Where it is False the states are carried over unchanged,
            so a padded sequence ends in the same state as the unpadded one.
        return_sequences: also return every step's output, `(batch, time, units)`.
        zero_output_for_mask: masked steps output zeros instead of the carried state.

    Returns:
        `(outputs or None, final_states)`.
    """
    if keras.backend.backend() == "tensorflow":
        return tensorflow_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask)
    return scan_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask)


# The weight gradients' products over all steps run in this many spans of time (see backward_loop).
WEIGHT_GRADIENT_CHUNKS = 4

# Lengths XLA compiles for with `jit_compile`: multiples of this many steps (T=100 runs 104 steps).
TIME_BUCKET = 8


def pad_time_to_bucket(inputs, mask, bucket=TIME_BUCKET):
    """`(inputs, mask)` with time padded at the end to a multiple of `bucket` by masked steps (TensorFlow).

    Masked steps keep the state, so the final states are those of the unpadded sequence, and its outputs
    are the first steps of the padded one."""
    import tensorflow as tf

    steps = tf.shape(inputs)[1]
    padding = (-steps) % bucket
    if mask is None:
        mask = tf.ones(tf.shape(inputs)[:2], dtype=tf.bool)
    inputs = tf.pad(inputs, [[0, 0], [0, padding], [0, 0]])
    return inputs, tf.pad(mask, [[0, 0], [0, padding]], constant_values=False)


def _masked_step(step, zero_output_for_mask):
    def masked(inputs_t, mask_t, states):
        output, new_states = step(inputs_t, states)
        if mask_t is None:
            return output, list(new_states)
        keep = ops.expand_dims(mask_t, -1)
        new_states = [ops.where(keep, new, old) for new, old in zip(new_states, states)]
        output = ops.where(keep, output, ops.zeros_like(output)) if zero_output_for_mask else new_states[0]
        return output, new_states

    return masked


def tensorflow_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask):
    # A TensorArray is read and written per step: indexing a captured tensor inside tf.while_loop is
    # several times slower, and the TensorArray's gradient is a TensorArray too.
    import tensorflow as tf

    masked_step = _masked_step(step, zero_output_for_mask)
    time_major = tf.transpose(inputs, [1, 0, 2])
    steps = tf.shape(time_major)[0]
    inputs_array = tf.TensorArray(inputs.dtype, size=steps, element_shape=time_major.shape[1:])
    inputs_array = inputs_array.unstack(time_major)
    mask_array = None
    if mask is not None:
        mask_array = tf.TensorArray(tf.bool, size=steps).unstack(tf.transpose(mask))
    outputs_array = tf.TensorArray(inputs.dtype, size=steps if return_sequences else 0)

    def body(time, outputs_array, *states):
        mask_t = None if mask_array is None else mask_array.read(time)
        output, new_states = masked_step(inputs_array.read(time), mask_t, list(states))
        if return_sequences:
            outputs_array = outputs_array.write(time, output)
        return (time + 1, outputs_array, *new_states)

    # parallel_iterations lets work off the recurrent critical path (the weight-gradient products in
    # the backward loop) run on another core while the next step's matmul waits on this one.
    loop_vars = tf.while_loop(
        lambda time, *_: time < steps,
        body,
        (tf.constant(0), outputs_array, *initial_states),
        maximum_iterations=steps,
        parallel_iterations=32,
    )
    final_states = list(loop_vars[2:])
    for final, initial in zip(final_states, initial_states):
        final.set_shape(initial.shape)
    outputs = None
    if return_sequences:
        outputs = tf.transpose(loop_vars[1].stack(), [1, 0, 2])
        outputs.set_shape([inputs.shape[0], inputs.shape[1], final_states[0].shape[-1]])
    return outputs, final_states


def scan_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask):
    """Backend-independent loop with `keras.ops.scan` (JAX, PyTorch, or TensorFlow for testing)."""
    masked_step = _masked_step(step, zero_output_for_mask)
    features = inputs.shape[-1]
    if mask is not None:
        # One scanned tensor: the mask rides along as a last feature column.
        inputs = ops.concatenate([inputs, ops.expand_dims(ops.cast(mask, inputs.dtype), -1)], axis=-1)

    state_count = len(initial_states)

    def scan_step(packed_states, inputs_t):
        # keras.ops.scan on TensorFlow wants the per-step output shaped like the carry, so both are the
        # states packed in one tensor; the output a<t> is the first state.
        mask_t = None if mask is None else inputs_t[:, features] > 0.5
        states = ops.split(packed_states, state_count, axis=-1)
        output, new_states = masked_step(inputs_t[:, :features], mask_t, states)
        packed = ops.concatenate(new_states, axis=-1)
        return packed, ops.concatenate([output] + new_states[1:], axis=-1)

    packed, outputs = ops.scan(scan_step, ops.concatenate(initial_states, axis=-1), ops.transpose(inputs, [1, 0, 2]))
    units = initial_states[0].shape[-1]
    outputs = ops.transpose(outputs[:, :, :units], [1, 0, 2]) if return_sequences else None
    return outputs, ops.split(packed, state_count, axis=-1)


def hand_written_gradient_loop(
    cell,
    inputs,
    initial_states,
    weights,
    mask=None,
    return_sequences=False,
    zero_output_for_mask=False,
    project_before_loop=False,
    jit_compile=False,
):
    """The TensorFlow loop of `run_time_loop` for one of our cells, with its backward pass written by hand.

    Forward, the loop keeps every step's states and the tensors the cell's `backward` reads (its `SAVED`).
    Backward, a loop runs over time carrying only the state gradients (one product with `W_a^T` per
    step, two for the GRU) and keeps each step's `dz`; the weights' and the inputs' gradients are one
    product each over many steps: `x^T dz`, `a<t-1>^T dz` (the cell's `recurrent_kernel_gradient`),
    `sum dz`, `dz W_x^T`, once per span of time (`WEIGHT_GRADIENT_CHUNKS` spans, for memory). A masked
    step keeps the state, so its state gradient passes straight through and its `dz` is zero.

    `project_before_loop=True` projects the inputs of all steps in one product before the loop instead
    of one per step in it: measured as fast, but it holds `(time, batch, gates * units)` more at the
    memory peak (LSTM at B64 T100 D32 H128: 35.7 instead of 29.0 MB; Keras 23.3 MB). `jit_compile=True`
    compiles both loops with XLA (the caller pads time to a bucket of lengths: `pad_time_to_bucket`).

    Args: as `run_time_loop`, with the cell instead of a step function and `weights` the tensors
    `(kernel, recurrent_kernel, bias)` to use (the gradient is returned for them).
    """
    import tensorflow as tf

    state_count = len(initial_states)
    masks = [] if mask is None else [tf.transpose(mask)]  # time-major
    saved_shapes = []  # the static shapes of the saved tensors, learnt when the forward step is traced

    # The gradient function reads only this function's inputs and outputs (the saved sequences are
    # outputs too, unused outside), so that a SavedModel can store it.
    @tf.custom_gradient
    def sequence(inputs, kernel, recurrent_kernel, bias, *states_and_mask):
        initial_states, mask = list(states_and_mask[:state_count]), states_and_mask[state_count:]
        state_sequences, saved_sequences = forward_loop(inputs, kernel, recurrent_kernel, bias, initial_states, mask)
        results = [sequence[-1] for sequence in state_sequences]
        if return_sequences:
            outputs = state_sequences[0][1:]
            if mask and zero_output_for_mask:
                outputs = tf.where(tf.expand_dims(mask[0], -1), outputs, tf.zeros_like(outputs))
            results.insert(0, tf.transpose(outputs, [1, 0, 2]))

        def gradient(*upstream):
            result_gradients = list(upstream[: len(results)])
            output_gradients = result_gradients.pop(0) if return_sequences else None
            final_gradients = [
                tf.zeros_like(state) if gradient is None else gradient
                for gradient, state in zip(result_gradients, initial_states)
            ]
            input_gradients, weight_gradients, initial_gradients = backward_loop(
                inputs, kernel, recurrent_kernel, mask, state_sequences, saved_sequences, output_gradients,
                final_gradients,
            )  # fmt: skip
            return [input_gradients, *weight_gradients, *initial_gradients, *([None] * len(mask))]

        return results + state_sequences + saved_sequences, gradient

    def forward_loop(inputs, kernel, recurrent_kernel, bias, initial_states, mask):
        """`(state_sequences, saved_sequences)`, time-major: `(steps + 1, batch, units)` per state, the
        initial one first, and `(steps, batch, ...)` per tensor in the cell's `SAVED`."""
        dtype = inputs.dtype
        steps = tf.shape(inputs)[1]
        time_major = tf.transpose(inputs, [1, 0, 2])
        flat_inputs = tf.reshape(time_major, [-1, inputs.shape[-1]])
        if project_before_loop:
            projected = tf.reshape(cell.project_inputs(flat_inputs, kernel, bias), [steps, -1, kernel.shape[-1]])

        def projected_inputs(time):
            if project_before_loop:
                return projected[time]
            return cell.project_inputs(time_major[time], kernel, bias)

        # Index 0 holds the initial states and t + 1 the states after step t: step t reads both, backward.
        state_arrays = [
            tf.TensorArray(dtype, size=steps + 1, element_shape=state.shape).write(0, state)
            for state in initial_states
        ]
        saved_arrays = [new_list(steps, dtype) for _ in cell.SAVED]

        prepared_recurrent_kernel = cell.prepare_recurrent_kernel(recurrent_kernel)

        def body(time, state_arrays, saved_arrays, *states):
            new_states, saved = cell.forward(projected_inputs(time), list(states), prepared_recurrent_kernel)
            if mask:
                keep = tf.expand_dims(mask[0][time], -1)
                new_states = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
            state_arrays = [array.write(time + 1, state) for array, state in zip(state_arrays, new_states)]
            saved_shapes[:] = [value.shape for value in saved]
            saved_arrays = [write(array, time, value) for array, value in zip(saved_arrays, saved)]
            return (time + 1, state_arrays, saved_arrays, *new_states)

        _, state_arrays, saved_arrays, *_ = tf.while_loop(
            lambda time, *_: time < steps,
            body,
            (tf.constant(0), state_arrays, saved_arrays, *initial_states),
            maximum_iterations=steps,
        )
        state_sequences = [array.stack() for array in state_arrays]
        for sequence, state in zip(state_sequences, initial_states):
            sequence.set_shape([None, *state.shape])
        return state_sequences, [stacked(array) for array in saved_arrays]

    # Saved gates and dz are bare TensorLists, never stacked whole: the backward loop reads the gates by
    # step, and the weight products read spans of steps. Under XLA they are TensorArrays, stacked, as a
    # TensorList cannot leave a compiled cluster and XLA stacks in place.
    def new_list(size, dtype):
        if jit_compile:
            return tf.TensorArray(dtype, size=size)
        return tf.raw_ops.TensorListReserve(element_shape=-1, num_elements=size, element_dtype=dtype)

    def stacked(array):
        return array.stack() if jit_compile else array

    def write(array, time, value):
        if jit_compile:
            return array.write(time, value)
        return tf.raw_ops.TensorListSetItem(input_handle=array, index=time, item=value)

    def read(saved, time, dtype, shape):
        if jit_compile:
            return saved[time]
        value = tf.raw_ops.TensorListGetItem(input_handle=saved, index=time, element_shape=-1, element_dtype=dtype)
        value.set_shape(shape)
        return value

    def span(sequence, start, end, dtype, element_shape):
        """Steps `start` to `end` of a list's sequence, stacked; `element_shape` is a full shape tensor."""
        if jit_compile:
            return sequence[start:end]
        return tf.raw_ops.TensorListGather(
            input_handle=sequence, indices=tf.range(start, end), element_shape=element_shape, element_dtype=dtype
        )

    def rows(sequence):
        """`(steps, batch, features)` as `(steps * batch, features)`."""
        return tf.reshape(sequence, [-1, tf.shape(sequence)[-1]])

    def backward_loop(
        inputs, kernel, recurrent_kernel, mask, state_sequences, saved_sequences, output_gradients, final_gradients
    ):
        """`(input_gradients, [kernel, recurrent_kernel, bias gradients], initial_state_gradients)`."""
        dtype = inputs.dtype
        steps = tf.shape(inputs)[1]
        if output_gradients is not None:
            output_gradients = tf.transpose(output_gradients, [1, 0, 2])
            if mask and zero_output_for_mask:
                keep_all = tf.expand_dims(mask[0], -1)
                output_gradients = tf.where(keep_all, output_gradients, tf.zeros_like(output_gradients))
        transposed_recurrent_kernel = tf.transpose(recurrent_kernel)
        time_major = tf.transpose(inputs, [1, 0, 2])
        batch = tf.shape(inputs)[0]

        # Indexing the stacked sequences along time shares their memory (no copy per step or in whole).
        def body(time, start, z_gradient_array, *state_gradients):
            state_gradients = list(state_gradients)
            if output_gradients is not None:
                state_gradients[0] = state_gradients[0] + output_gradients[time]
            z_gradient, previous_gradients = cell.backward(
                [read(saved, time, dtype, shape) for saved, shape in zip(saved_sequences, saved_shapes)],
                [sequence[time] for sequence in state_sequences],
                [sequence[time + 1] for sequence in state_sequences],
                state_gradients,
                transposed_recurrent_kernel,
            )
            if mask:
                keep = tf.expand_dims(mask[0][time], -1)
                z_gradient = tf.where(keep, z_gradient, tf.zeros_like(z_gradient))
                previous_gradients = [
                    tf.where(keep, previous, carried) for previous, carried in zip(previous_gradients, state_gradients)
                ]
            return (time - 1, start, write(z_gradient_array, time - start, z_gradient), *previous_gradients)

        # The loop runs over WEIGHT_GRADIENT_CHUNKS spans of time, last span first, and after each span the
        # weight products over its steps are one large product each: only one span's dz is kept at once.
        # Each step needs the one before, so running iterations ahead (parallel_iterations) only kept
        # more steps' temporaries alive: an LSTM step's peak fell from 12.5 to 10.6 (time x batch x
        # units) floats without it at B32 T48 D16 H64.
        bounds = [steps * chunk // WEIGHT_GRADIENT_CHUNKS for chunk in range(WEIGHT_GRADIENT_CHUNKS + 1)]
        weight_gradients = [tf.zeros_like(kernel), tf.zeros_like(recurrent_kernel), tf.zeros_like(kernel[0])]
        input_gradients = []
        state_gradients = final_gradients
        for start, end in reversed(list(zip(bounds[:-1], bounds[1:]))):
            _, _, z_gradient_array, *state_gradients = tf.while_loop(
                lambda time, start, *_: time >= start,
                body,
                (end - 1, start, new_list(end - start, dtype), *state_gradients),
                maximum_iterations=end - start,
                parallel_iterations=1,
            )
            z_gradients = rows(span(stacked(z_gradient_array), 0, end - start, dtype, [batch, kernel.shape[-1]]))
            saved = [
                rows(span(saved, start, end, dtype, [batch, shape[-1]]))  # for the GRU
                for saved, shape in zip(saved_sequences, saved_shapes)
            ]
            previous_states = [rows(sequence[start:end]) for sequence in state_sequences]
            weight_gradients[0] += tf.matmul(rows(time_major[start:end]), z_gradients, transpose_a=True)
            weight_gradients[1] += cell.recurrent_kernel_gradient(previous_states, saved, z_gradients)
            weight_gradients[2] += tf.reduce_sum(z_gradients, axis=0)
            input_gradients_span = tf.matmul(z_gradients, kernel, transpose_b=True)
            input_gradients.insert(0, tf.reshape(input_gradients_span, [end - start, -1, inputs.shape[-1]]))
        input_gradients = tf.concat(input_gradients, axis=0)
        return tf.transpose(input_gradients, [1, 0, 2]), weight_gradients, state_gradients

    if jit_compile:
        forward_loop = tf.function(forward_loop, jit_compile=True)
        backward_loop = tf.function(backward_loop, jit_compile=True)
    results = sequence(inputs, *weights, *initial_states, *masks)
    outputs = results[0] if return_sequences else None
    first_state = 1 if return_sequences else 0
    return outputs, list(results[first_state : first_state + state_count])
