"""Evaluation callbacks, one per file. Each calls only ``embed`` (or ``embed_samples`` /
``translate``) on the datamodule's evaluation sets; none trains the method. YAML may name them
by their full path here (``assoc_lightning.eval.callbacks.ClusterPurityCallback``)."""

from assoc_lightning.eval.callbacks.base import (
    EmbeddingEvalCallback,
    FeatureCache,
    TrainBankEvalCallback,
)
from assoc_lightning.eval.callbacks.cluster_purity import ClusterPurityCallback
from assoc_lightning.eval.callbacks.knn import KNNCallback
from assoc_lightning.eval.callbacks.linear_probe import LinearProbeCallback
from assoc_lightning.eval.callbacks.localization import LocalizationCallback
from assoc_lightning.eval.callbacks.modality import ModalityClassifierCallback
from assoc_lightning.eval.callbacks.recognition import CrossModalRecognitionCallback
from assoc_lightning.eval.callbacks.retrieval import RetrievalCallback
from assoc_lightning.eval.callbacks.retrieval_examples import RetrievalExamplesCallback
from assoc_lightning.eval.callbacks.suite import EvaluationSuite
from assoc_lightning.eval.callbacks.transfer import TransferEvalCallback
from assoc_lightning.eval.callbacks.tsne import TSNEPlotCallback

__all__ = [
    "ClusterPurityCallback",
    "CrossModalRecognitionCallback",
    "EmbeddingEvalCallback",
    "EvaluationSuite",
    "FeatureCache",
    "KNNCallback",
    "LinearProbeCallback",
    "LocalizationCallback",
    "ModalityClassifierCallback",
    "RetrievalCallback",
    "RetrievalExamplesCallback",
    "TSNEPlotCallback",
    "TrainBankEvalCallback",
    "TransferEvalCallback",
]
