"""Prediction drawings (predict PNGs, dataset show) are readable at any image size."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.io import read_image, write_png

from detcli.data.inspect.show import draw
from detcli.structures import Detections
from detcli.visualization import write_drawn

GREY = (90, 90, 90)
RED = (250, 20, 20)  # dark: white label text
YELLOW = (250, 250, 20)  # light: black label text


def _png(tmp_path, w: int, h: int):
    path = tmp_path / f"img_{w}x{h}.png"
    img = torch.tensor(GREY, dtype=torch.uint8).view(3, 1, 1).expand(3, h, w).contiguous()
    write_png(img, str(path))
    return read_image(str(path))


def _draw(tmp_path, img, boxes, labels, score_thr=None):
    det = Detections(
        torch.tensor(boxes, dtype=torch.float32),
        torch.full((len(labels),), 0.87),
        torch.tensor(labels),
    )
    path = write_drawn(tmp_path / "drawn.png", img, det, ["car", "bus"], [RED, YELLOW], score_thr)
    return np.asarray(Image.open(path).convert("RGB"))


def _share(region: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float((region == np.array(colour)).all(-1).mean())


def test_small_image_is_upscaled_with_its_boxes(tmp_path):
    """A 64x48 image is drawn with a 512-px short side; the box lands where it was, scaled."""
    drawn = _draw(tmp_path, _png(tmp_path, 64, 48), [[16, 24, 48, 40]], [0])
    assert drawn.shape == (512, 683, 3)
    s = 512 / 48
    row = round(32 * s)  # the box's mid height: its left and right edges in red
    red_cols = np.flatnonzero((drawn[row] == np.array(RED)).all(-1))
    assert abs(red_cols.min() - 16 * s) <= 3 and abs(red_cols.max() - 48 * s) <= 3
    assert _share(drawn[row, round(20 * s) : round(44 * s)], GREY) > 0.95  # inside: untouched


def test_labels_sit_on_a_box_of_the_class_colour_with_contrasting_text(tmp_path):
    """Above each box a filled label in the class colour, text in white (dark) or black (light)."""
    img = _png(tmp_path, 64, 64)
    drawn = _draw(tmp_path, img, [[8, 24, 30, 60], [36, 24, 60, 60]], [0, 1])
    s = 512 / 64
    top = round(24 * s)
    red_label = drawn[top - 12 : top - 4, round(8 * s) : round(8 * s) + 40]
    yellow_label = drawn[top - 12 : top - 4, round(36 * s) : round(36 * s) + 40]
    assert _share(red_label, RED) > 0.4 and _share(red_label, (255, 255, 255)) > 0.02
    assert _share(yellow_label, YELLOW) > 0.4 and _share(yellow_label, (0, 0, 0)) > 0.02
    # no text in the box colour on the image itself
    assert _share(drawn[top - 40 : top - 30, round(8 * s) : round(8 * s) + 40], GREY) == 1.0


def test_score_threshold_caption_in_the_corner(tmp_path):
    """`score >= 0.30` in white on black in the bottom-left corner; no caption without one."""
    img = _png(tmp_path, 128, 128)
    with_caption = _draw(tmp_path, img, [[30, 30, 90, 90]], [0], score_thr=0.3)
    corner = with_caption[-12:-2, 2:80]
    assert _share(corner, (0, 0, 0)) > 0.4 and _share(corner, (255, 255, 255)) > 0.02
    plain = _draw(tmp_path, img, [[30, 30, 90, 90]], [0])
    assert _share(plain[-12:-2, 2:80], GREY) == 1.0


def test_large_images_keep_their_size_and_get_thicker_lines(tmp_path):
    """A 2048-px image is not resized; its box lines are thicker than on a 512-px image."""

    def thickness(size: int) -> int:
        drawn = _draw(
            tmp_path, _png(tmp_path, size, size), [[size / 4, size / 4, size / 2, size / 2]], [0]
        )
        assert drawn.shape[:2] == (size, size)
        row = drawn[size * 3 // 8, : size * 3 // 8]
        return int((row == np.array(RED)).all(-1).sum())

    assert thickness(2048) > thickness(512) >= 2


def test_dataset_show_draws_through_the_same_path(tmp_path):
    """`dataset show`'s `draw`: upscaled, class names on filled labels, crowd regions in grey."""
    img = _png(tmp_path, 64, 64)
    out = (
        draw(
            img,
            torch.tensor([[8.0, 24, 30, 60]]),
            torch.tensor([0]),
            ("car",),
            ignore=torch.tensor([[36.0, 24, 60, 60]]),
            colours=[RED],
        )
        .permute(1, 2, 0)
        .numpy()
    )
    assert out.shape == (512, 512, 3)
    top = 24 * 8
    assert _share(out[top - 12 : top - 4, 64:84], RED) > 0.4
    assert _share(out[top - 12 : top - 4, 288:308], (160, 160, 160)) > 0.4
