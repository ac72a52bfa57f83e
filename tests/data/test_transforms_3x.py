"""Transforms in MMDetection 3.x (mmcv 2.x) spelling: boxes move exactly with the image."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from data_helpers import marker, write_image
from data_helpers import transform_results as results

import detcli.data.transforms as T
from detcli.data.builder import build_pipeline
from detcli.data.transforms import (
    Compose,
    LoadAnnotations,
    LoadImageFromFile,
    PackDetInputs,
    Pad,
    PhotoMetricDistortion,
    RandomChoiceResize,
    RandomCrop,
    RandomFlip,
    RandomResize,
    Resize,
)
from detcli.data.transforms.photometric import hsv_to_rgb, rgb_to_hsv
from detcli.errors import DataError, RegistryError
from detcli.registry import TRANSFORMS


def test_resize_scale_keep_ratio_matches_2x_img_scale():
    new = Resize(scale=[100, 40], keep_ratio=True)(results())
    old = Resize(img_scale=[100, 40], keep_ratio=True)(results())
    assert new["img_shape"] == old["img_shape"] == (40, 80, 3)
    assert torch.equal(new["img"], old["img"])
    assert new["gt_bboxes"].tolist() == old["gt_bboxes"].tolist() == [[10.0, 5.0, 30.0, 25.0]]
    np.testing.assert_array_equal(new["scale_factor"], old["scale_factor"])


def test_resize_defaults_differ_by_spelling_as_in_mmdet():
    # mmcv 2.x Resize: keep_ratio false -> exactly (w, h); mmdet 2.x Resize: keep_ratio true
    assert Resize(scale=[128, 48])(results())["img_shape"] == (48, 128, 3)
    assert Resize(img_scale=[128, 48])(results())["img_shape"] == (48, 96, 3)
    assert Resize(scale=50)(results())["img_shape"] == (50, 50, 3)  # one int: a square


def test_resize_scale_factor_and_clip_object_border():
    out = Resize(scale_factor=1.5, keep_ratio=True)(results())
    assert out["img_shape"] == (48, 96, 3)
    assert out["gt_bboxes"].tolist() == [[12.0, 6.0, 36.0, 30.0]]
    r = results(boxes=((-10, 0, 20, 10),), labels=(0,))
    clipped = Resize(scale=[128, 64], clip_object_border=True)(dict(r))
    assert clipped["gt_bboxes"].tolist() == [[0.0, 0.0, 40.0, 20.0]]
    unclipped = Resize(scale=[128, 64], clip_object_border=False)(
        results(boxes=((-10, 0, 20, 10),))
    )
    assert unclipped["gt_bboxes"].tolist() == [[-20.0, 0.0, 40.0, 20.0]]


def test_resize_mixing_spellings_names_both():
    with pytest.raises(DataError, match=r"img_scale.*scale.*3\.x pipeline write `scale"):
        Resize(img_scale=[100, 40], scale=[100, 40])
    with pytest.raises(DataError, match=r"bbox_clip_border.*clip_object_border"):
        Resize(scale=[10, 10], bbox_clip_border=False)


def test_random_resize_draws_each_side_in_range_and_boxes_follow():
    random.seed(0)
    rr = RandomResize(scale=[[64, 32], [128, 48]], keep_ratio=False)
    shapes = set()
    for _ in range(40):
        out = rr(results())
        h, w = out["img_shape"][:2]
        shapes.add((h, w))
        assert 64 <= w <= 128 and 32 <= h <= 48
        sx, sy = w / 64, h / 32
        assert out["gt_bboxes"].tolist() == [
            pytest.approx([8 * sx, 4 * sy, 24 * sx, 20 * sy], rel=1e-6)
        ]
    assert len(shapes) > 10
    ratio = RandomResize(scale=[64, 32], ratio_range=[2.0, 2.0], keep_ratio=True)(results())
    assert ratio["img_shape"] == (64, 128, 3)
    with pytest.raises(DataError, match="ratio_range"):
        RandomResize(scale=[64, 32])


def test_random_choice_resize_picks_only_given_scales():
    random.seed(1)
    rc = RandomChoiceResize(scales=[[64, 32], [128, 64]], keep_ratio=True)
    seen = {rc(results())["img_shape"][:2] for _ in range(30)}
    assert seen == {(32, 64), (64, 128)}
    out = rc(results())
    assert out["scale_idx"] in (0, 1)


def test_random_resize_type_is_a_detcli_resize_by_name_or_any_resize_class():
    class HalfResize(Resize):  # a user's resize: halves whatever scale it is given
        def __call__(self, results):
            self.scale = (self.scale[0] // 2, self.scale[1] // 2)
            return super().__call__(results)

    by_class = RandomChoiceResize(scales=[[128, 64]], resize_type=HalfResize, keep_ratio=True)
    assert by_class(results())["img_shape"][:2] == (32, 64)
    with pytest.raises(DataError, match=r"RandomResize\.resize_type: 'Resize2'.*Did you mean"):
        RandomResize(scale=[[64, 32], [128, 48]], resize_type="Resize2")


def test_compose_takes_built_steps_and_names_a_config_left_unbuilt():
    steps = [Resize(scale=[64, 32], keep_ratio=True), {"type": "PackDetInputs"}]
    with pytest.raises(DataError, match=r"pipeline step 1 is \{'type': 'PackDetInputs'\}"):
        Compose(steps)
    with pytest.raises(RegistryError, match=r"'PackDetInput'. Did you mean 'PackDetInputs'"):
        build_pipeline([{"type": "Resize", "scale": [64, 32]}, {"type": "PackDetInput"}])


@pytest.mark.parametrize(
    ("direction", "box", "pixel"),
    [
        ("horizontal", [40.0, 4.0, 56.0, 20.0], (4, 55)),
        ("vertical", [8.0, 12.0, 24.0, 28.0], (27, 8)),
        ("diagonal", [40.0, 12.0, 56.0, 28.0], (27, 55)),
    ],
)
def test_random_flip_prob_one_flips_boxes_exactly(direction, box, pixel):
    out = RandomFlip(prob=1.0, direction=direction)(results())
    assert out["flip"] is True and out["flip_direction"] == direction
    assert out["gt_bboxes"].tolist() == [box]
    assert marker(out["img"]) == pixel
    # a 3.x RandomFlip decides itself, even when the results already carry a decision
    kept = RandomFlip(prob=0.0)(dict(results(), flip=True, flip_direction="horizontal"))
    assert kept["flip"] is False and kept["gt_bboxes"].tolist() == [[8.0, 4.0, 24.0, 20.0]]


def test_random_flip_refuses_both_spellings():
    with pytest.raises(DataError, match=r"flip_ratio.*prob"):
        RandomFlip(flip_ratio=0.5, prob=0.5)


def expected_crop(boxes, labels, x0, y0, crop_w, crop_h):
    """Independent arithmetic: shift, clip, keep the boxes with some part inside."""
    kept = []
    for (x1, y1, x2, y2), label in zip(boxes, labels, strict=True):
        c = [min(max(x1 - x0, 0), crop_w), min(max(y1 - y0, 0), crop_h)]
        c += [min(max(x2 - x0, 0), crop_w), min(max(y2 - y0, 0), crop_h)]
        if c[0] < crop_w and c[1] < crop_h and c[2] > 0 and c[3] > 0:
            kept.append((c, label))
    return [k[0] for k in kept], [k[1] for k in kept]


def test_random_crop_moves_boxes_exactly_and_drops_the_ones_outside():
    boxes = ((8, 4, 24, 20), (50, 20, 60, 30), (0, 0, 4, 4))
    labels = (0, 1, 2)
    for seed in range(25):
        random.seed(seed)  # replay the two offsets RandomCrop draws (absolute: no size draw)
        y0, x0 = random.randint(0, 32 - 16), random.randint(0, 64 - 32)
        random.seed(seed)
        out = RandomCrop(crop_size=(16, 32), allow_negative_crop=True)(
            results(64, 32, boxes, labels)
        )
        assert out["img"].shape == (3, 16, 32) and out["img_shape"] == (16, 32, 3)
        want_boxes, want_labels = expected_crop(boxes, labels, x0, y0, 32, 16)
        assert out["gt_bboxes"].tolist() == want_boxes
        assert out["gt_labels"].tolist() == want_labels
        if x0 <= 8 < x0 + 32 and y0 <= 4 < y0 + 16:  # the marker moved with the boxes
            assert marker(out["img"]) == (4 - y0, 8 - x0)


def test_random_crop_rejects_a_crop_without_boxes_unless_allowed():
    far = results(width=200, height=32, boxes=((190, 0, 200, 10),))
    random.seed(0)
    x0 = [random.randint(0, 0), random.randint(0, 180)][1]
    assert x0 + 20 <= 190  # this seed's window misses the only box
    random.seed(0)
    assert RandomCrop(crop_size=(32, 20))(dict(far, bbox_fields=list(far["bbox_fields"]))) is None
    random.seed(0)
    allowed = RandomCrop(crop_size=(32, 20), allow_negative_crop=True)(far)
    assert allowed is not None and len(allowed["gt_bboxes"]) == len(allowed["gt_labels"]) == 0
    relative = RandomCrop(crop_size=(0.5, 0.5), crop_type="relative")(results())
    assert relative["img_shape"] == (16, 32, 3)
    random.seed(2)
    ranged = RandomCrop(crop_size=(10, 20), crop_type="absolute_range")(results())
    h, w = ranged["img_shape"][:2]
    assert 10 <= h <= 20 and 10 <= w <= 20
    with pytest.raises(DataError, match="crop_type"):
        RandomCrop(crop_size=(1, 1), crop_type="square")


def test_photo_metric_distortion_changes_pixels_not_boxes_and_stays_in_range():
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8)
    changed = 0
    for seed in range(12):
        random.seed(seed)
        r = dict(results(24, 24), img=img)
        out = PhotoMetricDistortion()(r)
        assert out["img"].dtype == torch.float32
        assert out["img"].min() >= 0 and out["img"].max() <= 255
        assert out["gt_bboxes"].tolist() == [[8.0, 4.0, 24.0, 20.0]]
        changed += int(not torch.allclose(out["img"], img.float()))
    assert changed >= 8
    assert img.dtype == torch.uint8  # the source image is left untouched
    hsv = rgb_to_hsv(img.float())
    assert torch.allclose(hsv_to_rgb(hsv), img.float(), atol=1e-3)


def test_pad_3x_size_is_w_h_in_a_3x_pipeline_and_pad_val_dict():
    two = Pad(size=[40, 100])(results())  # 2.x: (h, w)
    assert two["img"].shape == (3, 40, 100)
    pipeline = build_pipeline(
        [
            {"type": "Pad", "size": [100, 40], "pad_val": {"img": [1, 2, 3]}},
            {"type": "PackDetInputs"},
        ]
    )
    out = pipeline(results())
    assert out["img"].shape == (3, 40, 100)  # 3.x: (w, h)
    assert out["img"][:, 39, 99].tolist() == [1.0, 2.0, 3.0]
    assert out["img_metas"]["pad_shape"] == (40, 100, 3)
    square = Pad(pad_to_square=True, size_divisor=32)(results())
    assert square["img"].shape == (3, 64, 64)
    edge = Pad(size_divisor=48, padding_mode="edge")(results())
    assert edge["img"].shape == (3, 48, 96) and edge["img"][0, 40, 8] == 0
    marked = results()
    marked["img"][:, 31, :] = 7
    assert Pad(size_divisor=48, padding_mode="edge")(marked)["img"][0, 40, 3] == 7
    with pytest.raises(DataError, match="padding_mode"):
        Pad(size_divisor=32, padding_mode="wrap")


def test_pack_det_inputs_with_3x_meta_keys_always_records_what_the_model_needs():
    r = Resize(scale=[100, 40], keep_ratio=True)(results())
    r.update(img_id=3, filename="/d/a.png", ori_filename="a.png")
    note_keys = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")
    sample = PackDetInputs(meta_keys=note_keys)(r)
    meta = sample["img_metas"]
    assert meta["flip"] is False and meta["flip_direction"] is None
    assert meta["img_path"] == "/d/a.png" and meta["pad_shape"] == (40, 80, 3)
    assert meta["scale_factor"].tolist() == [1.25] * 4
    assert set(sample) == {"img", "img_metas", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"}
    PackDetInputs(meta_keys=(*note_keys, "homography_matrix"))  # accepted, no effect
    with pytest.raises(DataError, match="Did you mean 'img_shape'"):
        PackDetInputs(meta_keys=("img_shap",))


def test_test_time_aug_views_are_the_product_of_the_lists(tmp_path):
    write_image(tmp_path / "a.png", 64, 32)
    start = LoadImageFromFile(backend_args=None)(
        {"img_info": {"filename": "a.png", "id": 1}, "img_prefix": str(tmp_path), "img_id": 1}
    )
    tta = TRANSFORMS.build(
        {
            "type": "TestTimeAug",
            "transforms": [
            [
                {"type": "Resize", "scale": [64, 32], "keep_ratio": True},
                {"type": "Resize", "scale": [128, 64], "keep_ratio": True},
            ],
            [{"type": "RandomFlip", "prob": 1.0}, {"type": "RandomFlip", "prob": 0.0}],
            [
                {
                    "type": "PackDetInputs",
                    "meta_keys": ["img_id", "img_path", "ori_shape", "img_shape", "scale_factor",
                                  "flip", "flip_direction"],
                }
            ],
        ]
        }
    )  # fmt: skip
    assert isinstance(tta, T.TestTimeAug)  # built bottom-up: the inner steps came built
    out = tta(start)
    assert len(out["img"]) == len(out["img_metas"]) == 4
    views = [(m["img_shape"][:2], m["flip"], m["flip_direction"]) for m in out["img_metas"]]
    assert views == [
        ((32, 64), True, "horizontal"),
        ((32, 64), False, None),
        ((64, 128), True, "horizontal"),
        ((64, 128), False, None),
    ]
    assert torch.equal(out["img"][0], out["img"][1].flip(-1))
    assert start["img"].dtype == torch.uint8 and "flip" not in start
    with pytest.raises(DataError, match="PackDetInputs"):
        T.TestTimeAug(transforms=[[Resize(scale=[8, 8])]])(dict(start))


def test_loading_accepts_3x_arguments_and_refuses_semantic_maps():
    LoadImageFromFile(imdecode_backend="pillow", backend_args={"backend": "local"})
    LoadAnnotations(with_bbox=True, poly2mask=False, box_type="hbox", backend_args=None)
    assert LoadAnnotations(with_mask=True, poly2mask=False).with_mask  # masks: test_masks*.py
    with pytest.raises(DataError, match="semantic maps"):
        LoadAnnotations(with_seg=True)
    with pytest.raises(DataError, match="horizontal boxes only"):
        LoadAnnotations(box_type="rbox")
    skip = LoadImageFromFile(ignore_empty=True)
    assert skip({"img_info": {"filename": "/nope/x.png", "id": 1}, "img_prefix": ""}) is None


def test_spellings_table_is_torch_free_and_answers():
    code = (
        "import sys; from detcli.data.transform_spellings import key_replacement as k, "
        "type_replacement as t; assert 'torch' not in sys.modules; "
        "print(k('Resize', 'img_scale'), k('RandomFlip', 'flip_ratio'), "
        "t('Pad', train=True), t('Pad', train=False), t('MultiScaleFlipAug', train=False))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "scale",
        "prob",
        "model.data_preprocessor.pad_size_divisor",
        "None",
        "TestTimeAug",
    ]
