"""LR schedules: the 1x reference curve at every iteration, mmcv policies, the param_scheduler list."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import REPO
from detcli.config import load_config
from detcli.config.settings import read_run_settings
from detcli.engine.lr_scheduler import build_lr_scheduler
from detcli.engine.param_schedulers import Progress
from detcli.errors import ConfigError


def _optimizer(lr: float = 0.02, mults: tuple[float, ...] = (1.0,)) -> torch.optim.SGD:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr * m} for m in mults]
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


def _curve(cfg, iters_per_epoch: int, max_iters: int, mults=(1.0,)) -> list[list[float]]:
    """The LR of every group at every iteration, read from the optimizer as training would."""
    optimizer = _optimizer(mults=mults)
    scheduler = build_lr_scheduler(
        read_run_settings(cfg).schedule, optimizer, Progress(iters_per_epoch, max_iters)
    )
    lrs = []
    for _ in range(max_iters):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return lrs


def _mmdet_1x(it: int, iters_per_epoch: int, lr: float = 0.02) -> float:
    """mmdet's StepLrUpdaterHook + linear warm-up, written out by hand."""
    epoch = it // iters_per_epoch
    regular = lr * 0.1 ** sum(epoch >= s for s in (8, 11))
    if it < 500:
        return regular * (1 - (1 - 0.001) * (1 - it / 500))
    return regular


@pytest.mark.parametrize("iters_per_epoch", [1000, 37])
def test_1x_schedule_matches_mmdet_at_every_iteration(iters_per_epoch):
    cfg = load_config(REPO / "configs/_base_/schedules/schedule_1x.yaml")
    max_iters = 12 * iters_per_epoch
    lrs = _curve(cfg, iters_per_epoch, max_iters, mults=(1.0, 0.1))
    for it, (lr, lr_tenth) in enumerate(lrs):
        expected = _mmdet_1x(it, iters_per_epoch)
        assert lr == pytest.approx(expected, rel=1e-12, abs=1e-15), it
        assert lr_tenth == pytest.approx(expected * 0.1, rel=1e-12), it  # paramwise lr_mult kept
    # landmarks a user would check in a log
    assert lrs[0][0] == pytest.approx(0.02 * 0.001)
    if iters_per_epoch == 37:  # epoch 8 starts at iteration 296, still in the 500-iteration warm-up
        assert lrs[296][0] == pytest.approx(0.002 * (1 - 0.999 * (1 - 296 / 500)))
        return
    assert lrs[8 * iters_per_epoch][0] == pytest.approx(0.002)
    assert lrs[11 * iters_per_epoch][0] == pytest.approx(0.0002)


def test_warmup_kinds_and_warmup_by_epoch():
    base = {"policy": "fixed", "warmup_iters": 10, "warmup_ratio": 0.1}
    const = _curve({"lr_config": {**base, "warmup": "constant"}}, 5, 20)
    assert [x[0] for x in const[:10]] == pytest.approx([0.002] * 10) and const[10][0] == 0.02
    exp = _curve({"lr_config": {**base, "warmup": "exp"}}, 5, 20)
    assert exp[4][0] == pytest.approx(0.02 * 0.1 ** (1 - 4 / 10))
    by_epoch = {**base, "warmup": "linear", "warmup_iters": 2, "warmup_by_epoch": True}
    lin = _curve({"lr_config": by_epoch}, 5, 20)  # 2 epochs x 5 iterations of warm-up
    assert lin[9][0] < 0.02 and lin[10][0] == 0.02


def test_cosine_poly_exp_and_iteration_based_step():
    cos = _curve({"lr_config": {"policy": "CosineAnnealing", "min_lr": 0.0002}}, 4, 40)
    for it, (lr,) in enumerate(cos):
        epoch = it // 4
        assert lr == pytest.approx(
            0.0002 + (0.02 - 0.0002) * (math.cos(math.pi * epoch / 10) + 1) / 2
        )
    poly = _curve({"lr_config": {"policy": "poly", "power": 2.0, "by_epoch": False}}, 4, 40)
    assert poly[30][0] == pytest.approx(0.02 * (1 - 30 / 40) ** 2)
    step = _curve(
        {"lr_config": {"policy": "step", "step": 15, "by_epoch": False, "gamma": 0.5}}, 4, 40
    )
    assert (
        step[14][0] == 0.02
        and step[15][0] == pytest.approx(0.01)
        and step[30][0] == pytest.approx(0.005)
    )


def test_param_scheduler_list_form_linear_warmup_then_multistep():
    cfg = {
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.001, "by_epoch": False, "begin": 0, "end": 500},
            {"type": "MultiStepLR", "by_epoch": True, "begin": 0, "end": 12, "milestones": [8, 11]},
        ]
    }
    ipe = 100
    lrs = [x[0] for x in _curve(cfg, ipe, 12 * ipe)]
    for it, lr in enumerate(lrs):
        warm = 0.001 + (1 - 0.001) * min(it, 499) / 499  # mmengine: end factor reached at end - 1
        assert lr == pytest.approx(0.02 * warm * 0.1 ** sum(it // ipe >= m for m in (8, 11)))


@pytest.mark.parametrize(
    ("entry", "reference"),
    [
        (
            {"type": "CosineAnnealingLR", "by_epoch": False, "T_max": 50, "eta_min": 0.001},
            lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50, eta_min=0.001),
        ),
        (
            {"type": "LinearLR", "by_epoch": False, "start_factor": 0.1, "end": 21},
            lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=20),
        ),
        (
            {"type": "StepLR", "by_epoch": False, "step_size": 7, "gamma": 0.5},
            lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5),
        ),
    ],
)
def test_param_schedulers_match_torch_schedulers(entry, reference):
    ours = [x[0] for x in _curve({"param_scheduler": [entry]}, 10, 50)]
    optimizer = _optimizer()
    torch_scheduler = reference(optimizer)
    theirs = []
    for _ in range(50):
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        torch_scheduler.step()
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_convert_to_iter_based_cosine_is_smooth_within_epochs():
    entry = {
        "type": "CosineAnnealingLR",
        "by_epoch": True,
        "T_max": 4,
        "convert_to_iter_based": True,
    }
    lrs = [x[0] for x in _curve({"param_scheduler": [entry]}, 10, 40)]
    assert lrs[5] == pytest.approx(0.02 * (1 + math.cos(math.pi * 5 / 40)) / 2)
    assert len(set(lrs[:10])) == 10  # changes every iteration, not once per epoch


def test_schedule_resumes_from_its_state():
    cfg = load_config(REPO / "configs/_base_/schedules/schedule_1x.yaml")
    progress = Progress(100, 1200)
    opt = _optimizer()
    first = build_lr_scheduler(read_run_settings(cfg).schedule, opt, progress)
    for _ in range(650):
        opt.step()
        first.step()
    state = first.state_dict()
    fresh_opt = _optimizer()
    second = build_lr_scheduler(read_run_settings(cfg).schedule, fresh_opt, progress)
    second.load_state_dict(state)
    second.apply()
    assert fresh_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == pytest.approx(0.02)
    assert set(state) >= {"last_epoch", "base_lrs"} and "rules" not in state


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"lr_config": {"policy": "stepp", "step": [8]}}, "Did you mean 'step'"),
        ({"lr_config": {"policy": "step", "step": [8], "gama": 0.5}}, "Did you mean 'gamma'"),
        (
            {"lr_config": {"policy": "step", "step": [8], "warmup": "cubic", "warmup_iters": 5}},
            "'linear' | 'constant' | 'exp'",
        ),
        ({"lr_config": {"policy": "CosineAnnealing"}}, "min_lr"),
        (
            {"lr_config": {"policy": "fixed"}, "param_scheduler": [{"type": "LinearLR"}]},
            "ambiguous",
        ),
        ({"param_scheduler": [{"type": "LinerLR"}]}, "LinearLR"),
        ({"param_scheduler": [{"type": "MultiStepLR", "milestone": [3]}]}, "milestone"),
    ],
)
def test_schedule_config_errors_name_the_key(cfg, message):
    with pytest.raises(Exception) as err:
        build_lr_scheduler(read_run_settings(cfg).schedule, _optimizer(), Progress(10, 100))
    assert isinstance(err.value, ConfigError) or type(err.value).__name__ == "RegistryError"
    assert message in str(err.value)
