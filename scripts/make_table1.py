"""Build results/table1.{md,csv} from the results.jsonl files of finished runs.

One row per method (the newest run of each), the test-split metrics of the shared evaluation
suite as columns, and the paper's headline number where one applies.

    python scripts/make_table1.py runs/table1 --out results/table1
    python scripts/make_table1.py runs/table1 --update   # rows without a run here stay as committed

``--update`` rebuilds only the methods that have a run under the folder and keeps the other rows
of the existing table, so one changed experiment is re-measured without rerunning all five
(``make reproduce-table1 TABLE1="cmcr ig_embedding"``).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

COLUMNS = [
    ("knn_top1/image", "image kNN top-1"),
    ("knn_top1/audio", "audio kNN top-1"),
    ("linear_top1/image", "image linear top-1"),
    ("linear_top1/audio", "audio linear top-1"),
    ("retrieval/a2i_r1", "a2i R@1"),
    ("retrieval/a2i_map", "a2i mAP"),
    ("retrieval/i2a_r1", "i2a R@1"),
    ("retrieval/i2a_map", "i2a mAP"),
    ("retrieval/a2i_class_r1", "a2i class R@1"),
    ("retrieval/i2a_class_r1", "i2a class R@1"),
    ("cluster_purity", "cluster purity"),
    ("modality_acc", "modality acc"),
    ("crossmodal_acc/audio2image", "a2i cross-modal acc"),
    ("crossmodal_acc/image2audio", "i2a cross-modal acc"),
    ("localization/peak_acc", "localization peak acc"),
]
# method -> (metric, paper value, where the paper's number comes from)
HEADLINE = {
    "bma_memory": (
        "linear_top1/image",
        0.778,
        "ACIVW image linear top-1, + unpaired Kinetics sounds (Table 1)",
    ),
    "dmc": (
        "linear_top1/audio",
        0.826,
        "ESC-50 audio linear SVM accuracy, 5 folds, the visually supervised DMC (leaderboard)",
    ),
    "ig_embedding": ("cluster_purity", 0.984, "purity, MNIST+TIDIGITS, lambda 2.15e-2 (Table 1)"),
    "cmcr": ("retrieval/a2i_map", 0.0411, "AVE A2I mAP, CLIP+CLAP, instance level (Table 1)"),
    "vae_associator": (
        "crossmodal_acc/audio2image",
        0.8866,
        "GSC->MNIST cross-modal recognition accuracy (Table 1)",
    ),
}


def latest_results(root: Path) -> dict[str, dict[str, float]]:
    """method -> {metric: value} from the newest results.jsonl per method (test split)."""
    by_method: dict[str, tuple[float, dict[str, float]]] = {}
    for path in root.rglob("results.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        test = [r for r in records if r["split"] == "test"]
        if not test:
            continue
        method, stamp = test[-1]["method"], path.stat().st_mtime
        if method not in by_method or stamp > by_method[method][0]:
            by_method[method] = (stamp, {r["metric"]: r["value"] for r in test})
    return {m: v for m, (_, v) in sorted(by_method.items())}


def committed_rows(csv_path: Path) -> dict[str, list[str]]:
    """method -> its row of an existing table1.csv (none when there is no table yet)."""
    if not csv_path.is_file():
        return {}
    with csv_path.open(newline="") as f:
        return {row[0]: row for row in list(csv.reader(f))[1:] if row}


def build(root: Path, out: Path, update: bool = False) -> str:
    results = latest_results(root)
    header = ["method"] + [label for _, label in COLUMNS] + ["paper headline", "ours (same metric)"]
    kept = committed_rows(out.with_suffix(".csv")) if update else {}
    rows = [row for method, row in kept.items() if method not in results]
    for method, metrics in results.items():
        row = [method] + [f"{metrics[k]:.3f}" if k in metrics else "-" for k, _ in COLUMNS]
        if method in HEADLINE:
            key, value, where = HEADLINE[method]
            row += [f"{value:.3f} ({where})", f"{metrics[key]:.3f}" if key in metrics else "-"]
        else:
            row += ["-", "-"]
        rows.append(row)
    rows.sort(key=lambda r: r[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    text = (
        "# Table 1: every method on the embedded spoken/handwritten digits (test split)\n\n"
        "Built by `make reproduce-table1` from each run's results.jsonl; '-' marks an "
        "evaluation that does not apply or has not run.\n\n" + "\n".join(md) + "\n"
    )
    out.with_suffix(".md").write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("root", type=Path, help="folder searched for results.jsonl files")
    ap.add_argument("--out", type=Path, default=Path("results/table1"))
    ap.add_argument(
        "--update", action="store_true", help="keep the rows of methods with no run under root"
    )
    args = ap.parse_args()
    print(build(args.root, args.out, args.update))


if __name__ == "__main__":
    main()
