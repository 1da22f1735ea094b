"""Builds data/bundled/bible_en_es.tsv.gz, English-Spanish Bible verse pairs, from two Debian SWORD packages."""

import argparse
import os
import pathlib
import re
import subprocess

import numpy as np
import pandas as pd

from data import loaders
from data.build_bundled import write_gzip_csv

BIBLE_FILE = loaders.BIBLE_FILE
COLUMNS = ("book", "chapter", "verse", "english", "spanish")
SWORD_DIRECTORY = pathlib.Path("/usr/share/sword")
PYSWORD_VERSION = "0.2.8"
# (Debian package, SWORD module, versification). pysword 0.2.8 takes the versification from the module's
# .conf file, not from an argument, so the build checks that the .conf names the one expected here.
ENGLISH_MODULE = ("sword-text-web", "engWEB2015eb", "nrsva")  # World English Bible
SPANISH_MODULE = ("sword-text-sparv", "spaRV1909eb", "kjv")  # Reina-Valera 1909

# pysword deletes a footnote without leaving a space, so "God<note>...</note>created" reads "Godcreated"; a
# footnote followed by a word or an opening mark becomes a space instead (one before punctuation would be wrong).
NOTE = re.compile(r"<note\b.*?</note>(?P<before_word>(?=(?:<[^>]*>)*[\w“‘¿¡(]))?", re.DOTALL)
# pysword deletes every title with its text. The WEB marks a psalm's superscription ("A Psalm by David, ...")
# as a canonical title; the RV1909 has it as plain text in verse 1, so the WEB's must stay for the pair to match.
CANONICAL_TITLE = re.compile(r'<title\b[^>]*canonical="true"[^>]*>(.*?)</title>', re.DOTALL)


def missing_packages():
    """The Debian packages whose SWORD module directory is absent."""
    return [
        package
        for package, module, _ in (ENGLISH_MODULE, SPANISH_MODULE)
        if not (SWORD_DIRECTORY / "modules" / "texts" / "ztext" / module).is_dir()
    ]


def install_packages():
    """Installs the missing SWORD packages with apt-get when running as root; otherwise says what to install."""
    packages = missing_packages()
    if not packages:
        return
    command = ["apt-get", "install", "-y", *packages]
    if os.geteuid() != 0:
        raise SystemExit(f"The SWORD modules are missing. Install them as root: {' '.join(command)}")
    subprocess.run(["apt-get", "update"], check=True)
    subprocess.run(command, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def package_version(package):
    return subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Version}", package], check=True, capture_output=True, text=True
    ).stdout


def load_bible(sword_modules, module, versification):
    """The pysword bible of `module`, after checking that its .conf declares `versification`."""
    declared = sword_modules.parse_modules()[module].get("versification", "kjv").lower()
    if declared != versification:
        raise ValueError(
            f"Expected module {module} to use versification {versification!r}. Received: {declared!r} "
            f"in {SWORD_DIRECTORY / 'mods.d'}"
        )
    return sword_modules.get_bible_from_module(module)


def verse_text(raw, osis_cleaner):
    """Plain text of one verse: footnotes and cross-references dropped, markup stripped, whitespace collapsed."""
    text = NOTE.sub(lambda note: "" if note["before_word"] is None else " ", raw)
    text = CANONICAL_TITLE.sub(r"\1 ", text)
    text = " ".join(osis_cleaner.clean(text).split())
    if "<" in text or ">" in text:
        raise ValueError(f"Expected a verse without markup after cleaning. Received: {text!r}")
    return text


def chapter_lengths(bible):
    """`{book name: [verses in chapter 1, verses in chapter 2, ...]}` in canonical order."""
    return {
        book.name: book.chapter_lengths for books in bible.get_structure().get_books().values() for book in books
    }


def aligned_verses(english_bible, spanish_bible):
    """The verse pairs whose reference exists in both versifications, and the references dropped with why."""
    from pysword import cleaner

    osis_cleaner = cleaner.OSISCleaner()
    english_lengths, spanish_lengths = chapter_lengths(english_bible), chapter_lengths(spanish_bible)
    rows, dropped = [], []
    for book, spanish_chapters in spanish_lengths.items():
        english_chapters = english_lengths.get(book, [])
        for chapter, spanish_count in enumerate(spanish_chapters, start=1):
            english_count = english_chapters[chapter - 1] if chapter <= len(english_chapters) else 0
            for verse in range(1, max(english_count, spanish_count) + 1):
                reference = (book, chapter, verse)
                if verse > english_count or verse > spanish_count:
                    dropped.append((*reference, "not in " + ("English" if verse > english_count else "Spanish")))
                    continue
                english, spanish = (
                    verse_text(bible.get(books=book, chapters=chapter, verses=verse, clean=False), osis_cleaner)
                    for bible in (english_bible, spanish_bible)
                )
                if not english or not spanish:
                    dropped.append((*reference, "empty in " + ("English" if not english else "Spanish")))
                    continue
                rows.append((*reference, english, spanish))
    return pd.DataFrame(rows, columns=COLUMNS), dropped


def shifted_chapters(frame):
    """The (book, chapter) pairs whose verse lengths match better when the Spanish is moved by one verse.

    The RV1909 module declares the KJV versification but keeps the Spanish numbering in a few chapters (Jonah 2:1
    is the KJV's 1:17, Numbers 13:1 its 12:16, ...), so their verses pair with their neighbours' translation.
    """
    log_ratio = np.log(frame["spanish"].str.len() / frame["english"].str.len())
    typical = log_ratio.median()
    shifted = []
    for (book, chapter), verses in frame.groupby(["book", "chapter"], sort=False):
        english = dict(zip(verses["verse"], verses["english"].str.len()))
        spanish = dict(zip(verses["verse"], verses["spanish"].str.len()))

        def mismatch(shift):
            pairs = [(english[verse], spanish[verse + shift]) for verse in english if verse + shift in spanish]
            if len(pairs) < 2:
                return np.inf
            return np.mean([abs(np.log(spanish_length / english_length) - typical) for english_length, spanish_length in pairs])

        if min(mismatch(-1), mismatch(1)) < mismatch(0):
            shifted.append((book, chapter))
    return shifted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=pathlib.Path, default=BIBLE_FILE, help="where to write the TSV")
    arguments = parser.parse_args(argv)
    install_packages()
    try:
        from pysword import modules
    except ImportError:
        raise SystemExit(f"pysword is missing. Install it for the build: .venv/bin/pip install pysword=={PYSWORD_VERSION}")

    sword_modules = modules.SwordModules(str(SWORD_DIRECTORY))
    english_bible, spanish_bible = (
        load_bible(sword_modules, module, versification) for _, module, versification in (ENGLISH_MODULE, SPANISH_MODULE)
    )
    frame, dropped = aligned_verses(english_bible, spanish_bible)
    # A verse missing from the Spanish was merged into a neighbour, and the chapter around it may be renumbered.
    misaligned = set(shifted_chapters(frame)) | {(book, chapter) for book, chapter, _, why in dropped if why == "empty in Spanish"}
    in_misaligned = pd.Series(list(zip(frame["book"], frame["chapter"]))).isin(misaligned).to_numpy()
    print(f"left out {in_misaligned.sum()} verses of {len(misaligned)} chapters numbered differently: "
          + ", ".join(f"{book} {chapter}" for book, chapter in sorted(misaligned)))
    frame = frame[~in_misaligned].reset_index(drop=True)
    write_gzip_csv(frame, arguments.output, separator="\t")

    for package, module, versification in (ENGLISH_MODULE, SPANISH_MODULE):
        print(f"{package} {package_version(package)}: module {module}, versification {versification}")
    print(f"{arguments.output.name}: {len(frame)} verse pairs, {frame['book'].nunique()} books, "
          f"{arguments.output.stat().st_size / 1e6:.2f} MB")
    english_only = [book for book in chapter_lengths(english_bible) if book not in chapter_lengths(spanish_bible)]
    print(f"English books not in the Spanish canon, left out ({len(english_only)}): {', '.join(english_only)}")
    print(f"dropped {len(dropped)} references:")
    for reason in sorted({reason for *_, reason in dropped}):
        references = [f"{book} {chapter}:{verse}" for book, chapter, verse, why in dropped if why == reason]
        print(f"  {reason} ({len(references)}): {', '.join(references)}")


if __name__ == "__main__":
    main()
