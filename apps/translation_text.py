"""Words for the translation app: the same graph ops split text for the vocabulary, the training data and
the exported model, and turn output ids back into readable text.

Ids: 0 is padding, 1 the unknown word, then the vocabulary in order; every vocabulary starts with `[START]`
and `[END]`, so they are 2 and 3.
"""

import keras
import numpy as np
import tensorflow as tf

PAD, UNKNOWN, START, END = "", "[UNK]", "[START]", "[END]"
PAD_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3
# Tokens after which a word starts a sentence and is capitalized in the output.
SENTENCE_ENDS = (".", "?", "!", "¿", "¡")


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
    """Words -> ids: 0 is padding, 1 the unknown word, then `vocabulary` in order. The training data, the
    word frequencies and the model all use this one lookup."""
    return keras.layers.StringLookup(vocabulary=vocabulary, mask_token=PAD, oov_token=UNKNOWN, name=name)


def word_ids(text, lookup, max_tokens, split=split_words):
    """Ragged ids `[batch, (tokens)]` of at most `max_tokens - 1` tokens: room is left for `[END]`.

    `split` turns strings into lowercased tokens: words by default, or subword pieces.
    """
    return lookup(split(text)[:, : max_tokens - 1])


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


def target_frequencies(texts, vocabulary, split=split_words):
    """Smoothed frequency of each output id in `texts` split by `split`, the `[END]` of every sentence
    included."""
    ids = word_lookup(vocabulary)(split(tf.constant(list(texts)))).flat_values.numpy()
    counts = np.bincount(ids, minlength=len(vocabulary) + 2).astype("float64") + 1.0
    counts[END_ID] += len(texts)
    counts[[PAD_ID, START_ID]] = 1e-3  # never targets
    return counts / counts.sum()


def tokenize_source(text, lookup, max_tokens, split=None):
    """Strings [B] -> (ids [B, S] with `[END]` after the tokens, spellings [B, S], token counts [B]).

    With words (`split` None) the spellings keep the input's casing, for copying names into the output;
    with a subword `split` they are the lowercased pieces, which need no copying. They get an empty
    column where the ids have `[END]`, so both have the same width.
    """
    if split is None:
        words = word_ids(text, lookup, max_tokens)
        spellings = split_words(text, lowercase=False)[:, : max_tokens - 1]
    else:
        spellings = split(text)[:, : max_tokens - 1]
        words = lookup(spellings)
    ids = tf.concat([words, tf.fill([words.nrows(), 1], tf.constant(END_ID, words.dtype))], axis=1)
    spellings = tf.concat([spellings.to_tensor(""), tf.fill([words.nrows(), 1], "")], axis=1)
    return ids.to_tensor(PAD_ID), spellings, words.row_lengths()


def target_words(ids, attention, source_ids, spellings, target_vocabulary, target_display, copy_names=True):
    """Output ids [B, L] -> shown words [B, L] and which of them are real (before `[END]`).

    With `copy_names`, an unknown output token becomes the source word it attends to most when that word
    is a name: capitalized and unknown to the source vocabulary (Luong et al.'s unknown-word replacement,
    kept to names). A capitalized word the encoder knows ("Where" opening a sentence, "I") is not a name,
    and copying it, like copying a verb, reads worse than a missing word; otherwise the token is left
    out. A word after a sentence end gets a capital letter, also when a left-out word comes between.
    """
    display = tf.gather(tf.constant([PAD, UNKNOWN] + list(target_display)), ids)
    copied = tf.zeros_like(display)
    if copy_names:
        attended = tf.argmax(attention, axis=-1, output_type=tf.int32)
        copied = tf.gather(spellings, attended, batch_dims=1)
        unknown_source = tf.equal(tf.gather(source_ids, attended, batch_dims=1), UNKNOWN_ID)
        name = tf.logical_and(tf.strings.regex_full_match(copied, r"\p{Lu}.*"), unknown_source)
        copied = tf.where(name, copied, "")
    display = tf.where(tf.equal(ids, UNKNOWN_ID), copied, display)
    keep = real_tokens(ids)
    ends = [list(target_vocabulary).index(mark) + 2 for mark in SENTENCE_ENDS if mark in target_vocabulary]
    previous = previous_shown(ids, tf.not_equal(display, ""))
    starts = tf.logical_or(
        tf.equal(previous, START_ID),
        tf.reduce_any(tf.equal(previous[:, :, None], tf.constant(ends, ids.dtype)), axis=-1),
    )
    return tf.where(starts, capitalize(display), display), keep


def real_tokens(ids):
    """Output ids [B, L] -> True for the tokens before `[END]` (and not padding)."""
    return tf.logical_and(
        tf.equal(tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1), 0), tf.not_equal(ids, PAD_ID)
    )


def previous_shown(ids, shown):
    """Ids [B, L] -> the id of the last earlier token that is `shown` [B, L] (an unknown word left out is
    not), or `[START]` where there is none."""
    length = tf.shape(ids)[1]
    positions = tf.range(length)
    earlier = positions[None, :] < positions[:, None]  # [t, t']: t' comes before t
    candidates = tf.where(tf.logical_and(earlier[None], shown[:, None, :]), positions[None, None, :], -1)
    last = tf.reduce_max(candidates, axis=-1)
    previous = tf.gather(ids, tf.maximum(last, 0), batch_dims=1)
    return tf.where(last >= 0, previous, tf.constant(START_ID, ids.dtype))


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
