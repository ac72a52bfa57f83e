"""The reference configs in configs/ load, carry SPEC.md's numbers, and hold no shape mistakes."""

from __future__ import annotations

import pytest

from conftest import REPO
from detcli.config import load_config, resolve_config
from detcli.config.check import check_config
from detcli.plugins import load_plugins

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
TOP = [p for p in CONFIGS if "_base_" not in p.parts]


def test_every_config_loads():
    assert len(CONFIGS) >= 10
    for path in CONFIGS:
        load_config(path)


def test_r50_faster_rcnn_numbers():
    cfg = load_config(REPO / "configs/faster_rcnn/faster_rcnn_r50_fpn_1x_coco.yaml")
    m = cfg.model
    assert m.backbone.depth == 50 and m.backbone.frozen_stages == 1 and m.backbone.norm_eval is True
    assert m.neck.in_channels == [256, 512, 1024, 2048] and m.neck.num_outs == 5
    assert m.rpn_head.anchor_generator.strides == [4, 8, 16, 32, 64]
    assert m.roi_head.bbox_head.bbox_coder.target_stds == [0.1, 0.1, 0.2, 0.2]
    assert m.train_cfg.rpn.sampler.num == 256 and m.train_cfg.rcnn.sampler.pos_fraction == 0.25
    assert m.train_cfg.rpn_proposal.nms_pre == 2000 and m.test_cfg.rcnn.max_per_img == 100
    assert cfg.optimizer.to_dict() == {
        "type": "SGD",
        "lr": 0.02,
        "momentum": 0.9,
        "weight_decay": 0.0001,
    }
    assert (
        cfg.lr_config.step == [8, 11]
        and cfg.lr_config.warmup_iters == 500
        and cfg.runner.max_epochs == 12
    )
    assert cfg.data.train.ann_file == "data/coco/annotations/instances_train2017.json"


@pytest.mark.parametrize(("name", "steps", "epochs"), [("2x", [16, 22], 24), ("20e", [16, 19], 20)])
def test_longer_schedules(name, steps, epochs):
    cfg = load_config(REPO / f"configs/_base_/schedules/schedule_{name}.yaml")
    assert (
        cfg.lr_config.step == steps
        and cfg.runner.max_epochs == epochs
        and cfg.lr_config.warmup_ratio == 0.001
    )


def test_hrnet_swaps_the_backbone_with_delete():
    cfg = load_config(REPO / "configs/hrnet/faster_rcnn_hrnetv2p_w32_1x_coco.yaml")
    assert cfg.model.backbone.type == "HRNet" and "depth" not in cfg.model.backbone
    assert cfg.model.backbone.extra.stage4.num_channels == [32, 64, 128, 256]
    assert cfg.model.neck.to_dict() == {
        "type": "HRFPN",
        "in_channels": [32, 64, 128, 256],
        "out_channels": 256,
    }


def test_trash_config():
    cfg = load_config(REPO / "configs/trash.yaml")
    assert cfg.model.backbone.type == "ResNeXt" and cfg.model.backbone.groups == 64
    assert cfg.model.backbone.base_width == 4 and cfg.model.backbone.depth == 101
    assert len(cfg.classes) == 10 and cfg.model.roi_head.bbox_head.num_classes == 10
    assert cfg.data.train.classes == cfg.classes == cfg.data.test.classes
    assert cfg.data.samples_per_gpu == 4 and cfg.data.train.pipeline[2].img_scale == [512, 512]
    assert cfg.optimizer_config.grad_clip.to_dict() == {"max_norm": 35, "norm_type": 2}
    assert cfg.seed == 2022 and cfg.checkpoint_config.max_keep_ckpts == 3


@pytest.mark.parametrize("path", TOP, ids=lambda p: p.name)
def test_reference_configs_have_no_shape_problems(path):
    """Every type is registered and every argument fits; only data files are absent here."""
    load_plugins()
    problems = check_config(resolve_config(path))
    real = [p for p in problems if not p.note and "does not exist" not in p.message]
    assert [p.message for p in real] == []


def test_mmdet3_configs_mean_what_their_2x_twins_mean():
    """The 3.x reference configs read into the same run settings as the 2.x ones."""
    from detcli.config.settings import read_run_settings

    def settings(name):
        return read_run_settings(load_config(REPO / "configs" / name))

    v2, v3 = settings("trash.yaml"), settings("mmdet3/trash.yaml")
    assert v3.spelling == "3.x" and v2.spelling == "2.x"
    model3 = dict(v3.model)
    assert model3.pop("data_preprocessor")["pad_size_divisor"] == 32
    assert model3 == v2.model
    assert (v3.loop.by_epoch, v3.loop.max_epochs) == (v2.loop.by_epoch, v2.loop.max_epochs)
    assert v3.loaders["train"].batch_size == v2.loaders["train"].batch_size == 4
    assert v3.optim.optimizer == v2.optim.optimizer and v3.optim.clip_grad == v2.optim.clip_grad
    assert v3.env.seed == v2.env.seed == 2022
    assert v3.hooks.checkpoint["max_keep_ckpts"] == v2.hooks.checkpoint["max_keep_ckpts"] == 3
    assert (
        v3.loaders["train"].dataset["metainfo"]["classes"] == v2.loaders["train"].dataset["classes"]
    )
    assert v3.evaluation.outputs("test") == (True, "work_dirs/trash_test/results")


def test_cascade_configs_in_both_spellings_build_the_same_model_and_run():
    from detcli.config.settings import read_run_settings

    v2 = read_run_settings(
        load_config(REPO / "configs/cascade_rcnn/cascade_rcnn_r50_fpn_20e_coco.yaml")
    )
    v3 = read_run_settings(
        load_config(REPO / "configs/mmdet3/cascade_rcnn/cascade-rcnn_r50_fpn_20e_coco.yaml")
    )
    model3 = dict(v3.model)
    assert model3.pop("data_preprocessor")["pad_size_divisor"] == 32
    assert model3 == v2.model
    assert (
        v2.model["roi_head"]["type"] == "CascadeRoIHead" and len(v2.model["train_cfg"]["rcnn"]) == 3
    )
    assert v3.loop.max_epochs == v2.loop.max_epochs == 20
