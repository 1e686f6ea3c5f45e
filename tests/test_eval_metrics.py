import numpy as np
import pytest
import torch

from assoc_lightning.eval.bank import balanced_subset, merge_shards
from assoc_lightning.eval.metrics.clustering import kmeans_purity, purity
from assoc_lightning.eval.metrics.modality import modality_svm_accuracy


def test_purity_hand_computed():
    labels = np.array([0, 0, 1, 1, 1, 2])
    clusters = np.array([0, 0, 0, 1, 1, 1])
    # cluster 0: {0,0,1} -> 2; cluster 1: {1,1,2} -> 2  => 4/6
    assert purity(labels, clusters) == pytest.approx(4 / 6)
    assert purity(labels, labels) == 1.0


def test_kmeans_purity_on_separated_and_mixed_blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8)) * 20
    labels = np.repeat(np.arange(4), 50)
    x = centers[labels] + rng.normal(size=(200, 8))
    assert kmeans_purity(x, labels, k=4) == 1.0
    noise = rng.normal(size=(200, 8))
    assert kmeans_purity(noise, labels, k=4) < 0.5


def test_modality_svm_separable_vs_identical():
    rng = np.random.default_rng(0)
    is_audio = np.repeat([0, 1], 150)
    shifted = rng.normal(size=(300, 4)) + 4 * is_audio[:, None]
    assert modality_svm_accuracy(shifted, is_audio, train_size=200) == 1.0
    same = rng.normal(size=(300, 4))
    assert abs(modality_svm_accuracy(same, is_audio, train_size=200) - 0.5) < 0.15


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


def test_modality_svm_count_larger_than_the_set_falls_back_to_the_ratio():
    rng = np.random.default_rng(0)
    is_audio = np.repeat([0, 1], 40)
    x = rng.normal(size=(80, 4)) + 4 * is_audio[:, None]
    with pytest.warns(UserWarning, match="paper's ratio"):
        assert modality_svm_accuracy(x, is_audio, train_size=1600) == 1.0
