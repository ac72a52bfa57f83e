"""`detcli check` reads the data components' signatures: typos and wrong types are caught."""

from __future__ import annotations

from conftest import REPO


def test_check_reports_pipeline_and_dataset_mistakes(cli, shapes_coco, tmp_path):
    base = REPO / "configs" / "trash.yaml"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"_base_: {base}\n"
        "data:\n"
        "  train:\n"
        f"    ann_file: {shapes_coco.train_ann}\n"
        f"    img_prefix: {shapes_coco.train_img}\n"
        "    filter_empty_gt: maybe\n"
        "    pipeline:\n"
        "      - {type: LoadImageFromFile}\n"
        "      - {type: LoadAnnotations, with_bbox: true}\n"
        "      - {type: Resize, img_scael: [512, 512], keep_ratio: true}\n"
        "      - {type: RandomFlip, flip_ratio: 0.5, direction: sideways}\n"
        "      - {type: Normalise, mean: [0, 0, 0], std: [1, 1, 1]}\n"
        + "".join(
            f"  {split}: {{ann_file: {shapes_coco.val_ann}, img_prefix: {shapes_coco.val_img}}}\n"
            for split in ("val", "test")
        )
    )
    result = cli("check", str(cfg))
    out = " ".join(result.out.split())
    assert result.code == 2
    assert "data.train.filter_empty_gt" in out
    assert "data.train.pipeline.2.img_scael" in out and "img_scale" in out
    assert "data.train.pipeline.3.direction" in out
    assert "data.train.pipeline.4.type" in out and "Normalize" in out
    # the reference eval pipelines are clean (the trash classes are not the shapes set's: that
    # is reported, on `classes`)
    assert "data.val.pipeline" not in out and "data.test.pipeline" not in out
    assert "data.val.classes.0" in out and "is not a category of" in out
