"""The user's own data (`--data`) for the sentiment and stock apps: files made here, trained, exported,
predicted and evaluated; and every kind of bad file refused before training, with nothing written."""

import os
import re

import numpy as np
import pandas as pd
import pytest

from apps import pipeline, sentiment, stock_forecast
from data import sources
from tests.helpers import ROOT, folders, nothing_written, run_app

EXAMPLES = os.path.join(ROOT, "data", "examples")


def review_rows(count=20):
    """Three classes with words of their own, so that even a one-epoch model has something to learn."""
    words = {
        "good": ["wonderful", "delightful", "superb", "moving", "charming"],
        "bad": ["tedious", "awful", "dull", "lazy", "clumsy"],
        "mixed": ["uneven", "patchy", "partly", "sometimes", "halfway"],
    }
    rows = []
    for index in range(count):
        for label, vocabulary in words.items():
            text = f"{vocabulary[index % 5]} and {vocabulary[(index + 2) % 5]}, film number {index}"
            rows.append({"review": text, "stars": label, "critic": f"critic{index % 7}"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def trained_reviews(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reviews")
    path = tmp_path / "reviews.jsonl"
    review_rows().to_json(path, orient="records", lines=True)
    arguments = ["--data", str(path), "--text-column", "review", "--label-column", "stars", *folders(tmp_path)]
    report = pipeline.main(sentiment.SentimentApp(), ["train", "--quick", *arguments])
    return tmp_path, path, arguments, report


def test_sentiment_trains_on_three_classes_of_a_jsonl_file(trained_reviews, capsys):
    tmp_path, path, arguments, report = trained_reviews
    assert report["data"]["source"] == str(path)
    assert sum(report["data"]["examples"].values()) == 60
    assert report["model"]["examples"] == report["data"]["examples"]["test"]
    version = tmp_path / "saved_models" / "sentiment" / "1"
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version))
    assert [value.decode() for value in loaded.signatures["labels"]()["labels"].numpy()] == ["bad", "good", "mixed"]
    outputs = pipeline.main(sentiment.SentimentApp(), ["predict", "superb and charming", "dull", *folders(tmp_path)])
    assert outputs["probabilities"].shape == (2, 3)
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert set(outputs["label"]) <= {b"bad", b"good", b"mixed"}
    evaluated = pipeline.main(sentiment.SentimentApp(), ["evaluate", *arguments])
    assert evaluated["model"]["examples"] == report["model"]["examples"]
    assert re.search(r"p\((bad|good|mixed)\)=0\.\d{3}", capsys.readouterr().out)


def test_sentiment_folder_of_class_subfolders_keeps_the_two_class_contract(tmp_path):
    data = tmp_path / "reviews"
    for label, texts in (("liked", ["lovely", "great fun", "a joy", "warm"]), ("disliked", ["boring", "bad", "slow", "dull"])):
        (data / label).mkdir(parents=True)
        for index, text in enumerate(texts * 3):
            (data / label / f"{index}.txt").write_text(f"{text} {index}")
    report = pipeline.main(sentiment.SentimentApp(), ["train", "--quick", "--data", str(data), *folders(tmp_path)])
    assert report["data"]["examples"] == {"train": 18, "validation": 2, "test": 4}  # 9, 1 and 2 of each class
    outputs = pipeline.main(sentiment.SentimentApp(), ["predict", "lovely", *folders(tmp_path)])
    assert sorted(outputs) == ["label", "probability"] and outputs["label"][0] in (b"liked", b"disliked")


def test_user_split_column_and_dropped_rows_are_reported(tmp_path):
    frame = review_rows(10)
    frame["split"] = ["train"] * 18 + ["validation"] * 6 + ["test"] * 6
    frame = pd.concat([frame, frame.iloc[:2], pd.DataFrame([{"review": "", "stars": "", "critic": "", "split": ""}])])
    path = tmp_path / "reviews.csv"
    frame.to_csv(path, index=False)
    options = sources.SplitOptions(split_column="split")
    data = sentiment.loaders.load_labelled_texts(path, options, "review", "stars")
    assert [len(data[split][0]) for split in sources.SPLIT_NAMES] == [18, 6, 6]
    assert data["dropped"] == {"duplicate rows": 2, "blank rows": 1}


def test_group_column_keeps_each_group_in_one_split(tmp_path):
    path = tmp_path / "reviews.csv"
    frame = review_rows(30)
    frame.to_csv(path, index=False)
    data = sentiment.loaders.load_labelled_texts(path, sources.SplitOptions(group_column="critic"), "review", "stars")
    critic_of = dict(zip(frame["review"], frame["critic"]))
    critics = [{critic_of[text] for text in data[split][0]} for split in sources.SPLIT_NAMES]
    assert not (critics[0] & critics[1]) and not (critics[0] & critics[2]) and not (critics[1] & critics[2])


def write_csv(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "content, flags, message",
    [
        (None, [], "no such file"),
        ("review,stars\nfine,good\n", [], r"expected the column\(s\) \['text', 'label'\]"),
        ("text,label\n" + "nice,good\nawful,bad\n" * 3 + "\n,good\n", [], r"line 9: column 'text' is empty"),
        ("text,label\n" + "".join(f"t{i},good\nu{i},bad\n" for i in range(6)) + "lonely,other\n", [],
         r"at least 2 examples.*\['other'\]"),
        ("text,label,split\n" + "".join(f"t{i},good,train\nu{i},bad,train\n" for i in range(4)) + "v,good,validation\n"
         "w,new,test\nx,new,test\n", ["--split-column", "split"], r"training examples.*'new': \['test'\]"),
        ("text,label,split\na,good,train\nb,bad,train\nc,good,dev\n", ["--split-column", "split"],
         r"line 4: column 'split' must be one of \['train', 'validation', 'test'\]. Received: 'dev'"),
        ("text,label\n", [], "no rows"),
        ("text,label\nI loved it, really,good\n" + "nice,good\nawful,bad\n" * 3, [],
         r"line 2: expected 2 fields as in the header. Received 3: \['I loved it', ' really', 'good'\]"),
        ("text,label\n" + "nice,good\nawful,bad\n" * 3 + "I loved it, really,good\n", [], r"line 8, saw 3"),
    ],
    ids=["missing-file", "missing-column", "empty-text", "rare-label", "label-only-in-test", "bad-split", "empty",
         "unquoted-comma-first", "unquoted-comma-later"],
)
def test_bad_sentiment_files_are_refused_before_training(tmp_path, content, flags, message):
    path = tmp_path / "input" / "data.csv"
    path.parent.mkdir()
    if content is not None:
        path.write_text(content)
    output = tmp_path / "output"
    with pytest.raises(sources.DataError, match=message) as raised:
        pipeline.main(sentiment.SentimentApp(), ["train", "--quick", "--data", str(path), *flags, *folders(output)])
    assert str(path) in str(raised.value)
    assert nothing_written(output)


def test_bad_data_is_one_line_and_a_nonzero_exit_on_the_command_line(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", "text,label\nonly one,good\nanother,bad\n")
    process = run_app("sentiment", ["train", "--data", str(path), *folders(tmp_path / "output")])
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith(f"error: {path}")
    assert nothing_written(tmp_path / "output")


# ---------------------------------------------------------------------------------------------------------
# Stock forecasting
# ---------------------------------------------------------------------------------------------------------


def test_stock_trains_on_the_long_example_and_evaluates_the_wide_one(tmp_path, capsys):
    arguments = ["--horizon", "3", "--window", "20", *folders(tmp_path)]
    report = pipeline.main(
        stock_forecast.StockForecastApp(),
        ["train", "--quick", "--data", os.path.join(EXAMPLES, "prices_long.csv"), "--series-column", "series", *arguments],
    )  # fmt: skip
    assert report["model"]["windows"] > 0 and "coverage80_day3" in report["model"]
    # No --split-dates: the span's unique dates cut at 80% and 90%, so validation and test start there.
    dates = pd.DatetimeIndex(pd.read_csv(os.path.join(EXAMPLES, "prices_long.csv"))["date"].unique())
    assert report["data"]["examples"]["test"] > 0
    data = stock_forecast.StockForecastApp().load_data(stock_forecast.StockConfig(
        data_path=os.path.join(EXAMPLES, "prices_long.csv"), series_column="series", window=20, horizon=3))
    assert data["split_starts"] == [str(dates[int(0.8 * len(dates))].date()), str(dates[int(0.9 * len(dates))].date())]
    outputs = pipeline.main(stock_forecast.StockForecastApp(), ["predict", ",".join(["10"] * 12), *folders(tmp_path)])
    assert outputs["forecast"].shape == (1, 3)
    wide = pipeline.main(
        stock_forecast.StockForecastApp(), ["evaluate", "--data", os.path.join(EXAMPLES, "prices_wide.csv"), *arguments]
    )  # fmt: skip
    assert wide["model"]["windows"] == report["model"]["windows"]  # the same series, in the other layout
    assert "80% interval" in capsys.readouterr().out


def test_wide_and_long_layouts_read_the_same_prices():
    wide, _ = stock_forecast.loaders.load_price_table(os.path.join(EXAMPLES, "prices_wide.csv"))
    long, _ = stock_forecast.loaders.load_price_table(os.path.join(EXAMPLES, "prices_long.csv"), series_column="series")
    pd.testing.assert_frame_equal(wide, long[wide.columns])
    assert wide["GLOBEX"].isna().sum() == 20 and wide.index.is_monotonic_increasing


def test_split_dates_cut_the_span_by_time(tmp_path):
    config = stock_forecast.StockConfig(
        data_path=os.path.join(EXAMPLES, "prices_wide.csv"), window=10, horizon=2, split_dates=("2023-09-01", "2023-11-01")
    )  # fmt: skip
    data = stock_forecast.StockForecastApp().load_data(config)
    for split, (first, last) in {"train": (None, "2023-09-01"), "validation": ("2023-09-01", "2023-11-01"),
                                 "test": ("2023-11-01", None)}.items():  # fmt: skip
        dates = pd.DatetimeIndex(data[split][3])
        assert first is None or dates.min() >= pd.Timestamp(first)
        assert last is None or dates.max() < pd.Timestamp(last)


PRICES = "date,A,B\n" + "".join(f"2024-01-{day:02d},{100 + day},{50 + day}\n" for day in range(1, 29))


@pytest.mark.parametrize(
    "content, flags, message",
    [
        (PRICES.replace("2024-01-05", "Jan the fifth"), [], r"line 6: column 'date' must hold a date.*'Jan the fifth'"),
        (PRICES.replace(",105,", ",abc,"), [], r"line 6: column 'A' must hold a positive number.*'abc'"),
        (PRICES.replace(",105,", ",-3,"), [], r"line 6: column 'A' must hold a positive number.*'-3'"),
        (PRICES.replace(",105,", ",0,"), [], r"line 6: column 'A' must hold a positive number.*'0'"),
        (PRICES + "2024-01-03,1,1\n", [], r"line 30: 2024-01-03 is given twice"),
        (PRICES, ["--window", "30"], r"no complete window of 30 values"),
        (PRICES, ["--split-dates", "2023-01-01,2024-01-10"], "the split dates must fall inside the data"),
        ("date,series,value\n2024-01-01,A,1\n", ["--series-column", "ticker"], r"expected the column\(s\) \['ticker'\]"),
    ],
    ids=["bad-date", "not-a-number", "negative", "zero", "conflicting-date", "too-short", "split-dates", "column"],
)
def test_bad_price_files_are_refused_before_training(tmp_path, content, flags, message):
    path = write_csv(tmp_path / "prices.csv", content)
    output = tmp_path / "output"
    with pytest.raises(sources.DataError, match=message) as raised:
        pipeline.main(stock_forecast.StockForecastApp(),
                      ["train", "--quick", "--data", str(path), "--window", "10", "--horizon", "2", *flags, *folders(output)])  # fmt: skip
    assert str(path) in str(raised.value)
    assert nothing_written(output)


def test_series_never_split_at_random():
    with pytest.raises(ValueError, match="split by time.*Received: group_column='ticker'"):
        stock_forecast.StockConfig(data_path="prices.csv", group_column="ticker")
    with pytest.raises(ValueError, match="split your own data.*without --data"):
        sentiment.SentimentConfig(split_fractions=(0.5, 0.25, 0.25))
    with pytest.raises(ValueError, match="Received: window=5"):
        stock_forecast.StockConfig(window=5)


def test_every_example_file_loads_with_its_apps_reader():
    default = sources.SplitOptions()
    reviews = sentiment.loaders.load_labelled_texts(os.path.join(EXAMPLES, "reviews.csv"), default)
    assert reviews["classes"] == ["negative", "positive"] and len(reviews["test"][0]) >= 1
    pairs = sentiment.loaders.load_translation_pairs(os.path.join(EXAMPLES, "translation_pairs.tsv"), options=default)
    assert all(len(pairs[split][0]) >= 1 for split in sources.SPLIT_NAMES)
    from data import speech

    clips = speech.load_audio_folder(os.path.join(EXAMPLES, "speech_keywords"), default)
    assert clips["labels"] == ["_silence_", "lights_off", "lights_on"]
    assert all(clips[split][0].shape[1:] == (speech.CLIP_SAMPLES,) for split in sources.SPLIT_NAMES)


def test_json_lines_keep_their_line_numbers_past_blank_lines(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"text": "fine", "label": "good"}\n\n{"text": "", "label": "bad"}\n')
    with pytest.raises(sources.DataError, match=r"line 3: column 'text' is empty"):
        sentiment.loaders.load_labelled_texts(path, sources.SplitOptions())
