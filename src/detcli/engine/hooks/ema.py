"""EMAHook: an exponential moving average of the weights, used for evaluation and saved.

After every `interval` iterations: ema = (1 - m) * ema + m * weights, with m = `momentum`, or
(ExpMomentumEMAHook, mmdet's YOLOX setting) m = (1 - momentum) * exp(-(1 + n) / gamma) +
momentum, large at first so the average forgets the random initialisation quickly.
Evaluation runs on the averaged weights; checkpoints hold them as `state_dict` (what eval and
predict load) and the raw training weights as `ema_state_dict`, so resume continues both.
Built on torch.optim.swa_utils.AveragedModel.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.swa_utils import AveragedModel

from detcli.engine.hooks.base import Hook
from detcli.registry import HOOKS

if TYPE_CHECKING:
    from detcli.engine.runner import Runner

# What AveragedModel hands its `multi_avg_fn`: the averaged and the current parameters.
TensorList = list[torch.Tensor] | tuple[torch.Tensor, ...]


@HOOKS.register()
class EMAHook(Hook):
    """Keeps an EMA of the model's weights; evaluation and saved `state_dict` use it."""

    priority = "ABOVE_NORMAL"

    def __init__(
        self,
        momentum: float = 0.0002,
        gamma: float | None = None,
        interval: int = 1,
        update_buffers: bool = False,
        begin_iter: int = 0,
    ):
        self.momentum, self.gamma, self.interval = momentum, gamma, interval
        self.update_buffers, self.begin_iter = update_buffers, begin_iter
        self.ema: AveragedModel | None = None
        self._n_averaged: int | None = None  # from a checkpoint, before the average exists

    def _momentum(self, n: int) -> float:
        if self.gamma is None:
            return self.momentum
        return (1 - self.momentum) * math.exp(-(1 + n) / self.gamma) + self.momentum

    def _ensure(self, runner: Runner) -> AveragedModel:
        if self.ema is None:

            def lerp(ema: TensorList, current: TensorList, n: torch.Tensor | int) -> None:
                torch._foreach_lerp_(ema, current, self._momentum(int(n)))

            self.ema = AveragedModel(runner.raw_model, multi_avg_fn=lerp, use_buffers=False)
        if self._n_averaged is not None:
            self.ema.n_averaged.fill_(self._n_averaged)
            self._n_averaged = None
        return self.ema

    def before_run(self, runner: Runner) -> None:
        self._ensure(runner)

    def after_train_iter(self, runner: Runner) -> None:
        if runner.iter <= self.begin_iter or runner.iter % self.interval:
            return
        ema = self._ensure(runner)
        ema.update_parameters(runner.raw_model)
        with torch.no_grad():
            for mine, theirs in zip(ema.module.buffers(), runner.raw_model.buffers(), strict=True):
                if self.update_buffers and mine.is_floating_point():
                    mine.lerp_(theirs, self._momentum(int(ema.n_averaged)))
                else:
                    mine.copy_(theirs)

    def _swap(self, runner: Runner) -> None:
        ema = self._ensure(runner)
        with torch.no_grad():
            pairs = zip(
                ema.module.state_dict().values(),
                runner.raw_model.state_dict().values(),
                strict=True,
            )
            for mine, theirs in pairs:
                tmp = mine.clone()
                mine.copy_(theirs)
                theirs.copy_(tmp)

    def before_val(self, runner: Runner) -> None:
        self._swap(runner)

    def after_val(self, runner: Runner, metrics: dict[str, float]) -> None:
        self._swap(runner)

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None:
        ema = self._ensure(runner)
        checkpoint["ema_state_dict"] = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v.clone() for k, v in ema.module.state_dict().items()}

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None:
        if "ema_state_dict" not in checkpoint:
            return  # resuming a run that had no EMA: start the average from these weights
        ema = self._ensure(runner)
        ema.module.load_state_dict(checkpoint["state_dict"])
        runner.raw_model.load_state_dict(checkpoint["ema_state_dict"])

    def state_dict(self) -> dict[str, Any]:
        return {"n_averaged": int(self.ema.n_averaged)} if self.ema is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "n_averaged" in state:
            self._n_averaged = int(state["n_averaged"])
            if self.ema is not None:
                self.ema.n_averaged.fill_(self._n_averaged)
                self._n_averaged = None


@HOOKS.register()
class ExpMomentumEMAHook(EMAHook):
    """mmdet's EMA with a momentum that starts near 1 and decays to `momentum` (gamma 2000)."""

    def __init__(
        self,
        momentum: float = 0.0002,
        gamma: float = 2000,
        interval: int = 1,
        update_buffers: bool = False,
        begin_iter: int = 0,
    ):
        super().__init__(momentum, gamma, interval, update_buffers, begin_iter)
