"""Unseen voices on the embedded digits: C-MCR, IG and the VAE associator with and without
waveform augmentation, tested on the speaker-disjoint test talkers and on talkers of voice
families no training talker has, 3 seeds.

Per (method, augmentation, seed) one ``assoc fit --config experiments/<method>.yaml`` (test
numbers on the seen-family test talkers), then ``assoc test`` of its last checkpoint with
``--data.init_args.test_voices unseen`` (the unseen-family talkers). Augmentation is set
explicitly both ways, whatever the YAML says: C-MCR's is inside its locally trained audio space
(``audio_space.init_args.augment``: C-MCR itself trains on captions only), the other two get
the ``augment:`` callback. Writes results/voices.md (mean ± sd). Finished runs are skipped, so
an interrupted study resumes.

    python scripts/voice_study.py                  # everything (about 100 min on 2 CPU cores)
    python scripts/voice_study.py --table-only     # rebuild the table from runs/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from study_runs import Run, run_all

from assoc_lightning.eval.results import mean_sd, newest_test_metrics
from assoc_lightning.utils.run_folders import newest_version

WAVE = "assoc_lightning.nn.augment.WaveAugment"
CALLBACK = "assoc_lightning.augmentation.AudioAugmentation"
TOY_AUGMENT = "--model.init_args.audio_space.init_args.augment"
# Augmentation levels, each set explicitly: off, the stronger setting (WaveAugment's first
# defaults) and the milder one (its defaults since); speed ranges, gain and pitch as the class's
LEVELS = ("off", "strong", "mild")
PRESETS = {
    "strong": {
        "speed_p": 0.5, "shift_p": 0.5, "max_shift_s": 0.1, "reverb_p": 0.3, "rt60_s": [0.1, 0.5],
        "noise_p": 0.5, "snr_db": [10.0, 40.0],
    },
    "mild": {
        "speed_p": 0.3, "shift_p": 0.5, "max_shift_s": 0.05, "reverb_p": 0.15, "rt60_s": [0.1, 0.3],
        "noise_p": 0.3, "snr_db": [20.0, 40.0],
    },
}  # fmt: skip
SUFFIX = {"off": "plain", "strong": "aug", "mild": "augmild"}


def augment_args(method: str, level: str) -> list[str]:
    """The arguments that set ``level`` explicitly, whatever the YAML and the defaults say."""
    wave = {"class_path": WAVE, "init_args": PRESETS.get(level, {})}
    if method == "cmcr":  # (a nested null does not parse; no copies is no augmentation)
        copies = ["--model.init_args.audio_space.init_args.augment_copies"]
        return [*copies, "0"] if level == "off" else [TOY_AUGMENT, json.dumps(wave), *copies, "2"]
    if level == "off":
        return ["--augment", "null"]
    callback = {"class_path": CALLBACK, "init_args": {"augment": wave}}
    return ["--augment", json.dumps(callback)]


METRICS = {  # method -> the metrics reported
    "cmcr": ("retrieval/a2i_class_r1", "retrieval/i2a_class_r1", "linear_top1/audio"),
    "ig_embedding": ("retrieval/a2i_class_r1", "retrieval/i2a_class_r1", "linear_top1/audio"),
    "vae_associator": ("crossmodal_acc/audio2image", "linear_top1/audio"),
}
NAMES = {
    "retrieval/a2i_class_r1": "a2i class R@1",
    "retrieval/i2a_class_r1": "i2a class R@1",
    "linear_top1/audio": "sound linear",
    "crossmodal_acc/audio2image": "a2i cross-modal acc",
}


# What the committed numbers say (rewrite it when the numbers change)
READING = """\
**Reading.** The unseen-family talkers score as well as or better than the seen-family ones
for every method (gap +0.00 to +0.06): espeak-ng's variants change timbre a little, but one
synthesizer makes them all, so this split does not reproduce the drop seen on real human
recordings. The strong setting lowers the in-distribution numbers (C-MCR class R@1 0.973 ->
0.954, the VAE associator's cross-modal accuracy 0.847 -> 0.768) and makes IG unstable: one
seed of three stays at chance with it. The mild setting (WaveAugment's defaults) costs C-MCR
and IG no more than the seed-to-seed spread (C-MCR a2i 0.963 ± 0.006 against 0.973 ± 0.015; IG
0.989 against 0.991, every seed trained), and helps neither split: both are clean synthetic
speech, so neither measures the robustness augmentation is for. The VAE associator, a
generative model that would learn to generate the corruptions too, is not run with it. The
shipped C-MCR and IG experiments train with the mild setting (it costs nothing measurable
here, and real voices are what it is for); their paper-reproduction tables (the C-MCR ablation,
the lambda_ig sweep) switch it off, as the papers train on clean data.
"""


def run_name(method: str, level: str, seed: int) -> str:
    return f"{method}_{SUFFIX[level]}_seed{seed}"


def fit_and_test(method: str, level: str, seed: int, save: Path, extra) -> list[Run]:
    """The fit (seen-family test numbers) and the unseen-family test of its last checkpoint."""
    name = run_name(method, level, seed)
    quiet = ["--trainer.enable_progress_bar", "false"]
    fit = Run(name, [
        "--config", f"experiments/{method}.yaml",
        "--seed_everything", str(seed), "--eval.transfer", "null",
        *augment_args(method, level), *quiet, *extra,
    ], save)  # fmt: skip

    def test_args() -> list[str]:  # the fit's folder exists once the fit has run
        version = newest_version(save / name)
        return [
            "--config", str(version / "config.yaml"),
            "--ckpt_path", str(version / "checkpoints" / "last.ckpt"),
            "--data.init_args.test_voices", "unseen", *quiet,
        ]  # fmt: skip

    return [fit, Run(f"{name}_unseen", test_args, save, subcommand="test")]


def write_table(
    save: Path, methods: list[str], seeds: list[int], levels: list[str], out: Path
) -> str:
    lines = [
        "| method | augmentation | metric | seen families | unseen families | gap | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        for level in levels:
            names = [run_name(method, level, s) for s in seeds]
            seen = [newest_test_metrics(save / n) for n in names]
            unseen = [newest_test_metrics(save / f"{n}_unseen") for n in names]
            both = [(a, b) for a, b in zip(seen, unseen, strict=True) if a and b]
            if not both and level != "off":
                continue  # a setting not run for this method
            for metric in METRICS[method]:
                a = [x[metric] for x, _ in both]
                b = [y[metric] for _, y in both]
                gap = mean_sd([y - x for x, y in zip(a, b, strict=True)])
                lines.append(
                    f"| {method} | {level} | {NAMES[metric]} | "
                    f"{mean_sd(a)} | {mean_sd(b)} | {gap} | {len(both)} |"
                )
    text = (
        "# Unseen voices on the embedded digits\n\n"
        f"Test split, mean ± sd over seeds {seeds}. *Seen families*: the speaker-disjoint test "
        "talkers (new talkers drawn like the training ones). *Unseen families*: 40 talkers "
        "whose espeak-ng voice-variant family (the variant name up to trailing digits) no "
        "training talker has (`DigitsDataModule(test_voices='unseen')`). *gap*: unseen minus "
        "seen, per seed. Augmentation (`nn/augment.py: WaveAugment`, speed 0.9-1.1 and gain "
        "+-6 dB at p 0.5 in both): *strong*: speed p 0.5, shift <= 0.1 s, synthetic "
        "reverberation p 0.3 at RT60 0.1-0.5 s, noise p 0.5 at 10-40 dB SNR; *mild* (the "
        "defaults): speed p 0.3, shift <= 0.05 s, reverberation p 0.15 at RT60 0.1-0.3 s, "
        "noise p 0.3 at 20-40 dB SNR. Regenerate with `python scripts/voice_study.py` "
        "(`make voice-study`).\n\n" + "\n".join(lines) + "\n\n" + READING
    )
    out.write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--methods", nargs="*", default=list(METRICS), choices=list(METRICS))
    ap.add_argument("--levels", nargs="*", default=list(LEVELS), choices=LEVELS)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--save-dir", default="runs/voice_study", type=Path)
    ap.add_argument("--out", default="results/voices.md", type=Path)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("extra", nargs="*", help="further `assoc fit` arguments for every run")
    args = ap.parse_args()
    if not args.table_only:
        runs = [
            run
            for method in args.methods
            for level in args.levels
            for seed in args.seeds
            for run in fit_and_test(method, level, seed, args.save_dir, args.extra)
        ]
        run_all(runs, tag="voice study")
    print(write_table(args.save_dir, args.methods, args.seeds, args.levels, args.out))


if __name__ == "__main__":
    main()
