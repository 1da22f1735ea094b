"""Speed and memory of the speech app's `listen` on an hour of audio, next to the path it replaced.

It writes (or takes) a long WAV recording: the ten human spokennumbers digits, again and again, between
stretches of silence and of noise. `listen`'s path runs over all of it: the WAV read in blocks
(`speech.WavBlocks`), the window streams batched (`stream_windows`), `detect` on top. It reports the
real-time factor (seconds of audio per wall-clock second) and the resident memory: the process' peak
(`resource.getrusage`'s ru_maxrss, TensorFlow included) before and after the hour, and the current resident
memory (VmRSS of /proc/self/status) sampled after every block the reader yields, to show that it does not grow
with the recording; and, each in a fresh process, how much reading the file alone raises the peak, whole and
in blocks. On a slice at the start it then times the path `listen` took before, one stream per call
on the whole recording in memory, against the new one, and checks that their windows are identical.

    python -m benchmarks.listen_speed [--export saved_models/speech_keywords/N] [--seconds 3600] [--wav FILE]
        [--old-seconds 120] [--output reports/benchmarks]
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
import tensorflow as tf

from apps import pipeline, speech_keywords
from apps.speech_keywords import CLIP_SAMPLES, SAMPLE_RATE, STREAM_CHUNK
from data import speech
from data.speech import sound

DEFAULT_EXPORT_BASE = pathlib.Path("saved_models") / "speech_keywords"
TARGET_REAL_TIME_FACTOR = 20.0  # issue 11: at least 20x real time on 2 cores


def stream_windows_one_per_call(stream_signature, audio, hop_ms=200):
    """`speech_keywords.stream_windows` as it was before its streams were batched: the whole recording in
    memory, and every window's stream its own call per chunk (batch 1; 5 calls per chunk at the default hop).
    The reference that the batched path must equal (tests/test_speech_listen.py) and the speed it is
    compared with here. Returns `[(seconds at the window's centre, probabilities)]`."""
    hop_chunks, window_chunks = hop_ms // 100, CLIP_SAMPLES // STREAM_CHUNK
    audio = np.concatenate([np.asarray(audio, np.float32), np.zeros(CLIP_SAMPLES, np.float32)])
    streams = {}  # first chunk -> (pending, state)
    windows = []
    for index in range(len(audio) // STREAM_CHUNK):
        if index % hop_chunks == 0:
            streams[index] = (np.zeros((1, 0), np.float32), np.zeros((1, 0), np.float32))
        chunk = tf.constant(audio[None, index * STREAM_CHUNK : (index + 1) * STREAM_CHUNK])
        for first, (pending, state) in list(streams.items()):
            outputs = stream_signature(audio=chunk, pending=tf.constant(pending), state=tf.constant(state))
            if index - first + 1 == window_chunks:
                centre = (first * STREAM_CHUNK + CLIP_SAMPLES / 2) / SAMPLE_RATE
                windows.append((centre, outputs["probabilities"].numpy()[0]))
                del streams[first]
            else:
                streams[first] = (outputs["pending"].numpy(), outputs["state"].numpy())
    return windows


def recording_blocks(seconds, seed=0):
    """About `seconds` of 16 kHz audio, one block per second or so: a human digit (spokennumbers, 0.6-0.8 s)
    in every 3 to 8 s, between silence, quiet noise and, now and then, a second of loud noise."""
    digits, _ = speech.load_spokennumbers()
    rng = np.random.default_rng(seed)
    written = 0
    while written < seconds * SAMPLE_RATE:
        piece = rng.choice(["silence", "quiet noise", "loud noise", "digit"], p=[0.3, 0.4, 0.05, 0.25])
        if piece == "digit":
            block = digits[rng.integers(len(digits))] * rng.uniform(0.3, 1.0)
        else:
            length = int(rng.uniform(1.0, 2.0) * SAMPLE_RATE)
            level = {"silence": 0.0, "quiet noise": 10 ** (-50 / 20), "loud noise": 10 ** (-15 / 20)}[piece]
            block = rng.normal(0, level, length) if level else np.zeros(length)
        block = block[: seconds * SAMPLE_RATE - written]
        written += len(block)
        yield block.astype(np.float32)


def write_recording(path, seconds, seed=0):
    """`recording_blocks` as a 16-bit mono 16 kHz WAV file, written block by block."""
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        for block in recording_blocks(seconds, seed):
            file.writeframes(sound.to_pcm16(block).tobytes())
    return path


def resident_megabytes():
    """This process' resident memory now (VmRSS), in MB; None where /proc is not there."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_resident_megabytes():
    """The process' peak resident memory so far (ru_maxrss: kilobytes on Linux, bytes on macOS), in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if platform.system() == "Darwin" else 1024)


def sampled(blocks, samples):
    """`blocks` unchanged, with the resident memory appended to `samples` after each one is yielded."""
    for block in blocks:
        yield block
        samples.append(resident_megabytes())


def reading_peak_megabytes(path, whole):
    """How much the peak resident memory of a fresh Python process grows while it reads the WAV file at `path`
    whole (`speech.read_wav`, as `listen` did) or in blocks (`speech.WavBlocks`), in MB: its own process, so
    that neither TensorFlow nor the other reader is counted. The peak is VmHWM of /proc/self/status, which
    starts afresh in the new program (ru_maxrss would start from this process' peak, inherited at the fork);
    None where /proc is not there."""
    if resident_megabytes() is None:
        return None
    read = "len(speech.read_wav(path))" if whole else "sum(len(block) for block in speech.WavBlocks(path))"
    script = (
        "import pathlib, sys\nfrom data import speech\npath = sys.argv[1]\n"
        "def peak():\n"
        "    status = pathlib.Path('/proc/self/status').read_text().splitlines()\n"
        "    return int(next(line for line in status if line.startswith('VmHWM:')).split()[1])\n"
        f"before = peak()\n{read}\nprint(peak() - before)\n"
    )
    root = pathlib.Path(__file__).resolve().parent.parent
    environment = {**os.environ, "PYTHONPATH": str(root)}
    output = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True,
                            env=environment, cwd=root).stdout  # fmt: skip
    return int(output.split()[-1]) / 1024


def first_seconds(path, seconds):
    """The first `seconds` of the WAV file at `path`, as one 16 kHz array, read in blocks."""
    wanted = int(seconds * SAMPLE_RATE)
    blocks, held = [], 0
    for block in speech.WavBlocks(path):
        blocks.append(block[: wanted - held])
        held += len(blocks[-1])
        if held >= wanted:
            break
    return np.concatenate(blocks)


def measure(export, wav, old_seconds, hop_ms=200, threshold=0.7):
    """Times `listen`'s path (`detect` on `speech.WavBlocks`) over the WAV file `wav` through the export's
    `stream` signature, then both paths on its first `old_seconds`, after a warm-up of each; returns the numbers
    that `report` writes."""
    signatures = tf.saved_model.load(str(export)).signatures
    stream, labels = signatures["stream"], speech_keywords.labels_of(signatures)
    warm_up = np.zeros(2 * CLIP_SAMPLES, np.float32)
    stream_windows_one_per_call(stream, warm_up, hop_ms)
    list(speech_keywords.stream_windows(stream, warm_up, hop_ms))
    recording = speech.WavBlocks(wav)
    audio_seconds = len(recording) / SAMPLE_RATE

    peak_before = peak_resident_megabytes()
    resident = [resident_megabytes()]
    start = time.perf_counter()
    detections = speech_keywords.detect(stream, sampled(recording, resident), labels, threshold, hop_ms)
    wall = time.perf_counter() - start
    peak_after = peak_resident_megabytes()
    print(f"listen (batched, read in blocks): {audio_seconds:.0f} s of audio in {wall:.1f} s: "
          f"{audio_seconds / wall:.1f}x real time, {len(detections)} detections")  # fmt: skip

    audio = first_seconds(wav, old_seconds)
    start = time.perf_counter()
    old_windows = stream_windows_one_per_call(stream, audio, hop_ms)
    old_wall = time.perf_counter() - start
    start = time.perf_counter()
    new_windows = list(speech_keywords.stream_windows(stream, audio, hop_ms))
    new_wall = time.perf_counter() - start
    identical = len(old_windows) == len(new_windows) and all(
        old_centre == new_centre and np.array_equal(old, new)
        for (old_centre, old), (new_centre, new) in zip(old_windows, new_windows)
    )
    slice_seconds = len(audio) / SAMPLE_RATE
    print(f"first {slice_seconds:.0f} s: one stream per call {slice_seconds / old_wall:.1f}x real time, batched "
          f"{slice_seconds / new_wall:.1f}x; windows identical: {identical}")  # fmt: skip
    quarters = [resident[round(fraction * (len(resident) - 1))] for fraction in (0, 0.25, 0.5, 0.75, 1)]
    reading = {"whole": reading_peak_megabytes(wav, whole=True), "blocks": reading_peak_megabytes(wav, whole=False)}
    if reading["whole"] is not None:
        print(f"reading the WAV alone raises the peak resident memory by {reading['whole']:.0f} MB whole, "
              f"{reading['blocks']:.0f} MB in blocks")  # fmt: skip
    return {
        "export": str(export), "wav": str(wav), "audio_seconds": audio_seconds, "hop_ms": hop_ms,
        "threshold": threshold, "cpu_cores": os.cpu_count(), "tensorflow": tf.__version__,
        "wall_seconds": wall, "real_time_factor": audio_seconds / wall, "detections": len(detections),
        "target_real_time_factor": TARGET_REAL_TIME_FACTOR,
        "peak_resident_mb_before": peak_before, "peak_resident_mb_after": peak_after,
        "resident_mb_at_0_25_50_75_100_percent": quarters,
        "wav_megabytes": os.path.getsize(wav) / 2**20,
        "whole_recording_float32_megabytes": len(recording) * 4 / 2**20,
        "reading_peak_growth_mb_whole": reading["whole"], "reading_peak_growth_mb_blocks": reading["blocks"],
        "slice_seconds": slice_seconds, "slice_one_stream_per_call_real_time_factor": slice_seconds / old_wall,
        "slice_batched_real_time_factor": slice_seconds / new_wall, "slice_speedup": old_wall / new_wall,
        "slice_windows_identical": identical,
    }  # fmt: skip


def latest_export(base=DEFAULT_EXPORT_BASE):
    """The newest version folder under `base`, as `listen` would load it."""
    versions = pipeline.version_numbers(base) if base.is_dir() else []
    if not versions:
        raise SystemExit(f"No export under {base}: run `python -m apps.speech_keywords train` or give --export. "
                         f"Received: no version folders")  # fmt: skip
    return base / str(versions[-1])


def report(results, command):
    """The Markdown report of `measure`'s results."""
    hours, slice_seconds = results["audio_seconds"] / 3600, results["slice_seconds"]
    old, batched = results["slice_one_stream_per_call_real_time_factor"], results["slice_batched_real_time_factor"]
    rows = [
        ("batched streams, WAV read in blocks (`listen` now)", results["audio_seconds"], results["real_time_factor"]),
        (f"the same, first {slice_seconds:.0f} s", slice_seconds, batched),
        (f"one stream per call, whole WAV in memory (before), first {slice_seconds:.0f} s", slice_seconds, old),
    ]
    table = "\n".join(
        f"| {path} | {seconds:.0f} s | {seconds / factor:.1f} s | {factor:.1f}x |" for path, seconds, factor in rows
    )
    resident = ", ".join(f"{value:.0f}" for value in results["resident_mb_at_0_25_50_75_100_percent"])
    verdict = "met" if results["real_time_factor"] >= results["target_real_time_factor"] else "missed"
    whole, blocks = results["reading_peak_growth_mb_whole"], results["reading_peak_growth_mb_blocks"]
    reading = "not measured (no /proc here)" if whole is None else (
        f"the peak resident memory grows by {whole:.0f} MB read whole (`read_wav`, as `listen` read it before), "
        f"by {blocks:.0f} MB read in blocks (`speech.WavBlocks`)"
    )  # fmt: skip
    notes = [
        f"Target: at least {results['target_real_time_factor']:.0f}x real time on 2 cores: **{verdict}** "
        f"({results['real_time_factor']:.1f}x; {results['cpu_cores']} CPU cores here).",
        f"Batched against one stream per call on the same slice: {results['slice_speedup']:.1f}x faster; windows "
        f"identical: {results['slice_windows_identical']}.",
        f"Memory: peak resident {results['peak_resident_mb_before']:.0f} MB after loading the export, "
        f"{results['peak_resident_mb_after']:.0f} MB after the whole recording (`resource.getrusage` ru_maxrss, "
        f"TensorFlow included). Resident memory (VmRSS) at 0, 25, 50, 75 and 100% of the recording: {resident} MB.",
        f"Reading the {results['wav_megabytes']:.0f} MB WAV file alone, in a fresh process: {reading}.",
        f"{results['detections']} detections at threshold {results['threshold']} (the recording holds human digits, "
        f"which are keywords, and noise).",
        f"Export {results['export']}, hop {results['hop_ms']} ms, TensorFlow {results['tensorflow']}.",
    ]
    bullets = "\n".join(f"- {note}" for note in notes)
    return f"""# `listen` on {hours:.2f} h of audio

| path | audio | wall | real-time factor |
|---|---|---|---|
{table}

{bullets}

Reproduce: `{command}`
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=pathlib.Path,
                        help=f"a version folder (default: the latest under {DEFAULT_EXPORT_BASE})")  # fmt: skip
    parser.add_argument("--seconds", type=int, default=3600, help="length of the recording to write")
    parser.add_argument("--wav", type=pathlib.Path, help="a recording to use instead of writing one")
    parser.add_argument("--old-seconds", type=float, default=120.0, dest="old_seconds",
                        help="the slice on which the old path is timed")  # fmt: skip
    parser.add_argument("--output", default="reports/benchmarks", help="folder for listen_speed.json and .md")
    arguments = parser.parse_args(argv)
    if arguments.seconds < 1 or arguments.old_seconds <= 0:
        parser.error(f"--seconds and --old-seconds must be positive. Received: --seconds {arguments.seconds}, "
                     f"--old-seconds {arguments.old_seconds}")  # fmt: skip
    export = arguments.export or latest_export()
    wav = arguments.wav
    if wav is None:
        wav = pathlib.Path(tempfile.gettempdir()) / f"listen_speed_{arguments.seconds}s.wav"
        if not wav.is_file() or speech.WavBlocks(wav).frames != arguments.seconds * SAMPLE_RATE:
            start = time.perf_counter()
            write_recording(wav, arguments.seconds)
            print(f"Wrote {wav} ({arguments.seconds} s) in {time.perf_counter() - start:.1f} s")
    results = measure(export, wav, arguments.old_seconds)
    command = "python -m benchmarks.listen_speed " + " ".join(
        [f"--export {export}", f"--seconds {arguments.seconds}", f"--old-seconds {arguments.old_seconds:g}"]
        + ([f"--wav {arguments.wav}"] if arguments.wav else [])
    )
    results["command"] = command
    output = pathlib.Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "listen_speed.json").write_text(json.dumps(results, indent=2))
    (output / "listen_speed.md").write_text(report(results, command))
    print(f"Wrote {output / 'listen_speed.md'} and listen_speed.json")
    return results


if __name__ == "__main__":
    main()
