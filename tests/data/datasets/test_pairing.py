"""Class pairing: the stratified paired fraction."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_lightning.data.datasets.pairing import stratified_fraction


def test_stratified_fraction():
    labels = np.repeat(np.arange(5), 100)
    keep = stratified_fraction(labels, 0.01, seed=0)
    assert np.bincount(labels[keep]).tolist() == [1] * 5
    assert (stratified_fraction(labels, 0.01, seed=0) == keep).all()
    with pytest.raises(ValueError, match="paired_fraction"):
        stratified_fraction(labels, 0.0, seed=0)


def test_a_corrupt_partner_is_replaced_within_its_class(tmp_path):
    """The last clip of a word is corrupt: its replacement is another clip of that word, not
    the next row (a clip of another word), so the pair keeps one class."""
    import torch

    from assoc_lightning.data.datasets.base import TensorLabeledDataset
    from assoc_lightning.data.datasets.pairing import ClassPairedDataset
    from assoc_lightning.data.datasets.speech_commands import SpeechCommandsClips
    from assoc_lightning.data.errors import DatasetCorruptError
    from tests.fixtures.speech_commands import make_gsc

    make_gsc(
        tmp_path, words=("no", "yes"), speakers=("aaaa1111", "bbbb2222", "cccc3333", "dddd4444")
    )
    clips = SpeechCommandsClips(tmp_path, "train", ["no", "yes"])
    assert clips.files == ["no/aaaa1111_nohash_0.wav", "no/dddd4444_nohash_0.wav",
                           "yes/aaaa1111_nohash_0.wav", "yes/dddd4444_nohash_0.wav"]  # fmt: skip
    (tmp_path / clips.files[1]).write_bytes(b"RIFF\x00\x00garbage")
    with pytest.warns(UserWarning, match="skipping corrupt file"):
        assert clips.readable(1, same_class=True)[0] == 0  # "no", not the next row's "yes"
    anchors = TensorLabeledDataset("image", torch.zeros(2, 1, 2, 2), [0, 0])
    pairs = ClassPairedDataset(anchors, {"audio": clips}, fixed=True)
    pairs.partner["audio"][:] = 1  # both anchors drew the corrupt clip
    assert [pairs[i]["label"] for i in range(2)] == [0, 0]
    (tmp_path / clips.files[0]).write_bytes(b"RIFF\x00\x00garbage")  # now every "no" is corrupt
    with pytest.warns(UserWarning), pytest.raises(DatasetCorruptError, match="of class 0"):
        pairs[0]
