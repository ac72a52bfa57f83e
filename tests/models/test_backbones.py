"""Backbones: timm networks honour out_indices, frozen_stages, norm_eval, norm_cfg.requires_grad."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import detcli.models  # noqa: F401  (registers the backbones)
from detcli.errors import ModelError
from detcli.registry import MODELS


def build(**cfg):
    return MODELS.build(cfg)


def test_resnet_out_indices_give_channels_strides_and_maps():
    r18 = build(type="ResNet", depth=18, out_indices=[1, 3])
    assert r18.out_channels == [128, 512] and r18.strides == [8, 32]
    feats = r18(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 128, 8, 8), (1, 512, 2, 2)]
    with torch.device("meta"):
        r50 = build(type="ResNet", depth=50)
    assert r50.out_channels == [256, 512, 1024, 2048] and r50.strides == [4, 8, 16, 32]
    with pytest.raises(ModelError, match="18, 34, 50, 101, 152"):
        build(type="ResNet", depth=19)
    with pytest.raises(ModelError, match="out_indices"):
        build(type="ResNet", depth=18, num_stages=3, out_indices=[0, 3])


def _frozen_names(model: nn.Module) -> set[str]:
    return {n.split(".")[1] for n, p in model.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize(
    ("frozen", "expected"),
    [
        (-1, set()),
        (0, {"conv1", "bn1"}),
        (1, {"conv1", "bn1", "layer1"}),
        (2, {"conv1", "bn1", "layer1", "layer2"}),
    ],
)
def test_frozen_stages_freeze_exactly_the_stem_and_first_stages(frozen, expected):
    model = build(type="ResNet", depth=18, frozen_stages=frozen, norm_eval=False)
    assert _frozen_names(model) == expected
    model.train()
    for name in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4"):
        module = getattr(model.body, name)
        assert module.training == (name not in expected), name  # frozen parts stay in eval mode


def test_frozen_stages_keep_weights_after_a_training_step():
    model = build(type="ResNet", depth=18, frozen_stages=1, norm_eval=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    sum(f.mean() for f in model(torch.randn(2, 3, 64, 64))).backward()
    opt.step()
    after = model.state_dict()
    assert torch.equal(before["body.layer1.0.conv1.weight"], after["body.layer1.0.conv1.weight"])
    assert torch.equal(
        before["body.layer1.0.bn1.running_mean"], after["body.layer1.0.bn1.running_mean"]
    )
    trained = "body.layer2.0.downsample.0.weight"
    assert not torch.equal(before[trained], after[trained])


@pytest.mark.parametrize("norm_eval", [True, False])
def test_norm_eval_keeps_batchnorm_statistics(norm_eval):
    model = build(type="ResNet", depth=18, norm_eval=norm_eval)
    stats = model.body.layer3[0].bn1.running_mean.clone()
    model.train()
    model(torch.randn(2, 3, 64, 64) * 3 + 1)
    unchanged = torch.equal(stats, model.body.layer3[0].bn1.running_mean)
    assert unchanged == norm_eval
    assert model.body.layer3[0].conv1.weight.requires_grad  # convs still train


def test_norm_cfg_requires_grad_false_freezes_every_norm_layer():
    model = build(type="ResNet", depth=18, norm_cfg={"type": "BN", "requires_grad": False})
    bn = [
        p.requires_grad
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
        for p in m.parameters()
    ]
    conv = [m.weight.requires_grad for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert bn and not any(bn) and all(conv)
    with pytest.raises(ModelError, match="norm_cfg"):
        build(type="ResNet", depth=18, norm_cfg={"type": "LN"})


def test_resnext_variants_map_to_timm_names():
    with torch.device("meta"):
        x101 = build(type="ResNeXt", depth=101, groups=64, base_width=4)
        x50 = build(type="ResNeXt", depth=50, groups=32, base_width=4)
        x101_8d = build(type="ResNeXt", depth=101, groups=32, base_width=8)
    assert (x101.timm_name, x50.timm_name, x101_8d.timm_name) == (
        "resnext101_64x4d",
        "resnext50_32x4d",
        "resnext101_32x8d",
    )
    assert x101.out_channels == [256, 512, 1024, 2048]
    assert x101.body.layer1[0].conv2.groups == 64
    with pytest.raises(ModelError, match="101/64/4"):
        build(type="ResNeXt", depth=101, groups=16, base_width=4)


W32 = {
    "stage1": {
        "num_modules": 1,
        "num_branches": 1,
        "block": "BOTTLENECK",
        "num_blocks": [4],
        "num_channels": [64],
    },
    "stage2": {
        "num_modules": 1,
        "num_branches": 2,
        "block": "BASIC",
        "num_blocks": [4, 4],
        "num_channels": [32, 64],
    },
    "stage3": {
        "num_modules": 4,
        "num_branches": 3,
        "block": "BASIC",
        "num_blocks": [4, 4, 4],
        "num_channels": [32, 64, 128],
    },
    "stage4": {
        "num_modules": 3,
        "num_branches": 4,
        "block": "BASIC",
        "num_blocks": [4, 4, 4, 4],
        "num_channels": [32, 64, 128, 256],
    },
}


def test_hrnet_from_the_mmdet_spec_gives_raw_branches():
    with torch.device("meta"):
        w32 = build(type="HRNet", extra=W32)
        w18 = build(type="HRNet", arch="w18")
    assert w32.timm_name == "hrnet_w32" and w18.timm_name == "hrnet_w18"
    assert w32.out_channels == [32, 64, 128, 256] and w32.strides == [4, 8, 16, 32]
    small = build(type="HRNet", arch="w18_small", out_indices=[0, 3])
    feats = small(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 16, 16), (128, 2, 2)]


def test_hrnet_spec_mismatch_names_the_differing_key():
    wrong = {**W32, "stage3": {**W32["stage3"], "num_modules": 2}}
    with pytest.raises(ModelError, match=r"extra.stage3.num_modules is 2 \(timm hrnet_w32: 4\)"):
        build(type="HRNet", extra=wrong)
    with pytest.raises(ModelError, match="w18_small, w18_small_v2, w18, w30, w32"):
        build(type="HRNet", arch="w99")


def test_hrnet_frozen_stages_follow_its_stage_layout():
    model = build(type="HRNet", arch="w18_small", frozen_stages=2)
    frozen = _frozen_names(model)
    assert frozen == {"conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2"}


def test_timm_backbone_takes_any_feature_model():
    model = build(
        type="TimmBackbone",
        model_name="mobilenetv3_small_050",
        out_indices=[2, 3, 4],
        frozen_stages=1,
    )
    feats = model(torch.zeros(1, 3, 64, 64))
    assert model.strides == [8, 16, 32]
    assert [f.shape[1] for f in feats] == model.out_channels
    frozen = {n for n, p in model.body.named_parameters() if not p.requires_grad}
    assert any(n.startswith("conv_stem") for n in frozen)
    assert any(n.startswith("blocks.0.") for n in frozen)
    assert not any(n.startswith("blocks.1.") for n in frozen)
    with pytest.raises(ModelError, match="timm cannot build"):
        build(type="TimmBackbone", model_name="no_such_net")
