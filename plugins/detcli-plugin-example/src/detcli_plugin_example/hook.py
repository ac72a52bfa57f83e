"""UpdateRatioHook: how much one optimizer step changes each part of the model.

The ratio ||w_after - w_before|| / ||w_before|| of one step, per part (backbone, neck,
rpn_head, roi_head, ...), is the quickest read on the learning rate: around 1e-3 is healthy,
1e-1 means the part is being thrown around, 1e-6 means it barely learns (or is frozen by
mistake). The gradient norm alone cannot say this: it ignores the lr and the optimizer's
momentum and weight decay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from detcli.engine.hooks.base import Hook
from detcli.errors import ConfigError

if TYPE_CHECKING:
    from detcli.engine.runner import Runner


class UpdateRatioHook(Hook):
    """Every `interval` iterations, log each part's update/weight norm ratio of that step.

    Parts are parameter names cut to `depth` dotted levels (1: backbone, neck, ...; 2:
    roi_head.bbox_head, ...); frozen parameters are left out. Each measurement is one
    `log.jsonl` line `{"mode": "update_ratio", "epoch", "iter", "<part>": ratio, ...}` and
    one console line; a part whose ratio exceeds `warn_above` also gets a warning line.
    """

    priority = "LOW"  # after the optimizer-related hooks, before the loggers (VERY_LOW)

    def __init__(self, interval: int = 50, depth: int = 1, warn_above: float | None = None):
        if interval < 1 or depth < 1:
            raise ConfigError(
                f"UpdateRatioHook: interval and depth must be at least 1; got interval="
                f"{interval}, depth={depth} (custom_hooks)."
            )
        self.interval = interval
        self.depth = depth
        self.warn_above = warn_above
        self._parts: list[str] = []
        self._params: list[torch.Tensor] = []
        self._part_of: torch.Tensor = torch.zeros(0, dtype=torch.long)
        self._before: list[torch.Tensor] | None = None

    def before_run(self, runner: Runner) -> None:
        parts: dict[str, int] = {}
        index = []
        self._params = []
        for name, p in runner.raw_model.named_parameters():
            if p.requires_grad:
                part = ".".join(name.split(".")[: self.depth])
                index.append(parts.setdefault(part, len(parts)))
                self._params.append(p)
        self._parts = list(parts)
        self._part_of = torch.tensor(index, dtype=torch.long)
        self._announce(runner)

    def _announce(self, runner: Runner) -> None:
        """Say when the first measurement comes: a silent hook looks like a broken one."""
        first = (runner.iter // self.interval + 1) * self.interval
        if first > runner.max_iters:
            runner.log.warning(
                f"UpdateRatioHook: interval {self.interval} is longer than this run "
                f"({runner.max_iters} iterations), so it measures nothing; set its interval "
                f"(custom_hooks) to at most {runner.max_iters}."
            )
            return
        count = runner.max_iters // self.interval - runner.iter // self.interval
        runner.log.info(
            f"UpdateRatioHook: update ratios every {self.interval} iterations, first at "
            f"iteration {first} ({count} in this run)"
        )

    def before_train_iter(self, runner: Runner) -> None:
        if self._params and (runner.iter + 1) % self.interval == 0:
            self._before = [p.detach().clone() for p in self._params]

    def after_train_iter(self, runner: Runner) -> None:
        if self._before is None:
            return
        now = [p.detach() for p in self._params]
        # foreach kernels: one launch per step for all tensors, not one per parameter
        steps = torch._foreach_sub(now, self._before)
        step_sq = torch.stack(torch._foreach_norm(steps)).float().cpu() ** 2
        weight_sq = torch.stack(torch._foreach_norm(self._before)).float().cpu() ** 2
        self._before = None
        n = len(self._parts)
        step = torch.zeros(n).index_add_(0, self._part_of, step_sq).sqrt()
        weight = torch.zeros(n).index_add_(0, self._part_of, weight_sq).sqrt()
        ratios = dict(zip(self._parts, (step / weight.clamp(min=1e-12)).tolist(), strict=True))
        epoch = runner.epoch + (0 if runner.inner_iter == 0 else 1)
        runner.log.record({"mode": "update_ratio", "epoch": epoch, "iter": runner.iter, **ratios})
        text = ", ".join(f"{part}: {r:.2e}" for part, r in ratios.items())
        runner.log.info(f"update ratio (iter {runner.iter})  {text}")
        if self.warn_above is not None:
            high = {k: v for k, v in ratios.items() if v > self.warn_above}
            if high:
                runner.log.warning(
                    f"one optimizer step changed {', '.join(high)} by more than "
                    f"{self.warn_above:g} of their weights at iteration {runner.iter}; the "
                    "learning rate may be too high for them (paramwise_cfg lr_mult lowers it)."
                )
