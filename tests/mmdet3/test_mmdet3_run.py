"""An MMDetection 3.x config, as the study note writes one, runs in detcli as it is.

R50-FPN 3.x base (four bases), `metainfo.classes` override, a short `train_cfg`, `data_root`
pointing at a small COCO set: it checks clean, trains, evaluates (`format_only` writes
`<prefix>.bbox.json`), predicts, and gives the same losses as the same experiment in 2.x spelling.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from detcli.engine.training import train

REPO = Path(__file__).resolve().parents[2]
PIPELINES = """
train_pipeline:
  - {type: LoadImageFromFile}
  - {type: LoadAnnotations, with_bbox: true}
  - {type: Resize, scale: [128, 128], keep_ratio: true}
  - {type: RandomFlip, prob: 0.5}
  - {type: PackDetInputs}
test_pipeline:
  - {type: LoadImageFromFile}
  - {type: Resize, scale: [128, 128], keep_ratio: true}
  - {type: LoadAnnotations, with_bbox: true}
  - {type: PackDetInputs, meta_keys: [img_id, img_path, ori_shape, img_shape, scale_factor]}
"""
NORM = (
    "{type: Normalize, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true}"
)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from detcli.data.synthetic import write_shapes_coco

    root = tmp_path_factory.mktemp("shapes3x")
    write_shapes_coco(root, num_images=4, image_size=128, split="train", seed=1)
    write_shapes_coco(root, num_images=2, image_size=128, split="val", seed=1)
    return root


def config_3x(shapes: Path, out: Path) -> str:
    return f"""
_base_: {REPO}/configs/mmdet3/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.yaml
data_root: {shapes}/
metainfo: {{classes: [square, circle, triangle]}}
model:
  backbone: {{init_cfg: null}}
  roi_head: {{bbox_head: {{num_classes: 3}}}}
{PIPELINES}
train_dataloader:
  batch_size: 2
  num_workers: 0
  persistent_workers: false
  dataset: {{ann_file: train.json, data_prefix: {{img: train/}}, metainfo: "${{metainfo}}"}}
val_dataloader:
  num_workers: 0
  persistent_workers: false
  dataset: {{ann_file: val.json, data_prefix: {{img: val/}}, metainfo: "${{metainfo}}"}}
test_dataloader:
  batch_size: 1
  num_workers: 0
  sampler: {{type: DefaultSampler, shuffle: false}}
  dataset:
    type: CocoDataset
    data_root: "${{data_root}}"
    ann_file: val.json
    data_prefix: {{img: val/}}
    metainfo: "${{metainfo}}"
    test_mode: true
    pipeline: "${{test_pipeline}}"
val_evaluator: {{ann_file: "${{data_root}}val.json"}}
test_evaluator: {{type: CocoMetric, format_only: true, outfile_prefix: {out}/submission}}
train_cfg: {{max_epochs: 1}}
param_scheduler:
  # mmengine's LinearLR reaches the base LR at end - 1; mmcv's warm-up at warmup_iters
  - {{type: LinearLR, start_factor: 0.1, by_epoch: false, begin: 0, end: 3}}
default_hooks: {{logger: {{interval: 1}}}}
log_processor: {{window_size: 1}}  # per-iteration numbers, to compare with 2.x
randomness: {{seed: 0}}
"""


def config_2x(shapes: Path) -> str:
    return f"""
_base_: {REPO}/configs/faster_rcnn/faster_rcnn_r50_fpn_1x_coco.yaml
data_root: {shapes}/
classes: [square, circle, triangle]
model:
  backbone: {{init_cfg: null}}
  roi_head: {{bbox_head: {{num_classes: 3}}}}
data:
  samples_per_gpu: 2
  workers_per_gpu: 0
  train:
    classes: "${{classes}}"
    ann_file: "${{data_root}}train.json"
    img_prefix: "${{data_root}}train/"
    pipeline:
      - {{type: LoadImageFromFile}}
      - {{type: LoadAnnotations, with_bbox: true}}
      - {{type: Resize, img_scale: [128, 128], keep_ratio: true}}
      - {{type: RandomFlip, flip_ratio: 0.5}}
      - {NORM}
      - {{type: Pad, size_divisor: 32}}
      - {{type: DefaultFormatBundle}}
      - {{type: Collect, keys: [img, gt_bboxes, gt_labels]}}
  val: {{classes: "${{classes}}", ann_file: "${{data_root}}val.json", img_prefix: "${{data_root}}val/"}}
  test: {{classes: "${{classes}}", ann_file: "${{data_root}}val.json", img_prefix: "${{data_root}}val/"}}
runner: {{max_epochs: 1}}
lr_config: {{_delete_: true, policy: fixed, warmup: linear, warmup_iters: 2, warmup_ratio: 0.1}}
log_config: {{interval: 1, hooks: [{{type: TextLoggerHook}}]}}
seed: 0
"""


def _losses(work_dir: Path) -> list[dict[str, float]]:
    records = [json.loads(x) for x in (work_dir / "log.jsonl").read_text().splitlines()]
    keys = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "lr")
    return [{k: r[k] for k in keys} for r in records if r.get("mode") == "train"]


def test_study_note_style_3x_config_checks_trains_evaluates_predicts(shapes, tmp_path, cli, capsys):
    out = tmp_path / "out"
    cfg3 = tmp_path / "note_3x.yaml"
    cfg3.write_text(textwrap.dedent(config_3x(shapes, out)), encoding="utf-8")
    checked = cli("check", str(cfg3))
    assert checked.code == 0, checked.out
    assert "no problems found" in checked.out and "default_scope" in checked.out  # a note

    run3 = train(cfg3, work_dir=tmp_path / "w3", device="cpu", deterministic=True)
    assert run3.iter == 2 and run3.last_checkpoint is not None
    assert "bbox_mAP" in run3.metrics  # val_evaluator ran after the epoch (val_interval 1)
    assert (tmp_path / "w3" / "tf_logs").is_dir()  # TensorboardVisBackend in the 3.x runtime

    capsys.readouterr()  # the training's log lines
    evaluated = cli("eval", str(cfg3), str(run3.last_checkpoint), "--split", "test")
    assert evaluated.code == 0, evaluated.out
    submission = json.loads((out / "submission.bbox.json").read_text())
    assert isinstance(submission, list) and "bbox_mAP" not in evaluated.out  # format_only

    predicted = cli(
        "predict", str(cfg3), str(run3.last_checkpoint), str(shapes / "val"),
        "--out", str(tmp_path / "pred"), "--score-thr", "0.0",
    )  # fmt: skip
    assert predicted.code == 0, predicted.out
    assert len(list((tmp_path / "pred").glob("*.json"))) == 2

    # The same experiment in MMDetection 2.x spelling: identical losses for the same seed.
    cfg2 = tmp_path / "note_2x.yaml"
    cfg2.write_text(textwrap.dedent(config_2x(shapes)), encoding="utf-8")
    run2 = train(cfg2, work_dir=tmp_path / "w2", device="cpu", deterministic=True)
    a, b = _losses(tmp_path / "w3"), _losses(tmp_path / "w2")
    assert len(a) == len(b) == 2
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=1e-5, abs=1e-7)
    assert run2.iter == run3.iter


def test_the_split_batch_size_scales_the_lr(shapes, tmp_path):
    """`data.train_dataloader.samples_per_gpu` (2.x) is the batch the loader uses and the one
    auto_scale_lr scales by; it is read once (it used to be read from data.samples_per_gpu)."""
    base = tmp_path / "base.yaml"
    base.write_text(textwrap.dedent(config_2x(shapes)), encoding="utf-8")
    cfg = tmp_path / "scaled.yaml"
    cfg.write_text(
        f"_base_: {base}\n"
        + "data: {train_dataloader: {samples_per_gpu: 4}}\n"
        + "auto_scale_lr: {enable: true, base_batch_size: 16}\n"
        + "lr_config: {_delete_: true, policy: fixed}\n",
        encoding="utf-8",
    )
    run = train(cfg, work_dir=tmp_path / "w", device="cpu")
    lrs = {
        r["lr"]
        for r in map(json.loads, (tmp_path / "w" / "log.jsonl").read_text().splitlines())
        if r.get("mode") == "train"
    }
    assert len(lrs) == 1 and lrs.pop() == pytest.approx(0.02 * 4 / 16)
    assert run.iter == 1  # 4 images in one batch of 4


def test_dataset_commands_read_a_3x_config(shapes, tmp_path, cli):
    cfg3 = tmp_path / "note_3x.yaml"
    cfg3.write_text(textwrap.dedent(config_3x(shapes, tmp_path / "out")), encoding="utf-8")
    stats = cli("dataset", "stats", str(cfg3))
    assert stats.code == 0, stats.out
    assert "square" in stats.out and "4" in stats.out
    lint = cli("dataset", "lint", str(cfg3))
    assert lint.code == 0, lint.out
    shown = cli("dataset", "show", str(cfg3), "--out", str(tmp_path / "show"), "-n", "2")
    assert shown.code == 0, shown.out
    assert len(list((tmp_path / "show").glob("*.png"))) == 2
