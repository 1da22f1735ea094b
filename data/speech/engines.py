"""The text-to-speech engines: their voices, the Debian packages that hold them, the explicit install step.

Loading data never installs anything: a corpus build checks `require_engines()` and raises `EnginesMissing`
with the command to run. Installing is `install_engines()`, run by `make venv` (`python -m data.speech
install-engines`); it installs the packages of human recordings (`human.SOURCES`) too.
"""

import os
import pathlib
import shutil
import subprocess

from data.speech import human

# espeak-ng's eight English accents (`espeak-ng --voices=en`, the gmw/ voices; the mb/ ones need mbrola).
ESPEAK_ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)  # fmt: skip
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
# festival voice -> the Debian package that holds it and the folder it installs.
FESTIVAL_VOICES = {
    "kal_diphone": ("festvox-kallpc16k", "/usr/share/festival/voices/english/kal_diphone"),
    "ked_diphone": ("festvox-kdlpc16k", "/usr/share/festival/voices/english/ked_diphone"),
    "cmu_us_slt_arctic_hts": ("festvox-us-slt-hts", "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"),
}
# command -> the Debian package that installs it.
ENGINE_COMMANDS = {"espeak-ng": "espeak-ng", "flite": "flite", "text2wave": "festival"}


class EnginesMissing(RuntimeError):
    """The corpus needs TTS packages that are not installed; the message names them and the install command."""


def missing_engine_packages():
    """The Debian packages whose command or festival voice is not installed."""
    missing = [package for command, package in ENGINE_COMMANDS.items() if shutil.which(command) is None]
    missing += [package for package, folder in FESTIVAL_VOICES.values() if not pathlib.Path(folder).is_dir()]
    return missing


def missing_packages():
    """Every Debian package the speech data uses that is not installed: the TTS engines, then the recordings of
    people (`human.missing_packages()`; to download / installed: asterisk-core-sounds-{en,fr,it,ru}-wav about
    18 / 24 MB each with their transcripts, ktuberling-data 47 / 63 MB, klettres-data 40 / 50 MB, alsa-utils
    1 / 2.5 MB)."""
    engine_packages = missing_engine_packages()
    return engine_packages + [package for package in human.missing_packages() if package not in engine_packages]


def install_command(packages):
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


def missing_engines_message(packages):
    return (
        f"The speech data needs the Debian packages {packages} (TTS engines, recordings of people), which are not "
        f"installed. Loading data installs nothing; install them once as root: `make venv`, or "
        f"`sudo {' '.join(install_command(packages))}` (or `python -m data.speech install-engines` as root)."
    )


def require_engines():
    """Raises `EnginesMissing` unless every TTS package is installed."""
    packages = missing_engine_packages()
    if packages:
        raise EnginesMissing(missing_engines_message(packages))


def install_engines():
    """Installs the missing TTS and human-recording packages (`missing_packages()`) with apt-get; the explicit
    step `make venv` runs as root.

    Returns the packages it installed (none when all were there). Raises `EnginesMissing` when some are missing
    and the process is not root (the message says what to run), or when they are still missing afterwards.
    """
    packages = missing_packages()
    if not packages:
        return []
    if os.geteuid() != 0:
        raise EnginesMissing(missing_engines_message(packages))
    command = install_command(packages)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # An out-of-date package list is the usual reason an install fails; updating first every time costs a minute.
    if subprocess.run(command, env=environment).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True, env=environment)
        subprocess.run(command, check=True, env=environment)
    still_missing = missing_packages()
    if still_missing:
        raise EnginesMissing(f"apt-get installed the speech packages but these are still missing: {still_missing}")
    return packages


def engine_versions():
    """`{package: Debian version}` of the TTS packages, written next to the manifest."""
    packages = sorted(set(ENGINE_COMMANDS.values()) | {package for package, _ in FESTIVAL_VOICES.values()})
    result = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Package} ${Version}\n", *packages], capture_output=True, text=True
    )
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def espeak_variants():
    """espeak-ng's voice variants (`espeak-ng --voices=variant`), sorted, e.g. ["Alex", ..., "m1", ...]."""
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    variants = [line.split()[4].removeprefix("!v/") for line in listing.splitlines()[1:] if len(line.split()) >= 5]
    return sorted(set(variants))


def variant_group(variant):
    """Variants that differ by a trailing number (iven, iven2, iven3; m1..m8) are tweaks of one voice: one group."""
    return variant.rstrip("0123456789").lower() or variant
