"""Translation on the user's own sentence pairs (`--data`): train, predict and evaluate on a made-up
language pair, headered tables with their own split, a dataset whose length tf.data knows, and every kind
of bad file refused with its file and line before anything is written."""

import itertools
import re
import sys

import pytest

from apps import pipeline, translation
from data import sources
from tests.helpers import folders, nothing_written

# A made-up language: every English word has one word, in the same order, so a quick model has a chance.
SUBJECTS = {"the cat": "lo gato", "the dog": "lo cano", "my friend": "mi amiko", "the child": "lo infanto"}
VERBS = {"sees": "vidas", "likes": "amas", "finds": "trovas"}
OBJECTS = {"the ball": "la bolo", "the house": "la domo", "a bird": "un birdo", "the tree": "la arbo"}
# Long enough for the second length bucket of the training batches, short enough for --quick's 20 words.
LONG_PAIRS = [
    ("The cat sees the ball and the dog finds the tree and my friend likes a bird.",
     "Lo gato vidas la bolo kaj lo cano trovas la arbo kaj mi amiko amas un birdo."),
    ("The child likes the house and the cat finds a bird and the dog sees the tree.",
     "Lo infanto amas la domo kaj lo gato trovas un birdo kaj lo cano vidas la arbo."),
]  # fmt: skip
TOO_LONG = " ".join(["the cat sees the ball"] * 5)  # 25 words and no sentence end to cut at: dropped


def sentence(*phrases):
    text = " ".join(phrases)
    return text[0].upper() + text[1:] + "."


def made_up_pairs():
    pairs = [
        (sentence(subject, verb, thing), sentence(SUBJECTS[subject], VERBS[verb], OBJECTS[thing]))
        for subject, verb, thing in itertools.product(SUBJECTS, VERBS, OBJECTS)
    ]
    return pairs + LONG_PAIRS


def write_pairs(path, pairs, extra_lines=()):
    path.write_text("\n".join([f"{source}\t{target}\tCC-BY made up" for source, target in pairs] + list(extra_lines)) + "\n")
    return path


def train(path, tmp_path, *arguments):
    return pipeline.main(translation.TranslationApp(), ["train", "--quick", "--data", str(path), *arguments, *folders(tmp_path)])


@pytest.fixture(scope="module")
def trained_on_pairs(tmp_path_factory):
    """One quick model on the made-up pairs, with a blank line, a repeated pair and a too-long pair to drop."""
    tmp_path = tmp_path_factory.mktemp("translation_user_data")
    pairs = made_up_pairs()
    path = write_pairs(tmp_path / "pairs.tsv", pairs, ["", f"{pairs[0][0]}\t{pairs[0][1]}", f"{TOO_LONG}\t{TOO_LONG}"])
    return tmp_path, path, train(path, tmp_path)


def test_train_on_own_pairs_reports_the_file_and_what_was_dropped(trained_on_pairs):
    tmp_path, path, report = trained_on_pairs
    assert report["data"]["source"] == str(path)
    assert report["data"]["dropped"] == {"blank rows": 1, "duplicate rows": 1, "pairs longer than 20 words": 1}
    assert sum(report["data"]["examples"].values()) == len(made_up_pairs())
    assert set(report["baselines"]) == {"identity (copy the source)", "word by word (dictionary from training)"}
    assert 0.0 <= report["model"]["bleu"] <= 100.0
    report_dir = tmp_path / "reports" / "translation"
    samples = (report_dir / "samples.md").read_text()
    assert "## Best" in samples and "**source**" in samples
    assert "Bible" not in samples and "English" not in samples
    assert report["files"] == [str(report_dir / "samples.md")]
    assert (tmp_path / "saved_models" / "translation" / "1").is_dir()


def test_predict_then_evaluate_the_export_on_the_files_test_split(trained_on_pairs, capsys):
    tmp_path, path, trained_report = trained_on_pairs
    app = translation.TranslationApp()
    outputs = pipeline.main(app, ["predict", "The dog likes the tree.", *folders(tmp_path)])
    assert outputs["translation"].shape == (1,)
    assert "->" in capsys.readouterr().out
    report = pipeline.main(app, ["evaluate", "--quick", "--data", str(path), *folders(tmp_path)])
    assert report["data"] == trained_report["data"]
    assert report["model"] == trained_report["model"]  # the same export on the same test pairs
    assert report["export"] == str(tmp_path / "saved_models" / "translation" / "1")


def test_headered_table_with_its_own_split_and_groups(tmp_path):
    pairs = made_up_pairs()
    rows = ["english,spanish,split,speaker"] + [
        f'"{source}","{target}",{["train", "train", "validation", "test"][index % 4]},{index % 10}'
        for index, (source, target) in enumerate(pairs)
    ]
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    app = translation.TranslationApp()
    columns = ["--data", str(path), "--source-column", "english", "--target-column", "spanish"]

    def load(*arguments):
        parsed = pipeline.build_parser(app).parse_args(["train", "--quick", *columns, *arguments])
        return app.load_data(pipeline.config_from_arguments(app, parsed))

    data = load("--split-column", "split")
    assert data["test"] == ([source for source, _ in pairs[3::4]], [target for _, target in pairs[3::4]])
    assert len(data["validation"][0]) == len(pairs[2::4]) and len(data["train"][0]) == len(pairs[0::4] + pairs[1::4])
    assert data["vocabularies"]["target"][:2] == ["[START]", "[END]"]
    grouped = load("--group-column", "speaker")
    speaker_of = {source: index % 10 for index, (source, _) in enumerate(pairs)}
    speakers = {split: {speaker_of[source] for source in grouped[split][0]} for split in sources.SPLIT_NAMES}
    assert not speakers["train"] & speakers["test"] and not speakers["validation"] & speakers["test"]


def test_default_split_keeps_each_source_sentence_in_one_split(tmp_path):
    pairs = made_up_pairs()
    # Every sentence has a second translation: both must land in the same split.
    path = write_pairs(tmp_path / "pairs.tsv", pairs + [(source, target.replace(".", "!")) for source, target in pairs])
    config = translation.TranslationConfig(data_path=str(path), max_words=20)
    data = translation.TranslationApp().load_data(config)
    seen = {split: set(data[split][0]) for split in sources.SPLIT_NAMES}
    assert not seen["train"] & seen["validation"] and not seen["train"] & seen["test"] and not seen["validation"] & seen["test"]
    assert sum(len(data[split][0]) for split in sources.SPLIT_NAMES) == 2 * len(pairs)


def test_training_batches_have_a_known_count(tmp_path):
    """tf.data is told how many length-bucketed batches there are, so Keras never runs out of data."""
    path = write_pairs(tmp_path / "pairs.tsv", made_up_pairs())
    config = translation.TranslationConfig(data_path=str(path), max_words=20, batch_size=4)
    app = translation.TranslationApp()
    data = app.load_data(config)
    for split, training in (("train", True), ("validation", False)):
        dataset = app.make_dataset(config, data, split, training)
        sizes = [len(target) for _, target in dataset.as_numpy_iterator()]
        assert int(dataset.cardinality()) == len(sizes) and sum(sizes) == len(data[split][0])
    assert len({len(target[0]) for _, target in app.make_dataset(config, data, "train", False)}) > 1


def good_lines():
    return [f"{source}\t{target}" for source, target in made_up_pairs()]


BAD_FILES = {
    "no tab": (good_lines()[:2] + ["A sentence without its translation."] + good_lines()[2:], [],
               r"line 3: expected a source and a target sentence separated by a tab\. Received 1 column"),
    "empty target": (good_lines()[:4] + ["The end.\t  "] + good_lines()[4:], [], r"line 5: column 'target' is empty"),
    "empty source": (["\tLa fin."] + good_lines(), [], r"line 1: column 'source' is empty"),
    "a split without pairs": (good_lines()[:3], [], r"every split needs at least one row, and \['validation'\] got none"),
    "a group column without a header": (good_lines(), ["--group-column", "speaker"], r"needs a headered file"),
    "an empty file": ([], [], r"Received: an empty file"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_pair_files_are_refused_before_training(case, tmp_path):
    lines, arguments, message = BAD_FILES[case]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(sources.DataError, match=re.escape(str(path)) + ".*" + message):
        train(path, tmp_path, *arguments)
    assert nothing_written(tmp_path)


def test_missing_file_and_missing_columns_are_refused_before_training(tmp_path):
    missing = tmp_path / "nowhere.tsv"
    with pytest.raises(sources.DataError, match=re.escape(str(missing)) + ": no such file"):
        train(missing, tmp_path)
    table = tmp_path / "pairs.csv"
    table.write_text("english,spanish\nThe cat.,El gato.\n")
    with pytest.raises(sources.DataError, match=re.escape(str(table)) + r".*expected the column\(s\) \['en'\]"):
        train(table, tmp_path, "--source-column", "en", "--target-column", "spanish")
    assert nothing_written(tmp_path)


def test_split_column_problems_name_the_file_and_line(tmp_path):
    pairs = made_up_pairs()
    table = tmp_path / "pairs.csv"
    rows = [f'"{source}","{target}",train' for source, target in pairs[:-3]]
    table.write_text("\n".join(["english,spanish,split", *rows, f'"{pairs[-3][0]}","{pairs[-3][1]}",tests',
                                f'"{TOO_LONG}","{TOO_LONG}",validation', f'"{TOO_LONG}","{TOO_LONG.upper()}",test',
                                *(f'"{source}","{target}",validation' for source, target in pairs[-2:])]) + "\n")  # fmt: skip
    columns = ["--source-column", "english", "--target-column", "spanish", "--split-column", "split"]
    with pytest.raises(sources.DataError, match=re.escape(str(table)) + f", line {len(pairs) - 1}: column 'split'"):
        train(table, tmp_path, *columns)
    table.write_text(table.read_text().replace(",tests", ",train"))
    with pytest.raises(sources.DataError, match=r"the test split holds no pair of at most 20 words a side"):
        train(table, tmp_path, *columns)
    assert nothing_written(tmp_path)


def test_the_command_line_says_bad_data_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "pairs.tsv"
    path.write_text("Hello.\tHola.\nGoodbye.\n")
    monkeypatch.setattr(sys, "argv", ["apps.translation", "train", "--quick", "--data", str(path), *folders(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        pipeline.command_line(translation.TranslationApp())
    assert str(exit_info.value) == (
        f"error: {path}, line 2: expected a source and a target sentence separated by a tab. "
        "Received 1 column: 'Goodbye.'"
    )
    assert nothing_written(tmp_path)


def test_source_and_target_columns_come_together_and_with_data():
    with pytest.raises(ValueError, match="Received: source_column='english', target_column=''"):
        translation.TranslationConfig(data_path="pairs.csv", source_column="english")
    with pytest.raises(ValueError, match="data_path=''"):
        translation.TranslationConfig(source_column="english", target_column="spanish")
