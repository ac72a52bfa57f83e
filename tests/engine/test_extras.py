"""Mixed precision, EMA of weights, early stopping and the max_time budget, on the tiny detector."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import nn

from detcli.engine import train
from detcli.engine.hooks import Hook
from detcli.engine.optim_wrapper import AmpSettings, OptimWrapper
from detcli.registry import HOOKS, registering_as


class Probe(Hook):
    """Test "plugin" hook: the backbone's output dtype and the raw weights after each iteration."""

    dtypes: ClassVar[list[torch.dtype]] = []
    weights: ClassVar[dict[int, dict[str, torch.Tensor]]] = {}
    priority = "LOWEST"

    def before_run(self, runner):
        runner.raw_model.backbone.register_forward_hook(
            lambda module, args, out: Probe.dtypes.append(out[0].dtype)
        )

    def after_train_iter(self, runner):
        Probe.weights[runner.iter] = {
            k: v.clone() for k, v in runner.raw_model.state_dict().items()
        }


@pytest.fixture
def probe():
    with registering_as("tests"):
        HOOKS.register(Probe)
    Probe.dtypes.clear()
    Probe.weights.clear()
    yield Probe
    HOOKS.remove_source("tests")


def test_amp_on_cpu_autocasts_to_bfloat16(tiny_config, tmp_path, probe):
    config = tiny_config(
        "runner: {max_epochs: 1}\nevaluation: null\ncustom_hooks: [{type: Probe}]\n"
    )
    result = train(config, work_dir=tmp_path / "w", amp=True, device="cpu")
    assert result.iter == 2 and probe.dtypes and set(probe.dtypes) == {torch.bfloat16}
    log = (tmp_path / "w" / "train.log").read_text()
    assert "mixed precision: autocast to torch.bfloat16" in log
    ckpt = torch.load(tmp_path / "w" / "epoch_1.pth", weights_only=True)
    assert ckpt["scaler"] is None  # bfloat16 needs no loss scaling
    assert all(
        torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point()
    )


def test_float16_scaler_steps_clips_and_saves_its_state():
    """fp16 + GradScaler is the CUDA path; torch's CPU GradScaler runs the same code here."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapper = OptimWrapper(
        optimizer,
        clip_grad={"max_norm": 1.0},
        amp=AmpSettings(torch.float16, 1024.0),
        device_type="cpu",
    )
    assert wrapper.scaler is not None
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.autocast():
        loss = model(torch.randn(4, 8)).pow(2).mean()
    logs = wrapper.update(loss)
    assert float(logs["loss_scale"]) == 1024.0 and float(logs["grad_norm"]) > 0  # unscaled norm
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert wrapper.state_dict()["scaler"]["scale"] == 1024.0


def test_ema_early_stopping_and_resume_with_both(tiny_config, tmp_path, probe):
    """EMA (momentum 0.5) + early stopping (patience 1, unbeatable min_delta): stops after the
    2nd of 3 epochs; checkpoints hold the EMA as state_dict; resuming reproduces both."""
    config = tiny_config(
        """
        runner: {max_epochs: 3}
        custom_hooks:
          - {type: EMAHook, momentum: 0.5}
          - {type: EarlyStoppingHook, monitor: bbox_mAP, patience: 1, min_delta: 1.0}
          - {type: Probe}
        checkpoint_config: {max_keep_ckpts: -1}
        """
    )
    whole = train(config, work_dir=tmp_path / "whole", device="cpu", deterministic=True)
    assert (whole.epoch, whole.iter) == (
        2,
        4,
    ) and "has not improved for 1 evaluations" in whole.stop_reason
    assert not (tmp_path / "whole" / "epoch_3.pth").exists()
    ckpt = torch.load(tmp_path / "whole" / "epoch_2.pth", weights_only=True)
    raw, ema = ckpt["ema_state_dict"], ckpt["state_dict"]
    # the average: a copy of the weights after iteration 1, then ema += 0.5 * (weights - ema)
    expected = Probe.weights[1]
    for it in (2, 3, 4):
        expected = {
            k: v + 0.5 * (Probe.weights[it][k] - v) if v.is_floating_point() else v
            for k, v in expected.items()
        }
    params = [k for k in raw if "running_" not in k and raw[k].is_floating_point()]
    assert all(torch.allclose(ema[k], expected[k], atol=1e-6) for k in params)
    assert all(torch.equal(raw[k], Probe.weights[4][k]) for k in params)
    assert not all(torch.equal(raw[k], ema[k]) for k in params)
    assert ckpt["meta"]["hooks"]["EMAHook"] == {"n_averaged": 4}
    assert ckpt["meta"]["hooks"]["EarlyStoppingHook"]["wait"] == 1

    resumed = train(
        config,
        work_dir=tmp_path / "resumed",
        resume=tmp_path / "whole" / "epoch_1.pth",
        device="cpu",
        deterministic=True,
    )
    assert (resumed.epoch, resumed.stop_reason) == (2, whole.stop_reason)
    again = torch.load(tmp_path / "resumed" / "epoch_2.pth", weights_only=True)
    for key in ("state_dict", "ema_state_dict"):
        assert all(torch.equal(again[key][k], ckpt[key][k]) for k in ckpt[key])
    assert resumed.metrics == whole.metrics  # evaluated on the same EMA weights


def test_max_time_stops_with_a_resumable_checkpoint(tiny_config, tmp_path):
    config = tiny_config("runner: {max_epochs: 5, max_time: 0.001}\nevaluation: null\n")
    result = train(config, work_dir=tmp_path / "w", device="cpu")
    assert result.iter == 1 and result.stop_reason == "max_time (0.001 s) reached"
    saved = torch.load(tmp_path / "w" / "iter_1.pth", weights_only=True)
    assert (saved["meta"]["iter"], saved["meta"]["inner_iter"]) == (1, 1)
    assert result.last_checkpoint == tmp_path / "w" / "iter_1.pth"
