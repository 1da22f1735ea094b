"""The one time loop every recurrent layer runs: a step function applied along the time axis."""

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
