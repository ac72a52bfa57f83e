"""Optimizer building: any torch.optim class, paramwise multipliers, clipping, auto LR scaling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detcli.config import ConfigDict
from detcli.config.settings import OptimSettings, read_run_settings
from detcli.engine.optim_wrapper import build_optim_wrapper
from detcli.engine.optimizers import build_optimizer
from detcli.errors import ConfigError
from detcli.plugins import load_plugins


@pytest.fixture(autouse=True)
def _registries():
    load_plugins()


class Net(nn.Module):
    """backbone (conv + BN + depthwise conv) and head (linear): the layer kinds the rules look at."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, groups=8)
        )
        self.head = nn.Linear(8, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)

    def forward(self, x):
        return self.head(self.backbone(x).mean((2, 3)))


def optim_settings(cfg: ConfigDict) -> OptimSettings:
    settings = read_run_settings(cfg).optim
    assert settings is not None
    return settings


def _lr_wd(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, tuple[float, float]]:
    by_id = {id(p): n for n, p in model.named_parameters()}
    return {
        by_id[id(p)]: (g["lr"], g["weight_decay"])
        for g in optimizer.param_groups
        for p in g["params"]
    }


@pytest.mark.parametrize("name", ["SGD", "AdamW", "Adam", "RMSprop"])
def test_any_torch_optimizer_by_name(name):
    model = Net()
    opt = build_optimizer(model, {"type": name, "lr": 0.01, "weight_decay": 0.05})
    assert type(opt).__name__ == name and opt.defaults["lr"] == 0.01
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in opt.param_groups for p in g["params"]} == trainable  # frozen left out


def test_paramwise_rules_follow_mmdet():
    model = Net()
    opt = build_optimizer(
        model,
        {
            "type": "SGD",
            "lr": 0.02,
            "momentum": 0.9,
            "weight_decay": 1e-4,
            "paramwise_cfg": {
                "norm_decay_mult": 0.0,
                "bias_decay_mult": 0.5,
                "bias_lr_mult": 2.0,
                "dwconv_decay_mult": 0.25,
                "custom_keys": {
                    "head": {"lr_mult": 0.1, "decay_mult": 0.9},
                    "head.bias": {"lr_mult": 3.0},
                },
            },
        },
    )
    got = _lr_wd(model, opt)
    assert got["backbone.0.weight"] == pytest.approx((0.02, 1e-4))
    assert got["backbone.1.weight"] == pytest.approx((0.02, 0.0))  # BN: norm_decay_mult
    assert got["backbone.1.bias"] == pytest.approx((0.02, 0.0))  # BN bias: no bias_lr_mult
    assert got["backbone.2.weight"] == pytest.approx((0.02, 0.25e-4))  # depthwise
    assert got["backbone.2.bias"] == pytest.approx((0.02 * 2.0, 0.25e-4))
    assert got["head.weight"] == pytest.approx((0.002, 0.9e-4))  # custom key, no other rule
    assert got["head.bias"] == pytest.approx((0.06, 1e-4))  # the longer key wins
    assert opt.param_groups[0]["lr_mult"] == 1.0 and opt.param_groups[0]["decay_mult"] == 1.0
    # equal multipliers share a group instead of one group per parameter
    assert len(opt.param_groups) == len({v for v in got.values()})


def test_paramwise_typo_is_an_error():
    with pytest.raises(ConfigError, match="Did you mean 'norm_decay_mult'"):
        build_optimizer(Net(), {"type": "SGD", "lr": 0.1, "paramwise_cfg": {"norm_decay_mul": 0}})
    with pytest.raises(ConfigError, match="lr_mult"):
        build_optimizer(
            Net(), {"type": "SGD", "lr": 0.1, "paramwise_cfg": {"custom_keys": {"head": {"lr": 1}}}}
        )


def test_grad_clip_limits_the_update_and_logs_the_norm():
    model = Net()
    cfg = ConfigDict(
        optimizer={"type": "SGD", "lr": 1.0},
        optimizer_config={"grad_clip": {"max_norm": 0.01, "norm_type": 2}},
    )
    wrapper = build_optim_wrapper(model, optim_settings(cfg), amp=None, device_type="cpu")
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    loss = model(torch.randn(2, 3, 12, 12)).pow(2).sum() * 1000
    logs = wrapper.update(loss)
    assert float(logs["grad_norm"]) > 0.01  # the norm before clipping is what gets logged
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    step = torch.cat([(a - b).flatten() for a, b in zip(after, before, strict=True)])
    assert float(step.norm()) == pytest.approx(0.01, rel=1e-4)  # lr 1 x clipped gradient
    assert all(p.grad is None for p in model.parameters())


def test_optim_wrapper_form_with_clip_paramwise_and_amp():
    cfg = ConfigDict(
        optim_wrapper={
            "type": "AmpOptimWrapper",
            "optimizer": {"type": "AdamW", "lr": 1e-3, "weight_decay": 0.05},
            "clip_grad": {"max_norm": 1.0},
            "paramwise_cfg": {"custom_keys": {"backbone": {"lr_mult": 0.1}}},
        }
    )
    settings = optim_settings(cfg)
    model = Net()
    wrapper = build_optim_wrapper(model, settings, amp=None, device_type="cpu")
    assert (
        wrapper.amp is not None and wrapper.amp.dtype == torch.bfloat16 and wrapper.scaler is None
    )
    assert _lr_wd(model, wrapper.optimizer)["backbone.0.weight"][0] == pytest.approx(1e-4)
    with wrapper.autocast():
        out = model.backbone(torch.randn(1, 3, 8, 8))
    assert out.dtype == torch.bfloat16
    assert "grad_norm" in wrapper.update(model(torch.randn(1, 3, 8, 8)).sum())
    no_amp = build_optim_wrapper(model, settings, amp=False, device_type="cpu")  # --amp off wins
    assert no_amp.amp is None


def test_fp16_key_enables_amp_and_both_spellings_are_refused():
    cfg = ConfigDict(optimizer={"type": "SGD", "lr": 0.1}, fp16={"loss_scale": 512.0})
    settings = optim_settings(cfg)
    assert settings.amp and settings.loss_scale == 512.0
    both = ConfigDict(
        optimizer={"type": "SGD", "lr": 0.1},
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1}},
    )
    with pytest.raises(ConfigError, match="keep one of them"):
        optim_settings(both)
    with pytest.raises(ConfigError, match="Did you mean 'clip_grad'"):
        optim_settings(
            ConfigDict(optim_wrapper={"optimizer": {"type": "SGD", "lr": 1}, "clip_gard": None})
        )


def test_auto_scale_lr_scales_by_total_batch_and_says_so():
    cfg = ConfigDict(
        optimizer={"type": "SGD", "lr": 0.02}, auto_scale_lr={"enable": True, "base_batch_size": 16}
    )
    settings, line = optim_settings(cfg).scaled(total_batch=2 * 4)
    assert settings.optimizer["lr"] == pytest.approx(0.01)
    assert line is not None and "0.02" in line and "0.01" in line and "16" in line
    assert cfg.optimizer.lr == 0.02  # the config itself is not changed
    cfg.auto_scale_lr.enable = False
    off, line = optim_settings(cfg).scaled(total_batch=8)
    assert line is None and off.optimizer["lr"] == 0.02


def test_unknown_optimizer_suggests_names():
    with pytest.raises(Exception, match="Did you mean 'AdamW'"):
        build_optimizer(Net(), {"type": "AdamWW", "lr": 0.1})


class FlatNet(Net):
    """Net plus a 1-D parameter that is neither a bias nor a norm's (FCOS's Scale)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(8))


def test_optim_wrapper_paramwise_follows_mmengine_order_and_flat_decay():
    """3.x (`optim_wrapper.paramwise_cfg`): bias before depthwise, then `flat_decay_mult`."""
    model = FlatNet()
    paramwise = {
        "bias_decay_mult": 0.5,
        "bias_lr_mult": 2.0,
        "dwconv_decay_mult": 0.25,
        "flat_decay_mult": 0.1,
    }
    opt = build_optimizer(model, {"type": "SGD", "lr": 0.02, "weight_decay": 1e-4}, paramwise)
    got = _lr_wd(model, opt)
    assert got["scale"] == pytest.approx((0.02, 0.1e-4))  # flat_decay_mult
    assert got["backbone.2.weight"] == pytest.approx((0.02, 0.25e-4))  # depthwise
    assert got["backbone.2.bias"] == pytest.approx((0.04, 0.5e-4))  # bias rule first (mmengine)
    # no norm_decay_mult: a norm's bias falls to the bias rule, its weight to the flat rule
    assert got["backbone.1.bias"] == pytest.approx((0.02, 0.5e-4))
    assert got["backbone.1.weight"] == pytest.approx((0.02, 0.1e-4))
    assert got["head.weight"] == pytest.approx((0.02, 1e-4))
    assert got["head.bias"] == pytest.approx((0.04, 0.5e-4))


def test_custom_key_with_one_multiplier_keeps_the_other_at_one():
    model = Net()
    paramwise = {"custom_keys": {"head": {"decay_mult": 0.0}, "backbone": {"lr_mult": 0.1}}}
    opt = build_optimizer(model, {"type": "SGD", "lr": 0.1, "weight_decay": 0.01}, paramwise)
    got = _lr_wd(model, opt)
    assert got["head.weight"] == pytest.approx((0.1, 0.0))
    assert got["backbone.1.weight"] == pytest.approx((0.01, 0.01))


def test_without_weight_decay_the_optimizers_default_holds():
    """No `weight_decay` in the config: AdamW keeps its 0.01 in every group (mmengine too)."""
    model = Net()
    opt = build_optimizer(model, {"type": "AdamW", "lr": 1e-3}, {"norm_decay_mult": 0.0})
    assert {g["weight_decay"] for g in opt.param_groups} == {0.01}


class SharedNet(nn.Module):
    """One linear layer registered under two names, as models that reuse a head do."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(2, 2)
        self.second = self.first


def test_shared_parameters_need_bypass_duplicate():
    sgd = {"type": "SGD", "lr": 0.1}
    with pytest.raises(ConfigError, match="bypass_duplicate") as err:
        build_optimizer(SharedNet(), sgd, {"bias_lr_mult": 2.0})
    assert "second.weight" in str(err.value) and "first.weight" in str(err.value)
    model = SharedNet()
    opt = build_optimizer(model, sgd, {"bias_lr_mult": 2.0, "bypass_duplicate": True})
    params = [p for g in opt.param_groups for p in g["params"]]
    assert len(params) == 2 and {id(p) for p in params} == {id(p) for p in model.parameters()}
    assert len(build_optimizer(SharedNet(), sgd).param_groups[0]["params"]) == 2  # no paramwise
