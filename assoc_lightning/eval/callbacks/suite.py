"""EvaluationSuite: the evaluation every run gets, its callbacks held as typed children."""

from __future__ import annotations

from jsonargparse import lazy_instance
from lightning.pytorch import Callback

from assoc_lightning.eval.callbacks.base import EmbeddingEvalCallback, FeatureCache
from assoc_lightning.eval.callbacks.knn import KNNCallback
from assoc_lightning.eval.callbacks.linear_probe import LinearProbeCallback
from assoc_lightning.eval.callbacks.retrieval import RetrievalCallback
from assoc_lightning.eval.callbacks.retrieval_examples import RetrievalExamplesCallback
from assoc_lightning.eval.callbacks.transfer import TransferEvalCallback
from assoc_lightning.eval.callbacks.tsne import TSNEPlotCallback


class EvaluationSuite(Callback):
    """The shared evaluation: kNN, linear probe and retrieval, two pictures (t-SNE, retrieval
    examples), plus any method-specific evaluations.

    The CLI adds it to every run as the ``eval`` config group, so all methods report the same
    metrics; each child keeps its own settings (``assoc fit --print_config`` shows them all)
    and is set from YAML under its name (``eval: {knn: {ks: [20]}}``), or switched off with
    ``null``. The children share one :class:`FeatureCache`, so each split is embedded once per
    evaluation however many of them read it. Each child also works on its own as a callback.

    Args:
        knn: weighted and majority-vote kNN (``None``: off).
        linear_probe: logistic regression on frozen features (``None``: off).
        retrieval: audio<->image retrieval on fixed pairs (``None``: off).
        tsne: a t-SNE picture of both modalities when training ends and on test (``None``: off).
        retrieval_examples: audio queries with their top images, marked hit or miss, as a
            picture and a wandb Table, when training ends and on test (``None``: off).
        extra: further evaluations, e.g. the IG paper's ``ClusterPurityCallback`` or the VAE
            paper's ``CrossModalRecognitionCallback``; they run after the three above.
        transfer: kNN and linear probe on other data sets than the run's ("pretrain on X,
            evaluate on Y"), one ``TransferEvalCallback`` each; they run last.
    """

    # Lazy instances as defaults (jsonargparse's way): `--print_config` shows each child's
    # settings and the CLI builds fresh children from them. The children keep no state of a
    # run (the suite's cache is passed in), so suites built in Python may share the defaults.
    def __init__(
        self,
        knn: KNNCallback | None = lazy_instance(KNNCallback),  # noqa: B008
        linear_probe: LinearProbeCallback | None = lazy_instance(LinearProbeCallback),  # noqa: B008
        retrieval: RetrievalCallback | None = lazy_instance(RetrievalCallback),  # noqa: B008
        tsne: TSNEPlotCallback | None = lazy_instance(TSNEPlotCallback),  # noqa: B008
        retrieval_examples: RetrievalExamplesCallback | None = lazy_instance(  # noqa: B008
            RetrievalExamplesCallback
        ),
        extra: list[EmbeddingEvalCallback] | None = None,
        transfer: list[TransferEvalCallback] | None = None,
    ) -> None:
        self.knn, self.linear_probe, self.retrieval = knn, linear_probe, retrieval
        self.tsne, self.retrieval_examples = tsne, retrieval_examples
        self.extra = list(extra or [])
        self.transfer = list(transfer or [])
        self.cache = FeatureCache()

    @property
    def parts(self) -> list[EmbeddingEvalCallback]:
        """The evaluations that run, in order."""
        shared = [self.knn, self.linear_probe, self.retrieval, self.tsne, self.retrieval_examples]
        return [p for p in shared if p is not None] + self.extra + self.transfer

    def on_validation_epoch_end(self, trainer, pl_module):
        for part in self.parts:
            part.at_validation_end(trainer, pl_module, self.cache)

    def on_train_end(self, trainer, pl_module):
        for part in self.parts:
            part.at_train_end(trainer, pl_module, self.cache)

    def on_test_epoch_end(self, trainer, pl_module):
        for part in self.parts:
            part.at_test_end(trainer, pl_module, self.cache)
