"""DDP correctness on 2 CPU processes (gloo): gathered losses and gathered evaluation.

- gather_with_grad: the contrastive losses (InfoNCE, BMA-Memory's multi-positive NT-Xent with
  ids gathered beside the rows) and the IG sampled margin ranking loss give the same loss and
  the same (DDP-averaged) gradients on 1 and 2 ranks; so do DMC's centre-matching hinge
  (cosine and Euclidean) and the Simplified DMC's contrastive loss, with fixed negatives that
  point into the global batch (across ranks too), and their gradients w.r.t. every centre.
- Evaluation: `assoc validate` on 2 ranks (started by Lightning, and by torchrun) gives the same
  metrics as on 1 rank, on a split whose size (269 images) is odd, so the distributed sampler
  pads a duplicate that must be dropped; features travel as padded tensors.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from assoc_lightning.losses import info_nce, multi_positive_nt_xent, sampled_margin_ranking_loss
from assoc_lightning.losses.clustering import cluster_margin_loss, simplified_dmc_loss
from assoc_lightning.utils.dist import gather_objects, gather_with_grad
from tests.conftest import NO_FINAL_EVAL, ROOT, TINY_SPEAKERS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolate_child_output(path: str, rank: int) -> None:
    """Send a spawned rank's Python output to its own file: the parent's pytest capture
    streams are not safe to share with children (seen to abort them after capsys tests)."""
    import sys

    sys.stdout = sys.stderr = open(f"{path}.rank{rank}.log", "w", buffering=1)  # noqa: SIM115


def make_problem():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    w = torch.randn(5, 4, generator=g)
    imp_v = torch.tensor([3, 5, 0, 7, 1, 2, 4, 6])  # global impostor rows
    imp_a = torch.tensor([6, 0, 5, 1, 2, 7, 3, 4])
    return x, y, w, imp_v, imp_a


def losses(x, y, w, imp_v, imp_a, rows):
    """Both losses for the local ``rows`` of the batch, with negatives from the global batch."""
    w = w.clone().requires_grad_(True)
    a, b = x[rows] @ w, y[rows] @ w
    nce = info_nce(a, b, temperature=0.5)
    ga, gb = gather_with_grad(a), gather_with_grad(b)
    rank_loss = sampled_margin_ranking_loss(
        a, b, imp_v[rows], imp_a[rows], image_pool=ga, audio_pool=gb
    )
    ids = rows // 2  # two pairs per id: several positives per anchor, across the pooled set
    ntx = multi_positive_nt_xent(torch.cat([a, b]), torch.cat([ids, ids]), temperature=0.5)
    (nce + rank_loss + ntx).backward()
    return torch.stack([nce, rank_loss, ntx]).detach(), w.grad


def make_centres():
    """DMC centres ``[8, k, d]`` (k = 3) and Simplified DMC centres (2 visual, 1 audio), and one
    fixed negative sound per image: a global row, never the image's own, some on the other
    rank, two of them (5 and 1) drawn twice, so gradients cross ranks and accumulate."""
    g = torch.Generator().manual_seed(1)
    cv, ca = torch.randn(8, 3, 4, generator=g), torch.randn(8, 3, 4, generator=g)
    sv, sa = torch.randn(8, 2, 4, generator=g), torch.randn(8, 1, 4, generator=g)
    negatives = torch.tensor([5, 2, 7, 5, 1, 6, 3, 1])
    return cv, ca, sv, sa, negatives


def dmc_losses(cv, ca, sv, sa, negatives, rows):
    """DMC's losses of the local ``rows`` and, per loss, the gradients w.r.t. the local visual
    and audio centres (one backward each, so a wrong term cannot hide behind another)."""
    cv, ca, sv, sa = (t[rows].clone().requires_grad_(True) for t in (cv, ca, sv, sa))
    neg = negatives[rows]
    out = {
        "hinge": (cluster_margin_loss(cv, ca, neg), (cv, ca)),  # cosine, margin k
        # a small margin leaves some rows inactive: the relu's kink must agree too
        "euclid": (cluster_margin_loss(cv, ca, neg, 1.0, "euclidean"), (cv, ca)),
        "simplified": (simplified_dmc_loss(sv, sa, neg, margin=5.0), (sv, sa)),
    }
    loss = torch.stack([v[0] for v in out.values()]).detach()
    grads = {k: torch.autograd.grad(v[0], v[1]) for k, v in out.items()}
    return loss, grads


def worker(rank: int, port: int, out_path: str) -> None:
    isolate_child_output(out_path, rank)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    x, y, w, imp_v, imp_a = make_problem()
    rows = torch.arange(4 * rank, 4 * rank + 4)
    stacked, grad = losses(x, y, w, imp_v, imp_a, rows)
    dist.all_reduce(stacked)
    dist.all_reduce(grad)  # what DDP does: average the ranks' gradients
    dmc, dmc_grads = dmc_losses(*make_centres(), rows)
    dist.all_reduce(dmc)
    # each rank holds its rows' centre gradients (an all-gathered row's include the other
    # rank's loss): concatenated and averaged over ranks, they are the gradients of the mean
    # of the ranks' losses, the loss DDP trains
    gathered = {k: [torch.cat(gather_objects(t)) / 2 for t in g] for k, g in dmc_grads.items()}
    if rank == 0:
        torch.save(
            {"losses": stacked / 2, "grad": grad / 2, "dmc": dmc / 2, "dmc_grads": gathered},
            out_path,
        )
    dist.barrier()  # nobody tears gloo down while the other rank still talks to it
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The worker's results on 2 gloo ranks (one spawn for every loss)."""
    out = tmp_path_factory.mktemp("ddp") / "ddp.pt"
    mp.spawn(worker, args=(free_port(), str(out)), nprocs=2, join=True)
    return torch.load(out)


def test_gathered_losses_match_single_process(two_ranks):
    x, y, w, imp_v, imp_a = make_problem()
    single, grad = losses(x, y, w, imp_v, imp_a, torch.arange(8))
    assert torch.allclose(two_ranks["losses"], single, atol=1e-6)
    assert torch.allclose(two_ranks["grad"], grad, atol=1e-6)


def test_dmc_losses_match_single_process(two_ranks):
    single, grads = dmc_losses(*make_centres(), torch.arange(8))
    assert torch.allclose(two_ranks["dmc"], single, atol=1e-6)
    for name, (visual, audio) in grads.items():
        got_visual, got_audio = two_ranks["dmc_grads"][name]
        assert torch.allclose(got_visual, visual, atol=1e-6), name
        assert torch.allclose(got_audio, audio, atol=1e-6), name
        # every negative row (1, 3, 5, 7 for an image on the other rank) has a gradient: the
        # comparison covers the gather's backward, it is not vacuous
        negatives = make_centres()[-1]
        assert (audio[negatives].flatten(1).abs().sum(1) > 0).all(), name


class Doubler(torch.nn.Module):
    """A batch-invariant stand-in for a method: embed = 2 * input, so features are exact."""

    device = torch.device("cpu")

    def embed(self, batch):
        return {"image": batch["image"] * 2}


class Items(torch.utils.data.Dataset):
    def __len__(self):
        return 7  # odd: the sampler pads rank 1 with a duplicate of item 0

    def __getitem__(self, i):
        return {"image": torch.tensor([float(i), -float(i)]), "label": i % 3, "index": i}


def bank_worker(rank: int, port: int, out_path: str) -> None:
    from assoc_lightning.eval.bank import collect_features

    isolate_child_output(out_path, rank)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    feats = collect_features(Doubler(), Items(), ["image"], batch_size=2)["image"]
    torch.save(feats, f"{out_path}.{rank}")
    dist.barrier()
    dist.destroy_process_group()


def test_feature_bank_gathers_dedups_and_matches_single_process(tmp_path):
    from assoc_lightning.eval.bank import collect_features

    single = collect_features(Doubler(), Items(), ["image"], batch_size=3)["image"]
    out = tmp_path / "bank"
    mp.spawn(bank_worker, args=(free_port(), str(out)), nprocs=2, join=True)
    for rank in (0, 1):  # every rank holds every feature, once, in index order
        f = torch.load(f"{out}.{rank}", weights_only=False)
        assert f.indices.tolist() == list(range(7))
        assert torch.equal(f.embeddings, single.embeddings) and torch.equal(f.labels, single.labels)


def run_cli(args, tmp_path, env_extra=None, launcher=()):
    """``assoc`` in a subprocess (``launcher``: e.g. torchrun's module and its arguments)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, *launcher, "-m", "assoc_lightning.cli", *args], capture_output=True,
        text=True, cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def metrics_of(run_dir):
    lines = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    return {r["metric"]: r["value"] for r in lines}


@pytest.mark.slow
def test_ddp_validate_matches_single_process(digits_dir, tmp_path):
    common = [
        "--config", str(ROOT / "experiments/ig_embedding.yaml"),
        "--data.init_args.data_dir", str(digits_dir),
        "--data.init_args.num_speakers", str(TINY_SPEAKERS),
        "--trainer.enable_progress_bar", "false",
        "--trainer.accelerator", "cpu",
        # one item per eval forward: features are then bit-identical on 1 and 2 ranks (other
        # batch shapes round differently), so every metric must agree exactly
        "--data.init_args.eval_batch_size", "1",
    ]  # fmt: skip
    run_cli(["fit", *common, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
             *NO_FINAL_EVAL, "--trainer.logger.init_args.save_dir", "fit"], tmp_path)  # fmt: skip
    ckpt = next((tmp_path / "fit").rglob("last.ckpt"))
    results = {}
    # 1 process; 2 ranks started by Lightning; 2 ranks started by torchrun (what a cluster
    # launcher does: Lightning reads the ranks from torchrun's environment)
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    for name, devices, launcher in (
        ("one", 1, []),
        ("lightning", 2, []),
        ("torchrun", 2, torchrun),
    ):
        strategy = ["--trainer.strategy", "ddp"] if devices > 1 else []
        run_cli(["validate", *common, "--trainer.devices", str(devices), *strategy, "--ckpt_path", str(ckpt),
                 "--trainer.logger.init_args.save_dir", name], tmp_path, launcher=launcher)  # fmt: skip
        results[name] = metrics_of(next((tmp_path / name).rglob("version_0")))
    assert "knn_top1/image" in results["one"]
    assert "retrieval/a2i_r1" in results["one"] and "cluster_purity" in results["one"]
    for run in ("lightning", "torchrun"):
        assert set(results[run]) == set(results["one"]), run
        for name, value in results["one"].items():
            assert results[run][name] == pytest.approx(value, abs=1e-9), (run, name)


@pytest.mark.slow
def test_ddp_cmcr_builds_caches_once_and_trains(digits_dir, tmp_path):
    """C-MCR on 2 ranks from empty caches: rank 0 trains the local towers and fills the caches
    while rank 1 waits at the barrier, then both train from the same tables."""
    towers = [f"--model.init_args.{side}_space.init_args.{k}" for side in ("image", "audio")
              for k in ("steps", "seed")]  # fmt: skip
    run_cli([
        "fit", "--config", str(ROOT / "experiments/cmcr.yaml"),
        "--data.init_args.data_dir", str(digits_dir),
        "--data.init_args.num_speakers", str(TINY_SPEAKERS),
        "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu",
        "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_steps", "3",
        "--eval.knn", "null", "--eval.linear_probe", "null",
        towers[0], "5", towers[1], "101", towers[2], "5", towers[3], "102",  # fresh caches
        "--trainer.logger.init_args.save_dir", "ddp",
    ], tmp_path)  # fmt: skip
    run = next((tmp_path / "ddp").rglob("version_0"))
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "retrieval/a2i_class_r1" in metrics_of(run)
    assert len(list((digits_dir / "cache" / "cmcr" / "towers").glob("toy_space_*"))) >= 2
