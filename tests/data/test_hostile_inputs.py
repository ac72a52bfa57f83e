"""Data that would give a wrong answer without a word (issue 14): lint names it, train and eval
refuse it or drop it with a count, and the same decoder reads images everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_helpers import CATEGORIES, box, coco_cfg, image, write_coco, write_config
from PIL import Image

from conftest import REPO, run_detcli, write_bomb_png

SHAPES = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"
QUICK_TRAIN = (
    "--set",
    "runner.max_epochs=1",
    "--set",
    "evaluation=null",
    "--set",
    "log_config.hooks=[{type: TextLoggerHook}]",
    "--device",
    "cpu",
)


def lint(cli, cfg: Path, *extra: str):
    return cli("dataset", "lint", str(cfg), "--limit", "0", *extra)


def test_lint_names_every_bad_field_and_box_at_once(cli, tmp_path):
    images = [image(1), image(2), image(3), dict(image(4), width=None), dict(image(5), id="5")]
    anns = [
        box(1, 1, 1, [1, 1, 10, 10]),
        dict(box(2, 1, 1, [1, 1, 10, 10]), category_id="1"),
        dict(box(3, 2, 1, [1, 1, 10, 10]), category_id="3"),
        box(2**70, 2, 1, [1, 1, 10, 10]),
        dict(box(5, 2, 1, [1, 1, 10, 10]), bbox=[1, 1, "10", 10]),
        dict(box(6, 3, 1, [1, 1, 10, 10]), bbox=[1, 1, 10]),
        box(7, 3, 1, [float("inf"), 1, 10, 10]),
        box(8, 3, 1, [1, float("nan"), 10, 10]),
        box(9, 3, 1, [1, 1, 1e9, 10]),
    ]
    ann, prefix = write_coco(tmp_path, images[:3], anns, CATEGORIES)
    data = json.loads(ann.read_text())
    data["images"] = images  # 4 and 5 have no file: the json is what is tested
    ann.write_text(json.dumps(data))  # writes NaN / Infinity as Python's json reads them
    cfg = write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix))

    result = lint(cli, cfg)
    assert result.code == 1, result.out
    out = " ".join(result.out.split())
    for text in (
        "annotations[1] (id 2): category_id is the string '1'; ids must be JSON integers",
        "annotations[2] (id 3): category_id is the string '3'",
        f"annotations[3] (id {2**70}): id is {2**70}, beyond 64-bit integers",
        "images[3] (id 4): width is null; image sizes must be positive integers",
        "images[4] (id '5'): id is the string '5'",
        # several malformed bboxes: every one of them, not the first only
        'annotations[4] (id 5): bbox is [1, 1, "10", 10]',
        "annotations[5] (id 6): bbox is [1, 1, 10]",
    ):
        assert text in out, text
    malformed = out.split("malformed box:")[1]
    for ann_id in (7, 8, 9):
        assert f"image 3, annotation {ann_id}:" in malformed
    counts = [line.split("│")[3].strip() for line in result.out.splitlines() if "│ bad " in line]
    assert counts == ["2", "5"]  # images 4 and 5; annotations 2, 3, 2**70, 5, 6
    assert "10 error(s)" in out


def test_train_and_eval_refuse_string_ids_naming_file_field_and_ids(cli, tmp_path):
    images = [image(1), image(2)]
    anns = [box(1, 1, 1, [1, 1, 10, 10])] + [
        dict(box(k, 2, 3, [5, 5, 10, 10]), category_id="3") for k in (2, 3, 4)
    ]
    ann, prefix = write_coco(tmp_path, images, anns, CATEGORIES)
    cfg = write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix))
    for command in (("dataset", "stats"), ("dataset", "show", "--out", str(tmp_path / "o"))):
        result = cli(*command[:2], str(cfg), *command[2:])
        assert result.code == 2
        err = " ".join(result.err.split())
        assert f"{ann}:" in err.replace(" ", "") or str(ann) in err
        assert "category_id is the string '3'" in err
        assert "3 annotation entries have a bad `category_id` (annotation ids 2, 3, 4)" in err

    # the real `detcli train` (training once used these boxes while eval dropped them)
    root = tmp_path / "shapes"
    from detcli.data.synthetic import write_shapes_coco

    train_json, _ = write_shapes_coco(root, num_images=4, image_size=128, split="train")
    data = json.loads(train_json.read_text())
    data["annotations"][0]["category_id"] = str(data["annotations"][0]["category_id"])
    train_json.write_text(json.dumps(data))
    result = run_detcli(
        "train", str(SHAPES), "--set", f"data_root={root}", "--work-dir", str(tmp_path / "w"),
        *QUICK_TRAIN,
    )  # fmt: skip
    assert result.code == 2, result.err
    err = " ".join(result.err.split())
    assert "category_id is the string" in err and "Traceback" not in result.err


def test_train_drops_inf_nan_and_absurd_boxes_with_a_count(tmp_path):
    from detcli.data.synthetic import write_shapes_coco

    root = tmp_path / "shapes"
    train_json, _ = write_shapes_coco(root, num_images=4, image_size=128, split="train")
    data = json.loads(train_json.read_text())
    first = data["annotations"][0]
    data["annotations"] += [
        dict(first, id=901, bbox=[float("inf"), 2, 10, 10]),
        dict(first, id=902, bbox=[2, 2, float("nan"), 10]),
        dict(first, id=903, bbox=[2, 2, 10, 1e12]),
    ]
    train_json.write_text(json.dumps(data))
    result = run_detcli(
        "train", str(SHAPES), "--set", f"data_root={root}", "--work-dir", str(tmp_path / "w"),
        *QUICK_TRAIN,
    )  # fmt: skip
    assert result.code == 0, result.err
    err = " ".join(result.err.split())
    assert f"{train_json}: 3 box(es) with inf/NaN values or absurd sizes" in err
    assert (tmp_path / "w" / "latest.pth").exists()


def test_empty_annotations_and_annotation_id_0_are_reported(cli, tmp_path):
    ann, prefix = write_coco(tmp_path, [image(1)], [], CATEGORIES)
    cfg = write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix))
    result = lint(cli, cfg)
    assert result.code == 1 and "no annotations" in result.out
    assert "`annotations` is empty (1 images)" in " ".join(result.out.split())

    ann.write_text(
        json.dumps(
            {
                "images": [image(1)],
                "annotations": [box(0, 1, 1, [1, 1, 10, 10]), box(1, 1, 3, [20, 5, 10, 10])],
                "categories": CATEGORIES,
            }
        )
    )
    result = lint(cli, cfg)
    assert result.code == 0, result.out  # a warning: detcli's eval handles it
    out = " ".join(result.out.split())
    assert "annotation id 0" in out and "image 1, annotation 0:" in out
    assert "never matches a ground-truth box whose id is 0" in out


def test_pixel_limit_in_lint_train_and_loader(cli, tmp_path, monkeypatch):
    images = [image(1), image(2)]
    anns = [box(1, 1, 1, [1, 1, 10, 10]), box(2, 2, 1, [1, 1, 10, 10])]
    ann, prefix = write_coco(tmp_path, images, anns, CATEGORIES)
    write_bomb_png(prefix / "0002.png")
    assert (prefix / "0002.png").stat().st_size < 200_000
    cfg = write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix))
    result = lint(cli, cfg)
    assert result.code == 1
    out = " ".join(result.out.split())
    assert "image too large" in out
    assert "declares 30000x30000 pixels, over the limit of 89,478,485" in out

    # the loader every pipeline starts with (train, eval, `dataset show`)
    result = cli("dataset", "show", str(cfg), "--out", str(tmp_path / "o"), "--after-pipeline")
    assert result.code == 2
    err = " ".join(result.err.split())
    assert "(image id 2) declares 30000x30000 = 900,000,000 pixels" in err
    assert "DETCLI_MAX_IMAGE_PIXELS" in err

    # the limit is configurable: an env var, or LoadImageFromFile's max_pixels
    monkeypatch.setenv("DETCLI_MAX_IMAGE_PIXELS", "1000")
    out = " ".join(lint(cli, cfg).out.split())
    assert "image 1: the file declares 64x48 pixels, over the limit of 1,000" in out
    monkeypatch.setenv("DETCLI_MAX_IMAGE_PIXELS", "0")
    assert "image too large" not in lint(cli, cfg).out
    monkeypatch.delenv("DETCLI_MAX_IMAGE_PIXELS")
    pipeline = coco_cfg(ann, prefix)["pipeline"]
    roomy = [dict(pipeline[0], max_pixels=10**9), *pipeline[1:]]
    Image.new("RGB", (64, 48)).save(prefix / "0002.png")  # decodable, 64x48
    tiny = [dict(pipeline[0], max_pixels=100), *pipeline[1:]]
    write_config(tmp_path / "tiny.yaml", coco_cfg(ann, prefix, tiny))
    result = cli("dataset", "show", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "o"),
                 "--after-pipeline")  # fmt: skip
    assert result.code == 2 and "over the limit of 100" in " ".join(result.err.split())
    write_config(tmp_path / "roomy.yaml", coco_cfg(ann, prefix, roomy))
    result = cli("dataset", "show", str(tmp_path / "roomy.yaml"), "--out", str(tmp_path / "o"),
                 "--after-pipeline")  # fmt: skip
    assert result.code == 0, result.err


def test_train_refuses_a_decompression_bomb_with_a_message(tmp_path):
    from detcli.data.synthetic import write_shapes_coco

    root = tmp_path / "shapes"
    _, img_dir = write_shapes_coco(root, num_images=4, image_size=128, split="train")
    bomb = sorted(img_dir.iterdir())[0]
    write_bomb_png(bomb)
    result = run_detcli(
        "train", str(SHAPES), "--set", f"data_root={root}", "--work-dir", str(tmp_path / "w"),
        *QUICK_TRAIN,
    )  # fmt: skip
    assert result.code == 2, result.err
    err = " ".join(result.err.split())
    assert "declares 30000x30000 = 900,000,000 pixels, over the limit" in err
    assert "Traceback" not in result.err


def test_16_bit_png_reaches_the_pipeline_in_8_bit_range(cli, tmp_path):
    """Train and eval decode through LoadImageFromFile: the 16-bit file gives the 8-bit pixels."""
    rng = np.random.default_rng(0)
    eight = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    ann, prefix = write_coco(tmp_path, [image(1)], [box(1, 1, 1, [1, 1, 10, 10])], CATEGORIES)
    Image.fromarray(eight.astype(np.uint16) * 257).save(prefix / "0001.png")  # I;16 PNG
    from detcli.data.transforms.loading import LoadImageFromFile

    results = {"img_info": {"filename": "0001.png", "id": 1}, "img_prefix": str(prefix)}
    img = LoadImageFromFile()(results)["img"]
    assert img.dtype.is_floating_point is False and int(img.max()) <= 255
    assert np.array_equal(img[0].numpy(), eight)
    cfg = write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix))
    result = cli("dataset", "show", str(cfg), "--out", str(tmp_path / "o"), "--after-pipeline")
    assert result.code == 0, result.err


def test_class_problems_reads_categories_without_the_annotations(tmp_path, monkeypatch):
    from detcli.data import coco_categories
    from detcli.data.coco_categories import class_problems, read_categories

    images = [image(k) for k in range(1, 200)]
    anns = [box(k, 1 + k % 199, 1, [1, 1, 10, 10], note='"categories": [') for k in range(1, 3000)]
    cats = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}]
    decoy = {"categories": [{"id": 9, "name": "decoy"}]}
    ann = tmp_path / "ann.json"
    # categories last (COCO's layout), in the middle, first (Roboflow's): always the top-level one
    monkeypatch.setattr(coco_categories, "SMALL_FILE_BYTES", 1000)
    monkeypatch.setattr(coco_categories, "CHUNK_BYTES", 4096)
    for order in (
        {"info": decoy, "images": images, "annotations": anns, "categories": cats},
        {"info": decoy, "images": images, "categories": cats, "annotations": anns},
        {"categories": cats, "info": decoy, "images": images, "annotations": anns},
    ):
        ann.write_text(json.dumps(order, indent=1))
        assert read_categories(ann) == cats

    cfg_2x = {"type": "CocoDataset", "ann_file": "ann.json", "data_root": str(tmp_path),
              "classes": ["cat", "dgo", "bird"]}  # fmt: skip
    problems = class_problems(cfg_2x, ("data", "train"))
    assert [p for p, _ in problems] == [
        ("data", "train", "classes", 1),
        ("data", "train", "classes", 2),
    ]
    assert "class 'dgo' is not a category of" in problems[0][1]
    assert "Did you mean 'dog'?" in problems[0][1] and "cat, dog" in problems[1][1]
    cfg_3x = {"type": "RepeatDataset", "times": 2, "dataset": {
        "type": "CocoDataset", "ann_file": str(ann), "metainfo": {"classes": ("dog", "cta")}}}  # fmt: skip
    problems = class_problems(cfg_3x, ("train_dataloader", "dataset"))
    assert [p for p, _ in problems] == [
        ("train_dataloader", "dataset", "dataset", "metainfo", "classes", 1)
    ]
    assert class_problems(dict(cfg_2x, classes=["dog", "cat"]), ("data", "val")) == []
    assert class_problems(dict(cfg_2x, ann_file="missing.json"), ("data", "val")) == []


def test_category_reader_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, detcli.data.coco_categories; "
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(autouse=True)
def _no_pillow_limit_leak():
    """header_size lifts Pillow's own limit for a moment; it must always put it back."""
    yield
    assert Image.MAX_IMAGE_PIXELS == 89_478_485
