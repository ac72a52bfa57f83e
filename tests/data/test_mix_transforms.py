"""RandomAffine, Mosaic, MixUp and MultiImageMixDataset: boxes move exactly with the pixels."""

from __future__ import annotations

import math
import random
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import CATEGORIES, box, image, marker, write_coco
from data_helpers import transform_results as results

from detcli.data.builder import build_dataset
from detcli.data.transforms import MixUp, Mosaic, RandomAffine
from detcli.data.transforms.affine import warp_image
from detcli.errors import DataError

SHAPES_CONFIG = (
    Path(__file__).resolve().parents[2] / "configs/shapes/faster_rcnn_r18_fpn_shapes.yaml"
)

TRANSLATE_ONLY = dict(max_rotate_degree=0.0, scaling_ratio_range=(1.0, 1.0), max_shear_degree=0.0)


def mmdet_affine_matrix(seed, width, height, rot, trans, scale, shear):
    """Independent replay of RandomAffine's draws (mmdet's order) as a numpy 3x3 matrix."""
    rng = random.Random(seed)
    r = math.radians(rng.uniform(-rot, rot))
    s = rng.uniform(*scale)
    sx, sy = (math.radians(rng.uniform(-shear, shear)) for _ in range(2))
    tx, ty = rng.uniform(-trans, trans) * width, rng.uniform(-trans, trans) * height
    rotate = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    shear_m = np.array([[1, math.tan(sx), 0], [math.tan(sy), 1, 0], [0, 0, 1]])
    move = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    return move @ shear_m @ rotate @ np.diag([s, s, 1.0]), (tx, ty)


def expected_affine(boxes, labels, matrix, width, height):
    """Corners through the matrix, enclosing box, clipped, kept while some of it is inside."""
    kept = []
    for (x1, y1, x2, y2), label in zip(boxes, labels, strict=True):
        pts = matrix @ np.array([[x1, x2, x1, x2], [y1, y1, y2, y2], [1, 1, 1, 1]])
        xs, ys = pts[0] / pts[2], pts[1] / pts[2]
        b = [min(max(v, 0), lim) for v, lim in zip(
            (xs.min(), ys.min(), xs.max(), ys.max()), (width, height, width, height), strict=True
        )]  # fmt: skip
        if b[0] < width and b[1] < height and b[2] > 0 and b[3] > 0 and b[2] > b[0]:
            kept.append((b, label))
    return [k[0] for k in kept], [k[1] for k in kept]


def test_random_affine_pure_translation_moves_boxes_and_marker_by_the_offset():
    boxes, labels = ((16, 12, 32, 28), (58, 20, 63, 30)), (1, 2)
    dropped = 0
    for seed in range(30):
        _, (tx, ty) = mmdet_affine_matrix(seed, 64, 32, 0, 0.2, (1, 1), 0)
        before = results(64, 32, boxes, labels)
        before["img"][:] = 0
        before["img"][:, 11:14, 15:18] = 255  # a 3x3 marker centred on the box's corner
        random.seed(seed)
        out = RandomAffine(max_translate_ratio=0.2, border_val=(0, 0, 0), **TRANSLATE_ONLY)(before)
        assert out["img_shape"] == (32, 64, 3) and out["img"].shape == (3, 32, 64)
        moved = [16 + tx, 12 + ty, 32 + tx, min(28 + ty, 32)]  # clipped at the bottom edge
        assert out["gt_bboxes"][0].tolist() == pytest.approx(moved, abs=1e-4)
        y, x = marker(out["img"])
        assert abs(y - (12 + ty)) <= 1 and abs(x - (16 + tx)) <= 1
        if 58 + tx < 64:
            assert out["gt_labels"].tolist() == [1, 2]
            assert out["gt_bboxes"][1].tolist() == pytest.approx(
                [58 + tx, 20 + ty, min(63 + tx, 64), min(30 + ty, 32)], abs=1e-4
            )
        else:  # the second box went past the right edge: dropped with its label
            assert out["gt_labels"].tolist() == [1]
            dropped += 1
    assert 0 < dropped < 30


def test_warp_image_integer_translation_is_exact_and_fills_with_border_val():
    img = torch.arange(3 * 4 * 5, dtype=torch.uint8).reshape(3, 4, 5)
    move = torch.tensor([[1.0, 0, 2], [0, 1, 1], [0, 0, 1]])
    out = warp_image(img, move, 4, 5, (114, 50, 7))
    assert torch.equal(out[:, 1:, 2:], img[:, :3, :3])
    assert out[:, 0, :].tolist() == [[114] * 5, [50] * 5, [7] * 5]


@pytest.mark.parametrize("seed", range(12))
def test_random_affine_boxes_are_the_enclosing_box_of_the_moved_corners(seed):
    boxes = ((8, 4, 24, 20), (40, 2, 60, 30), (0, 0, 6, 6))
    labels = (0, 1, 2)
    args = dict(rot=30, trans=0.2, scale=(0.6, 1.4), shear=5)
    matrix, _ = mmdet_affine_matrix(seed, 64, 32, **args)
    random.seed(seed)
    out = RandomAffine(
        max_rotate_degree=30, max_translate_ratio=0.2, scaling_ratio_range=(0.6, 1.4),
        max_shear_degree=5,
    )(results(64, 32, boxes, labels))  # fmt: skip
    want_boxes, want_labels = expected_affine(boxes, labels, matrix, 64, 32)
    assert out["gt_labels"].tolist() == want_labels
    assert out["gt_bboxes"].tolist() == [pytest.approx(b, abs=1e-3) for b in want_boxes]


def test_random_affine_border_shrinks_the_output_and_refuses_bad_arguments():
    random.seed(0)
    out = RandomAffine(max_translate_ratio=0.0, border=(-16, -8), **TRANSLATE_ONLY)(results())
    assert out["img_shape"] == (16, 32, 3)
    assert out["gt_bboxes"].tolist() == [[8.0, 4.0, 24.0, 16.0]]  # clipped to the smaller image
    with pytest.raises(DataError, match="scaling_ratio_range"):
        RandomAffine(scaling_ratio_range=(0.0, 1.0))
    with pytest.raises(DataError, match="border"):
        RandomAffine(border=(-40, 0))(results())


def four_images():
    """Four 64x32 results, each with one box (label = its index) and its marker pixel."""
    parts = []
    for k, b in enumerate(((8, 4, 24, 20), (30, 6, 50, 26), (2, 10, 20, 30), (40, 0, 62, 12))):
        r = results(64, 32, (b,), (k,))
        r["img"][:] = 0
        r["img"][:, b[1], b[0]] = 255  # each marker at its own box's top-left corner
        parts.append(r)
    return parts


def test_mosaic_of_four_images_puts_each_image_and_its_boxes_in_its_quadrant():
    first, *others = four_images()
    random.seed(0)
    out = Mosaic(img_scale=(64, 32), center_ratio_range=(1.0, 1.0))(dict(first, mix_results=others))
    assert out["img_shape"] == (64, 128, 3) and out["img"].shape == (3, 64, 128)
    offsets = [(0, 0), (64, 0), (0, 32), (64, 32)]  # centre (64, 32): images fill quadrants
    originals = [r["gt_bboxes"][0].tolist() for r in [first, *others]]
    want = [[x1 + dx, y1 + dy, x2 + dx, y2 + dy] for (x1, y1, x2, y2), (dx, dy) in zip(
        originals, offsets, strict=True
    )]  # fmt: skip
    assert out["gt_bboxes"].tolist() == want
    assert out["gt_labels"].tolist() == [0, 1, 2, 3]
    for x1, y1, _, _ in want:  # each marker pixel is at its box's corner on the canvas
        assert out["img"][:, int(y1), int(x1)].tolist() == [255, 255, 255]
    assert int((out["img"] > 100).sum()) == 4 * 3


def test_mosaic_scales_images_to_img_scale_pads_and_clips():
    first, *others = four_images()
    others[2] = results(128, 64, ((80, 8, 112, 40),), (3,))  # twice the size: halved to fit
    random.seed(0)
    out = Mosaic(img_scale=(64, 32), center_ratio_range=(0.75, 0.75), pad_val=7)(
        dict(first, mix_results=others)
    )
    # centre (48, 24): the top-left image's 16 left columns and 8 top rows are cut off
    boxes = dict(zip(out["gt_labels"].tolist(), out["gt_bboxes"].tolist(), strict=True))
    assert boxes[0] == [0.0, 0.0, 8.0, 12.0]  # (8,4,24,20) - (16, 8), clipped at the canvas
    assert boxes[3] == [48 + 40.0, 24 + 4.0, 48 + 56.0, 24 + 20.0]  # halved, then moved
    assert boxes[1] == [48 + 30.0, 0.0, 48 + 50.0, 24 - 32 + 26.0]
    # the canvas right of the last image and below the bottom ones is pad_val
    assert int(out["img"][0, 60, 120]) == 7 and int(out["img"][0, 0, 127]) == 7
    skipped = Mosaic(img_scale=(64, 32), prob=0.0)(dict(first, mix_results=others))
    assert skipped["img_shape"] == (32, 64, 3)


def test_mosaic_and_mixup_outside_a_mix_dataset_say_where_they_belong():
    with pytest.raises(DataError, match="MultiImageMixDataset"):
        Mosaic(img_scale=(64, 32))(results())
    with pytest.raises(DataError, match="MultiImageMixDataset"):
        MixUp(img_scale=(64, 32))(results())


def test_mixup_keeps_both_images_boxes_and_blends_pixels():
    first, second, *_ = four_images()
    random.seed(0)
    out = MixUp(img_scale=(64, 32), ratio_range=(1, 1), flip_ratio=0.0)(
        dict(first, mix_results=[second])
    )
    assert out["gt_bboxes"].tolist() == [[8.0, 4.0, 24.0, 20.0], [30.0, 6.0, 50.0, 26.0]]
    assert out["gt_labels"].tolist() == [0, 1]
    assert out["img"][:, 4, 8].tolist() == [127] * 3  # half of each image's marker
    assert out["img"][:, 6, 30].tolist() == [127] * 3
    random.seed(0)
    flipped = MixUp(img_scale=(64, 32), ratio_range=(1, 1), flip_ratio=1.0)(
        dict(first, mix_results=[second])
    )
    assert flipped["gt_bboxes"].tolist()[1] == [64 - 50.0, 6.0, 64 - 30.0, 26.0]
    assert flipped["img"][:, 6, 63 - 30].tolist() == [127] * 3


@pytest.mark.parametrize("seed", range(8))
def test_mixup_jittered_window_moves_the_other_boxes_exactly(seed):
    first, second, *_ = four_images()
    rng = random.Random(seed)  # replay: jitter (fixed), flip draw, then the window's offsets
    rng.uniform(2, 2), rng.uniform(0, 1)
    y_off, x_off = rng.randint(0, 64 - 32), rng.randint(0, 128 - 64)
    random.seed(seed)
    out = MixUp(img_scale=(64, 32), ratio_range=(2, 2), flip_ratio=0.0)(
        dict(first, mix_results=[second])
    )
    x1, y1, x2, y2 = (2 * v for v in (30, 6, 50, 26))
    moved = [min(max(x1 - x_off, 0), 64), min(max(y1 - y_off, 0), 32)]
    moved += [min(max(x2 - x_off, 0), 64), min(max(y2 - y_off, 0), 32)]
    inside = moved[0] < 64 and moved[1] < 32 and moved[2] > 0 and moved[3] > 0
    assert out["gt_bboxes"].tolist()[0] == [8.0, 4.0, 24.0, 20.0]
    assert out["gt_bboxes"].tolist()[1:] == ([moved] if inside else [])
    assert out["gt_labels"].tolist() == ([0, 1] if inside else [0])


def mix_dataset_cfg(tmp_path, pipeline, **kw):
    images = [image(i, 64, 48) for i in (1, 2, 3, 4)]
    anns = [box(i, i, (1, 3, 7, 1)[i - 1], [4.0 * i, 4.0, 16.0, 12.0]) for i in (1, 2, 3, 4)]
    ann, prefix = write_coco(tmp_path, images, anns, CATEGORIES)
    inner = {
        "type": "CocoDataset",
        "ann_file": str(ann),
        "data_prefix": {"img": str(prefix)},
        "pipeline": [{"type": "LoadImageFromFile"}, {"type": "LoadAnnotations", "with_bbox": True}],
    }
    return {"type": "MultiImageMixDataset", "dataset": inner, "pipeline": pipeline, **kw}


YOLOX_STEPS = [
    {"type": "Mosaic", "img_scale": [64, 48], "center_ratio_range": [1.0, 1.0]},
    {"type": "RandomAffine", "scaling_ratio_range": [0.5, 1.5], "border": [-32, -24]},
    {"type": "MixUp", "img_scale": [64, 48], "ratio_range": [0.8, 1.6]},
    {"type": "Resize", "scale": [64, 48], "keep_ratio": True},
    {"type": "RandomFlip", "prob": 0.5},
    {"type": "PackDetInputs"},
]


def test_multi_image_mix_dataset_feeds_mosaic_real_images_from_disk(tmp_path):
    random.seed(3)
    cfg = mix_dataset_cfg(tmp_path, [YOLOX_STEPS[0]])
    dataset = build_dataset(cfg)
    assert len(dataset) == 4 and dataset.CLASSES == ("cat", "dog", "bird")
    sample = dataset[0]
    assert "mix_results" not in sample
    assert sample["img"].shape == (3, 96, 128)  # 2 x img_scale (h, w)
    # image 0 fills the top-left quadrant: its box (4, 4, 20, 16) stays where it was
    assert sample["gt_bboxes"][0].tolist() == [4.0, 4.0, 20.0, 16.0]
    assert sample["gt_labels"][0] == 0 and len(sample["gt_labels"]) == 4
    assert torch.equal(sample["img"][:, :48, :64], dataset.dataset[0]["img"])


def test_multi_image_mix_dataset_skips_types_and_packs_a_training_sample(tmp_path):
    dataset = build_dataset(mix_dataset_cfg(tmp_path, YOLOX_STEPS))
    for idx in range(4):
        random.seed(idx)
        sample = dataset[idx]
        img, boxes = sample["img"], sample["gt_bboxes"]
        assert img.shape[0] == 3 and img.shape[1] <= 48 and img.shape[2] <= 64
        assert len(boxes) == len(sample["gt_labels"])
        if len(boxes):
            assert bool((boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 0] >= 0).all())
            assert bool((boxes[:, 2] <= img.shape[2]).all() and (boxes[:, 3] <= img.shape[1]).all())
    dataset.update_skip_type_keys(["Mosaic", "RandomAffine", "MixUp"])
    random.seed(0)
    plain = dataset[1]
    unflipped, flipped = [[8.0, 4.0, 24.0, 16.0]], [[64 - 24.0, 4.0, 64 - 8.0, 16.0]]
    assert plain["gt_bboxes"].tolist() in (unflipped, flipped)  # one image, nothing mixed in
    with pytest.raises(DataError, match="skip_type_keys"):
        dataset.update_skip_type_keys("Mosaic")


MIX_TRAIN = """
    data:
      train:
        _delete_: true
        type: MultiImageMixDataset
        dataset:
          type: CocoDataset
          classes: ${classes}
          ann_file: ${data_root}/train.json
          img_prefix: ${data_root}/train
          pipeline:
            - {type: LoadImageFromFile}
            - {type: LoadAnnotations, with_bbox: true}
        pipeline:
          - {type: Mosaic, img_scale: [128, 128]}
          - {type: RandomAffine, border: [-64, -64]}
          - {type: MixUp, img_scale: [128, 128]}
          - {type: Resize, img_scale: [128, 128], keep_ratio: true}
          - {type: RandomFlip, flip_ratio: 0.5}
          - {type: Normalize, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true}
          - {type: Pad, size_divisor: 32}
          - {type: DefaultFormatBundle}
          - {type: Collect, keys: [img, gt_bboxes, gt_labels]}
    runner: {_delete_: true, type: IterBasedRunner, max_iters: 1}
    lr_config: {_delete_: true, policy: step, step: [2], by_epoch: false}
    evaluation: {interval: 100}
    checkpoint_config: {interval: 100}
"""


def write_mix_config(tmp_path, data_root):
    """The shapes config (on `data_root`) training a MultiImageMixDataset for one iteration."""
    text = f"_base_: {SHAPES_CONFIG}\ndata_root: {data_root}\n" + textwrap.dedent(MIX_TRAIN)
    path = tmp_path / "mix.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_accepts_a_mix_dataset_config_and_names_a_wrong_argument(shapes_coco, tmp_path):
    from detcli.config import resolve_config
    from detcli.config.check import check_config
    from detcli.plugins import load_plugins

    load_plugins()  # what the CLI does first: the model's types are detcli's built-in plugin's
    path = write_mix_config(tmp_path, shapes_coco.root)
    problems = [p for p in check_config(resolve_config(path)) if not p.note and not p.warning]
    assert problems == []
    bad = resolve_config(path, ["data.train.pipeline.0.img_scal=[64, 64]"])
    assert any("img_scal" in str(p) for p in check_config(bad))


def test_one_training_iteration_on_mosaic_mixup_affine_samples(shapes_coco, tmp_path):
    from detcli.engine import train

    random.seed(0)
    path = write_mix_config(tmp_path, shapes_coco.root)
    result = train(path, work_dir=tmp_path / "w", device="cpu")
    assert result.iter == 1 and result.stop_reason is None
    log = (tmp_path / "w" / "train.log").read_text()
    assert "Iter [1/1]" in log and "loss" in log
