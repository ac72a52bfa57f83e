"""Box mapping between network input and original image (resize, flips, clipping)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import boxes

from detcli.errors import ModelError
from detcli.models.rescale import boxes_to_input, boxes_to_original


def metas():
    return [
        {
            "img_shape": (60, 80, 3),
            "ori_shape": (120, 160, 3),
            "scale_factor": [0.5] * 4,
            "flip": False,
        },
        {
            "img_shape": (60, 80, 3),
            "ori_shape": (30, 40, 3),
            "scale_factor": [2.0] * 4,
            "flip": True,
            "flip_direction": "horizontal",
        },
        {
            "img_shape": (60, 80, 3),
            "ori_shape": (60, 80, 3),
            "flip": True,
            "flip_direction": "diagonal",
        },
    ]


def test_each_image_uses_its_own_resize_and_flip():
    b = boxes([[10, 20, 30, 40]] * 3)
    out = boxes_to_original(b, torch.tensor([0, 1, 2]), metas())
    assert out.tolist() == [[20, 40, 60, 80], [25, 10, 35, 20], [50, 20, 70, 40]]
    assert torch.allclose(boxes_to_input(out, torch.tensor([0, 1, 2]), metas()), b)


def test_per_class_boxes_and_clipping():
    b = boxes([[-5, 50, 90, 70], [0, 0, 8, 8]]).reshape(1, 2, 4)
    out = boxes_to_original(b, torch.tensor([0]), metas())
    assert out.shape == (1, 2, 4)
    assert out[0, 0].tolist() == [0, 100, 160, 120]  # clipped to the 160 x 120 original


def test_missing_metadata_is_a_model_error():
    with pytest.raises(ModelError, match="ori_shape"):
        boxes_to_original(boxes([[0, 0, 1, 1]]), torch.tensor([0]), [{"img_shape": (8, 8, 3)}])
