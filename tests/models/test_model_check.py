"""`detcli check` finds mis-wired models (channels, strides, weights) without running them."""

from __future__ import annotations

import pytest
from model_helpers import TINY_MODEL

from detcli.config import resolve_config
from detcli.config.check import check_config
from detcli.plugins import load_plugins


@pytest.fixture(scope="module", autouse=True)
def _registered():
    load_plugins()


def problems(write, body: str) -> dict[str, str]:
    path = write("exp.yaml", f"_base_: {TINY_MODEL}\n{body}")
    return {p.where: p.message for p in check_config(resolve_config(path))}


def test_the_tiny_model_is_clean(write):
    assert problems(write, "") == {}


def test_neck_in_channels_must_match_the_backbone(write):
    found = problems(write, "model:\n  backbone: {depth: 50}\n")
    assert list(found) == ["model.neck.in_channels"]
    assert "[256, 512, 1024, 2048]" in found["model.neck.in_channels"]
    assert "resnet50" in found["model.neck.in_channels"]
    out = problems(write, "model:\n  backbone: {out_indices: [1, 2, 3]}\n")
    assert "set in_channels: [128, 256, 512]" in out["model.neck.in_channels"]


def test_strides_and_channels_downstream_of_the_neck(write):
    found = problems(
        write,
        """
model:
  neck: {num_outs: 4}
  rpn_head: {in_channels: 32}
  roi_head:
    bbox_roi_extractor: {featmap_strides: [8, 16, 32, 64], out_channels: 32}
    bbox_head: {roi_feat_size: 5}
""",
    )
    assert set(found) == {
        "model.rpn_head.in_channels",
        "model.rpn_head.anchor_generator.strides",
        "model.roi_head.bbox_roi_extractor.featmap_strides",
        "model.roi_head.bbox_roi_extractor.out_channels",
        "model.roi_head.bbox_head.in_channels",
        "model.roi_head.bbox_head.roi_feat_size",
    }
    assert "strides [4, 8, 16, 32]" in found["model.rpn_head.anchor_generator.strides"]
    assert "use [4, 8, 16, 32]" in found["model.roi_head.bbox_roi_extractor.featmap_strides"]


def test_hrnet_with_hrfpn_wiring(write):
    body = """
model:
  backbone: {_delete_: true, type: HRNet, arch: w18_small}
  neck: {_delete_: true, type: HRFPN, in_channels: [16, 32, 64, 128], out_channels: 64}
"""
    assert problems(write, body) == {}
    wrong = body.replace("[16, 32, 64, 128]", "[32, 64, 128, 256]")
    assert "[16, 32, 64, 128]" in problems(write, wrong)["model.neck.in_channels"]


def test_constructor_errors_and_hub_weights_are_reported(write):
    bad = problems(write, "model:\n  backbone: {type: ResNeXt, groups: 7}\n")
    assert "model" in bad and "Available depth/groups/base_width" in bad["model"]
    wrong_arch = problems(
        write,
        "model:\n  backbone:\n    init_cfg: {type: Pretrained, checkpoint: 'torchvision:resnet50'}\n",
    )
    assert (
        "weights for resnet50, but the backbone is resnet18"
        in wrong_arch["model.backbone.init_cfg.checkpoint"]
    )
    unknown_tag = problems(
        write,
        "model:\n  backbone:\n    init_cfg: {type: Pretrained, checkpoint: 'timm:resnet18.nope'}\n",
    )
    assert "resnet18.a1_in1k" in unknown_tag["model.backbone.init_cfg.checkpoint"]
    assert (
        problems(
            write,
            "model:\n  backbone:\n    init_cfg: {type: Pretrained, checkpoint: 'timm:resnet18.a1_in1k'}\n",
        )
        == {}
    )
