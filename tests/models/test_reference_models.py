"""The reference configs build (no pretrained weights) and run one forward at a small size."""

from __future__ import annotations

import pytest
import torch
from model_helpers import REPO, meta

from detcli.config import load_config
from detcli.models import build_model

CONFIGS = {
    "faster_rcnn_r50_fpn_1x_coco": (
        "configs/faster_rcnn/faster_rcnn_r50_fpn_1x_coco.yaml",
        "resnet50",
        80,
    ),
    "faster_rcnn_x101_64x4d_fpn_1x_coco": (
        "configs/faster_rcnn/faster_rcnn_x101_64x4d_fpn_1x_coco.yaml",
        "resnext101_64x4d",
        80,
    ),
    "faster_rcnn_hrnetv2p_w32_1x_coco": (
        "configs/hrnet/faster_rcnn_hrnetv2p_w32_1x_coco.yaml",
        "hrnet_w32",
        80,
    ),
    "trash": ("configs/trash.yaml", "resnext101_64x4d", 10),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_reference_config_builds_and_predicts(name):
    path, timm_name, num_classes = CONFIGS[name]
    cfg = load_config(REPO / path).model.to_dict()
    assert cfg["backbone"]["init_cfg"]["type"] == "Pretrained"
    cfg["backbone"]["init_cfg"] = None  # no network here: random weights
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert model.backbone.timm_name == timm_name and model.num_classes == num_classes
    assert model.roi_head.bbox_head.fc_cls.out_features == num_classes + 1
    with torch.no_grad():
        (det,) = model(torch.randn(1, 3, 128, 128), [meta(size=128, ori=256)], return_loss=False)
    assert len(det) <= 100 and det.boxes.shape == (len(det), 4)
    assert ((det.boxes >= 0) & (det.boxes <= 256)).all()
    assert ((det.labels >= 0) & (det.labels < num_classes)).all()


def test_r50_training_forward_at_small_size():
    cfg = load_config(REPO / CONFIGS["faster_rcnn_r50_fpn_1x_coco"][0]).model.to_dict()
    cfg["backbone"]["init_cfg"] = None
    model = build_model(cfg).train()
    frozen = {n.split(".")[1] for n, p in model.backbone.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1"}  # frozen_stages: 1
    gt = [torch.tensor([[10.0, 20.0, 90.0, 100.0]])]
    losses = model(torch.randn(1, 3, 128, 128), [meta()], gt, [torch.tensor([5])])
    assert all(torch.isfinite(v) for v in losses.values())
