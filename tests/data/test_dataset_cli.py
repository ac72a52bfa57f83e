"""`detcli dataset stats|lint|show` and every bad input of the issue, through the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from data_helpers import (
    CATEGORIES,
    TEST_PIPELINE,
    box,
    coco_cfg,
    image,
    write_coco,
    write_config,
    write_image,
)
from PIL import Image


def row(out, label):
    """The cells after the cell `label` in its row of a rich table."""
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)][1:-1]
        if label in cells:
            return cells[cells.index(label) + 1 :]
    raise AssertionError(f"no row {label!r} in:\n{out}")


@pytest.fixture
def sized(tmp_path):
    """Boxes of known sizes: 2 small (10x10), 1 medium (40x40), 1 large (100x100), 1 crowd."""
    images = [image(1, 128, 128), image(2, 128, 128), image(3, 128, 64)]
    anns = [
        box(1, 1, 1, [0, 0, 10, 10]),
        box(2, 1, 3, [20, 20, 40, 40]),
        box(3, 2, 1, [5, 5, 100, 100]),
        box(4, 2, 1, [50, 60, 10, 10]),
        box(5, 2, 7, [0, 0, 30, 30], iscrowd=1),
    ]
    ann, prefix = write_coco(tmp_path, images, anns, CATEGORIES)
    return write_config(
        tmp_path / "cfg.yaml", coco_cfg(ann, prefix), coco_cfg(ann, prefix, TEST_PIPELINE)
    )


def test_stats_counts_and_plot(cli, sized, tmp_path):
    result = cli("dataset", "stats", str(sized), "--plot", str(tmp_path / "h.png"))
    assert result.code == 0, result.err
    out = result.out
    assert row(out, "images") == ["3"]  # every image, the empty one too
    assert row(out, "boxes (targets)") == ["4"]
    assert row(out, "crowd regions (ignored)") == ["1"]
    assert row(out, "images without boxes") == ["1"]
    assert (
        row(out, "cat") == ["3", "2"]
        and row(out, "dog") == ["1", "1"]
        and row(out, "bird") == ["0", "0"]
    )
    assert "│ 2 (50.0%) │ 1 (25.0%) │ 1 (25.0%) │" in out  # small, medium, large
    with Image.open(tmp_path / "h.png") as im:
        assert im.size[0] > 500
    restricted = cli("dataset", "stats", str(sized), "--set", "data.train.classes=[dog]")
    assert row(restricted.out, "boxes (targets)") == ["1"] and row(
        restricted.out, "images without boxes"
    ) == ["2"]


def test_stats_on_the_synthetic_set(cli, shapes_coco, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", coco_cfg(shapes_coco.train_ann, shapes_coco.train_img))
    result = cli("dataset", "stats", str(cfg))
    boxes = len(json.loads(shapes_coco.train_ann.read_text())["annotations"])
    assert result.code == 0 and row(result.out, "images") == ["16"]
    assert row(result.out, "boxes (targets)") == [str(boxes)]


def test_lint_finds_every_kind_of_problem_with_its_ids(cli, tmp_path):
    images = [image(1), image(2), image(2), image(4), image(5), image(6)]
    images[2] = dict(images[2], file_name="0003.png")  # id 2 twice
    anns = [
        box(10, 1, 1, [1, 1, 10, 10]),
        box(10, 1, 1, [2, 2, 10, 10]),  # annotation id 10 twice
        box(11, 9, 1, [1, 1, 5, 5]),  # unknown image 9
        box(12, 1, 5, [1, 1, 5, 5]),  # unknown category 5
        box(13, 4, 1, [3, 3, 0, 8]),  # zero width
        box(14, 4, 3, [100, 10, 5, 5]),  # right of the 64 px image
        box(15, 4, 3, [50, 40, 30, 20]),  # reaches past the border
    ]
    cats = [*CATEGORIES, {"id": 3, "name": "dog again"}]
    ann, prefix = write_coco(tmp_path, images, anns, cats)
    (prefix / "0005.png").unlink()  # missing file
    (prefix / "0006.png").write_bytes(b"\x89PNG garbage")  # unreadable file
    write_image(prefix / "0004.png", 80, 48)  # json says 64x48
    cfg = write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix))
    result = cli("dataset", "lint", str(cfg))
    assert result.code == 1, result.err
    out = " ".join(result.out.split())
    for kind, detail in [
        ("duplicate image id", "image 2: image id 2 is used 2 times"),
        ("duplicate annotation id", "annotation 10: annotation id 10 is used 2 times"),
        ("duplicate category id", "category 3: category id 3 is used 2 times"),
        ("unknown image id", "image 9, annotation 11:"),
        ("unknown category id", "image 1, annotation 12, category 5:"),
        ("zero or negative size", "image 4, annotation 13: bbox [3.0, 3.0, 0.0, 8.0]"),
        ("box entirely outside image", "image 4, annotation 14:"),
        ("box partly outside image", "image 4, annotation 15:"),
        ("missing image file", "image 5: no such file"),
        ("unreadable image file", "image 6:"),
        ("image size mismatch", "image 4: the json says 64x48, the file is 80x48"),
    ]:
        assert kind in out and detail in out, kind
    assert "10 error(s), 1 warning(s)" in out
    assert "0005.png" in out and "0006.png" in out


def test_lint_clean_set_exits_0(cli, shapes_coco, tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        coco_cfg(shapes_coco.train_ann, shapes_coco.train_img),
        coco_cfg(shapes_coco.val_ann, shapes_coco.val_img, TEST_PIPELINE),
    )
    result = cli("dataset", "lint", str(cfg), "--decode")
    assert result.code == 0 and "2 annotation file(s): no problems found" in result.out


def test_show_writes_pngs_raw_and_after_the_pipeline(cli, shapes_coco, tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        coco_cfg(shapes_coco.train_ann, shapes_coco.train_img),
        coco_cfg(shapes_coco.val_ann, shapes_coco.val_img, TEST_PIPELINE),
    )
    raw = cli("dataset", "show", str(cfg), "--out", str(tmp_path / "raw"), "-n", "3")
    assert raw.code == 0, raw.err
    files = sorted((tmp_path / "raw").glob("*.png"))
    assert [f.name for f in files] == ["0000_id1.png", "0001_id2.png", "0002_id3.png"]
    with Image.open(files[0]) as im:
        assert im.size == (512, 512)  # upscaled for reading; the caption says 128x128 px
    original = Image.open(shapes_coco.train_img / "000000.png").convert("RGB")
    drawn = np.asarray(Image.open(files[0]).convert("RGB"))
    assert not np.array_equal(drawn, np.asarray(original))  # boxes drawn
    piped = cli(
        "dataset", "show", str(cfg), "--out", str(tmp_path / "aug"), "-n", "4", "--after-pipeline"
    )
    assert piped.code == 0, piped.err
    out = sorted((tmp_path / "aug").glob("*.png"))
    assert len(out) == 4 and all(Image.open(f).size == (512, 512) for f in out)
    val = cli(
        "dataset",
        "show",
        str(cfg),
        "--split",
        "val",
        "--out",
        str(tmp_path / "val"),
        "-n",
        "2",
        "--after-pipeline",
    )
    assert val.code == 0 and len(list((tmp_path / "val").glob("*.png"))) == 2


def _bad(cli, cfg, *args):
    result = cli(*args[:2], str(cfg), *args[2:])
    assert result.code == 2, (result.out, result.err)
    assert "Traceback" not in result.err and result.err.startswith("error:")
    return " ".join(result.err.split())


@pytest.fixture
def small(tmp_path):
    images = [image(1), image(2)]
    anns = [box(1, 1, 1, [1, 1, 10, 10]), box(2, 2, 3, [5, 5, 10, 10])]
    ann, prefix = write_coco(tmp_path, images, anns, CATEGORIES)
    cfg = write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix))
    return ann, prefix, cfg


def test_bad_annotation_files_exit_2_naming_file_and_id(cli, small):
    ann, _, cfg = small
    text = ann.read_text()
    ann.write_text(text[: len(text) // 2])
    for command in ("stats", "lint", "show"):
        extra = ["--out", str(ann.parent / "o")] if command == "show" else []
        err = _bad(cli, cfg, "dataset", command, *extra)
        assert f"{ann} is not valid JSON" in err and "truncated" in err
    ann.write_bytes(b"\xff\xfe\x00garbage")
    assert f"Annotation file {ann} cannot be read" in _bad(cli, cfg, "dataset", "stats")
    data = json.loads(text)
    for key in ("images", "annotations", "categories"):
        ann.write_text(json.dumps({k: v for k, v in data.items() if k != key}))
        assert f"{ann} has no '{key}'" in _bad(cli, cfg, "dataset", "stats")
    broken = dict(
        data, annotations=[data["annotations"][0], {"id": 5, "image_id": 2, "category_id": 1}]
    )
    ann.write_text(json.dumps(broken))
    assert "annotations[1] (id 5) lacks bbox" in _bad(cli, cfg, "dataset", "stats")
    ann.write_text(text)
    err = _bad(cli, cfg, "dataset", "stats", "--set", "data.train.classes=[cat, horse]")
    assert f"'horse' in `classes` is not a category of {ann}" in err and "cat, dog, bird" in err


def test_missing_and_corrupt_images_at_load_time(cli, small, tmp_path):
    _, prefix, cfg = small
    (prefix / "0002.png").unlink()
    out = str(tmp_path / "o")
    err = _bad(cli, cfg, "dataset", "show", "--out", out, "--after-pipeline")
    assert (
        f"{prefix / '0002.png'} (image id 2) cannot be read" in err and "on_bad_image: warn" in err
    )
    lenient = cli(
        "dataset",
        "show",
        str(cfg),
        "--out",
        out,
        "--after-pipeline",
        "--set",
        "data.train.on_bad_image=warn",
    )
    assert lenient.code == 0 and "1 image(s)" in lenient.out
    (prefix / "0002.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    err = _bad(cli, cfg, "dataset", "show", "--out", out, "--after-pipeline")
    assert f"{prefix / '0002.png'} (image id 2) cannot be decoded" in err
