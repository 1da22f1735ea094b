"""The speech data's command line: install the TTS engines (the explicit step `make venv` runs), build a corpus.

    python -m data.speech install-engines [--stamp FILE]
    python -m data.speech build [--quick] [--seed N] [--keywords "lights on" "lights off"]
"""

import argparse
import os
import pathlib

from data.speech import corpus, engines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m data.speech", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser(
        "install-engines",
        help="apt-get install the TTS and recording packages when root and missing; otherwise say what is missing",
    )
    install.add_argument("--stamp", help="a file to touch once every package is installed (for make)")
    build = commands.add_parser("build", help="synthesize and augment the corpus into the cache, print its sizes")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--quick", action="store_true")
    build.add_argument("--keywords", nargs="+", help="words or short phrases instead of the 20 default keywords")
    build.add_argument("--cache-dir", default=corpus.DEFAULT_CACHE_DIR)
    arguments = parser.parse_args(argv)
    if arguments.command == "install-engines":
        missing = engines.missing_packages()
        if missing and os.geteuid() != 0:
            # Not root: make goes on without the stamp (the speech corpus tests skip); a later run as root installs.
            print(f"Speech corpus: {engines.missing_engines_message(missing)}")
            return
        installed = engines.install_engines()
        print(f"Speech corpus: installed {installed}" if installed else "Speech corpus: speech packages installed")
        if arguments.stamp:
            pathlib.Path(arguments.stamp).touch()
        return
    data = corpus.load_speech_keywords(arguments.seed, arguments.quick, arguments.keywords, arguments.cache_dir)
    for split in corpus.SPLIT_NAMES:
        _, labels = data[split]
        print(f"{split}: {len(labels)} clips, {len(data['voices'][split])} voices")
    print(f"labels: {data['labels']}")
    print(f"manifest: {data['manifest']}")


if __name__ == "__main__":
    main()
