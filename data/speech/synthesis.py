"""Rendering words with espeak-ng, flite and festival into 16 kHz WAVs, one voice's rendering per call."""

import os
import pathlib
import subprocess
import tempfile

import numpy as np
import scipy.io.wavfile

from data.speech import augmentation, sound


# The longest word the corpus keeps, in samples: a slower one is sped up to this length rather than cut to 1 s.
LONGEST_WORD = int(0.95 * sound.CLIP_SAMPLES)


def postprocess(audio, path):
    """The engine's audio as the corpus keeps it: 16 kHz mono, silence trimmed, at most 0.95 s, peak at half scale."""
    audio = sound.trim_silence(audio)
    peak = np.abs(audio).max(initial=0.0)
    if len(audio) < 800 or peak == 0:
        raise RuntimeError(f"The synthesizer wrote an empty or near-empty clip: {path}")
    if len(audio) > LONGEST_WORD:
        audio = augmentation.change_speed(audio, len(audio) / LONGEST_WORD * 1.02)[:LONGEST_WORD]
    sound.write_wav(path, audio * (0.5 / peak))


def run_engine(command, **keyword_arguments):
    result = subprocess.run(command, capture_output=True, text=True, **keyword_arguments)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({result.returncode}): {result.stderr.strip()[-500:]}")


# espeak-ng says a rendering's two dozen words in one call, separated by pauses: starting it costs more than
# synthesizing a word, so this is ~10x faster than a call per word. Its pauses are digital silence. Each word is
# its own sentence (<s>): without it espeak-ng drops the final lengthening of a word said alone, and its words
# come out 15-20% shorter than the same word synthesized by itself.
ESPEAK_PAUSE_SECONDS = 0.7


def _espeak_rendering(name, rows, path):
    """One espeak-ng call for all the rows' words, cut at its pauses; None when the cut does not give one per word."""
    base_speed = int(rows[0]["base_speed"])
    text = "".join(
        f'<s><prosody rate="{100 * row["speed"] / base_speed:.0f}%">{row["word"]}</prosody></s>'
        f'<break time="{int(ESPEAK_PAUSE_SECONDS * 1000)}ms"/>'
        for row in rows
    )
    pitch = str(int(rows[0]["pitch"]))
    run_engine(["espeak-ng", "-m", "-v", name, "-s", str(base_speed), "-p", pitch, "-w", str(path),
                f"<speak>{text}</speak>"])  # fmt: skip
    rate, audio = scipy.io.wavfile.read(path)
    os.unlink(path)
    quiet = np.concatenate([[0], (np.abs(audio.astype(np.int32)) <= 2).astype(np.int8), [0]])
    edges = np.diff(quiet)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    pauses = [(start, end) for start, end in zip(starts, ends) if end - start >= 0.4 * ESPEAK_PAUSE_SECONDS * rate]
    cuts = [0] + [bound for pause in pauses for bound in pause] + [len(audio)]
    words = [audio[cuts[i] : cuts[i + 1]] for i in range(0, len(cuts), 2) if cuts[i + 1] - cuts[i] > 0.05 * rate]
    if len(words) != len(rows):
        return None
    return [sound.resample(sound.to_float(word), rate) for word in words]


def synthesize_rendering(task):
    """Synthesizes one rendering of one voice (about two dozen words); runs in a worker process."""
    directory, rows = task
    directory = pathlib.Path(directory)
    paths = [directory / row["path"] for row in rows]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    engine, name = rows[0]["voice"].split(":", 1)
    if engine == "espeak-ng":
        words = _espeak_rendering(name, rows, paths[0].with_name(f"rendering{rows[0]['rendering']}.wav"))
        if words is not None:
            for audio, path in zip(words, paths):
                postprocess(audio, path)
            return len(rows), 0
    if engine == "festival":
        # Diphone voices take festival's duration stretch; the HTS voice ignores it and takes hts_engine's speech
        # rate instead (above 1 is faster).
        commands = [f"(voice_{name})", f"(Parameter.set 'Duration_Stretch {rows[0]['speed']})"]
        if name.endswith("_hts"):
            commands.append(
                f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {1 / rows[0]["speed"]:.4f}))))'
            )
        commands += [
            f'(utt.save.wave (utt.synth (Utterance Text "{row["word"]}")) "{path}" \'riff)'
            for row, path in zip(rows, paths)
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as script:
            script.write("\n".join(commands) + "\n")
        try:
            run_engine(["festival", "-b", script.name])
        finally:
            os.unlink(script.name)
    for row, path in zip(rows, paths):
        if engine == "espeak-ng":  # the fallback when the one-call cut failed
            speed, pitch = str(int(row["speed"])), str(int(row["pitch"]))
            run_engine(["espeak-ng", "-v", name, "-s", speed, "-p", pitch, "-w", str(path), row["word"]])
        elif engine == "flite":
            settings = ["--setf", f"duration_stretch={row['speed']}"]
            settings += ["--setf", f"int_f0_target_mean={row['pitch']}"] if row["pitch"] else []
            run_engine(["flite", "-voice", name, *settings, "-t", row["word"], "-o", str(path)])
        postprocess(sound.read_wav(path), path)
    return len(rows), int(engine == "espeak-ng")


