"""Subwords for the translation app: a byte-pair vocabulary learned from the training side of a language,
and WordPiece's greedy longest-match segmentation and the joining back into words, as standard TF ops.

A word is cut into a first piece and continuation pieces that carry `##` in front ("mardoqueo" ->
"mar", "##do", "##queo"). Every character of the training text is in the vocabulary both as a first
piece and as a continuation, so a word written in the training alphabet always segments, and no input
word is unknown. The vocabulary is learned in plain Python at `train` time; segmentation runs in the
graph (a `tf.while_loop` over the longest pieces that a `StringLookup` knows), so the export needs no
custom ops, and `reference_segment` is the same algorithm in plain Python, for the tests.
"""

import heapq
import re

import tensorflow as tf

from apps import translation_text

CONTINUATION = "##"
WORD = re.compile(r"\w+(?:['’]\w+)*")


def learn_subwords(texts, size, reserved=()):
    """Byte-pair merges (Sennrich et al., 2016) over the lowercased words of `texts`, until the vocabulary
    holds `size` tokens (padding and the unknown token count, as in `build_vocabulary`) or no pair is
    seen twice. Returns `reserved`, then every character (first and continuation form), then the merged
    pieces in the order they were learned.

    The whole alphabet is kept even when it alone exceeds `size`: covering every training character is
    what makes no word unknown.
    """
    counts = word_counts(texts)
    words = [[word[0]] + [CONTINUATION + character for character in word[1:]] for word in counts]
    frequency = list(counts.values())
    characters = {character for word in counts for character in word}
    # Both forms of every character, also those seen in one position only ("ñ" never opens a word).
    alphabet = sorted(characters | {CONTINUATION + character for character in characters})
    vocabulary = list(reserved) + alphabet
    merges = max(size - 2 - len(vocabulary), 0)
    for merged in byte_pair_merges(words, frequency, merges):
        vocabulary.append(merged)
    return vocabulary


def word_counts(texts):
    """Lowercased words (and punctuation marks) of `texts` -> how often each occurs, split as the model
    splits them."""
    counts = {}
    for word in translation_text.split_words(tf.constant(list(texts))).flat_values.numpy():
        word = word.decode("utf-8")
        counts[word] = counts.get(word, 0) + 1
    return counts


def merge(first, second):
    """Two adjacent pieces as one: "ca" + "##sa" -> "casa", "##ca" + "##sa" -> "##casa"."""
    return first + second[len(CONTINUATION) :]


def byte_pair_merges(words, frequency, limit):
    """Yields up to `limit` merged pieces, each time joining the most frequent adjacent pair of `words`
    (symbol lists, changed in place; ties go to the smallest pair, so runs repeat). Pairs seen only once
    are never merged: they would learn whole rare words, not pieces.

    A heap of (-count, pair) entries, refreshed when a count changes and skipped when stale, and an index
    from each pair to the words holding it keep every merge proportional to the words it touches.
    """
    pair_counts, holders = {}, {}
    for index, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] = pair_counts.get(pair, 0) + frequency[index]
            holders.setdefault(pair, set()).add(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    made = 0
    while heap and made < limit:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative_count:
            continue  # stale entry
        if -negative_count < 2:
            break
        made += 1
        joined = merge(*pair)
        changed = set()
        for index in holders.pop(pair, ()):
            word = words[index]
            for old in zip(word, word[1:]):
                pair_counts[old] -= frequency[index]
                changed.add(old)
            word[:] = merge_pair(word, pair, joined)
            for new in zip(word, word[1:]):
                pair_counts[new] = pair_counts.get(new, 0) + frequency[index]
                holders.setdefault(new, set()).add(index)
                changed.add(new)
        pair_counts.pop(pair, None)
        for other in changed - {pair}:
            heapq.heappush(heap, (-pair_counts[other], other))
        yield joined


def merge_pair(word, pair, joined):
    """`word` (a symbol list) with every occurrence of `pair`, left to right, replaced by `joined`."""
    result, position = [], 0
    while position < len(word):
        if position + 1 < len(word) and (word[position], word[position + 1]) == pair:
            result.append(joined)
            position += 2
        else:
            result.append(word[position])
            position += 1
    return result


def longest_piece(vocabulary):
    """The most characters any piece of `vocabulary` holds, `##` not counted: how far segmentation looks."""
    return max([len(piece.removeprefix(CONTINUATION)) for piece in vocabulary] + [1])


def reference_segment(word, vocabulary):
    """Plain-Python greedy longest-match (WordPiece's) of one lowercased word: at each position the
    longest piece of `vocabulary` that starts there (with `##` after the first), or `[UNK]` for one
    character that no piece starts with."""
    known, pieces, position = set(vocabulary), [], 0
    while position < len(word):
        prefix = CONTINUATION if position else ""
        for end in range(len(word), position, -1):
            if prefix + word[position:end] in known:
                pieces.append(prefix + word[position:end])
                position = end
                break
        else:
            pieces.append(translation_text.UNKNOWN)
            position += 1
    return pieces


def segment(words, lookup, max_piece_chars):
    """Ragged words `[batch, (words)]` -> ragged pieces `[batch, (pieces)]`, by greedy longest match
    against `lookup` (a `StringLookup` of the pieces), as `reference_segment` does.

    All words move together: each loop step cuts one piece from every unfinished word, trying the
    `max_piece_chars` longest candidates at its position at once, so the loop runs as many times as the
    most pieces in one word.
    """
    flat = words.flat_values
    lengths = tf.strings.length(flat, unit="UTF8_CHAR")
    sizes = tf.range(max_piece_chars, 0, -1)  # longest first
    candidate_count = tf.size(sizes)
    repeated = tf.repeat(flat[:, None], candidate_count, axis=1)
    pieces = tf.TensorArray(tf.string, size=0, dynamic_size=True, element_shape=[None])
    active = tf.TensorArray(tf.bool, size=0, dynamic_size=True, element_shape=[None])

    def body(step, position, pieces, active):
        # A finished word stays at its end, where `substr` still accepts the position.
        starts = tf.minimum(position, lengths)[:, None] + tf.zeros_like(sizes)[None, :]
        candidates = tf.strings.substr(repeated, starts, tf.zeros_like(starts) + sizes[None, :], unit="UTF8_CHAR")
        candidates = tf.where(starts > 0, tf.strings.join([CONTINUATION, candidates]), candidates)
        fits = starts + sizes[None, :] <= lengths[:, None]
        known = tf.logical_and(fits, lookup(candidates) > translation_text.UNKNOWN_ID)
        choice = tf.argmax(tf.cast(known, tf.int32), axis=1, output_type=tf.int32)
        found = tf.reduce_any(known, axis=1)
        piece = tf.where(found, tf.gather(candidates, choice, batch_dims=1), translation_text.UNKNOWN)
        unfinished = position < lengths
        advance = tf.where(found, tf.gather(sizes, choice), 1)
        return step + 1, position + advance, pieces.write(step, piece), active.write(step, unfinished)

    def keep_going(step, position, pieces, active):
        # One step even for an empty batch, so the stacks below have a first dimension.
        return tf.logical_or(step == 0, tf.reduce_any(position < lengths))

    _, _, pieces, active = tf.while_loop(keep_going, body, (tf.constant(0), tf.zeros_like(lengths), pieces, active))
    per_word = tf.ragged.boolean_mask(tf.transpose(pieces.stack()), tf.transpose(active.stack()))
    return words.with_flat_values(per_word).merge_dims(1, 2)


def join_pieces(pieces):
    """Pieces `[batch, L]` (empty strings are left out) -> words `[batch, L]`: each continuation piece is
    joined to the piece before it, the words packed to the left and empty strings after them. A
    continuation with nothing before it stands as a word of its own."""
    shown = tf.not_equal(pieces, "")
    continues = tf.logical_and(tf.strings.regex_full_match(pieces, CONTINUATION + ".+"), shown)
    starts = tf.logical_and(shown, tf.logical_not(continues))
    # The word each piece belongs to: the count of word starts up to it (a leading continuation: word 0).
    word = tf.maximum(tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1, 0)
    length = tf.shape(pieces)[1]
    rows = tf.range(tf.shape(pieces)[0])[:, None]
    text = tf.strings.regex_replace(pieces, "^" + CONTINUATION, "")
    joined = tf.strings.unsorted_segment_join(
        tf.reshape(text, [-1]), tf.reshape(rows * length + word, [-1]), tf.shape(pieces)[0] * length
    )
    return tf.reshape(joined, tf.shape(pieces))


def splitter(lookup, max_piece_chars):
    """Strings [B] -> ragged lowercased pieces [B, (pieces)], with `lookup`'s pieces: the subword
    `split` that `translation_text.word_ids` and `tokenize_source` take."""

    def split(text):
        return segment(translation_text.split_words(text), lookup, max_piece_chars)

    return split


def learn_display_words(texts):
    """The words whose usual spelling inside a sentence is capitalized ("Dios", "Jehová", "Moab"), spelled
    so: the subword model writes lowercased pieces, and these give names back their capitals.

    Only words that follow another word are counted: a sentence start ("Entonces" opens many verses) or
    a quotation after a colon ("dijo: Sea la luz") capitalizes any word. All-capital headings ("ACHAB")
    are not names either.
    """
    spellings = {}
    for row in translation_text.split_words(tf.constant(list(texts)), lowercase=False).to_list():
        previous = ""
        for token in row:
            token = token.decode("utf-8")
            if WORD.fullmatch(previous):
                counts = spellings.setdefault(token.lower(), {})
                counts[token] = counts.get(token, 0) + 1
            previous = token
    usual = {lower: max(sorted(counts), key=counts.get) for lower, counts in spellings.items()}
    return sorted(spelling for lower, spelling in usual.items() if spelling != lower and spelling == lower[:1].upper() + lower[1:])


def display_lookup(display_words, name=None):
    """Lowercased word -> its index in `display_words`, plus 3 (0 padding, 1 unknown, 2 a placeholder that
    keeps the vocabulary from being empty), for `output_words`."""
    return translation_text.word_lookup([translation_text.START] + [word.lower() for word in display_words], name=name)


def output_words(ids, keep, vocabulary, display, display_words, source_text):
    """Output ids [B, L] and which are real -> shown words [B, L], packed to the left: the pieces joined
    into words, each word in its `display_words` spelling (found by `display`, a `display_lookup`), else
    in the spelling of a capitalized source word it equals (a name passed through in pieces,
    "Mordecai"), and a capital after a sentence end.
    """
    pieces = tf.gather(tf.constant([translation_text.PAD, translation_text.UNKNOWN] + list(vocabulary)), ids)
    words = join_pieces(tf.where(keep, pieces, ""))
    display = tf.gather(tf.constant(["", "", ""] + list(display_words)), display(words))
    words = tf.where(tf.equal(display, ""), source_names(words, source_text), display)
    return tf.where(sentence_starts(words), translation_text.capitalize(words), words)


def source_names(words, source_text):
    """Words [B, L] -> each word in the spelling of a capitalized word of its source sentence that it
    equals once lowercased, or unchanged. A source word that opens a sentence is no name ("Where")."""
    source = translation_text.split_words(source_text, lowercase=False).to_tensor("")
    source = tf.concat([source, tf.fill([tf.shape(source)[0], 1], "")], axis=1)  # never empty, for the gather
    named = tf.logical_and(tf.strings.regex_full_match(source, r"\p{Lu}.*"), tf.logical_not(sentence_starts(source)))
    lower = tf.where(named, tf.strings.lower(source, encoding="utf-8"), "")
    same = tf.logical_and(tf.equal(words[:, :, None], lower[:, None, :]), tf.not_equal(words, "")[:, :, None])
    spelled = tf.gather(source, tf.argmax(tf.cast(same, tf.int32), axis=-1, output_type=tf.int32), batch_dims=1)
    return tf.where(tf.reduce_any(same, axis=-1), spelled, words)


def sentence_starts(words):
    """Words [B, L], packed to the left -> True where a word opens a sentence: first, or after a sentence end."""
    previous = tf.concat([tf.fill([tf.shape(words)[0], 1], translation_text.SENTENCE_ENDS[0]), words[:, :-1]], axis=1)
    ends = tf.reduce_any(tf.equal(previous[:, :, None], tf.constant(translation_text.SENTENCE_ENDS)), axis=-1)
    return tf.logical_and(ends, tf.not_equal(words, ""))
