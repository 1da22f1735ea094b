"""English -> Spanish translation (many-to-many, input and output of different lengths): strings in, strings out.

    python -m apps.translation train [--quick] [--no-attention] [--beam-width 4]
    python -m apps.translation predict "In the beginning God created the heavens and the earth."

An encoder reads the whole English sentence with a bidirectional (optionally deep) RNN from our layers; a
decoder RNN from our layers writes Spanish one token at a time, fed the previous reference token during
training (teacher forcing) and its own previous choice when translating. Luong's "general" attention
(Luong et al., 2015) lets every decoder step look back at all the encoder's `[a→<t>, a←<t>]`; with
`--no-attention` the decoder only gets the encoder's final states, the plain encoder-decoder of the notes.

Everything a client needs lives in the SavedModel: word splitting and vocabulary lookup for both languages,
greedy and beam search in `tf.while_loop`s, and detokenization back to readable text.

Signatures:
    serving_default           {"text": string [batch]} -> {"translation": string [batch]}   (beam search)
    translate_greedy          same contract, greedy decoding
    translate_with_attention  {"text"} -> {"translation", "attention": float32 [batch, target, source],
                              "source_tokens": string [batch, source], "target_tokens": string [batch, target]}

Inputs are never refused: an empty or blank text translates to "", words the model never saw map to its
unknown token (which the output replaces by the source word it attends to most, so names pass through), and
a text longer than `max_source_tokens` words is translated from its first `max_source_tokens` tokens.
"""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import layers
from apps import pipeline
from apps.config import Config

PAD, UNKNOWN, START, END = "", "[UNK]", "[START]", "[END]"
PAD_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3
# Tokens after which a Spanish word starts a sentence and is capitalized in the output.
SENTENCE_ENDS = (".", "?", "!", "¿", "¡")
CELLS = {"gru": layers.GRU, "lstm": layers.LSTM, "simple_rnn": layers.SimpleRNN}


@dataclasses.dataclass
class TranslationConfig(Config):
    dataset: str = "bundled"  # or "spa_eng", the TensorFlow NMT tutorial's sentence pairs (online)
    source_vocabulary: int = 8000
    target_vocabulary: int = 8000
    embedding_dim: int = 128
    units: int = 256
    encoder_depth: int = 1  # bidirectional layers in the encoder
    cell: str = "gru"  # gru, lstm or simple_rnn, for both encoder and decoder
    attention: bool = True
    dropout: float = 0.2
    max_source_tokens: int = 64  # words and punctuation marks read from one input text
    max_output_tokens: int = 80
    beam_width: int = 4
    length_penalty: float = 0.6  # GNMT's alpha: beams are ranked by score / ((5 + length) / 6) ** alpha
    max_words: int = 40  # data: pairs with a longer side are dropped (see data.loaders.load_translation)
    epochs: int = 12
    # Fitting stops before an epoch that would end past 14 minutes; data, export, evaluation and the
    # baselines take the rest of the 20-minute budget of the issue.
    time_budget_minutes: float = 14.0
    patience: int = 2
    learning_rate: float = 2e-3
    batch_size: int = 64
    train_limit: int = 0  # use only this many training pairs (0 = all), for --quick
    evaluation_limit: int = 0  # translate only this many test pairs (0 = all), for --quick

    QUICK = dict(
        epochs=1, source_vocabulary=500, target_vocabulary=500, embedding_dim=16, units=16,
        train_limit=600, evaluation_limit=40, max_words=20, beam_width=2, max_output_tokens=30, time_budget_minutes=0.0,
    )

    def __post_init__(self):
        super().__post_init__()
        if self.cell not in CELLS:
            raise ValueError(f"`cell` must be one of {sorted(CELLS)}. Received: cell={self.cell!r}")
        for name in ("beam_width", "max_source_tokens", "max_output_tokens", "units", "encoder_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


# ---------------------------------------------------------------------------------------------------------
# Words: the same graph ops split text for the vocabulary, the training data and the exported model
# ---------------------------------------------------------------------------------------------------------


def split_words(text, lowercase=True):
    """`string [batch]` -> ragged `string [batch, (words)]`: words, numbers and each punctuation mark.

    `\\pL` and `\\pN` are Unicode classes, so "Jehová" and "¿Quién" split as words should.
    """
    text = tf.convert_to_tensor(text, dtype=tf.string)
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"([^\pL\pN\s'’])", r" \1 ")
    return tf.strings.split(tf.strings.strip(text))


def word_lookup(vocabulary, name=None):
    """Words -> ids: 0 is padding, 1 the unknown word, then `vocabulary` in order (so `[START]` is 2 and
    `[END]` 3 when the vocabulary starts with them). The training data and the model both use this."""
    return keras.layers.StringLookup(vocabulary=vocabulary, mask_token=PAD, oov_token=UNKNOWN, name=name)


def build_vocabulary(texts, size, reserved=()):
    """The `size` most frequent lowercased tokens (ties broken alphabetically), after `reserved`, and for
    each the spelling most often seen in `texts` ("Dios", "Jehová"), which the output shows."""
    tokens = split_words(tf.constant(list(texts)), lowercase=False).flat_values.numpy()
    counts, spellings = {}, {}
    for token in tokens:
        token = token.decode("utf-8")
        lower = token.lower()
        counts[lower] = counts.get(lower, 0) + 1
        spellings.setdefault(lower, {})
        spellings[lower][token] = spellings[lower].get(token, 0) + 1
    words = sorted(counts, key=lambda word: (-counts[word], word))[: max(size - 2 - len(reserved), 1)]
    display = [max(sorted(spellings[word]), key=spellings[word].get) for word in words]
    return list(reserved) + words, list(reserved) + display


# ---------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="rnn_suite")
def masked_accuracy(targets, logits):
    """Share of non-padding target tokens predicted exactly (teacher-forced)."""
    targets = ops.cast(targets, "int32")
    mask = ops.cast(ops.not_equal(targets, PAD_ID), "float32")
    hits = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), targets), "float32")
    return ops.sum(hits * mask) / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="rnn_suite")
class Translator(keras.Model):
    """Encoder-decoder with optional Luong attention, built from our recurrent layers.

    Training call: `{"source": int [batch, S], "target_in": int [batch, T]}` -> logits `[batch, T, V]`,
    with `target_in` the reference shifted right behind `[START]`. `translate(text, beam_width)` runs the
    whole string-to-string path inside the graph.

    Args:
        source_vocabulary: source words, most frequent first; ids 0 (padding) and 1 (unknown) come before.
        target_vocabulary: target words after padding and unknown; must start with `[START]`, `[END]`.
        target_display: how each target word is shown (its most frequent casing); same length.
        embedding_dim, units: sizes of the embeddings and of each recurrent layer (per direction).
        encoder_depth: number of stacked bidirectional encoder layers.
        cell: "gru", "lstm" or "simple_rnn", our layers.
        attention: Luong "general" attention when True; the encoder's final states only when False.
        dropout: on embeddings and on the decoder's output features, in training.
        max_source_tokens, max_output_tokens, length_penalty: decoding limits and GNMT's length alpha.
    """

    def __init__(
        self,
        source_vocabulary,
        target_vocabulary,
        target_display,
        embedding_dim=128,
        units=256,
        encoder_depth=1,
        cell="gru",
        attention=True,
        dropout=0.2,
        max_source_tokens=64,
        max_output_tokens=80,
        length_penalty=0.6,
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
        self.source_vocabulary = list(source_vocabulary)
        self.target_vocabulary = list(target_vocabulary)
        self.target_display = list(target_display)
        self.embedding_dim, self.units, self.encoder_depth = embedding_dim, units, encoder_depth
        self.cell_name, self.use_attention, self.dropout_rate = cell, bool(attention), dropout
        self.max_source_tokens, self.max_output_tokens = max_source_tokens, max_output_tokens
        self.length_penalty = length_penalty

        self.source_lookup = word_lookup(self.source_vocabulary, name="source_lookup")
        self.target_lookup = word_lookup(self.target_vocabulary, name="target_lookup")
        self.source_embedding = keras.layers.Embedding(len(self.source_vocabulary) + 2, embedding_dim, name="source_embedding")
        self.target_embedding = keras.layers.Embedding(len(self.target_vocabulary) + 2, embedding_dim, name="target_embedding")
        layer = CELLS[cell]
        self.encoder_layers = [
            layers.Bidirectional(
                layer(units, return_sequences=True, return_state=index == encoder_depth - 1),
                name=f"encoder_{index}",
            )
            for index in range(encoder_depth)
        ]
        self.state_count = 2 if cell == "lstm" else 1
        # The decoder starts from the encoder's final [a→, a←] (and [c→, c←]), brought to its size.
        self.bridges = [keras.layers.Dense(units, activation="tanh", name=f"bridge_{index}") for index in range(self.state_count)]
        self.decoder = layer(units, return_sequences=True, name="decoder")
        if self.use_attention:
            self.attention_keys = keras.layers.Dense(units, use_bias=False, name="attention_keys")
        self.readout = keras.layers.Dense(units, activation="tanh", name="readout")
        self.dropout = keras.layers.Dropout(dropout)
        self.output_layer = keras.layers.Dense(len(self.target_vocabulary) + 2, name="logits")

    # -- the shared pieces -----------------------------------------------------------------------------

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

    def decode_step(self, tokens, states, outputs, keys, mask):
        """One decoder step from the previous tokens [N] -> (log-probabilities [N, V], weights [N, S], states)."""
        cell = self.decoder.cell
        embedded = self.target_embedding(tokens)
        decoded, states = cell.step(cell.project_inputs(embedded), states)
        logits, weights = self.read_out(decoded[:, None, :], outputs, keys, mask)
        if weights is None:
            weights = ops.zeros((ops.shape(tokens)[0], 1, ops.shape(mask)[1]))
        # Padding and [START] are never outputs; they get no probability.
        never = tf.one_hot([PAD_ID, START_ID], ops.shape(logits)[-1], on_value=-1e9, off_value=0.0)
        return tf.nn.log_softmax(logits[:, 0] + tf.reduce_sum(never, axis=0)), weights[:, 0], list(states)

    # -- strings in, strings out -----------------------------------------------------------------------

    def tokenize_source(self, text):
        """-> (ids [B, S] with [END] after the words, spellings [B, S], word counts [B])."""
        words = split_words(text)[:, : self.max_source_tokens - 1]
        spellings = split_words(text, lowercase=False)[:, : self.max_source_tokens - 1]
        ids = self.source_lookup(words)
        ids = tf.concat([ids, tf.fill([ids.nrows(), 1], tf.constant(END_ID, ids.dtype))], axis=1)
        # The spellings get an empty column where the ids have [END], so both have the same width.
        spellings = tf.concat([spellings.to_tensor(""), tf.fill([ids.nrows(), 1], "")], axis=1)
        return ids.to_tensor(PAD_ID), spellings, words.row_lengths()

    def translate(self, text, beam_width=1, search=None):
        """Strings [B] -> dict of translation [B], target_tokens [B, L], attention [B, L, S], source_tokens.

        `search` is "greedy" or "beam"; by default greedy for `beam_width` 1, else beam search.
        """
        search = search or ("greedy" if beam_width == 1 else "beam")
        if search not in ("greedy", "beam"):
            raise ValueError(f"`search` must be 'greedy' or 'beam'. Received: search={search!r}")
        source_ids, spellings, word_counts = self.tokenize_source(text)
        max_length = tf.minimum(
            tf.cast(self.max_output_tokens, tf.int32),
            tf.cast(tf.math.ceil(1.5 * tf.cast(tf.shape(source_ids)[1], tf.float32)), tf.int32) + 10,
        )
        if search == "greedy":
            ids, attention = self.greedy_search(source_ids, max_length)
        else:
            ids, attention = self.beam_search(source_ids, max_length, beam_width)
        tokens, keep = self.target_words(ids, attention, spellings)
        translation = detokenize(tf.where(keep, tokens, ""))
        translation = tf.where(word_counts > 0, translation, "")
        # For drawing, an unknown word left out of the translation still shows, as [UNK].
        tokens = tf.where(keep, tf.where(tf.equal(tokens, ""), UNKNOWN, tokens), "")
        attention = attention * tf.cast(keep, attention.dtype)[:, :, None]
        return {"translation": translation, "attention": attention, "target_tokens": tokens, "source_tokens": spellings}

    def target_words(self, ids, attention, spellings):
        """Ids [B, L] -> shown words [B, L] and which are real (before [END]).

        An unknown output token becomes the source word it attends to most when that word is capitalized,
        so names pass through (Luong et al.'s unknown-word replacement, kept to names: a copied English
        verb reads worse than a missing word); otherwise it is left out. A word after a sentence end gets
        a capital letter.
        """
        display = tf.gather(tf.constant([PAD, UNKNOWN] + self.target_display), ids)
        copied = tf.zeros_like(display)
        if self.use_attention:
            copied = tf.gather(spellings, tf.argmax(attention, axis=-1, output_type=tf.int32), batch_dims=1)
            copied = tf.where(tf.strings.regex_full_match(copied, r"\p{Lu}.*"), copied, "")
        display = tf.where(tf.equal(ids, UNKNOWN_ID), copied, display)
        keep = tf.logical_and(
            tf.equal(tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1), 0), tf.not_equal(ids, PAD_ID)
        )
        ends = tf.constant([self.target_vocabulary.index(mark) + 2 for mark in SENTENCE_ENDS if mark in self.target_vocabulary], tf.int64)
        previous = tf.concat([tf.fill([tf.shape(ids)[0], 1], tf.constant(START_ID, ids.dtype)), ids[:, :-1]], axis=1)
        starts = tf.logical_or(
            tf.equal(previous, START_ID), tf.reduce_any(tf.equal(previous[:, :, None], tf.cast(ends, ids.dtype)), axis=-1)
        )
        return tf.where(starts, capitalize(display), display), keep

    def greedy_search(self, source_ids, max_length):
        outputs, keys, mask, states = self.encode(source_ids)
        batch = tf.shape(source_ids)[0]
        tokens = tf.fill([batch], tf.constant(START_ID, tf.int64))
        finished = tf.zeros([batch], tf.bool)
        chosen = tf.TensorArray(tf.int64, size=0, dynamic_size=True, element_shape=[None])
        looked = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None])

        def body(step, tokens, finished, states, chosen, looked):
            log_probabilities, weights, states = self.decode_step(tokens, states, outputs, keys, mask)
            tokens = tf.where(finished, tf.constant(PAD_ID, tf.int64), tf.argmax(log_probabilities, axis=-1))
            finished = tf.logical_or(finished, tf.equal(tokens, END_ID))
            return step + 1, tokens, finished, states, chosen.write(step, tokens), looked.write(step, weights)

        def keep_going(step, tokens, finished, states, chosen, looked):
            return tf.logical_and(step < max_length, tf.logical_not(tf.reduce_all(finished)))

        _, _, _, _, chosen, looked = tf.while_loop(
            keep_going, body, (tf.constant(0), tokens, finished, states, chosen, looked)
        )
        return tf.transpose(chosen.stack(), [1, 0]), tf.transpose(looked.stack(), [1, 0, 2])

    def beam_search(self, source_ids, max_length, beam_width):
        """Keeps the `beam_width` best partial translations of each input; returns the best finished one,
        ranked by log-probability over GNMT's length penalty. Width 1 is exactly greedy search."""
        if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
            raise ValueError(f"`beam_width` must be a positive Python integer. Received: beam_width={beam_width!r}")
        beam = beam_width
        outputs, keys, mask, states = self.encode(source_ids)
        batch, source_length = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
        vocabulary = len(self.target_vocabulary) + 2

        def tile(tensor):  # [B, ...] -> [B * beam, ...], each row repeated beam times
            return tf.repeat(tensor, beam, axis=0)

        outputs, mask = tile(outputs), tile(mask)
        keys = tile(keys) if keys is not None else None
        states = [tile(state) for state in states]
        # Only the first beam is alive at the start, so the first step picks `beam` different words.
        scores = tf.tile(tf.where(tf.range(beam) == 0, 0.0, -1e9)[None, :], [batch, 1])
        tokens = tf.fill([batch * beam], tf.constant(START_ID, tf.int64))
        finished = tf.zeros([batch, beam], tf.bool)
        lengths = tf.zeros([batch, beam], tf.float32)
        sequences = tf.zeros([batch, beam, max_length], tf.int64)
        attention = tf.zeros([batch, beam, max_length, source_length], tf.float32)
        only_padding = tf.where(tf.range(vocabulary) == PAD_ID, 0.0, -1e9)

        def body(step, tokens, scores, finished, lengths, states, sequences, attention):
            log_probabilities, weights, states = self.decode_step(tokens, states, outputs, keys, mask)
            log_probabilities = tf.reshape(log_probabilities, [batch, beam, vocabulary])
            # A finished beam can only add padding, at no cost, so its score stays as it was.
            log_probabilities = tf.where(finished[:, :, None], only_padding, log_probabilities)
            candidates = tf.reshape(scores[:, :, None] + log_probabilities, [batch, beam * vocabulary])
            scores, best = tf.math.top_k(candidates, k=beam)
            parents, words = best // vocabulary, tf.cast(best % vocabulary, tf.int64)

            def follow(tensor):  # reorder per-beam tensors [B, beam, ...] after their parents
                return tf.gather(tensor, parents, batch_dims=1)

            states = [
                tf.reshape(follow(tf.reshape(state, [batch, beam, self.units])), [batch * beam, self.units])
                for state in states
            ]
            was_finished = follow(finished)
            position = tf.one_hot(step, max_length, dtype=tf.int64)
            sequences = follow(sequences) + words[:, :, None] * position
            weights = follow(tf.reshape(weights, [batch, beam, source_length]))
            attention = follow(attention) + weights[:, :, None, :] * tf.cast(position, tf.float32)[:, None]
            lengths = follow(lengths) + tf.cast(tf.logical_not(was_finished), tf.float32)
            finished = tf.logical_or(was_finished, tf.equal(words, END_ID))
            return step + 1, tf.reshape(words, [-1]), scores, finished, lengths, states, sequences, attention

        def keep_going(step, tokens, scores, finished, *_):
            return tf.logical_and(step < max_length, tf.logical_not(tf.reduce_all(finished)))

        step, _, scores, _, lengths, _, sequences, attention = tf.while_loop(
            keep_going, body, (tf.constant(0), tokens, scores, finished, lengths, states, sequences, attention)
        )
        ranked = scores / tf.pow((5.0 + lengths) / 6.0, self.length_penalty)
        best = tf.argmax(ranked, axis=1, output_type=tf.int32)
        sequences = tf.gather(sequences, best, batch_dims=1)[:, :step]
        attention = tf.gather(attention, best, batch_dims=1)[:, :step]
        return sequences, attention

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocabulary": self.source_vocabulary,
            "target_vocabulary": self.target_vocabulary,
            "target_display": self.target_display,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "encoder_depth": self.encoder_depth,
            "cell": self.cell_name,
            "attention": self.use_attention,
            "dropout": self.dropout_rate,
            "max_source_tokens": self.max_source_tokens,
            "max_output_tokens": self.max_output_tokens,
            "length_penalty": self.length_penalty,
        }


def capitalize(words):
    """Upper-cases the first character of each string (Unicode-aware)."""
    length = tf.strings.length(words, unit="UTF8_CHAR")
    first = tf.strings.substr(words, tf.zeros_like(length), tf.minimum(length, 1), unit="UTF8_CHAR")
    rest = tf.strings.substr(words, tf.minimum(length, 1), length, unit="UTF8_CHAR")
    return tf.strings.join([tf.strings.upper(first, encoding="utf-8"), rest])


def detokenize(words):
    """Words [B, L] (empty strings skipped) -> readable text [B]: no space before closing punctuation
    or after opening marks."""
    text = tf.strings.reduce_join(words, axis=1, separator=" ")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    text = tf.strings.regex_replace(text, r" ([.,;:!?)\]»”’])", r"\1")
    text = tf.strings.regex_replace(text, r"([¿¡(\[«“]) ", r"\1")
    return tf.strings.strip(text)


# ---------------------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------------------


def text_array(texts):
    return np.array(list(texts), dtype=object)


class TranslationApp(pipeline.App):
    """English -> Spanish translation with a bidirectional-RNN encoder, an RNN decoder and attention."""

    name = "translation"
    Config = TranslationConfig

    def __init__(self):
        self._vocabularies = None
        self._signatures = self._test_translations = (None, None)  # (export path, value), see below

    def export_signatures(self, path):
        """The export's signatures, loaded once per export for evaluation and plots."""
        if self._signatures[0] != path:
            self._signatures = (path, tf.saved_model.load(str(path)).signatures)
        return self._signatures[1]

    def test_translations(self, data, predict):
        """`serving_default`'s translations of the test split, computed once per export: the metrics and
        the samples both need them, and beam search over the test books takes a while."""
        if self._test_translations[0] != predict.path:
            signature = self.export_signatures(predict.path)["serving_default"]
            self._test_translations = (predict.path, translate_with(signature, data["test"][0]))
        return self._test_translations[1]

    def add_arguments(self, parser):
        parser.add_argument("--no-attention", dest="attention", action="store_const", const=False, default=None,
                            help="the plain encoder-decoder of the notes, for comparison")
        parser.add_argument("--beam-width", dest="beam_width", type=int, help="beam search width of serving_default")
        parser.add_argument("--cell", choices=sorted(CELLS), help="recurrent cell of encoder and decoder")
        parser.add_argument("--encoder-depth", dest="encoder_depth", type=int, help="stacked bidirectional layers")
        parser.add_argument("--units", type=int, help="units per recurrent layer (and direction)")

    def load_data(self, config):
        from data import loaders

        data = loaders.load_translation(config.dataset, max_words=config.max_words)
        if config.train_limit:
            english, spanish = data["train"]
            data["train"] = (english[: config.train_limit], spanish[: config.train_limit])
        if config.evaluation_limit:
            for split in ("validation", "test"):
                english, spanish = data[split]
                data[split] = (english[: config.evaluation_limit], spanish[: config.evaluation_limit])
        return data

    def vocabularies(self, config, data):
        """Source and target vocabularies from the training split, built once per app instance."""
        if self._vocabularies is None:
            english, spanish = data["train"]
            source, _ = build_vocabulary(english, config.source_vocabulary, reserved=(START, END))
            target, display = build_vocabulary(spanish, config.target_vocabulary, reserved=(START, END))
            self._vocabularies = source, target, display
        return self._vocabularies

    def target_frequencies(self, config, data):
        """Smoothed frequency of each output id (the [END] of every sentence included) in the training split."""
        _, target_vocabulary, _ = self.vocabularies(config, data)
        ids = word_lookup(target_vocabulary)(split_words(tf.constant(list(data["train"][1])))).flat_values.numpy()
        counts = np.bincount(ids, minlength=len(target_vocabulary) + 2).astype("float64") + 1.0
        counts[END_ID] += len(data["train"][1])
        counts[[PAD_ID, START_ID]] = 1e-3  # never targets
        return counts / counts.sum()

    def make_dataset(self, config, data, split, training):
        source_vocabulary, target_vocabulary, _ = self.vocabularies(config, data)
        english, spanish = data[split]
        sources = word_lookup(source_vocabulary)(split_words(tf.constant(list(english)))[:, : config.max_source_tokens - 1])
        targets = word_lookup(target_vocabulary)(split_words(tf.constant(list(spanish)))[:, : config.max_output_tokens - 1])
        def pair(source, target):
            end, start = tf.constant([END_ID], tf.int64), tf.constant([START_ID], tf.int64)
            inputs = {"source": tf.concat([source, end], 0), "target_in": tf.concat([start, target], 0)}
            return inputs, tf.concat([target, end], 0)

        dataset = tf.data.Dataset.from_tensor_slices((sources, targets)).map(pair)
        if training:
            dataset = dataset.shuffle(len(english), seed=config.seed, reshuffle_each_iteration=True)
        # Batches of similar target lengths waste little time on padding steps.
        return dataset.bucket_by_sequence_length(
            lambda inputs, target: tf.shape(target)[0],
            bucket_boundaries=[12, 20, 28, 36, 48],
            bucket_batch_sizes=[config.batch_size] * 6,
        ).prefetch(tf.data.AUTOTUNE)

    def build_model(self, config, data):
        source_vocabulary, target_vocabulary, display = self.vocabularies(config, data)
        model = Translator(
            source_vocabulary,
            target_vocabulary,
            display,
            embedding_dim=config.embedding_dim,
            units=config.units,
            encoder_depth=config.encoder_depth,
            cell=config.cell,
            attention=config.attention,
            dropout=config.dropout,
            max_source_tokens=config.max_source_tokens,
            max_output_tokens=config.max_output_tokens,
            length_penalty=config.length_penalty,
            name="translator",
        )
        model.build()
        # The softmax starts at the training split's word frequencies: left at zero, the bias spends the
        # first few hundred steps learning them, and the model sits on that unigram plateau (measured:
        # running loss 6.1 vs 5.2 after 100 steps of a decoder-only model).
        model.output_layer.bias.assign(np.log(self.target_frequencies(config, data)).astype("float32"))
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=5.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
            metrics=[masked_accuracy],
        )
        return model

    def serving_endpoints(self, model, config):
        text = [tf.TensorSpec([None], tf.string, name="text")]

        def serve(text):
            return {"translation": model.translate(text, beam_width=config.beam_width)["translation"]}

        def greedy(text):
            return {"translation": model.translate(text, beam_width=1)["translation"]}

        def with_attention(text):
            return model.translate(text, beam_width=config.beam_width)

        return {
            "serving_default": (serve, text),
            "translate_greedy": (greedy, text),
            "translate_with_attention": (with_attention, text),
        }

    def example_inputs(self, config, data):
        texts = list(data["test"][0][:3]) + ["", "   ", "Zyxwv qwerty Mordecai!", "and " * 500]
        return [{"text": text_array(texts)}, {"text": text_array(texts[:1])}]

    def evaluate(self, config, data, predict):
        from apps import translation_metrics

        english, spanish = data["test"]
        metrics = translation_metrics.corpus_scores(self.test_translations(data, predict), spanish)
        greedy = translate_with(self.export_signatures(predict.path)["translate_greedy"], english)
        for name, value in translation_metrics.corpus_scores(greedy, spanish).items():
            metrics[f"{name}_greedy"] = value
        metrics["beam_width"] = config.beam_width
        metrics["attention"] = config.attention
        for split in ("train", "validation", "test"):
            metrics[f"{split}_pairs"] = len(data[split][0])
        return metrics

    def baselines(self, config, data):
        from apps import translation_metrics

        english, spanish = data["test"]
        word_by_word = translation_metrics.WordByWordBaseline().fit(*data["train"])
        return {
            "identity (copy the English)": translation_metrics.corpus_scores(
                translation_metrics.identity_baseline(english), spanish
            ),
            "word by word (dictionary from training)": translation_metrics.corpus_scores(
                word_by_word.translate(english), spanish
            ),
        }

    def plot(self, config, data, predict, report_dir):
        from apps import translation_metrics

        english, spanish = data["test"]
        translations = self.test_translations(data, predict)
        scores = translation_metrics.sentence_bleu_scores(translations, spanish)
        path = write_samples(report_dir / "samples.md", english, spanish, translations, scores, data.get("test_refs"), config.seed)
        unseen = translate_with(self.export_signatures(predict.path)["serving_default"], UNSEEN_SENTENCES)
        with path.open("a") as file:
            file.write("## Sentences the Bible never says (no reference)\n\n")
            file.writelines(f"- {source}\n  - **ours**: {target}\n" for source, target in zip(UNSEEN_SENTENCES, unseen))
        if not config.attention:
            return []
        order = np.argsort(scores)
        chosen = [int(order[-1]), int(order[len(order) // 2])] + [
            int(index) for index in np.random.default_rng(config.seed).choice(len(english), 2, replace=False)
        ]
        signature = self.export_signatures(predict.path)["translate_with_attention"]
        return [plot_attention(signature, [english[index] for index in chosen], report_dir / "attention.png")]



# Modern phrasings outside the corpus, to show in the report how the model does away from its domain.
UNSEEN_SENTENCES = (
    "The children went to the city in the morning.",
    "My brother loves his wife.",
    "Where is the bread?",
    "The king said to his servants: go and find the woman.",
    "I do not know this man.",
    "We will eat fish and drink water by the sea.",
)


def translate_with(signature, texts, batch_size=128):
    translations = []
    for begin in range(0, len(texts), batch_size):
        batch = tf.constant(list(texts[begin : begin + batch_size]))
        translations += [value.decode("utf-8") for value in signature(text=batch)["translation"].numpy()]
    return translations


def write_samples(path, english, spanish, translations, scores, references, seed):
    """The best, the worst and random test translations, with their sentence BLEU, as Markdown."""
    order = np.argsort(scores)
    random_rows = np.random.default_rng(seed).choice(len(english), min(5, len(english)), replace=False)
    lines = ["# Sample test translations (sentence BLEU)", ""]
    for title, rows in (("Best", order[::-1][:5]), ("Worst", order[:5]), ("Random", random_rows)):
        lines += [f"## {title}", ""]
        for row in rows:
            where = f" ({references[row]})" if references is not None else ""
            lines += [
                f"- **English**{where}: {english[row]}",
                f"  - **ours** (BLEU {scores[row]:.1f}): {translations[row]}",
                f"  - **reference**: {spanish[row]}",
            ]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def plot_attention(signature, texts, path):
    outputs = signature(text=tf.constant(texts))
    plt = pipeline.pyplot()
    figure, axes = plt.subplots(len(texts), 1, figsize=(10, 4.2 * len(texts)))
    for row, axis in enumerate(np.atleast_1d(axes)):
        sources = [word.decode() for word in outputs["source_tokens"][row].numpy() if word] + ["[END]"]
        targets = [word.decode() for word in outputs["target_tokens"][row].numpy() if word]
        weights = outputs["attention"][row].numpy()[: len(targets), : len(sources)]
        axis.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
        axis.set_xticks(range(len(sources)), sources, rotation=90, fontsize=7)
        axis.set_yticks(range(len(targets)), targets, fontsize=7)
        axis.set_xlabel("English (source)")
        axis.set_ylabel("Spanish (output)")
    figure.suptitle("Attention weights on test sentences")
    return pipeline.save_figure(figure, path)


def main(argv=None):
    return pipeline.main(TranslationApp(), argv)


if __name__ == "__main__":
    main()
