"""`detcli.predict` on real image files: files, folders and globs in, one JSON + PNG per image
out (boxes in original pixels), unreadable files reported and skipped."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torchvision.io import encode_jpeg, read_image, write_png

import detcli
from detcli.config.settings import read_run_settings
from detcli.errors import DataError
from detcli.inference import collect_images


@pytest.fixture
def images(trained, tmp_path):
    """A folder: two val PNGs, one JPEG at twice the size in a subfolder, a broken PNG, notes."""
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    vals = sorted((trained.data_root / "val").glob("*.png"))
    for src in vals[:2]:
        shutil.copy(src, folder / src.name)
    big = read_image(str(vals[2])).repeat_interleave(2, 1).repeat_interleave(2, 2)[:, :192]
    (folder / "sub" / "big.jpg").write_bytes(encode_jpeg(big, quality=95).numpy().tobytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_collect_images_from_files_folders_and_globs(images, tmp_path):
    found = collect_images([images, str(images / "*.png"), images / "sub" / "big.jpg"])
    names = [p.name for p in found]
    assert names == ["000000.png", "000001.png", "broken.png", "big.jpg"]  # dupes dropped
    assert "notes.txt" not in names
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"folder .*empty holds no images"):
        collect_images([tmp_path / "empty"])
    with pytest.raises(DataError, match="matches no files"):
        collect_images([str(tmp_path / "*.jpg")])
    with pytest.raises(DataError, match="does not exist"):
        collect_images([tmp_path / "missing.png"])


def test_predict_writes_json_and_png_per_image_and_skips_unreadable(trained, images, tmp_path):
    out = tmp_path / "preds"
    result = detcli.predict(
        trained.config, trained.checkpoint, [images], out_dir=out, score_thr=0.05, batch_size=2
    )
    assert [p.file.name for p in result.predictions] == ["000000.png", "000001.png", "big.jpg"]
    assert [(p.name, "cannot be decoded" in m) for p, m in result.skipped] == [("broken.png", True)]
    assert result.classes == list(trained.classes)
    assert sum(len(p.detections) for p in result.predictions) > 0
    big = result.predictions[2]
    assert (big.width, big.height) == (256, 192)
    record = json.loads((out / "big.json").read_text())
    assert record["file"] == str(images / "sub" / "big.jpg")
    assert (record["width"], record["height"]) == (256, 192)
    for det in record["detections"]:
        assert det["score"] >= 0.05 and det["class"] == trained.classes[det["label"]]
        x1, y1, x2, y2 = det["box_xyxy"]
        assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 192
    drawn = read_image(str(out / "big.png"))
    assert tuple(drawn.shape) == (3, 512, 683)  # drawn upscaled to a 512-px short side
    assert sorted(p.name for p in out.iterdir()) == [
        "000000.json", "000000.png", "000001.json", "000001.png", "big.json", "big.png"
    ]  # fmt: skip


def test_predicted_boxes_are_the_detectors_own_output(trained, images):
    """predict adds nothing and loses nothing: its boxes are what the detector returns for the
    image through the test pipeline (in the file's pixels; the model tests check the mapping)."""
    from detcli.config import load_config
    from detcli.inference.inputs import ImageFiles, predict_pipeline
    from detcli.inference.model_loading import load_detector

    small = images / "copy.png"
    write_png(read_image(str(sorted(images.glob("0*.png"))[0])), str(small))
    result = detcli.predict(trained.config, trained.checkpoint, [small], score_thr=0.0)
    cfg = load_config(trained.config)
    model, _ = load_detector(read_run_settings(cfg), trained.checkpoint, device=torch.device("cpu"))
    sample = ImageFiles([small], predict_pipeline(read_run_settings(cfg)))[0]
    with torch.no_grad():
        (expected,) = model(
            img=[v[None] for v in sample["img"]],
            img_metas=[[m] for m in sample["img_metas"]],
            return_loss=False,
        )
    got = result.predictions[0].detections
    assert torch.allclose(got.boxes, expected.boxes, atol=1e-3)  # pixels
    assert torch.equal(got.labels, expected.labels)


def test_predict_draws_in_the_configs_palette(trained, images, tmp_path):
    """`metainfo.palette` (MMDetection 3.x) colours each class's boxes in the drawings."""
    from detcli.config import load_config

    cfg = load_config(trained.config)
    palette = [[250, 1, 2], [3, 250, 4], [5, 6, 250]]
    cfg.data.val["metainfo"] = {"palette": palette}
    out = tmp_path / "preds"
    result = detcli.predict(
        cfg, trained.checkpoint, [images / "000000.png"], out_dir=out, score_thr=0.0
    )
    labels = {int(k) for k in result.predictions[0].detections.labels}
    assert labels
    drawn = read_image(str(out / "000000.png")).permute(1, 2, 0).reshape(-1, 3)
    colours = {tuple(c) for c in drawn.unique(dim=0).tolist()}
    assert all(tuple(palette[k]) in colours for k in labels)
