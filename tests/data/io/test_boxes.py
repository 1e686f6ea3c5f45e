"""Senocak annotation XML: boxes per annotator, the consensus map on the image grid."""

from __future__ import annotations

import pytest
import torch

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.data.io.boxes import Box, box_mask, consensus_map, read_senocak_boxes
from tests.fixtures.senocak_xml import bbox_xml, write_senocak_xml


def test_read_boxes_per_person_any_child_order_and_loose_bboxes(tmp_path):
    path = tmp_path / "a.xml"
    loose = bbox_xml(1, 2, 3, 4, "ambient sound", order=("ymax", "xmax", "ymin", "xmin"))
    path.write_text(
        "<annotation><file_name>a.jpg</file_name>"
        f"<person>{bbox_xml(10, 20, 30, 40)}{bbox_xml(0, 0, 5.0, 6)}</person>"
        f"<person>{bbox_xml(50, 60, 255, 256, 'ambient sound')}</person>"
        f"<person></person>{loose}</annotation>"
    )
    assert read_senocak_boxes(path) == [
        [Box(10, 20, 30, 40, "object"), Box(0, 0, 5, 6, "object")],
        [Box(50, 60, 255, 256, "ambient sound")],
        [Box(1, 2, 3, 4, "ambient sound")],
    ]
    empty = tmp_path / "e.xml"
    empty.write_text("<annotation/>")
    assert read_senocak_boxes(empty) == []


def test_bad_xml_names_the_file(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<annotation><person>")
    with pytest.raises(DatasetCorruptError, match="broken.xml"):
        read_senocak_boxes(broken)
    partial = tmp_path / "partial.xml"
    partial.write_text("<annotation><person><bbox><xmin>1</xmin></bbox></person></annotation>")
    with pytest.raises(DatasetCorruptError, match=r"(?s)partial.xml.*without <ymin>"):
        read_senocak_boxes(partial)


def test_consensus_of_three_annotators_by_hand(tmp_path):
    # frame 4 -> grid 4 (no scaling); A: 2x2 top-left, B: rows 0-1 cols 1-2,
    # C: the pixel (1, 1) and the pixel (3, 3); counts / 2, clipped at 1
    path = write_senocak_xml(
        tmp_path / "x.xml", [[(0, 0, 2, 2)], [(1, 0, 3, 2)], [(1, 1, 2, 2), (3, 3, 4, 4)]]
    )
    g = consensus_map(read_senocak_boxes(path), size=4, frame=4)
    expected = torch.tensor(
        [[0.5, 1.0, 0.5, 0.0], [0.5, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5]]
    )
    assert g.dtype == torch.float32 and torch.equal(g, expected)
    # one annotator's overlapping boxes count once (a union), unlike summing single boxes
    assert consensus_map([[Box(0, 0, 2, 2), Box(1, 1, 3, 3)]], 4, 4)[1, 1] == 0.5
    assert torch.equal(consensus_map([], 4, 4), torch.zeros(4, 4))


def test_box_scaled_from_256_to_224_like_lvs():
    # int(224 * v / 256): 100 -> 87 (87.5), 255 -> 223 (223.1), 256 -> 224; end-exclusive
    m = box_mask([Box(100, 0, 255, 256)], size=224)
    cols = torch.nonzero(m[0]).flatten().tolist()
    assert cols[0] == 87 and cols[-1] == 222 and m[:, 87].all() and m.sum() == 136 * 224
    assert box_mask([Box(-5, -5, 300, 2)], 224)[0].all()  # clipped to the grid
