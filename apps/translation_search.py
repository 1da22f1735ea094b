"""Greedy and beam search over any one-step decoder, as graph code (`tf.while_loop`s), so both run inside
the exported model.

Both searches drive a `step(tokens, states, context) -> (log_probabilities, attention, states)` function:
`tokens` [N] are the previous outputs (`[START]` first), `log_probabilities` [N, V] score the next token,
`attention` [N, S] is where the step looked in the source, and `context` is a list of per-row tensors
[N, ...] that stay the same at every step (the encoder's outputs, say; None entries are allowed). The
searches know nothing else about the model.
"""

import tensorflow as tf

from apps.translation_text import END_ID, PAD_ID, START_ID


def greedy_search(step, states, context, max_length):
    """The most probable token at each step, until every row has written `[END]` or `max_length` tokens.

    Returns ids [N, L] (padding after `[END]`) and the attention of each step [N, L, S].
    """
    batch = tf.shape(states[0])[0]
    tokens = tf.fill([batch], tf.constant(START_ID, tf.int64))
    finished = tf.zeros([batch], tf.bool)
    chosen = tf.TensorArray(tf.int64, size=0, dynamic_size=True, element_shape=[None])
    looked = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None])

    def body(position, tokens, finished, states, chosen, looked):
        log_probabilities, weights, states = step(tokens, states, context)
        tokens = tf.where(finished, tf.constant(PAD_ID, tf.int64), tf.argmax(log_probabilities, axis=-1))
        finished = tf.logical_or(finished, tf.equal(tokens, END_ID))
        return position + 1, tokens, finished, states, chosen.write(position, tokens), looked.write(position, weights)

    def keep_going(position, tokens, finished, states, chosen, looked):
        return tf.logical_and(position < max_length, tf.logical_not(tf.reduce_all(finished)))

    _, _, _, _, chosen, looked = tf.while_loop(
        keep_going, body, (tf.constant(0), tokens, finished, states, chosen, looked)
    )
    return tf.transpose(chosen.stack(), [1, 0]), tf.transpose(looked.stack(), [1, 0, 2])


def beam_search(step, states, context, max_length, beam_width, length_penalty, vocabulary_size, source_length):
    """Keeps the `beam_width` best partial outputs of each row; returns the best finished one, ranked by
    log-probability over GNMT's length penalty `((5 + length) / 6) ** length_penalty`. Width 1 is
    exactly greedy search.

    `vocabulary_size` is V and `source_length` is S of the `step` function's outputs. Returns ids [N, L]
    and attention [N, L, S], as `greedy_search` does.
    """
    beams = beam_candidates(step, states, context, max_length, beam_width, vocabulary_size, source_length)
    return best_beam(beams, length_penalty)


def beam_candidates(step, states, context, max_length, beam_width, vocabulary_size, source_length):
    """The search of `beam_search` without its final choice: the length penalty only ranks the finished
    beams, so one search serves every penalty (`best_beam`). Returns `{"sequences": [N, beam, L], "attention":
    [N, beam, L, S], "scores": [N, beam] log-probabilities, "lengths": [N, beam]}`."""
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"`beam_width` must be a positive Python integer. Received: beam_width={beam_width!r}")
    beam = beam_width
    batch = tf.shape(states[0])[0]

    def tile(tensor):  # [B, ...] -> [B * beam, ...], each row repeated beam times
        return tf.repeat(tensor, beam, axis=0)

    context = [None if tensor is None else tile(tensor) for tensor in context]
    states = [tile(state) for state in states]
    # Only the first beam is alive at the start, so the first step picks `beam` different words.
    scores = tf.tile(tf.where(tf.range(beam) == 0, 0.0, -1e9)[None, :], [batch, 1])
    tokens = tf.fill([batch * beam], tf.constant(START_ID, tf.int64))
    finished = tf.zeros([batch, beam], tf.bool)
    lengths = tf.zeros([batch, beam], tf.float32)
    sequences = tf.zeros([batch, beam, max_length], tf.int64)
    attention = tf.zeros([batch, beam, max_length, source_length], tf.float32)
    only_padding = tf.where(tf.range(vocabulary_size) == PAD_ID, 0.0, -1e9)

    def body(position, tokens, scores, finished, lengths, states, sequences, attention):
        log_probabilities, weights, states = step(tokens, states, context)
        log_probabilities = tf.reshape(log_probabilities, [batch, beam, vocabulary_size])
        # A finished beam can only add padding, at no cost, so its score stays as it was.
        log_probabilities = tf.where(finished[:, :, None], only_padding, log_probabilities)
        candidates = tf.reshape(scores[:, :, None] + log_probabilities, [batch, beam * vocabulary_size])
        scores, best = tf.math.top_k(candidates, k=beam)
        parents, words = best // vocabulary_size, tf.cast(best % vocabulary_size, tf.int64)

        def follow(tensor):  # reorder per-beam tensors [B, beam, ...] after their parents
            return tf.gather(tensor, parents, batch_dims=1)

        states = [
            tf.reshape(follow(tf.reshape(state, [batch, beam, state.shape[-1]])), [batch * beam, state.shape[-1]])
            for state in states
        ]
        was_finished = follow(finished)
        at_position = tf.one_hot(position, max_length, dtype=tf.int64)
        sequences = follow(sequences) + words[:, :, None] * at_position
        weights = follow(tf.reshape(weights, [batch, beam, source_length]))
        attention = follow(attention) + weights[:, :, None, :] * tf.cast(at_position, tf.float32)[:, None]
        lengths = follow(lengths) + tf.cast(tf.logical_not(was_finished), tf.float32)
        finished = tf.logical_or(was_finished, tf.equal(words, END_ID))
        return position + 1, tf.reshape(words, [-1]), scores, finished, lengths, states, sequences, attention

    def keep_going(position, tokens, scores, finished, *_):
        return tf.logical_and(position < max_length, tf.logical_not(tf.reduce_all(finished)))

    length, _, scores, _, lengths, _, sequences, attention = tf.while_loop(
        keep_going, body, (tf.constant(0), tokens, scores, finished, lengths, states, sequences, attention)
    )
    return {"sequences": sequences[:, :, :length], "attention": attention[:, :, :length], "scores": scores,
            "lengths": lengths}  # fmt: skip


def best_beam(beams, length_penalty):
    """The best of `beam_candidates`' beams in each row, by log-probability over GNMT's length penalty
    `((5 + length) / 6) ** length_penalty`: ids [N, L] and attention [N, L, S]."""
    ranked = beams["scores"] / tf.pow((5.0 + beams["lengths"]) / 6.0, length_penalty)
    best = tf.argmax(ranked, axis=1, output_type=tf.int32)
    return tf.gather(beams["sequences"], best, batch_dims=1), tf.gather(beams["attention"], best, batch_dims=1)
