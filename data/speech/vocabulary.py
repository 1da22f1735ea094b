"""What the speech data says: the keywords, the `_silence_` and `_unknown_` labels, and the `_unknown_` words."""

import re

KEYWORDS = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
]  # fmt: skip
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
LABELS = KEYWORDS + [SILENCE, UNKNOWN]
DIGIT_WORDS = KEYWORDS[10:]

# `_unknown_` words. Speech Commands' ten filler words and the five it added in v2, then words that sound close to
# one of the ten command keywords (the model must learn the keyword, not its vowel), and common words. Homophones
# of a keyword ("know", "write", "won", "too", "for", "ate") are left out: a synthesizer says them exactly like the
# keyword, so they would only teach that one sound carries two labels. So are one-consonant neighbours of the
# digits ("fine", "heaven", "hero", "free", "gate", "dive", "sick"): the digits are what the app is checked on with
# real speech, where a consonant is easily blurred, and such words teach the model to call a blurred digit unknown.
FILLER_WORDS = ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow"]
SPEECH_COMMANDS_V2_EXTRAS = ["learn", "follow", "forward", "backward", "visual"]
CONFUSABLE_WORDS = [
    "yeah", "yet", "now", "note", "cup", "town", "dawn", "lift", "light", "bright", "own", "of", "cough", "top",
    "shop", "dough", "goal", "ten",
]  # fmt: skip
COMMON_WORDS = [
    "hello", "okay", "water", "open", "please", "apple", "music", "table", "window", "green", "coffee", "paper",
    "morning", "garden", "river", "little", "dinner",
]  # fmt: skip
# Words a listener cannot tell from a default keyword once said alone (homophone -> keyword): spotting "two" in
# "to" is not an error a model can avoid, so audio holding one is not keyword-free. "oh" and the letter O are how
# people read zero in numbers.
HOMOPHONES = {
    "to": "two", "too": "two", "for": "four", "fore": "four", "know": "no", "knows": "no", "won": "one",
    "ate": "eight", "write": "right", "rite": "right", "wright": "right", "oh": "zero", "o": "zero",
}  # fmt: skip
UNKNOWN_WORDS = FILLER_WORDS + SPEECH_COMMANDS_V2_EXTRAS + CONFUSABLE_WORDS + COMMON_WORDS

# Letters, digits, apostrophes and hyphens, words separated by single spaces: what the three synthesizers read as
# plain text (no SSML markup, no Scheme string quotes) and what is safe in a file name once spaces are underscores.
KEYWORD_PATTERN = re.compile(r"[^\W_]+(?:['-][^\W_]+)*(?: [^\W_]+(?:['-][^\W_]+)*)*")


def check_keywords(keywords):
    """`keywords` as a tuple of lowercased words or short phrases (inner whitespace one space), checked.

    Raises `ValueError` unless there is at least one, each is text of letters and digits (apostrophes and
    hyphens inside words), and no two are the same.
    """
    if isinstance(keywords, str) or not hasattr(keywords, "__iter__"):
        raise ValueError(f"`keywords` must be a list of words or short phrases. Received: keywords={keywords!r}")
    normalized = []
    for keyword in keywords:
        text = " ".join(keyword.lower().split()) if isinstance(keyword, str) else None
        if not text or not KEYWORD_PATTERN.fullmatch(text):
            raise ValueError(
                "Each keyword must be a word or a short phrase of letters and digits (apostrophes and hyphens "
                f"inside words), not empty. Received: {keyword!r} in keywords={list(keywords)!r}"
            )
        normalized.append(text)
    if not normalized:
        raise ValueError(f"`keywords` must hold at least one keyword. Received: keywords={list(keywords)!r}")
    repeated = sorted({text for text in normalized if normalized.count(text) > 1})
    if repeated:
        raise ValueError(f"Each keyword must be given once. Received {repeated} more than once in {list(keywords)!r}")
    return tuple(normalized)


def labels_for(keywords):
    """The label list of a keyword list: the keywords, then `_silence_` and `_unknown_`."""
    return list(keywords) + [SILENCE, UNKNOWN]


def unknown_words_for(keywords):
    """`UNKNOWN_WORDS` less any that is a keyword or a word of one ("lights on" removes "lights" and "on")."""
    taken = set(keywords) | {part for keyword in keywords for part in re.split(r"[ -]", keyword)}
    return [word for word in UNKNOWN_WORDS if word not in taken]


def sounds_like_keywords(keywords):
    """The keywords, their words ("lights on": "lights", "on") and the words that sound exactly like them: what
    keyword-free audio must not say."""
    words = set(keywords) | {part for keyword in keywords for part in re.split(r"[ -]", keyword)}
    return words | {homophone for homophone, keyword in HOMOPHONES.items() if keyword in words}


def file_stem(word):
    """The word or phrase as a file name: spaces become underscores (which no keyword holds, so stems stay unique)."""
    return word.replace(" ", "_")
