"""The translation model: a bidirectional-RNN encoder, Luong attention and an RNN decoder from our layers,
with the string-to-string path that the export serves."""

import keras
import tensorflow as tf
from keras import ops

import layers
from apps import translation_search, translation_subwords, translation_text
from apps.config import layer_sizes, validate_integer
from apps.translation_text import END, PAD_ID, START, START_ID, UNKNOWN_ID
from layers.cell import validate_fraction

TOKENS = ("words", "subwords")


@keras.saving.register_keras_serializable(package="rnn_suite")
def masked_accuracy(targets, logits):
    """Share of non-padding target tokens predicted exactly (teacher-forced)."""
    targets = ops.cast(targets, "int32")
    mask = ops.cast(ops.not_equal(targets, PAD_ID), "float32")
    hits = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), targets), "float32")
    return ops.sum(hits * mask) / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="rnn_suite")
class SequenceCrossentropy(keras.losses.Loss):
    """Cross-entropy of the target tokens from logits, averaged over the non-padding tokens of the batch,
    with optional label smoothing (Szegedy et al., 2016; Vaswani et al., 2017 used 0.1):

        loss<t> = (1 - smoothing) * -log p(y<t>) + smoothing * mean over the V classes of -log p(k)

    that is, the cross-entropy against `(1 - smoothing) * one_hot(y<t>) + smoothing / V`, as Keras'
    `CategoricalCrossentropy(label_smoothing=...)` spreads it. At 0 it is Keras'
    `SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)`.

    Args:
        label_smoothing: the share of each target's probability spread evenly over all classes, in [0, 1).
    """

    def __init__(self, label_smoothing=0.0, name="sequence_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = validate_fraction("label_smoothing", label_smoothing)

    def call(self, targets, logits):
        targets = ops.cast(targets, "int32")
        mask = ops.cast(ops.not_equal(targets, PAD_ID), "float32")
        log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        target_log_probability = ops.take_along_axis(log_probabilities, targets[..., None], axis=-1)[..., 0]
        losses = -(1.0 - self.label_smoothing) * target_log_probability
        if self.label_smoothing:
            losses -= self.label_smoothing * ops.mean(log_probabilities, axis=-1)
        # One number per batch: the mean over its real tokens, so that padding neither adds nor dilutes.
        return ops.sum(losses * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="rnn_suite")
class Translator(keras.Model):
    """Encoder-decoder with optional Luong attention, built from our recurrent layers.

    An encoder reads the whole source sentence with stacked bidirectional RNNs; a decoder RNN writes the
    target one token at a time, fed the previous reference token in training (teacher forcing) and its
    own previous choice when translating. Luong's "general" attention lets every decoder step look back
    at all the encoder's `[a→<t>, a←<t>]`; without it the decoder only gets the encoder's final states.

    Training call: `{"source": int [batch, S], "target_in": int [batch, T]}` -> logits `[batch, T, V]`,
    with `target_in` the reference shifted right behind `[START]`. `translate(text, beam_width)` runs the
    whole string-to-string path inside the graph.

    With `tokens="subwords"` the vocabularies hold subword pieces (`apps/translation_subwords.py`): words
    are cut into pieces by greedy longest match inside the graph, so no input word is unknown, the
    decoder is never allowed `[UNK]`, and its pieces are joined back into words before detokenization.
    `translate()`'s `source_tokens` and `target_tokens` are then pieces ("mar", "##do", "##queo").

    Args:
        source_vocabulary: source words or pieces, most frequent first; ids 0 (padding) and 1 (unknown)
            come before.
        target_vocabulary: target words or pieces after padding and unknown; must start with `[START]`,
            `[END]`.
        target_display: how each target token is shown (a word's most frequent casing); same length.
        embedding_dim: size of the source and target word embeddings.
        units: one size per stacked bidirectional encoder layer (per direction); the decoder, the bridges
            from the encoder's final states and the attention read-out have `units[-1]`.
        cell: "gru", "lstm" or "simple_rnn", our layers, for encoder and decoder.
        attention: Luong "general" attention when True; the encoder's final states only when False.
        dropout: on embeddings and on the decoder's output features, in training.
        max_source_tokens, max_output_tokens, length_penalty: decoding limits and GNMT's length alpha.
        beam_width: the width the export's beam-search signatures use; with `length_penalty`, chosen on
            validation after training by the app, and kept here so that the `.keras` file exports the same.
        tokens: "words" or "subwords", what the vocabularies hold.
        display_words: with subwords, the words shown with capitals wherever they stand ("Dios").
    """

    def __init__(
        self,
        source_vocabulary,
        target_vocabulary,
        target_display,
        embedding_dim=128,
        units=(256,),
        cell="gru",
        attention=True,
        dropout=0.2,
        max_source_tokens=64,
        max_output_tokens=80,
        length_penalty=0.6,
        beam_width=4,
        tokens="words",
        display_words=(),
        **kwargs,
    ):
        super().__init__(**kwargs)
        if list(target_vocabulary[:2]) != [START, END]:
            raise ValueError(f"target_vocabulary must start with {[START, END]}. Received: {list(target_vocabulary[:2])}")
        if len(target_display) != len(target_vocabulary):
            raise ValueError(
                f"target_display must have one entry per target word. Received: {len(target_display)} for "
                f"{len(target_vocabulary)} words"
            )
        if tokens not in TOKENS:
            raise ValueError(f"`tokens` must be one of {TOKENS}. Received: tokens={tokens!r}")
        validate_integer("beam_width", beam_width)
        layer_class = layers.recurrent_layer_class(cell)
        self.source_vocabulary = list(source_vocabulary)
        self.target_vocabulary = list(target_vocabulary)
        self.target_display = list(target_display)
        self.embedding_dim, self.units = embedding_dim, layer_sizes(units)
        self.cell_name, self.use_attention, self.dropout_rate = cell, bool(attention), dropout
        self.max_source_tokens, self.max_output_tokens = max_source_tokens, max_output_tokens
        self.length_penalty, self.beam_width = length_penalty, beam_width
        self.tokens, self.display_words = tokens, list(display_words)
        decoder_units = self.units[-1]

        self.source_lookup = translation_text.word_lookup(self.source_vocabulary, name="source_lookup")
        self.target_lookup = translation_text.word_lookup(self.target_vocabulary, name="target_lookup")
        self.split_source = None  # words
        if tokens == "subwords":
            self.display_lookup = translation_subwords.display_lookup(self.display_words, name="display_lookup")
            self.split_source = translation_subwords.splitter(
                self.source_lookup, translation_subwords.longest_piece(self.source_vocabulary)
            )
        self.source_embedding = keras.layers.Embedding(len(self.source_vocabulary) + 2, embedding_dim, name="source_embedding")
        self.target_embedding = keras.layers.Embedding(len(self.target_vocabulary) + 2, embedding_dim, name="target_embedding")
        last = len(self.units) - 1
        self.encoder_layers = [
            layers.Bidirectional(
                layer_class(size, return_sequences=True, return_state=index == last), name=f"encoder_{index}"
            )
            for index, size in enumerate(self.units)
        ]
        self.state_count = 2 if cell == "lstm" else 1
        # The decoder starts from the encoder's final [a→, a←] (and [c→, c←]), brought to its size.
        self.bridges = [
            keras.layers.Dense(decoder_units, activation="tanh", name=f"bridge_{index}") for index in range(self.state_count)
        ]
        self.decoder = layer_class(decoder_units, return_sequences=True, name="decoder")
        if self.use_attention:
            self.attention_keys = keras.layers.Dense(decoder_units, use_bias=False, name="attention_keys")
        self.readout = keras.layers.Dense(decoder_units, activation="tanh", name="readout")
        self.dropout = keras.layers.Dropout(dropout)
        self.output_layer = keras.layers.Dense(len(self.target_vocabulary) + 2, name="logits")

    # -- the network -----------------------------------------------------------------------------------

    def encode(self, source_ids, training=False):
        """-> (encoder outputs [B, S, 2u], attention keys [B, S, u] or None, source mask [B, S], states)."""
        mask = ops.not_equal(source_ids, PAD_ID)
        features = self.dropout(self.source_embedding(source_ids), training=training)
        for layer in self.encoder_layers[:-1]:
            features = layer(features, mask=mask, training=training)
        outputs, *final = self.encoder_layers[-1](features, mask=mask, training=training)
        # Keras' Bidirectional returns the forward states, then the backward ones.
        forward, backward = final[: self.state_count], final[self.state_count :]
        states = [bridge(ops.concatenate([f, b], axis=-1)) for bridge, f, b in zip(self.bridges, forward, backward)]
        keys = self.attention_keys(outputs) if self.use_attention else None
        return outputs, keys, mask, states

    def read_out(self, decoded, outputs, keys, mask, training=False):
        """Decoder outputs [B, T, u] -> (logits [B, T, V], attention weights [B, T, S] or None).

        Luong's general score `a_dec<t> · W a_enc<s>` (W applied once, as `keys`), softmax over the real
        source positions, then `tanh(W_c [context; a_dec<t>])` feeds the softmax layer.
        """
        if self.use_attention:
            scores = ops.einsum("btu,bsu->bts", decoded, keys)
            scores = ops.where(mask[:, None, :], scores, ops.full_like(scores, -1e9))
            weights = ops.softmax(scores, axis=-1)
            context = ops.einsum("bts,bsd->btd", weights, outputs)
            features = self.readout(ops.concatenate([context, decoded], axis=-1))
        else:
            weights = None
            features = self.readout(decoded)
        return self.output_layer(self.dropout(features, training=training)), weights

    def call(self, inputs, training=False):
        source_ids, target_in = inputs["source"], inputs["target_in"]
        outputs, keys, mask, states = self.encode(source_ids, training=training)
        embedded = self.dropout(self.target_embedding(target_in), training=training)
        # No mask: padding only follows the real words, so it cannot change their outputs, and the loss
        # ignores padded targets itself (a mask on the logits trips Keras' loss with ignore_class).
        decoded = self.decoder(embedded, initial_state=states, training=training)
        return self.read_out(decoded, outputs, keys, mask, training=training)[0]

    def build(self, input_shape=None):
        if self.built:
            return
        dummy = ops.ones((1, 2), dtype="int64")
        self.call({"source": dummy, "target_in": dummy})
        self.built = True

    def decode_step(self, tokens, states, context):
        """One decoder step, the searches' `step`: previous tokens [N] and `context = [outputs, keys, mask]`
        -> (log-probabilities [N, V], attention weights [N, S], states)."""
        outputs, keys, mask = context
        cell = self.decoder.cell
        embedded = self.target_embedding(tokens)
        decoded, states = cell.step(cell.project_inputs(embedded), states)
        logits, weights = self.read_out(decoded[:, None, :], outputs, keys, mask)
        if weights is None:
            weights = ops.zeros((ops.shape(tokens)[0], 1, ops.shape(mask)[1]))
        # Padding and [START] are never outputs; nor is [UNK] with subwords, which spell every word.
        never_ids = [PAD_ID, START_ID] + ([UNKNOWN_ID] if self.tokens == "subwords" else [])
        never = tf.one_hot(never_ids, ops.shape(logits)[-1], on_value=-1e9, off_value=0.0)
        return tf.nn.log_softmax(logits[:, 0] + tf.reduce_sum(never, axis=0)), weights[:, 0], list(states)

    # -- strings in, strings out -----------------------------------------------------------------------

    def search(self, source_ids, max_length, beam_width=1, method="greedy"):
        """Source ids [B, S] -> output ids [B, L] and attention [B, L, S], by greedy or beam search."""
        if method == "greedy":
            outputs, keys, mask, states = self.encode(source_ids)
            return translation_search.greedy_search(self.decode_step, states, [outputs, keys, mask], max_length)
        return translation_search.best_beam(self.beam_candidates(source_ids, max_length, beam_width), self.length_penalty)

    def beam_candidates(self, source_ids, max_length, beam_width):
        """Source ids [B, S] -> every finished beam, before the length penalty chooses (`translation_search`)."""
        outputs, keys, mask, states = self.encode(source_ids)
        return translation_search.beam_candidates(
            self.decode_step, states, [outputs, keys, mask], max_length, beam_width,
            vocabulary_size=len(self.target_vocabulary) + 2, source_length=tf.shape(source_ids)[1],
        )  # fmt: skip

    def translate(self, text, beam_width=1, search=None):
        """Strings [B] -> dict of translation [B], target_tokens [B, L], attention [B, L, S], source_tokens.

        `search` is "greedy" or "beam"; by default greedy for `beam_width` 1, else beam search.
        """
        search = search or ("greedy" if beam_width == 1 else "beam")
        if search not in ("greedy", "beam"):
            raise ValueError(f"`search` must be 'greedy' or 'beam'. Received: search={search!r}")
        source, max_length = self.read_source(text)
        ids, attention = self.search(source[0], max_length, beam_width, search)
        return self.write_output(text, source, ids, attention)

    def translate_with_length_penalties(self, text, beam_width, length_penalties):
        """Strings [B] -> `translate(text, beam_width)`'s translation [B] under each GNMT alpha of
        `length_penalties`, a list in their order, from one beam search: alpha only ranks its finished beams."""
        source, max_length = self.read_source(text)
        beams = self.beam_candidates(source[0], max_length, beam_width)
        return [
            self.write_output(text, source, *translation_search.best_beam(beams, alpha))["translation"]
            for alpha in length_penalties
        ]

    def read_source(self, text):
        """Strings [B] -> (source ids, spellings, word counts) of `translation_text.tokenize_source`, and the
        most output tokens a search may write for them."""
        source_ids, spellings, word_counts = translation_text.tokenize_source(
            text, self.source_lookup, self.max_source_tokens, self.split_source
        )
        max_length = tf.minimum(
            tf.cast(self.max_output_tokens, tf.int32),
            tf.cast(tf.math.ceil(1.5 * tf.cast(tf.shape(source_ids)[1], tf.float32)), tf.int32) + 10,
        )
        return (source_ids, spellings, word_counts), max_length

    def write_output(self, text, source, ids, attention):
        """A search's output ids [B, L] and attention [B, L, S] -> `translate`'s dict, for the `source` that
        `read_source` read from `text`."""
        source_ids, spellings, word_counts = source
        if self.tokens == "subwords":
            keep = translation_text.real_tokens(ids)
            tokens = tf.gather(tf.constant(["", translation_text.UNKNOWN] + self.target_vocabulary), ids)
            words = translation_subwords.output_words(
                ids, keep, self.target_vocabulary, self.display_lookup, self.display_words, text
            )
        else:
            tokens, keep = translation_text.target_words(
                ids, attention, source_ids, spellings, self.target_vocabulary, self.target_display,
                copy_names=self.use_attention,
            )  # fmt: skip
            words = tf.where(keep, tokens, "")
        translation = translation_text.detokenize(words)
        translation = tf.where(word_counts > 0, translation, "")
        # For drawing, an unknown word left out of the translation still shows, as [UNK].
        tokens = tf.where(keep, tf.where(tf.equal(tokens, ""), translation_text.UNKNOWN, tokens), "")
        attention = attention * tf.cast(keep, attention.dtype)[:, :, None]
        return {"translation": translation, "attention": attention, "target_tokens": tokens, "source_tokens": spellings}

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocabulary": self.source_vocabulary,
            "target_vocabulary": self.target_vocabulary,
            "target_display": self.target_display,
            "embedding_dim": self.embedding_dim,
            "units": list(self.units),
            "cell": self.cell_name,
            "attention": self.use_attention,
            "dropout": self.dropout_rate,
            "max_source_tokens": self.max_source_tokens,
            "max_output_tokens": self.max_output_tokens,
            "length_penalty": self.length_penalty,
            "beam_width": self.beam_width,
            "tokens": self.tokens,
            "display_words": self.display_words,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        # Models saved before `units` listed the encoder's layers held one size and a depth.
        if "encoder_depth" in config:
            config["units"] = [config["units"]] * config.pop("encoder_depth")
        config["units"] = tuple(config["units"])
        return super().from_config(config, custom_objects)
