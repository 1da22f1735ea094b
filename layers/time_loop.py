"""The one time loop every recurrent layer runs: a step function applied along the time axis."""

import keras
from keras import ops


def run_time_loop(
    step, inputs, initial_states, mask=None, return_sequences=False, zero_output_for_mask=False, bptt=None
):
    """Runs `step(inputs_t, states) -> (output_t, new_states)` over time.

    Args:
        step: one time step; its output must be its first new state (true of every cell here).
        inputs: `(batch, time, features)`, already in processing order (reversed for `go_backwards`).
        initial_states: list of `(batch, units)` tensors.
        mask: optional boolean `(batch, time)`. Where it is False the states are carried over unchanged,
            so a padded sequence ends in the same state as the unpadded one.
        return_sequences: also return every step's output, `(batch, time, units)`.
        zero_output_for_mask: masked steps output zeros instead of the carried state.
        bptt: optional `(recurrent_kernel, recurrent_kernel_gradient)`. On TensorFlow the loop then gets a
            hand-written backpropagation through time (`_tensorflow_bptt_loop`): `inputs` must be the
            projected inputs, which `recurrent_kernel` products are added to, and
            `recurrent_kernel_gradient(previous_states, inputs, input_gradients)` must give the kernel's
            gradient from all steps at once (rows = time x batch).

    Returns:
        `(outputs or None, final_states)`.
    """
    if keras.backend.backend() == "tensorflow":
        if bptt is not None:
            return _tensorflow_bptt_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask, *bptt)
        return _tensorflow_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask)
    return _scan_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask)


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


def _tensorflow_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask):
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


def _tensorflow_bptt_loop(
    step, inputs, initial_states, mask, return_sequences, zero_output_for_mask, recurrent_kernel, kernel_gradient
):
    """The TensorFlow loop with its own backward pass.

    Automatic differentiation of a while loop adds `a<t-1>^T dz<t>` to the recurrent kernel's gradient at
    every step: a small matrix product with batch-sized inner dimension, T times. Here the backward loop
    only carries the state gradients back (re-running each step under a tape to get its local
    derivatives), saves the gradient of each step's projected inputs, and the kernel's gradient is then
    one large product over all time steps at once. The forward pass saves every step's states for it.
    """
    import tensorflow as tf

    masked_step = _masked_step(step, zero_output_for_mask)
    state_count = len(initial_states)
    time_major = tf.transpose(inputs, [1, 0, 2])
    mask_time_major = None if mask is None else tf.transpose(mask)

    def read_arrays(steps, time_major, mask_time_major):
        inputs_array = tf.TensorArray(inputs.dtype, size=steps, element_shape=time_major.shape[1:])
        mask_array = None
        if mask_time_major is not None:
            mask_array = tf.TensorArray(tf.bool, size=steps).unstack(mask_time_major)
        return inputs_array.unstack(time_major), mask_array

    @tf.custom_gradient
    def loop(time_major, *initial_states):
        steps = tf.shape(time_major)[0]
        inputs_array, mask_array = read_arrays(steps, time_major, mask_time_major)
        state_arrays = [
            tf.TensorArray(state.dtype, size=steps, element_shape=state.shape) for state in initial_states
        ]
        outputs_array = tf.TensorArray(inputs.dtype, size=steps if return_sequences else 0)

        def body(time, outputs_array, state_arrays, *states):
            mask_t = None if mask_array is None else mask_array.read(time)
            output, new_states = masked_step(inputs_array.read(time), mask_t, list(states))
            if return_sequences:
                outputs_array = outputs_array.write(time, output)
            state_arrays = [array.write(time, state) for array, state in zip(state_arrays, new_states)]
            return (time + 1, outputs_array, state_arrays, *new_states)

        loop_vars = tf.while_loop(
            lambda time, *_: time < steps,
            body,
            (tf.constant(0), outputs_array, state_arrays, *initial_states),
            maximum_iterations=steps,
            parallel_iterations=32,
        )
        final_states = list(loop_vars[3:])
        state_sequences = [array.stack() for array in loop_vars[2]]
        results = ([loop_vars[1].stack()] if return_sequences else []) + final_states

        def gradient(*upstream, variables=None):
            upstream = [
                tf.zeros_like(result) if grad is None else grad for result, grad in zip(results, upstream)
            ]
            output_gradients = upstream[0] if return_sequences else None
            state_gradients = upstream[-state_count:]
            previous_sequences = [
                tf.concat([tf.expand_dims(initial, 0), sequence[:-1]], axis=0)
                for initial, sequence in zip(initial_states, state_sequences)
            ]
            inputs_array, mask_array = read_arrays(steps, time_major, mask_time_major)
            previous_arrays = [
                tf.TensorArray(sequence.dtype, size=steps, element_shape=sequence.shape[1:]).unstack(sequence)
                for sequence in previous_sequences
            ]
            output_array = None
            if return_sequences:
                output_array = tf.TensorArray(inputs.dtype, size=steps).unstack(output_gradients)
            input_gradient_array = tf.TensorArray(inputs.dtype, size=steps, element_shape=time_major.shape[1:])

            def backward_body(time, input_gradient_array, *state_gradients):
                inputs_t = inputs_array.read(time)
                previous = [array.read(time) for array in previous_arrays]
                mask_t = None if mask_array is None else mask_array.read(time)
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch([inputs_t] + previous)
                    output, new_states = masked_step(inputs_t, mask_t, previous)
                targets, target_gradients = list(new_states), list(state_gradients)
                if return_sequences:
                    targets.append(output)
                    target_gradients.append(output_array.read(time))
                gradients = tape.gradient(
                    targets,
                    [inputs_t] + previous,
                    output_gradients=target_gradients,
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )
                input_gradient_array = input_gradient_array.write(time, gradients[0])
                return (time - 1, input_gradient_array, *gradients[1:])

            backward = tf.while_loop(
                lambda time, *_: time >= 0,
                backward_body,
                (steps - 1, input_gradient_array, *state_gradients),
                maximum_iterations=steps,
                parallel_iterations=32,
            )
            input_gradients = backward[1].stack()
            initial_state_gradients = list(backward[2:])
            rows = lambda sequence: tf.reshape(sequence, [-1, sequence.shape[-1]])  # noqa: E731
            kernel_gradient_value = kernel_gradient(
                [rows(s) for s in previous_sequences], rows(time_major), rows(input_gradients)
            )
            variable_gradients = [
                kernel_gradient_value if variable is recurrent_kernel else tf.zeros_like(variable)
                for variable in variables or []
            ]
            return [input_gradients, *initial_state_gradients], variable_gradients

        return results, gradient

    results = loop(time_major, *initial_states)
    final_states = list(results[-state_count:])
    for final, initial in zip(final_states, initial_states):
        final.set_shape(initial.shape)
    outputs = None
    if return_sequences:
        outputs = tf.transpose(results[0], [1, 0, 2])
        outputs.set_shape([inputs.shape[0], inputs.shape[1], final_states[0].shape[-1]])
    return outputs, final_states


def _scan_loop(step, inputs, initial_states, mask, return_sequences, zero_output_for_mask):
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
