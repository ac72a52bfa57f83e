"""`detcli check` on schedules that run but do not do what they say, and `lr_config` keys the
chosen policy does not take: through the real CLI, on the demo's config and a real COCO file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from data.data_helpers import box, image, write_coco

CATEGORIES = [
    {"id": 1, "name": "square"},
    {"id": 2, "name": "circle"},
    {"id": 3, "name": "triangle"},
]


@pytest.fixture
def own_data(tmp_path: Path) -> Path:
    """24 train + 4 val images: `train.json`, `val.json` and one image folder `img/`."""
    root = tmp_path / "data"
    for split, first, count in (("train", 1, 24), ("val", 100, 4)):
        ids = range(first, first + count)
        anns = [box(i, i, 1 + i % 3, [4, 4, 20, 20]) for i in ids]
        write_coco(root, [image(i) for i in ids], anns, CATEGORIES, name=f"{split}.json")
    return root


def _config(tmp_path: Path, data_root: Path, extra: str) -> Path:
    """The README walk-through's shape: the demo config with the user's data and changes."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        f"_base_: {REPO / 'configs/demo/shapes.yaml'}\n"
        f"data_root: {data_root}\n"
        "data:\n"
        "  samples_per_gpu: 8\n"
        "  train: {img_prefix: '${data_root}/img'}\n"
        "  val: {img_prefix: '${data_root}/img'}\n" + extra
    )
    return path


def _check(cli: Any, path: Path) -> Any:
    return cli("check", str(path))


def test_demo_schedule_on_a_small_dataset_warns_but_passes(cli, tmp_path, own_data):
    """The old walk-through: 2 epochs of 3 iterations under a 100-iteration warm-up, step at 5."""
    path = _config(tmp_path, own_data, "runner: {max_epochs: 2}\n")
    result = _check(cli, path)
    assert result.code == 0, result.out
    assert "warnings (2)" in result.out
    assert "the warm-up lasts 100 iterations but the run has 6 iterations" in result.out
    assert "(2 epoch(s) x 3 per epoch)" in result.out
    assert "step(s) at epoch 5 never happen" in result.out
    assert "lr_config.warmup_iters" in result.out and "lr_config.step" in result.out


def test_a_recipe_sized_for_the_data_has_no_warnings(cli, tmp_path, own_data):
    extra = (
        "lr_config: {warmup_iters: 12, step: [16]}\n"
        "runner: {max_epochs: 20}\n"
        "evaluation: {interval: 20}\n"
    )
    result = _check(cli, _config(tmp_path, own_data, extra))
    assert result.code == 0, result.out
    assert "warnings" not in result.out


def test_a_decay_before_the_warm_up_ends_never_reaches_the_base_lr(cli, tmp_path, own_data):
    """Warm-up of 12 iterations, but the step at epoch 1 (iteration 3) comes first."""
    extra = "lr_config: {warmup_iters: 12, step: [1]}\nrunner: {max_epochs: 10}\n"
    result = _check(cli, _config(tmp_path, own_data, extra))
    assert result.code == 0, result.out
    assert "the LR never reaches the optimizer's lr: at most 0.167 x lr" in result.out


def test_3x_param_scheduler_milestone_after_the_last_epoch(cli, tmp_path, own_data):
    extra = (
        "lr_config: null\n"
        "param_scheduler:\n"
        "  - {type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, end: 500}\n"
        "  - {type: MultiStepLR, by_epoch: true, begin: 0, end: 12, milestones: [8, 11]}\n"
        "runner: {max_epochs: 6}\n"
    )
    result = _check(cli, _config(tmp_path, own_data, extra))
    assert result.code == 0, result.out
    assert "param_scheduler.1.milestones" in result.out
    assert "step(s) at epoch 8, 11 never happen" in result.out
    assert "the warm-up lasts 500 iterations but the run has 18" in result.out


def test_step_left_under_cosine_is_an_error_suggesting_delete(cli, tmp_path, own_data):
    """Switching the demo's step policy to cosine by merging keeps the base's `step`."""
    extra = "lr_config: {policy: CosineAnnealing, min_lr_ratio: 0.01}\n"
    result = _check(cli, _config(tmp_path, own_data, extra))
    assert result.code == 2
    assert "lr_config.step" in result.out
    assert "no key 'step' for policy 'CosineAnnealing'" in result.out
    assert "_delete_: true" in result.out
    assert "configs/demo/shapes.yaml" in result.out  # where the stray key comes from
    fixed = extra.replace("{policy", "{_delete_: true, policy")
    assert _check(cli, _config(tmp_path, own_data, fixed)).code == 0


def test_switching_sgd_to_adamw_by_merging_names_the_left_momentum_and_delete(
    cli, tmp_path, own_data
):
    """The shapes base has SGD with momentum; the child only changes the type."""
    path = tmp_path / "adamw.yaml"
    path.write_text(
        f"_base_: {REPO / 'configs/shapes/faster_rcnn_r18_fpn_shapes.yaml'}\n"
        f"data_root: {own_data}\n"
        "data:\n"
        "  train: {img_prefix: '${data_root}/img'}\n"
        "  val: {img_prefix: '${data_root}/img'}\n"
        "optimizer: {type: AdamW, lr: 0.001}\n"
    )
    result = cli("check", str(path))
    assert result.code == 2
    assert "optimizer.momentum" in result.out
    assert "AdamW has no argument 'momentum'" in result.out
    assert "faster_rcnn_r18_fpn_shapes.yaml:46" in result.out  # where momentum comes from
    assert "write `_delete_: true` in it" in result.out
    path.write_text(path.read_text().replace("{type: AdamW", "{_delete_: true, type: AdamW"))
    assert cli("check", str(path)).code == 0


def test_a_typo_of_the_own_file_is_not_blamed_on_merging(cli, tmp_path, own_data):
    extra = "optimizer: {_delete_: true, type: AdamW, lr: 0.001, momentum: 0.9}\n"
    result = cli("check", str(_config(tmp_path, own_data, extra)))
    assert result.code == 2
    assert "AdamW has no argument 'momentum'" in result.out
    assert "_delete_" not in result.out


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("evaluation: {metric: [bbox, segm]}\n", "evaluation.metric.1"),
        (
            "evaluation: null\nval_evaluator: {type: CocoMetric, metric: segm}\n",
            "val_evaluator.metric",
        ),
    ],
)
def test_segm_metric_is_refused_before_training(cli, tmp_path, own_data, extra, where):
    result = cli("check", str(_config(tmp_path, own_data, extra)))
    assert result.code == 2
    assert where in result.out
    assert "metric 'segm' needs masks, which need a mask head" in result.out


def test_without_an_image_count_epochs_are_still_checked(cli, tmp_path, own_data):
    """A train file whose images cannot be counted (not COCO json here): epochs are checked."""
    (own_data / "train.json").write_text("{}" + " " * 10)  # not COCO: no image count
    extra = (
        "lr_config: {warmup_by_epoch: true, warmup_iters: 3, step: [4]}\nrunner: {max_epochs: 3}\n"
    )
    result = cli("check", str(_config(tmp_path, own_data, extra)))
    assert "step(s) at epoch 4 never happen" in result.out
    assert "the warm-up lasts 3 epoch(s) (warmup_by_epoch) but the run has 3" in result.out


def test_save_best_may_name_a_segm_number_when_segm_is_evaluated(write):
    from detcli.config import resolve_config
    from detcli.config.check import check_config

    base = write(
        "b.yaml",
        "model: {type: FasterRCNN}\nval_evaluator: {type: CocoMetric, metric: [bbox, segm]}\n"
        "default_hooks: {checkpoint: {save_best: coco/segm_mAP}}\n",
    )
    found = {p.where: p.message for p in check_config(resolve_config(base))}
    assert "default_hooks.checkpoint.save_best" not in found
    boxes = write(
        "c.yaml",
        "model: {type: FasterRCNN}\nval_evaluator: {type: CocoMetric, metric: bbox}\n"
        "default_hooks: {checkpoint: {save_best: coco/segm_mAP}}\n",
    )
    found = {p.where: p.message for p in check_config(resolve_config(boxes))}
    assert "is not a number the evaluation reports" in found["default_hooks.checkpoint.save_best"]
