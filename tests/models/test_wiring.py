"""Shapes flow from part to part: left out, they are taken from the part before; given and
wrong, every mismatch is reported at once. And the same model builds from Python alone."""

from __future__ import annotations

import re

import pytest
import torch
from model_helpers import REPO, TINY_MODEL, tiny_cfg

from detcli.config import resolve_config
from detcli.config.check import check_config
from detcli.model_config import build_model
from detcli.models import FPN, FeatureMaps, ResNet, WiringError
from detcli.models.shapes import Wiring

SHAPE_KEYS = {
    "neck": ["in_channels"],
    "rpn_head": ["in_channels"],
    "roi_head.bbox_roi_extractor": ["out_channels", "featmap_strides"],
    "roi_head.bbox_head": ["in_channels", "roi_feat_size"],
}


def without_shapes() -> dict:
    cfg = tiny_cfg()
    for part, keys in SHAPE_KEYS.items():
        node = cfg
        for name in part.split("."):
            node = node[name]
        for key in keys:
            del node[key]
    return cfg


def test_left_out_shapes_give_the_same_model_and_weights():
    torch.manual_seed(0)
    full = build_model(tiny_cfg()).state_dict()
    torch.manual_seed(0)
    inferred = build_model(without_shapes()).state_dict()
    assert list(inferred) == list(full)
    for key, value in full.items():
        assert torch.equal(inferred[key], value), key
    model = build_model(without_shapes())
    assert model.neck.in_channels == [64, 128, 256, 512]
    assert model.rpn_head.in_channels == 64
    assert model.roi_head.bbox_roi_extractor.featmap_strides == [4, 8, 16, 32]
    assert (model.roi_head.bbox_head.in_channels, model.roi_head.bbox_head.roi_feat_size) == (64, 7)


def test_check_accepts_left_out_shapes(write):
    body = """
model:
  neck: {in_channels: null}
  rpn_head: {in_channels: null}
  roi_head:
    bbox_roi_extractor: {out_channels: null, featmap_strides: null}
    bbox_head: {in_channels: null, roi_feat_size: null}
"""
    path = write("exp.yaml", f"_base_: {TINY_MODEL}\n{body}")
    assert [p.message for p in check_config(resolve_config(path))] == []


def test_every_mismatch_is_reported_at_once_naming_both_sides():
    cfg = tiny_cfg()
    cfg["neck"]["in_channels"] = [64, 128, 256, 256]
    cfg["roi_head"]["bbox_head"]["in_channels"] = 32
    with pytest.raises(WiringError) as caught:
        build_model(cfg)
    problems = {p.path: p.message for p in caught.value.problems}
    assert set(problems) == {("neck", "in_channels"), ("roi_head", "bbox_head", "in_channels")}
    assert (
        "the ResNet backbone (resnet18) gives feature maps with [64, 128, 256, 512]"
        in (problems[("neck", "in_channels")])
    )
    assert (
        "the RoI extractor gives 64 channels" in problems[("roi_head", "bbox_head", "in_channels")]
    )
    assert "model.roi_head.bbox_head.in_channels" in str(caught.value)


def test_a_part_built_alone_is_wired_by_hand_or_says_what_it_needs():
    neck = FPN(out_channels=16, num_outs=3)
    with pytest.raises(Exception, match="has not been wired"):
        neck([torch.zeros(1, 8, 8, 8)])
    backbone = ResNet(depth=18, out_indices=(1, 2))
    assert backbone.feature_maps == FeatureMaps(
        (128, 256), (8, 16), "the ResNet backbone (resnet18)"
    )
    out = neck.wire(backbone.feature_maps, Wiring())
    assert out.channels == (16, 16, 16) and out.strides == (8, 16, 32)
    feats = neck(backbone(torch.zeros(1, 3, 64, 64)))
    assert [f.shape[1:] for f in feats] == [(16, 8, 8), (16, 4, 4), (16, 2, 2)]


def test_the_readme_python_api_example_trains_and_predicts():
    text = (REPO / "README.md").read_text()
    code = re.search(r"<!-- python-api -->\n```python\n(.*?)```", text, re.S)
    assert code is not None, "README lost its Python API example"
    namespace: dict = {}
    torch.manual_seed(0)
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    losses, detections = namespace["losses"], namespace["detections"]
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "acc"}
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss_cls"].backward()
    assert len(detections) == 2 and detections[0].boxes.shape[1] == 4


def test_train_cfg_debug_is_a_note_and_train_cfg_sections_are_still_checked(write):
    body = """
model:
  train_cfg:
    rpn: {debug: true}
    rcnn: {assigner: {pos_iou_thresh: 0.5}}
"""
    path = write("exp.yaml", f"_base_: {TINY_MODEL}\n{body}")
    found = {p.where: p for p in check_config(resolve_config(path))}
    assert found["model.train_cfg.rpn.debug"].note
    assert "pos_iou_thr" in found["model.train_cfg.rcnn.assigner.pos_iou_thresh"].message
