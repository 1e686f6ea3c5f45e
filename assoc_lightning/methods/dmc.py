"""DMC: Deep Multimodal Clustering for unsupervised audiovisual learning
(Hu, Nie, Li, CVPR 2019). Built from the supplement and the official Keras code (the main
paper could not be read; docs/methods.md, DMC).

A visual subnet (VGG16 conv blocks 1-5 without pool5) and an audio subnet (VGGish-like, on
VGGish log-mels) give conv feature maps; their positions are sets of vectors that ONE shared
clustering layer (``nn/clustering.py``) squashes, projects into k = 10 per-cluster spaces of
d = 16 and soft-clusters in R = 3 iterations, giving centres c_j^a, c_j^v. A pair scores
s(a, v) = sum_j cos(c_j^a, c_j^v) (same index j), and the loss is the triplet hinge with the
image as anchor, its own sound as positive and a sound of another video of the global batch
as negative: max(0, k + D(a+, v) - D(a-, v)), D = k - s (``losses/clustering.py``).
Adam 1e-4. The Keras code's routing sums and Cosine split are API-drift bugs; the intended
weighted sum and per-centre cosine are implemented.

``variant="simplified"``: the PyTorch "Simplified DMC" (for MUSIC localisation): a Linear on
each spatial vector, Euclidean soft k-means per modality (``visual_clusters`` = 2,
``audio_clusters`` = 1, sharpness 30, 4 iterations), score = the nearest centre pair's
Euclidean distance, Hadsell contrastive loss with margin 5. It keeps our VGG subnets (the
original uses ResNet-18 for both).

``embed`` returns the globally pooled last conv features of each subnet (kNN, linear probe:
the paper's SVM features); ``retrieval_embed`` returns the flattened cluster centres
``[N, k d]`` (simplified: the mean of a modality's centres, as k differs per modality);
``localize`` returns, per pair, the visual assignment map of the cluster whose audio and
visual centres match best, resized to the image.

Where the paper is silent, our choices (also in docs/methods.md), each an argument:
1. Distance ``cosine`` (the code) and margin ``None`` = k (the code's 10); ``euclidean`` is
   the sum over j of distances between normalised centres.
2. z = ``temperature`` 1 (the code's implicit value), multiplying b in the softmax.
3. One negative per image, uniform over the global batch's rows of another ``pair_id``
   (the code: a sound of another random video in the batch).
4. Random init for both subnets (plain DMC); ``visual_weights`` = a local torchvision VGG16
   state dict (the ‡DMC start; not downloaded).
5. Images scaled to [-1, 1] (Keras ``mode='tf'``), resized to ``image_size`` (256: a 16 x 16
   map); grey images are repeated to 3 channels only if ``image_channels`` is 3.
6. Audio: VGGish log-mel, ``audio_frames`` frames centre-cropped / zero-padded (496: 4.96 s).
7. ``embed``: global ``embed_pool`` (average) of the last conv layer of each subnet.
8. No weight decay (the simplified variant's code uses 1e-4: ``weight_decay``).
9. torchvision VGG's conv init (Kaiming fan-out, zero biases; ``nn/vgg.py``): with PyTorch's
   default the biases take over and the centres stop depending on the input.
10. ``batch_norm`` off (the paper); the embedded default turns it on.
11. ``image_scale`` (off): resize by a factor, so larger images (the embedded 2 x 2
    localization canvases) keep the training scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from assoc_lightning.losses.clustering import (
    centre_distance,
    centre_similarity,
    cluster_margin_loss,
    min_centre_distance,
    sample_negatives,
    simplified_dmc_loss,
)
from assoc_lightning.methods.base import AssociativeMethod
from assoc_lightning.nn.audio_frontend import VGGishLogMel
from assoc_lightning.nn.clustering import MultimodalClustering, as_vectors, soft_kmeans
from assoc_lightning.nn.encoders import prepare_images
from assoc_lightning.nn.vgg import channels_of, vgg16_conv, vggish_dmc
from assoc_lightning.utils.dist import gather_no_grad

MODALITIES = ("image", "audio")


class DMC(AssociativeMethod):
    """Deep Multimodal Clustering: shared clustering layer, centre-matching margin loss.

    Args:
        variant: ``"dmc"`` (the CVPR recipe) or ``"simplified"`` (the PyTorch variant).
        num_clusters, cluster_dim, iterations, temperature: the clustering layer's k (10),
            d (16), R (3) and z (1).
        margin: Delta of the hinge (``None``: k).
        distance: ``"cosine"`` (sum_j 1 - cos) or ``"euclidean"`` (normalised centres).
        visual_clusters, audio_clusters, kmeans_iterations, kmeans_sharpness,
            contrastive_margin: the simplified variant's soft k-means (2, 1, 4, 30) and
            contrastive margin (5).
        width: divides every subnet channel count (1: the paper's 512-d features).
        image_channels: input channels of the visual subnet (3; 1 for grey digits).
        image_size: images are resized to this side (256: a 16 x 16 visual map).
        image_scale: resize by this factor instead (``None``: off). The subnets are fully
            convolutional, so images of other sizes keep the training scale: a 2 x 2 canvas
            of digits gives a map twice as wide as a single digit's.
        visual_weights: a local torchvision VGG16 state-dict file (``None``: random init).
        audio_frames: log-mel frames per clip (496 = 4.96 s; 96 = one VGGish example).
        sample_rate: audio sampling rate (16 kHz, VGGish).
        embed_pool: ``"avg"`` or ``"max"`` global pooling of the conv features in ``embed``.
        batch_norm: BatchNorm after every conv of both subnets (the ``vgg16_bn`` layout; the
            paper's subnets have none).
        lr, weight_decay: Adam (1e-4, 0).
    """

    name = "dmc"

    def __init__(
        self,
        variant: str = "dmc",
        num_clusters: int = 10,
        cluster_dim: int = 16,
        iterations: int = 3,
        temperature: float = 1.0,
        margin: float | None = None,
        distance: str = "cosine",
        visual_clusters: int = 2,
        audio_clusters: int = 1,
        kmeans_iterations: int = 4,
        kmeans_sharpness: float = 30.0,
        contrastive_margin: float = 5.0,
        width: int = 1,
        image_channels: int = 3,
        image_size: int = 256,
        image_scale: float | None = None,
        visual_weights: str | None = None,
        batch_norm: bool = False,
        audio_frames: int = 496,
        sample_rate: int = 16000,
        embed_pool: str = "avg",
        lr: float = 1e-4,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        for value, allowed, what in (
            (variant, ("dmc", "simplified"), "variant"),
            (distance, ("cosine", "euclidean"), "distance"),
            (embed_pool, ("avg", "max"), "embed_pool"),
        ):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
        self.save_hyperparameters()
        self.frontend = VGGishLogMel(sample_rate, num_frames=audio_frames)
        self.subnets = nn.ModuleDict(
            {
                "image": vgg16_conv(image_channels, width, visual_weights, batch_norm),
                "audio": vggish_dmc(width, batch_norm),
            }
        )
        channels = channels_of(self.subnets["image"])
        if variant == "dmc":
            self.clustering = MultimodalClustering(
                channels, num_clusters, cluster_dim, iterations, temperature
            )
        else:
            self.heads = nn.ModuleDict({m: nn.Linear(channels, channels) for m in MODALITIES})

    # ------------------------------------------------------------------ inputs
    def images(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float images -> [-1, 1], ``image_channels``, resized to
        ``image_size`` (or by ``image_scale``)."""
        hp = self.hparams
        size = hp.image_size
        if hp.image_scale is not None:
            size = tuple(round(hp.image_scale * s) for s in x.shape[-2:])
        return 2.0 * prepare_images(x, hp.image_channels, size) - 1.0

    def conv_features(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """The subnet's last conv map ``[N, C, H, W]`` (audio: ``[N, C, frames, mels]``)."""
        inputs = self.frontend(x) if modality == "audio" else self.images(x)
        return self.subnets[modality](inputs)

    def cluster(self, modality: str, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Centres ``[N, k, d]`` and assignments ``[N, k, positions]`` of a conv map."""
        hp = self.hparams
        if hp.variant == "dmc":
            return self.clustering(maps)
        vectors = self.heads[modality](as_vectors(maps))
        k = hp.visual_clusters if modality == "image" else hp.audio_clusters
        return soft_kmeans(vectors, k, hp.kmeans_iterations, hp.kmeans_sharpness)

    def centres(self, batch: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Size]]:
        """Per modality present: (centres, assignments, conv map spatial shape)."""
        out = {}
        for m in MODALITIES:
            if m in batch:
                maps = self.conv_features(m, batch[m])
                out[m] = (*self.cluster(m, maps), maps.shape[2:])
        return out

    # ------------------------------------------------------------------ contract
    def embed(self, batch: dict) -> dict[str, torch.Tensor]:
        out = {}
        for m in MODALITIES:
            if m in batch:
                maps = self.conv_features(m, batch[m]).flatten(2)
                out[m] = maps.mean(-1) if self.hparams.embed_pool == "avg" else maps.amax(-1)
        return out

    def retrieval_embed(self, batch: dict) -> dict[str, torch.Tensor]:
        if self.hparams.variant == "dmc":
            return {m: c.flatten(1) for m, (c, _, _) in self.centres(batch).items()}
        return {m: c.mean(1) for m, (c, _, _) in self.centres(batch).items()}

    @torch.no_grad()
    def localize(self, batch: dict) -> torch.Tensor:
        """Per pair, the visual assignment map ``[N, H, W]`` (H, W: the batch images') of the
        cluster whose centres match best: DMC the j of the largest cos(c_j^a, c_j^v), the
        simplified variant the visual centre nearest to any audio centre."""
        out = self.centres(batch)
        (cv, sv, shape), (ca, _, _) = out["image"], out["audio"]
        if self.hparams.variant == "dmc":
            best = F.cosine_similarity(ca, cv, dim=-1).argmax(1)
        else:
            best = torch.cdist(cv, ca).amin(-1).argmin(1)
        maps = sv[torch.arange(sv.size(0), device=sv.device), best].view(-1, 1, *shape)
        size = tuple(batch["image"].shape[-2:])
        return F.interpolate(maps, size=size, mode="bilinear", align_corners=False).squeeze(1)

    # ------------------------------------------------------------------ losses
    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        out = self.centres(batch)
        cv, ca = out["image"][0], out["audio"][0]
        ids = batch.get("pair_id", batch["index"])
        negatives = sample_negatives(ids, gather_no_grad(ids))
        if hp.variant == "dmc":
            loss = cluster_margin_loss(cv, ca, negatives, hp.margin, hp.distance)
            terms = {"pos_score": centre_similarity(ca, cv).mean().detach()}
            terms["pos_distance"] = centre_distance(ca, cv, hp.distance).mean().detach()
        else:
            loss = simplified_dmc_loss(cv, ca, negatives, hp.contrastive_margin)
            terms = {"pos_distance": min_centre_distance(cv, ca).mean().detach()}
        return {"loss": loss, **terms}

    def configure_optimizers(self):
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
