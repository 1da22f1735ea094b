"""The speech keyword app's data: a synthetic corpus from Debian TTS engines, the user's own recordings, human
digits, Speech Commands online. All of it 16 kHz mono float32 in [-1, 1], 1 s clips.

- `load_speech_keywords()`: the bundled corpus, synthesized at first use by espeak-ng, flite and festival, of the
  20 default keywords or the user's own (`keywords=["lights on", "lights off"]`), augmented towards real
  microphones, split by voice so that the test voices are never heard in training. Works offline; needs the TTS
  packages installed once (`install_engines()`, run by `make venv`), and raises `EnginesMissing` without them.
- `load_audio_folder()`: the user's recordings, one subfolder of WAV files per label (Speech Commands' layout).
- `load_spokennumbers()`: ten human recordings of the digits, a check on real speech that never enters training.
- `load_speech_commands()`: Speech Commands through tensorflow_datasets (online; fails within seconds offline).
- `load_human_speech(role)`: recordings of people that Debian packages ship, "train", "validation" or
  "evaluation" by source, each flagged for the keywords its transcript holds (see `human.py`, HUMAN_SPEECH.md).

The loaders return `sources.make_splits`' dict, with the label names under "labels".

- `negatives.load_long_negatives()`: an hour of keyword-free audio per split (running speech by the split's
  voices, babble, noise, music-like sound; validation and test add their real people), on which false accepts
  per hour are counted.
- `human.load_human_speech()`: recordings of real people from Debian packages, each source in one role
  (training `_unknown_`, validation negatives, or evaluation only); `human.load_digits()`, a second person's digits.

Modules, by concern: `vocabulary` (keywords, labels, `_unknown_` words), `sound` (WAV files, whole or in blocks,
resampling, 1 s clips), `augmentation`, `engines` (the TTS packages and their install step), `synthesis`, `corpus`,
`folders` (the user's recordings), `recordings` (spokennumbers, Speech Commands), `human` (recordings of people
in Debian packages) and `negatives` (long keyword-free audio).
"""

from data.speech.corpus import CorpusConfig, load_speech_keywords
from data.speech.engines import EnginesMissing, install_engines, missing_engine_packages
from data.speech.folders import load_audio_folder
from data.speech.human import load_human_speech
from data.speech.recordings import load_speech_commands, load_spokennumbers
from data.speech.sound import CLIP_SAMPLES, SAMPLE_RATE, WavBlocks, fit_to_clip, read_wav, write_wav
from data.speech.vocabulary import DIGIT_WORDS, KEYWORDS, LABELS, SILENCE, UNKNOWN, check_keywords

__all__ = [
    "CLIP_SAMPLES", "DIGIT_WORDS", "KEYWORDS", "LABELS", "SAMPLE_RATE", "SILENCE", "UNKNOWN", "CorpusConfig", "check_keywords",
    "EnginesMissing", "fit_to_clip", "install_engines", "load_audio_folder", "load_human_speech",
    "load_speech_commands", "load_speech_keywords", "load_spokennumbers", "missing_engine_packages", "read_wav",
    "WavBlocks",
    "write_wav",
]  # fmt: skip
