"""Recordings of real people that Debian packages ship, each source (one speaker) in one fixed role.

"train" recordings may feed negatives and `_unknown_`; "validation" recordings are the real people of the
validation split's long keyword-free audio, where thresholds and smoothing are chosen; "evaluation" recordings
are the test split's (false accepts per hour, the human digits) and never enter training or model selection.
Roles go by source, and each source is one speaker, so no voice is in two roles; a speaker who also speaks in a
source of another role is left out (`EXCLUDED`). What each source is, and the dead ends, is in HUMAN_SPEECH.md.
Loading installs nothing: the packages are installed by `install_engines()` (`make venv`).
"""

import dataclasses
import gzip
import pathlib
import re

import numpy as np

from data.speech import sound, vocabulary

ROLES = ("train", "validation", "evaluation")
HOMOPHONES = vocabulary.HOMOPHONES
# Words of the other languages that an English listener hears as a keyword (word -> keyword): a prompt saying
# one is not keyword-free. Only near-identical sounds; a word that merely starts like one ("nove") or has another
# vowel ("sei", like "say") is left in, as English "someone" is. Italian "non" ends in a clear n ("known"), French
# "non" does not; Russian "три" is "tree", an `_unknown_` word. The single vowels /o/ (French "au", Italian "ho")
# are not taken for "oh": English "oh" counts because people read zero so, not for its sound. English keywords
# and `HOMOPHONES` written in a foreign transcript count as well: "stop", "zero", and Italian "o" ("or"), written as
# the letter O.
SOUNDALIKES = {
    "fr": {"non": "no", "nos": "no", "six": "six", "zéro": "zero", "tout": "two", "tous": "two", "fort": "four"},
    "it": {"tu": "two"},
    "ru": {"но": "no", "он": "on", "ту": "two", "стоп": "stop", "зеро": "zero"},
}
# Folders of real speech that no source uses, and why.
EXCLUDED = {
    "/usr/share/asterisk/sounds/es_MX_f_Allison": "Allison Smith, the evaluation speaker, in Mexican Spanish "
    "(asterisk-core-sounds-es-wav): her voice in any other role would put the test speaker in training or in "
    "model selection",
}
NUMERAL = re.compile(r"\d+")  # "press 1", "21": read aloud with digit words, so counted as a keyword
NOT_SPEECH = re.compile(r"\[.*\]|\(.*\)")  # a transcript such as "[ascending tones]" or "(1 second of silence)"


class HumanSpeechMissing(RuntimeError):
    """A source's Debian package is not installed; the message names it and the install command."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One speaker's recordings in one Debian package.

    Args:
        name: the source's name in `Recording.source`.
        package: the Debian package that installs the recordings.
        version: the package version these notes were measured on (Debian bookworm).
        folder: where the package puts them.
        pattern: the recordings under `folder` (a glob).
        speaker: who speaks, as far as the package says.
        accent: the language and accent they speak.
        role: "train", "validation" or "evaluation".
        transcripts: how the words said are known: "file" (a transcript file, `transcript_file`), "name" (the
            file name is the word), or "none".
        transcript_file: the transcript ("name: text" lines, gzipped) when `transcripts` is "file".
        transcript_package: the Debian package that installs `transcript_file`.
        exclude: file names under `folder` that are not speech.
        language: the language spoken ("en", or a key of `SOUNDALIKES`), which says how its transcripts read.
        running_speech: the recordings are prompts of several words (cut into random 1 s clips for training), not
            single words (each cut to its loudest second).
    """

    name: str
    package: str
    version: str
    folder: str
    pattern: str
    speaker: str
    accent: str
    role: str
    transcripts: str
    transcript_file: str = ""
    transcript_package: str = ""
    exclude: tuple = ()
    language: str = "en"
    running_speech: bool = False

    def packages(self):
        return [self.package] + ([self.transcript_package] if self.transcript_package else [])


SOURCES = (
    # 568 prompts, 25.5 min at 8 kHz (telephone band): the only running speech, so the evaluation set.
    Source(
        name="asterisk-allison",
        package="asterisk-core-sounds-en-wav",
        version="1.6.1-1",
        folder="/usr/share/asterisk/sounds/en_US_f_Allison",
        pattern="**/*.wav",
        speaker="Allison Smith (female, professional voice talent)",
        accent="US English",
        role="evaluation",
        transcripts="file",
        transcript_file="/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz",
        transcript_package="asterisk-core-sounds-en",
        running_speech=True,
    ),
    # The same telephone prompts translated, 8 kHz, each one speaker (asterisk-core-sounds-*-wav's copyright file).
    # Canadian French, a woman like the test speaker: the validation split's real people.
    Source(
        name="asterisk-june-fr",
        package="asterisk-core-sounds-fr-wav",
        version="1.6.1-1",
        folder="/usr/share/asterisk/sounds/fr_CA_f_June",
        pattern="**/*.wav",
        speaker="June Wallack (female, professional voice talent)",
        accent="Canadian French",
        role="validation",
        transcripts="file",
        transcript_file="/usr/share/doc/asterisk-core-sounds-fr/core-sounds-fr.txt.gz",
        transcript_package="asterisk-core-sounds-fr",
        language="fr",
        running_speech=True,
    ),
    Source(
        name="asterisk-carlo-it",
        package="asterisk-core-sounds-it-wav",
        version="1.6.1-1",
        folder="/usr/share/asterisk/sounds/it_IT_m_Carlo",
        pattern="**/*.wav",
        speaker="Carlo Flora (male, professional voice talent)",
        accent="Italian",
        role="train",
        transcripts="file",
        transcript_file="/usr/share/doc/asterisk-core-sounds-it/core-sounds-it.txt.gz",
        transcript_package="asterisk-core-sounds-it",
        language="it",
        running_speech=True,
        # Tones transcribed in words ("un suono di beep ascendente") rather than in brackets.
        exclude=("beep.wav", "beeperr.wav", "confbridge-join.wav", "confbridge-leave.wav"),
    ),
    Source(
        name="asterisk-ivrvoice-ru",
        package="asterisk-core-sounds-ru-wav",
        version="1.6.1-1",
        folder="/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU",
        pattern="**/*.wav",
        speaker="the ivrvoice.ru voice (female, not named; provided by Maxim Topal)",
        accent="Russian",
        role="train",
        transcripts="file",
        transcript_file="/usr/share/doc/asterisk-core-sounds-ru/core-sounds-ru.txt.gz",
        transcript_package="asterisk-core-sounds-ru",
        language="ru",
        running_speech=True,
        exclude=("confbridge-join.wav", "confbridge-leave.wav"),  # tones, transcribed "<beep ascending>"
    ),
    # 72 single words (body parts, clothes, objects), 61.5 s, 44.1 kHz stereo OGG.
    Source(
        name="ktuberling-en",
        package="ktuberling-data",
        version="4:22.12.3-1",
        folder="/usr/share/ktuberling/sounds/en",
        pattern="*.ogg",
        speaker="one English voice of KTuberling (not named)",
        accent="English (unstated)",
        role="train",
        transcripts="name",
    ),
    # 26 letters and 19 short words or sounds, 90.4 s, 44.1 kHz OGG.
    Source(
        name="klettres-en",
        package="klettres-data",
        version="4:22.12.3-1",
        folder="/usr/share/klettres/en",
        pattern="*/*.ogg",
        speaker="KLettres' English voice (not named)",
        accent="US English (the package's `en`)",
        role="train",
        transcripts="name",
    ),
    # 26 letters and 23 short words or sounds, 88.3 s, 44.1 kHz OGG.
    Source(
        name="klettres-en-gb",
        package="klettres-data",
        version="4:22.12.3-1",
        folder="/usr/share/klettres/en_GB",
        pattern="*/*.ogg",
        speaker="KLettres' British English voice (not named)",
        accent="British English",
        role="train",
        transcripts="name",
    ),
    # speaker-test's eight channel names ("Front Left" ...), 11.4 s, 48 kHz; Noise.wav is noise, not speech.
    Source(
        name="alsa-channels",
        package="alsa-utils",
        version="1.2.8-1",
        folder="/usr/share/sounds/alsa",
        pattern="*.wav",
        speaker="the ALSA speaker-test voice (not named)",
        accent="English (unstated)",
        role="train",
        transcripts="name",
        exclude=("Noise.wav",),
    ),
)


@dataclasses.dataclass(frozen=True)
class Recording:
    """One recording: where it is, who says what, and which keywords it holds.

    `keywords` are the keywords the transcript says or sounds like (`HOMOPHONES`, numerals): () for a
    keyword-free recording, None when the words are not known.
    """

    source: str
    path: str
    speaker: str
    role: str
    transcript: str | None
    keywords: tuple | None
    language: str = "en"

    @property
    def contains_keyword(self):
        return None if self.keywords is None else bool(self.keywords)


def transcript_words(transcript, language="en"):
    """The transcript's words, lowercased: English keeps its apostrophes ("it's"); other languages split at them
    (French "n'êtes" is "n", "êtes") and keep their letters (accents, Cyrillic)."""
    pattern = r"[a-z0-9']+" if language == "en" else r"[^\W_]+"
    return re.findall(pattern, transcript.lower())


def keywords_in(transcript, language="en"):
    """The keywords (`vocabulary.KEYWORDS`) that `transcript` says, sounds like (`HOMOPHONES`, and
    `SOUNDALIKES[language]`), or reads as a numeral."""
    soundalikes = {**HOMOPHONES, **SOUNDALIKES.get(language, {})}
    found = []
    for word in transcript_words(transcript, language):
        if word in vocabulary.KEYWORDS:
            found.append(word)
        elif word in soundalikes:
            found.append(soundalikes[word])
        elif NUMERAL.fullmatch(word):
            found.extend(vocabulary.DIGIT_WORDS[int(digit)] for digit in word)
    return tuple(dict.fromkeys(found))


def missing_packages(role=None):
    """The Debian packages of the sources (of `role`, or all) that are not installed, in table order."""
    missing = []
    for source in _sources(role):
        for package, path in ((source.package, source.folder), (source.transcript_package, source.transcript_file)):
            if package and not pathlib.Path(path).exists() and package not in missing:
                missing.append(package)
    return missing


def missing_message(packages):
    return (
        f"The human speech recordings come from the Debian packages {packages}, which are not installed. Loading "
        f"data installs nothing; install them once as root: `make venv` (or `python -m data.speech "
        f"install-engines`), or `sudo apt-get install --no-install-recommends {' '.join(packages)}`."
    )


def recordings(role):
    """The recordings of `role` (one of `ROLES`), sorted by source then path; no audio is read.

    Raises `HumanSpeechMissing` when a package of the role is not installed.
    """
    packages = missing_packages(role)
    if packages:
        raise HumanSpeechMissing(missing_message(packages))
    found = []
    for source in _sources(role):
        transcripts = _read_transcripts(source)
        folder = pathlib.Path(source.folder)
        paths = sorted(path for path in folder.glob(source.pattern) if path.name not in source.exclude)
        if not paths:
            raise HumanSpeechMissing(f"{source.package} is installed but {folder} holds no {source.pattern}")
        for path in paths:
            transcript = transcripts.get(path.relative_to(folder).with_suffix("").as_posix())
            if transcript is not None and NOT_SPEECH.fullmatch(transcript):
                continue
            keywords = None if transcript is None else keywords_in(transcript, source.language)
            found.append(Recording(source.name, str(path), source.speaker, source.role, transcript, keywords,
                                   source.language))  # fmt: skip
    return found


def load_human_speech(role, keyword_free=False):
    """The recordings of `role` as audio: `(audio, recordings)`.

    audio: float32 mono arrays at 16 kHz in [-1, 1], one per recording, of their own lengths; recordings: the
    matching `Recording`s. `keyword_free=True` keeps only recordings whose transcript is known and holds no
    keyword or homophone of one (the long negative evaluation).
    """
    chosen = [recording for recording in recordings(role) if not keyword_free or recording.keywords == ()]
    return [read_audio(recording.path) for recording in chosen], chosen


def read_audio(path):
    """A WAV (scipy, `sound.read_wav`) or OGG/FLAC file (soundfile) as 16 kHz mono float32 in [-1, 1].

    Clipped to [-1, 1]: a lossy decoder and the resampling filter can overshoot a full-scale peak a little.
    """
    if pathlib.Path(path).suffix.lower() == ".wav":
        audio = sound.read_wav(path)
    else:
        import soundfile  # only the OGG sources need it, and importing data.speech must not

        decoded, rate = soundfile.read(path, dtype="float32", always_2d=False)
        audio = sound.resample(sound.to_float(decoded), rate)
    return np.clip(audio, -1.0, 1.0)


def _sources(role):
    if role is not None and role not in ROLES:
        raise ValueError(f"`role` must be one of {ROLES}. Received: role={role!r}")
    return [source for source in SOURCES if role is None or source.role == role]


def _read_transcripts(source):
    """`{file path under the folder, without suffix: transcript}` of a source."""
    folder = pathlib.Path(source.folder)
    if source.transcripts == "name":
        stems = {path.relative_to(folder).with_suffix("").as_posix() for path in folder.glob(source.pattern)}
        # "egypt_palmtree" is the word "palmtree" of the Egypt scene; "Front_Left" is "Front Left".
        return {stem: _spoken_name(source, stem) for stem in stems}
    if source.transcripts == "none":
        return {}
    transcripts = {}
    with gzip.open(source.transcript_file, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            name, separator, text = line.partition(":")
            if separator and not line.startswith(";"):
                transcripts[name.strip()] = text.strip()
    return transcripts


def _spoken_name(source, stem):
    name = stem.rsplit("/", 1)[-1]
    if source.name == "ktuberling-en":
        return name.rsplit("_", 1)[-1]
    return name.replace("_", " ")


def load_digits():
    """A second person's ten digits: Allison Smith's `digits/0.wav` ... `9.wav` (evaluation role, 8 kHz
    telephone prompts resampled to 16 kHz), as `(audio, labels "zero" ... "nine")` like `load_spokennumbers`.

    Raises `HumanSpeechMissing` when the package is not installed.
    """
    chosen = {pathlib.Path(recording.path).stem: recording for recording in recordings("evaluation")
              if recording.source == "asterisk-allison" and pathlib.Path(recording.path).parent.name == "digits"}  # fmt: skip
    missing = [str(digit) for digit in range(10) if str(digit) not in chosen]
    if missing:
        raise HumanSpeechMissing(f"asterisk-allison lacks the digit recordings {missing}")
    return [read_audio(chosen[str(digit)].path) for digit in range(10)], list(vocabulary.DIGIT_WORDS)


def with_pauses(clips, rng, shortest, longest):
    """The `clips` one after another, each followed by a pause of `shortest` to `longest` seconds (`rng`): running
    speech made of separate recordings."""
    pieces = []
    for clip in clips:
        pieces += [clip, np.zeros(int(rng.uniform(shortest, longest) * sound.SAMPLE_RATE), np.float32)]
    return np.concatenate(pieces)


def free_of(recording, keywords):
    """True when the recording's words are known and say none of `keywords`, none of their words, no word that
    sounds like one (`vocabulary.sounds_like_keywords`) and no numeral: what may stand for keyword-free speech."""
    if recording.transcript is None:
        return False
    words = set(transcript_words(recording.transcript, recording.language))
    forbidden = vocabulary.sounds_like_keywords(keywords)
    forbidden |= {word for word, keyword in SOUNDALIKES.get(recording.language, {}).items() if keyword in forbidden}
    return not words & forbidden and not any(word.isdigit() for word in words)
