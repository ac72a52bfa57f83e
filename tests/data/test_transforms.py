"""Transforms: boxes move with the image (exact coordinates), metadata maps back to the original."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import MEAN, STD, TEST_PIPELINE, marker, write_image
from data_helpers import transform_results as results
from PIL import Image

from detcli.data.builder import build_pipeline
from detcli.data.transforms import (
    Collect,
    LoadImageFromFile,
    MultiScaleFlipAug,
    Normalize,
    PackDetInputs,
    Pad,
    RandomFlip,
    Resize,
)
from detcli.errors import DataError
from detcli.registry import TRANSFORMS


def test_resize_keep_ratio_bounds_long_and_short_edge():
    # 64x32 into (long <= 100, short <= 40): factor min(100/64, 40/32) = 1.25 -> 80x40
    out = Resize(img_scale=[100, 40], keep_ratio=True)(results())
    assert out["img"].shape == (3, 40, 80) and out["img_shape"] == (40, 80, 3)
    np.testing.assert_array_equal(out["scale_factor"], np.float32([1.25] * 4))
    assert out["scale_factor"].dtype == np.float32
    assert out["gt_bboxes"].tolist() == [[10.0, 5.0, 30.0, 25.0]]
    # mmdet's reference case: [1333, 800] on 200x100 -> factor 6.665 -> 1333x667
    big = Resize(img_scale=[1333, 800])(results(200, 100))
    assert big["img_shape"][:2] == (667, 1333)
    assert big["scale_factor"].tolist() == pytest.approx([6.665, 6.67, 6.665, 6.67])


def test_resize_without_keep_ratio_goes_to_exact_size_and_scales_axes_apart():
    out = Resize(img_scale=[128, 48], keep_ratio=False)(results())
    assert out["img"].shape == (3, 48, 128)
    assert out["scale_factor"].tolist() == [2.0, 1.5, 2.0, 1.5]
    assert out["gt_bboxes"].tolist() == [[16.0, 6.0, 48.0, 30.0]]
    # the model divides by scale_factor to get back to original pixels
    back = out["gt_bboxes"] / torch.from_numpy(out["scale_factor"])
    assert back.tolist() == [[8.0, 4.0, 24.0, 20.0]]


def test_resize_clips_boxes_and_drops_the_ones_left_empty():
    r = results(boxes=((-10, 0, 20, 10), (70, 0, 80, 10), (0, 0, 64, 32)), labels=(0, 1, 2))
    out = Resize(img_scale=[100, 40])(r)
    assert out["gt_bboxes"].tolist() == [[0.0, 0.0, 25.0, 12.5], [0.0, 0.0, 80.0, 40.0]]
    assert out["gt_labels"].tolist() == [0, 2]


def test_multiscale_value_and_range():
    torch.manual_seed(0)
    value = Resize(img_scale=[[64, 32], [128, 64]], multiscale_mode="value", keep_ratio=False)
    shapes = {value(results())["img_shape"][:2] for _ in range(30)}
    assert shapes == {(32, 64), (64, 128)}
    ranged = Resize(img_scale=[[64, 32], [128, 64]], multiscale_mode="range", keep_ratio=False)
    widths = {ranged(results())["img_shape"][1] for _ in range(30)}
    assert len(widths) > 5 and min(widths) >= 64 and max(widths) <= 128


@pytest.mark.parametrize(
    ("direction", "box", "pixel"),
    [
        ("horizontal", [40.0, 4.0, 56.0, 20.0], (4, 55)),
        ("vertical", [8.0, 12.0, 24.0, 28.0], (27, 8)),
        ("diagonal", [40.0, 12.0, 56.0, 28.0], (27, 55)),
    ],
)
def test_flip_moves_image_and_boxes_together(direction, box, pixel):
    out = RandomFlip(flip_ratio=1.0, direction=direction)(results())
    assert out["flip"] is True and out["flip_direction"] == direction
    assert out["gt_bboxes"].tolist() == [box]
    assert marker(out["img"]) == pixel
    again = RandomFlip(flip_ratio=1.0, direction=direction)(dict(out, flip=True))
    assert again["gt_bboxes"].tolist() == [[8.0, 4.0, 24.0, 20.0]]


def test_flip_ratio_zero_never_flips_and_ratio_is_honoured():
    out = RandomFlip(flip_ratio=0.0)(results())
    assert out["flip"] is False and out["gt_bboxes"].tolist() == [[8.0, 4.0, 24.0, 20.0]]
    flips = sum(RandomFlip(flip_ratio=0.5)(results())["flip"] for _ in range(400))
    assert 140 < flips < 260


def test_normalize_values_and_channel_order():
    r = results()
    r["img"] = (
        torch.tensor([MEAN[0] + STD[0], MEAN[1], MEAN[2] - STD[2]])
        .round()
        .to(torch.uint8)
        .view(3, 1, 1)
        .expand(3, 2, 2)
    )
    rgb = Normalize(MEAN, STD, to_rgb=True)(dict(r))
    assert rgb["img"].dtype == torch.float32
    assert rgb["img"][:, 0, 0].tolist() == pytest.approx([1.0, 0.0, -1.0], abs=0.02)
    bgr = Normalize(MEAN, STD, to_rgb=False)(dict(r))  # channels reversed, as mmdet's BGR
    assert bgr["img"][0, 0, 0] == pytest.approx((r["img"][2, 0, 0] - MEAN[0]) / STD[0])
    with pytest.raises(DataError, match="3 means"):
        Normalize([1.0], [1.0])


def test_pad_to_divisor_and_fixed_size():
    r = Resize(img_scale=[100, 40])(results())  # 80x40
    out = Pad(size_divisor=32)(dict(r))
    assert out["img"].shape == (3, 64, 96) and out["pad_shape"] == (64, 96, 3)
    assert out["img_shape"] == (40, 80, 3)  # the unpadded size is kept for mapping back
    assert out["img"][:, 40:].abs().sum() == 0 and out["img"][:, :, 80:].abs().sum() == 0
    assert out["gt_bboxes"].tolist() == r["gt_bboxes"].tolist()
    fixed = Pad(size=[50, 100])(dict(r))
    assert fixed["img"].shape == (3, 50, 100)
    with pytest.raises(DataError, match="exactly one"):
        Pad(size=[1, 2], size_divisor=32)


def test_collect_and_pack_make_a_sample():
    r = Pad(size_divisor=32)(Normalize(MEAN, STD)(Resize(img_scale=[100, 40])(results())))
    r["img_id"] = 7
    sample = Collect(["img", "gt_bboxes", "gt_labels"])(dict(r))
    assert set(sample) == {"img", "img_metas", "gt_bboxes", "gt_labels"}
    meta = sample["img_metas"]
    assert (
        meta["img_id"] == 7
        and meta["ori_shape"] == (32, 64, 3)
        and meta["pad_shape"] == (64, 96, 3)
    )
    assert meta["flip"] is False and meta["img_norm_cfg"]["to_rgb"] is True
    assert sample["gt_labels"].dtype == torch.int64 and sample["gt_bboxes"].dtype == torch.float32
    packed = PackDetInputs()(dict(r))
    assert set(packed) == {"img", "img_metas", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"}
    with pytest.raises(DataError, match="gt_masks not produced"):
        Collect(["img", "gt_masks"])(dict(r))


def test_multi_scale_flip_aug_makes_one_view_per_scale_and_flip(tmp_path):
    write_image(tmp_path / "a.png", 64, 32)
    load = LoadImageFromFile()
    start = load(
        {"img_info": {"filename": "a.png", "id": 1}, "img_prefix": str(tmp_path), "img_id": 1}
    )
    tta = TRANSFORMS.build(
        {
            "type": "MultiScaleFlipAug",
            "transforms": TEST_PIPELINE[1]["transforms"],
            "img_scale": [[64, 32], [128, 64]],
            "flip": True,
            "flip_direction": ["horizontal", "vertical"],
        }
    )
    assert isinstance(tta, MultiScaleFlipAug)
    out = tta(start)
    assert set(out) == {"img", "img_metas"} and len(out["img"]) == 6
    views = [(m["img_shape"][:2], m["flip"], m["flip_direction"]) for m in out["img_metas"]]
    assert views == [
        ((32, 64), False, None),
        ((32, 64), True, "horizontal"),
        ((32, 64), True, "vertical"),
        ((64, 128), False, None),
        ((64, 128), True, "horizontal"),
        ((64, 128), True, "vertical"),
    ]
    assert start["img"].dtype == torch.uint8  # views never modify the shared decoded image
    single = build_pipeline(TEST_PIPELINE)(
        {"img_info": {"filename": "a.png", "id": 1}, "img_prefix": str(tmp_path), "img_id": 1}
    )
    assert len(single["img"]) == 1 and single["img_metas"][0]["img_shape"] == (64, 128, 3)


def test_load_image_grayscale_exif_and_bad_files(tmp_path):
    Image.fromarray(np.full((10, 20), 77, np.uint8), mode="L").save(tmp_path / "gray.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(tmp_path / "rot.jpg", exif=exif)
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    write_image(tmp_path / "cut.jpg", 64, 64)
    data = (tmp_path / "cut.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])

    def load(name, img_id=5):
        return LoadImageFromFile()(
            {"img_info": {"filename": name, "id": img_id}, "img_prefix": str(tmp_path)}
        )

    gray = load("gray.png")
    assert gray["img"].shape == (3, 10, 20) and gray["ori_shape"] == (10, 20, 3)
    assert (gray["img"] == 77).all()
    assert load("rot.jpg")["img"].shape == (3, 40, 20)  # EXIF orientation applied
    for name, words in (
        ("bad.jpg", "cannot be decoded"),
        ("cut.jpg", "truncated"),
        ("gone.png", "cannot be read"),
    ):
        with pytest.raises(DataError, match=words) as err:
            load(name, img_id=42)
        assert name in str(err.value) and "image id 42" in str(err.value)
