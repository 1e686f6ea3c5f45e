"""Caption files in their released formats."""

from __future__ import annotations

import json

import pytest

from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.captions import read_captions
from tests.fixtures.captions import make_caption_files, write_csv


def test_each_format_normalized_in_order(tmp_path):
    f = make_caption_files(tmp_path)
    assert read_captions(f["txt"]) == ["A dog barks.", "A cat meows"]
    assert read_captions(f["coco"]) == ["A man riding a horse.", "A cat meows"]
    assert read_captions(f["audiocaps"]) == ["A woman talks, then a dog barks"]
    assert read_captions(str(f["clotho"])) == [
        "Static, then a voice",
        "b",
        "A man riding a horse.",
        "d",
        "e",
    ]
    assert read_captions(f["msrvtt"]) == ["a video"]
    assert read_captions(f["cc3m"]) == ["a photo of a tree"]


def test_duplicates_removed_across_files_keeping_first(tmp_path):
    f = make_caption_files(tmp_path)
    texts = read_captions([f["txt"], f["coco"], f["clotho"]])
    assert texts == [
        "A dog barks.",
        "A cat meows",
        "A man riding a horse.",
        "Static, then a voice",
        "b",
        "d",
        "e",
    ]
    kept = read_captions([f["txt"], f["coco"]], deduplicate=False)
    assert kept == [
        "A dog barks.",
        "A cat meows",
        "A dog barks.",
        "A man riding a horse.",
        "A cat meows",
    ]


def test_glob_patterns_sorted(tmp_path):
    f = make_caption_files(tmp_path)
    texts = read_captions(str(tmp_path / "*.csv"))  # clotho_... sorts before train.csv
    assert texts[0] == "Static, then a voice" and texts[-1] == "A woman talks, then a dog barks"
    texts = read_captions([str(tmp_path / "**" / "*.json"), f["txt"]])
    assert texts == ["A man riding a horse.", "A cat meows", "a video", "A dog barks."]


def test_caption_errors(tmp_path):
    make_caption_files(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"(?s)missing: .*nope.txt.*expected layout"):
        read_captions([tmp_path / "extra.txt", tmp_path / "nope.txt"])
    with pytest.raises(DatasetNotFoundError, match=r"any file matching .*\*\.jsonl"):
        read_captions(str(tmp_path / "*.jsonl"))
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetCorruptError, match=r"(?s)bad.json.*'annotations'.*images"):
        read_captions(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DatasetCorruptError, match="JSONDecodeError"):
        read_captions(tmp_path / "broken.json")
    write_csv(tmp_path / "meta.csv", ["filename", "fold"], [["a.wav", "1"]])
    with pytest.raises(DatasetCorruptError, match="caption_1..5"):
        read_captions(tmp_path / "meta.csv")
    (tmp_path / "short.csv").write_text("audiocap_id,youtube_id,start_time,caption\n1,abc\n")
    with pytest.raises(DatasetCorruptError, match="line 2"):
        read_captions(tmp_path / "short.csv")
    (tmp_path / "caps.xml").write_text("<x/>")
    with pytest.raises(DatasetCorruptError, match=r"\.txt, \.json, \.csv or \.tsv"):
        read_captions(tmp_path / "caps.xml")
