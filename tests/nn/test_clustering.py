"""DMC's shared clustering layer and the Simplified DMC's soft k-means, against hand sums."""

from __future__ import annotations

import math

import torch

from assoc_lightning.nn.clustering import MultimodalClustering, soft_kmeans, squash


def layer(weight: torch.Tensor, iterations: int) -> MultimodalClustering:
    m = MultimodalClustering(weight.size(0), weight.size(1), weight.size(2), iterations)
    with torch.no_grad():
        m.weight.copy_(weight)
    return m


def test_squash_is_tanh_of_ten_norm_times_direction():
    x = torch.tensor([[3.0, 4.0], [0.03, 0.04]])
    out = squash(x)
    assert torch.allclose(out[0], math.tanh(50.0) * torch.tensor([0.6, 0.8]))
    assert torch.allclose(out[1], math.tanh(0.5) * torch.tensor([0.6, 0.8]))


def test_two_clusters_three_positions_by_hand():
    # C = 2, 3 positions of unit length (squash multiplies each by tanh(10)); d = 1:
    # cluster 1 projects on the first axis, cluster 2 on the second.
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]).T.reshape(1, 2, 3)  # [B, C, p]
    weight = torch.tensor([[[1.0], [0.0]], [[0.0], [1.0]]])  # [C, k, d]
    g = math.tanh(10.0)
    u1 = [g * 1.0, 0.0, g * 0.6]  # u_{1|i}
    u2 = [0.0, g * 1.0, g * 0.8]  # u_{2|i}
    # one iteration: uniform assignment, o_j = sum_i u_{j|i} / 2
    centres, assign = layer(weight, 1)(feats)
    o = torch.tensor([sum(u1) / 2, sum(u2) / 2])
    assert torch.allclose(assign, torch.full((1, 2, 3), 0.5))
    assert torch.allclose(centres.view(2), torch.tanh(10 * o.abs()) * o.sign(), atol=1e-6)
    # two iterations: b_{ji} = <o_j/|o_j|, u_{j|i}> = u_{j|i} (o_j > 0, d = 1)
    centres, assign = layer(weight, 2)(feats)
    s1 = [math.exp(a) / (math.exp(a) + math.exp(b)) for a, b in zip(u1, u2, strict=True)]
    expected = torch.tensor([s1, [1 - s for s in s1]]).unsqueeze(0)
    assert torch.allclose(assign, expected, atol=1e-6)
    o1 = sum(s * u for s, u in zip(s1, u1, strict=True))
    o2 = sum((1 - s) * u for s, u in zip(s1, u2, strict=True))
    assert torch.allclose(centres.view(2), torch.tensor([math.tanh(10 * o1), math.tanh(10 * o2)]))


def test_shapes_for_image_and_audio_maps_and_temperature_sharpens():
    torch.manual_seed(0)
    m = MultimodalClustering(8, num_clusters=10, dim=16, iterations=3)
    for x in (torch.randn(2, 8, 4, 4), torch.randn(2, 8, 12), torch.randn(2, 8, 6, 3)):
        c, s = m(x)
        p = x[0, 0].numel()
        assert c.shape == (2, 10, 16) and s.shape == (2, 10, p)
        assert torch.allclose(s.sum(1), torch.ones(2, p), atol=1e-6)
        assert (c.norm(dim=-1) < 1).all()  # squashed
    x = torch.randn(2, 8, 4, 4)
    soft = m(x)[1]
    m.temperature = 20.0
    sharp = m(x)[1]
    assert sharp.amax(1).mean() > soft.amax(1).mean()


def test_soft_kmeans_finds_two_blobs_from_evenly_spaced_starts():
    a, b = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])
    vectors = torch.stack([a, a + 0.01, b, b - 0.01, b]).unsqueeze(0)  # starts: rows 0 and 4
    centres, assign = soft_kmeans(vectors, 2, iterations=4, sharpness=30.0)
    assert torch.allclose(centres[0, 0], torch.tensor([0.005, 0.005]), atol=1e-4)
    assert torch.allclose(centres[0, 1], torch.tensor([1 - 0.01 / 3] * 2), atol=1e-4)
    assert assign.shape == (1, 2, 5)
    assert assign[0, 0, :2].min() > 0.99 and assign[0, 1, 2:].min() > 0.99
