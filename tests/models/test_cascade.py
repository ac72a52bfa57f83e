"""Cascade R-CNN: stages trained in sequence on refined RoIs, scores averaged at test time,
trained and evaluated from its config, per-stage lists checked before anything runs."""

from __future__ import annotations

import copy

import pytest
import torch
from model_helpers import REPO, boxes

import detcli
from detcli.config import load_config, resolve_config
from detcli.config.check import check_config
from detcli.errors import ModelError
from detcli.model_config import build_model
from detcli.models import CascadeRoIHead, StandardRoIHead
from detcli.plugins import load_plugins

SHAPES_CASCADE = REPO / "configs" / "shapes" / "cascade_rcnn_r18_fpn_shapes.yaml"


@pytest.fixture(scope="module", autouse=True)
def _registered():
    load_plugins()


def cascade_cfg(**roi_changes):
    cfg = copy.deepcopy(load_config(SHAPES_CASCADE).model.to_dict())
    cfg["roi_head"].update(roi_changes)
    return cfg


def batch():
    torch.manual_seed(0)
    img = torch.randn(2, 3, 128, 128)
    meta = {"img_shape": (128, 128, 3), "pad_shape": (128, 128, 3), "ori_shape": (128, 128, 3)}
    gt = [boxes([[10, 10, 60, 60], [70, 20, 120, 90]]), boxes([[30, 40, 100, 120]])]
    return img, [meta, meta], gt, [torch.tensor([0, 1]), torch.tensor([2])]


def test_every_stage_has_its_losses_weighted_by_stage():
    img, metas, gt, labels = batch()
    model = build_model(cascade_cfg(stage_loss_weights=[1, 0, 0.25])).train()
    assert isinstance(model.roi_head, CascadeRoIHead) and model.num_classes == 3
    torch.manual_seed(1)
    losses = model(img, metas, gt, labels)
    stages = {k for k in losses if k.startswith("s")}
    assert stages == {f"s{i}.{n}" for i in range(3) for n in ("loss_cls", "loss_bbox", "acc")}
    assert losses["s1.loss_cls"] == 0 and losses["s1.loss_bbox"] == 0  # weight 0 ...
    assert losses["s1.acc"] > 0  # ... but its accuracy is logged as it is
    assert losses["s0.loss_cls"] > 0 and losses["s2.loss_cls"] > 0
    sum(v for k, v in losses.items() if "loss" in k).backward()
    assert model.roi_head.bbox_head[2].fc_cls.weight.grad is not None


def test_one_stage_cascade_is_the_standard_head():
    """With one stage there is nothing to refine or average: the same weights give the same
    detections as a StandardRoIHead."""
    img, metas, _, _ = batch()
    cfg = cascade_cfg(num_stages=1, stage_loss_weights=[1])
    cfg["roi_head"]["bbox_head"] = cfg["roi_head"]["bbox_head"][:1]
    cfg["train_cfg"]["rcnn"] = cfg["train_cfg"]["rcnn"][:1]
    torch.manual_seed(0)
    cascade = build_model(cfg).eval()
    standard_cfg = copy.deepcopy(cfg)
    standard_cfg["type"] = "FasterRCNN"
    standard_cfg["roi_head"] = {
        "type": "StandardRoIHead",
        "bbox_roi_extractor": cfg["roi_head"]["bbox_roi_extractor"],
        "bbox_head": cfg["roi_head"]["bbox_head"][0],
    }
    standard_cfg["train_cfg"]["rcnn"] = cfg["train_cfg"]["rcnn"][0]
    standard = build_model(standard_cfg).eval()
    assert isinstance(standard.roi_head, StandardRoIHead)
    weights = {k.replace("bbox_head.0.", "bbox_head."): v for k, v in cascade.state_dict().items()}
    standard.load_state_dict(weights)
    with torch.no_grad():
        for mine, ref in zip(
            cascade(img, metas, return_loss=False),
            standard(img, metas, return_loss=False),
            strict=True,
        ):
            torch.testing.assert_close(mine.boxes, ref.boxes)
            torch.testing.assert_close(mine.scores, ref.scores)


def test_test_time_scores_are_averaged_over_stages_on_refined_rois():
    img, metas, _, _ = batch()
    model = build_model(cascade_cfg()).eval()
    head = model.roi_head
    with torch.no_grad():
        feats = model.extract_feat(img)
        hw = torch.tensor([[128, 128], [128, 128]])
        proposals = model.rpn_head.proposals(*model.rpn_head(feats), hw)
        got = head.predict(feats, proposals, hw, metas)
        # By hand: each stage scores the RoIs the stage before regressed.
        rois = torch.cat(
            [torch.cat([p.new_full((len(p), 1), i), p[:, :4]], 1) for i, p in enumerate(proposals)]
        )
        scores = []
        for stage in range(3):
            cls, deltas = head.bbox_head[stage](head.bbox_roi_extractor[stage](feats[:4], rois))
            scores.append(cls)
            if stage < 2:
                moved = head.bbox_head[stage].regress(
                    rois[:, 1:], cls[:, :3].argmax(1), deltas, hw[rois[:, 0].long()]
                )
                rois = torch.cat([rois[:, :1], moved], 1)
        from detcli.models.roi_heads.standard_roi_head import detections

        want = detections(
            head.bbox_head[2], rois, sum(scores) / 3, deltas, hw, metas, 2, head.test_cfg
        )
    for mine, ref in zip(got, want, strict=True):
        torch.testing.assert_close(mine.boxes, ref.boxes)
        torch.testing.assert_close(mine.scores, ref.scores)


def test_mismatched_per_stage_lists_are_check_errors(write):
    path = write(
        "c.yaml",
        f"_base_: {SHAPES_CASCADE}\nmodel:\n  roi_head:\n    stage_loss_weights: [1, 0.5]\n",
    )
    found = {p.where: p.message for p in check_config(resolve_config(path))}
    assert "stage_loss_weights has 2 entries but model.roi_head.num_stages is 3" in found["model"]
    cfg = cascade_cfg()
    cfg["train_cfg"]["rcnn"] = cfg["train_cfg"]["rcnn"][:2]
    with pytest.raises(ModelError, match=r"model.train_cfg.rcnn has 2 entries"):
        build_model(cfg)
    cfg = cascade_cfg()
    cfg["roi_head"]["bbox_head"][1]["num_classes"] = 4
    with pytest.raises(ModelError, match=r"num_classes differ \(\[3, 4, 3\]\)"):
        build_model(cfg)


def test_cascade_trains_and_evaluates_from_its_config(shapes_coco, tmp_path):
    overrides = [
        f"data_root={shapes_coco.root}",
        "runner.max_epochs=1",
        "evaluation=null",
        "log_config.hooks=[{type: TextLoggerHook}]",
    ]
    cfg = load_config(SHAPES_CASCADE, overrides)
    result = detcli.train(cfg, work_dir=tmp_path / "work", device="cpu", threads=1)
    assert result.last_checkpoint is not None
    evaluated = detcli.evaluate(cfg, result.last_checkpoint, split="val", device="cpu")
    assert 0 <= evaluated.metrics["bbox_mAP"] <= 1
    assert len(evaluated.detections) == 8
