"""Each app's raw serving inputs from command-line strings, and its outputs as text, without TensorFlow.

The serving client and an app's own `predict` verb both use these, so a client parses and prints exactly
as the app does without loading apps/ or TensorFlow. `PARSERS[app](values)` gives the signature's inputs
`{name: np.ndarray}`; `FORMATTERS[app](inputs, outputs)` gives the text for its outputs.
"""

import numpy as np


def text_inputs(values):
    """`{"text": [batch] object array}`, the input of the text apps."""
    return {"text": np.array(values, dtype=object)}


def format_sentiment(inputs, outputs):
    """The label per text and its own probability: from `probabilities` (more than two classes), or from the
    two-class contract's `probability` of the second class, where the first class has 1 - p."""
    if "probabilities" in outputs:
        own = outputs["probabilities"].max(axis=1)
    else:
        own = np.maximum(outputs["probability"], 1.0 - outputs["probability"])
    lines = []
    for text, label, probability in zip(inputs["text"], outputs["label"], own):
        shown = text if len(text) <= 70 else text[:67] + "..."
        lines.append(f"{label.decode():>8}  p({label.decode()})={probability:.3f}  {shown!r}")
    return "\n".join(lines)


def parse_prices(values):
    """`{"prices": [batch, time] float32}` from comma-separated prices, oldest first, one row per value."""
    rows = []
    for value in values:
        try:
            rows.append([float(price) for price in value.replace(" ", "").split(",") if price])
        except ValueError:
            raise ValueError(f"Each input is comma-separated prices, oldest first. Received: {value!r}") from None
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        raise ValueError(f"All price rows in one request must have the same length. Received lengths: {sorted(lengths)}")
    return {"prices": np.array(rows, "float32")}


def format_stock_forecast(inputs, outputs):
    lines = []
    for row, prices in enumerate(inputs["prices"]):
        lines.append(f"Window of {len(prices)} prices, last {prices[-1]:.2f}:")
        lines.append("  day   forecast   80% interval")
        for step in range(outputs["forecast"].shape[1]):
            lines.append(
                f"  +{step + 1:<3} {outputs['forecast'][row, step]:9.2f}   "
                f"[{outputs['lower'][row, step]:.2f}, {outputs['upper'][row, step]:.2f}]"
            )
    return "\n".join(lines)


def format_translation(inputs, outputs):
    return "\n".join(
        f"{source}\n  -> {translation.decode()}" for source, translation in zip(inputs["text"], outputs["translation"])
    )


def read_wav(path, blocks=False):
    """A WAV file as float32 mono 16 kHz samples in [-1, 1], as the speech app's training clips; with `blocks`,
    a `speech.WavBlocks` that reads the same samples block by block as they are used, for a long recording."""
    from data import speech  # the corpus' own reader, so that clients hear what training heard

    try:
        return speech.WavBlocks(path) if blocks else speech.read_wav(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read a WAV file at {path}. Received: {error}") from None


def parse_audio(values):
    """`{"audio": [batch, samples] float32}` from WAV paths; shorter clips are padded with silence on both
    sides to the longest, so one batch holds them all (serving then pads or crops each row to 1 s the
    same way it would alone)."""
    clips = [read_wav(value) for value in values]
    longest = max(len(clip) for clip in clips)
    rows = [np.pad(clip, ((longest - len(clip)) // 2, longest - len(clip) - (longest - len(clip)) // 2))
            for clip in clips]  # fmt: skip
    return {"audio": np.stack(rows).astype("float32")}


def format_speech_keywords(inputs, outputs, labels=None):
    """The top label and its probability per clip, and the next two with `labels`, the names of the
    probabilities' columns (the app's; a client has only the top label's name from the answer)."""
    lines = []
    for index, (label, probabilities) in enumerate(zip(outputs["label"], outputs["probabilities"])):
        line = f"clip {index + 1}: {label.decode():<10} p={probabilities.max():.3f}"
        if labels is not None:
            top = np.argsort(probabilities)[::-1][:3]
            line += "   (then " + ", ".join(f"{labels[position]} {probabilities[position]:.2f}" for position in top[1:]) + ")"
        lines.append(line)
    return "\n".join(lines)


PARSERS = {
    "sentiment": text_inputs,
    "stock_forecast": parse_prices,
    "translation": text_inputs,
    "speech_keywords": parse_audio,
}

FORMATTERS = {
    "sentiment": format_sentiment,
    "stock_forecast": format_stock_forecast,
    "translation": format_translation,
    "speech_keywords": format_speech_keywords,
}
