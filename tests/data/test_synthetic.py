"""The synthetic shapes writer: real files, deterministic, distinct splits, tight boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from detcli.data.synthetic import SHAPES, write_shapes_coco
from detcli.errors import DataError


def _load(ann):
    return json.loads(ann.read_text())


def test_writes_real_coco_and_images(shapes_coco):
    data = _load(shapes_coco.train_ann)
    assert [c["name"] for c in data["categories"]] == list(shapes_coco.classes)
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    assert len(data["images"]) == 16
    for info in data["images"]:
        with Image.open(shapes_coco.train_img / info["file_name"]) as im:
            assert im.size == (info["width"], info["height"]) == (128, 128)
    per_image = np.bincount([a["image_id"] for a in data["annotations"]], minlength=17)[1:]
    assert per_image.min() >= 1 and per_image.max() <= 4
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        assert a["iscrowd"] == 0 and a["area"] == w * h
        assert x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128
        # ~12% to ~50% of the image side (aspect jitter stretches one side a little)
        assert 0.08 * 128 <= max(w, h) <= 0.62 * 128


def test_boxes_are_tight_around_the_drawn_pixels(shapes_coco):
    data = _load(shapes_coco.train_ann)
    for info in data["images"]:
        pixels = np.asarray(Image.open(shapes_coco.train_img / info["file_name"]), np.float32)
        boxes = [a["bbox"] for a in data["annotations"] if a["image_id"] == info["id"]]
        inside = np.zeros(pixels.shape[:2], bool)
        for x, y, w, h in boxes:
            inside[int(y) : int(y + h), int(x) : int(x + w)] = True
        background = np.median(pixels[~inside], axis=0)
        shape = np.abs(pixels - background).sum(axis=2) > 100  # objects contrast by >= 200
        assert not shape[~inside].any()  # every drawn pixel is inside some box
        for x, y, w, h in (list(map(int, b)) for b in boxes):
            region = shape[y : y + h, x : x + w]
            # each edge of the box touches the shape: no box is looser than its pixels
            assert region[0].any() and region[-1].any()
            assert region[:, 0].any() and region[:, -1].any()


def test_deterministic_by_seed_and_split(tmp_path):
    a, _ = write_shapes_coco(tmp_path / "a", num_images=4, image_size=64, seed=5)
    b, _ = write_shapes_coco(tmp_path / "b", num_images=4, image_size=64, seed=5)
    c, _ = write_shapes_coco(tmp_path / "c", num_images=4, image_size=64, seed=6)
    v, _ = write_shapes_coco(tmp_path / "a", num_images=4, image_size=64, seed=5, split="val")
    assert _load(a)["annotations"] == _load(b)["annotations"]
    assert (tmp_path / "a/train/000000.png").read_bytes() == (
        tmp_path / "b/train/000000.png"
    ).read_bytes()
    assert _load(a)["annotations"] != _load(c)["annotations"]
    assert _load(a)["annotations"] != _load(v)["annotations"]
    assert (tmp_path / "a/train/000000.png").read_bytes() != (
        tmp_path / "a/val/000000.png"
    ).read_bytes()


def test_class_count_limits_and_jpeg(tmp_path):
    ann, prefix = write_shapes_coco(
        tmp_path, num_images=3, num_classes=len(SHAPES), image_size=64, image_format="jpg"
    )
    assert len(_load(ann)["categories"]) == len(SHAPES)
    assert sorted(p.suffix for p in prefix.iterdir()) == [".jpg"] * 3
    with pytest.raises(DataError, match="1 to 10 classes"):
        write_shapes_coco(tmp_path, num_classes=len(SHAPES) + 1)


def test_synth_cli_writes_several_splits(cli, tmp_path):
    result = cli(
        "dataset",
        "synth",
        str(tmp_path / "s"),
        "--images",
        "3",
        "--classes",
        "4",
        "--size",
        "64",
        "--split",
        "train",
        "--split",
        "val",
    )
    assert result.code == 0, result.err
    for split in ("train", "val"):
        data = _load(tmp_path / "s" / f"{split}.json")
        assert len(data["images"]) == 3 and len(data["categories"]) == 4
        assert len(list((tmp_path / "s" / split).glob("*.png"))) == 3
    assert "square, circle, triangle, cross" in result.out


def test_non_square_images(tmp_path):
    ann, prefix = write_shapes_coco(tmp_path, num_images=2, image_size=(96, 64))
    data = _load(ann)
    assert {(i["width"], i["height"]) for i in data["images"]} == {(96, 64)}
    with Image.open(prefix / "000000.png") as im:
        assert im.size == (96, 64)
    assert all(a["bbox"][1] + a["bbox"][3] <= 64 for a in data["annotations"])
