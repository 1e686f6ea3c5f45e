"""scripts/make_table1.py: one row per method from the newest test results, and ``--update``
re-measuring some methods while the other rows stay as committed."""

from __future__ import annotations

import csv
import importlib.util
import json

from tests.conftest import ROOT


def load_make_table1():
    spec = importlib.util.spec_from_file_location("make_table1", ROOT / "scripts/make_table1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(folder, method: str, metrics: dict[str, float]) -> None:
    folder.mkdir(parents=True)
    lines = [{"split": "val", "method": method, "metric": "knn_top1/image", "value": 0.0}]
    lines += [
        {"split": "test", "method": method, "metric": k, "value": v} for k, v in metrics.items()
    ]
    (folder / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def rows_of(out) -> dict[str, dict[str, str]]:
    with out.with_suffix(".csv").open(newline="") as f:
        return {r["method"]: r for r in csv.DictReader(f)}


def test_update_replaces_rerun_methods_and_keeps_the_others(tmp_path):
    table1 = load_make_table1()
    out = tmp_path / "results" / "table1"
    first = tmp_path / "first"
    write_run(first / "cmcr/version_0", "cmcr", {"knn_top1/image": 0.5, "retrieval/a2i_map": 0.1})
    write_run(first / "dmc/version_0", "dmc", {"knn_top1/image": 0.7})
    table1.build(first, out)
    rows = rows_of(out)
    assert (
        rows["cmcr"]["image kNN top-1"] == "0.500" and rows["cmcr"]["ours (same metric)"] == "0.100"
    )
    assert rows["dmc"]["image kNN top-1"] == "0.700" and rows["dmc"]["audio kNN top-1"] == "-"

    again = tmp_path / "again"  # only C-MCR re-measured
    write_run(again / "cmcr/version_0", "cmcr", {"knn_top1/image": 0.9})
    table1.build(again, out, update=True)
    rows = rows_of(out)
    assert list(rows) == ["cmcr", "dmc"]
    assert rows["cmcr"]["image kNN top-1"] == "0.900" and rows["cmcr"]["a2i mAP"] == "-"
    assert rows["dmc"]["image kNN top-1"] == "0.700"  # kept as committed
    assert "| dmc | 0.700 |" in out.with_suffix(".md").read_text()

    table1.build(again, out)  # without --update: only what the folder holds
    assert list(rows_of(out)) == ["cmcr"]
