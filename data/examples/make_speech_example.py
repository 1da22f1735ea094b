"""Writes data/examples/speech_keywords/: a tiny folder in the layout `--data` takes for the keyword app.

Two labels, "lights_on" and "lights_off", ten clips each, spoken by espeak-ng in ten accents and variants,
saved at 8 kHz (the app resamples any rate to 16 kHz), plus two seconds of `_background_noise_`. Run it
again to rebuild the folder: `PYTHONPATH=. .venv/bin/python data/examples/make_speech_example.py`.
"""

import pathlib
import subprocess
import tempfile

import numpy as np
import scipy.io.wavfile
import scipy.signal

FOLDER = pathlib.Path(__file__).resolve().parent / "speech_keywords"
PHRASES = {"lights_on": "lights on", "lights_off": "lights off"}
VOICES = ["en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f3", "en-gb-scotland+m4", "en-029+f4", "en-us+m7",
          "en-gb-x-rp+f1", "en-us+klatt", "en-gb+m2"]  # fmt: skip
RATE = 8000


def spoken(text, voice, speed):
    with tempfile.NamedTemporaryFile(suffix=".wav") as file:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", file.name, text], check=True)
        rate, audio = scipy.io.wavfile.read(file.name)
    return scipy.signal.resample_poly(audio.astype(np.float32) / 32768, RATE, rate)


def main():
    rng = np.random.default_rng(0)
    for label, text in PHRASES.items():
        (FOLDER / label).mkdir(parents=True, exist_ok=True)
        for index, voice in enumerate(VOICES):
            audio = spoken(text, voice, int(rng.uniform(120, 170)))
            scipy.io.wavfile.write(FOLDER / label / f"speaker{index}_nohash_0.wav", RATE,
                                   np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16))  # fmt: skip
    (FOLDER / "_background_noise_").mkdir(parents=True, exist_ok=True)
    noise = np.cumsum(rng.normal(0, 1, 2 * RATE))  # brown noise, a room's rumble
    noise = 0.05 * (noise - noise.mean()) / np.abs(noise - noise.mean()).max()
    scipy.io.wavfile.write(FOLDER / "_background_noise_" / "rumble.wav", RATE, np.round(noise * 32767).astype(np.int16))


if __name__ == "__main__":
    main()
