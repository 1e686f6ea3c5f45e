"""The feature bank: padding duplicates dropped, counts checked, balanced subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from assoc_lightning.eval.bank import balanced_subset, merge_shards


def test_merge_shards_drops_padding_duplicates_and_sorts():
    # 5 items over 2 ranks: the sampler pads rank 1 with item 0 again
    r0 = (torch.tensor([0, 2, 4]), torch.tensor([[0.0], [2.0], [4.0]]), torch.tensor([0, 0, 0]))
    r1 = (torch.tensor([1, 3, 0]), torch.tensor([[1.0], [3.0], [0.0]]), torch.tensor([1, 1, 0]))
    f = merge_shards([r0, r1], expected=5)
    assert f.indices.tolist() == [0, 1, 2, 3, 4]
    assert f.embeddings.flatten().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert f.labels.tolist() == [0, 1, 0, 1, 0]


def test_merge_shards_count_check():
    r0 = (torch.tensor([0, 1]), torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    with pytest.raises(RuntimeError, match="gathered 2 distinct items but the dataset has 3"):
        merge_shards([r0], expected=3)


def test_balanced_subset():
    sub = balanced_subset({"image": 100, "audio": 30}, None, seed=0)
    assert len(sub["image"]) == len(sub["audio"]) == 30
    assert len(set(sub["image"].tolist())) == 30
    sub = balanced_subset({"image": 100, "audio": 30}, 10, seed=0)
    assert len(sub["audio"]) == 10


def test_balanced_embeddings_flatten_or_first_sample():
    from assoc_lightning.eval.bank import Features, balanced_embeddings

    img = Features(torch.arange(24.0).view(4, 3, 2), torch.tensor([0, 1, 2, 3]), torch.arange(4))
    aud = Features(-torch.arange(12.0).view(2, 3, 2), torch.tensor([5, 6]), torch.arange(2))
    emb, lab, mods = balanced_embeddings(
        {"image": img, "audio": aud}, None, seed=0, all_samples=True
    )
    assert emb.shape == (12, 2) and (mods == "image").sum() == 6 and (mods == "audio").sum() == 6
    assert sorted(set(lab[mods == "audio"].tolist())) == [5, 6]
    emb, lab, mods = balanced_embeddings({"image": img, "audio": aud}, 1, seed=0, all_samples=False)
    assert emb.shape == (2, 2) and list(mods) == ["image", "audio"]
    row = int(np.flatnonzero(mods == "audio")[0])
    assert emb[row].tolist() in ([0.0, -1.0], [-6.0, -7.0])  # the first sample of an audio input
