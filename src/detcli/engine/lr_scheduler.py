"""The LR schedule as a `torch.optim.lr_scheduler.LRScheduler`, stepped once per iteration.

Every schedule (an `lr_config` policy with warm-up, or a `param_scheduler` list) is a list of
rules; the LR of a group at iteration `it` is its base LR times the product of the rules'
factors. Closed forms per iteration make resume exact: the scheduler's state is one counter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch

from detcli.config.settings import ScheduleSettings
from detcli.engine.lr_policies import lr_config_rules
from detcli.engine.param_schedulers import ParamScheduler, Progress
from detcli.errors import ConfigError
from detcli.registry import SCHEDULERS


class LRRule(Protocol):
    def factor(self, base_lr: float, it: int, progress: Progress) -> float: ...


class RuleScheduler(torch.optim.lr_scheduler.LRScheduler):
    """LR = base LR x the product of the rules' factors at the current iteration."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        rules: Sequence[LRRule],
        progress: Progress,
        last_epoch: int = -1,
    ):
        self.rules = list(rules)
        self.progress = progress
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | torch.Tensor]:
        """LR of each group at iteration `self.last_epoch` (torch's name for the step count)."""
        return [self.lr_at(float(base), self.last_epoch) for base in self.base_lrs]

    def lr_at(self, base_lr: float, it: int) -> float:
        """The LR a group with `base_lr` gets at iteration `it`."""
        return base_lr * math.prod(rule.factor(base_lr, it, self.progress) for rule in self.rules)

    def apply(self) -> None:
        """Write the current iteration's LRs into the optimizer (after loading a state)."""
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs

    def state_dict(self) -> dict[str, Any]:
        """Counters only: the rules are rebuilt from the config."""
        return {
            k: v for k, v in self.__dict__.items() if k not in ("optimizer", "rules", "progress")
        }


def build_lr_scheduler(
    schedule: ScheduleSettings, optimizer: torch.optim.Optimizer, progress: Progress
) -> RuleScheduler:
    """The schedule from `param_scheduler` or `lr_config` (a constant LR when neither is set)."""
    rules: list[Any]
    if schedule.param_scheduler:
        rules = [_build_param_scheduler(e, i) for i, e in enumerate(schedule.param_scheduler)]
    elif schedule.lr_config:
        rules = lr_config_rules(schedule.lr_config, progress.iters_per_epoch)
    else:
        rules = []
    return RuleScheduler(optimizer, rules, progress)


def _build_param_scheduler(entry: Mapping[str, Any], index: int) -> ParamScheduler:
    if not isinstance(entry, Mapping) or "type" not in entry:
        raise ConfigError(f"param_scheduler.{index} must be a mapping with `type`, got {entry!r}.")
    args = {k: v for k, v in entry.items() if k != "param_name"}
    rule = SCHEDULERS.build(args)
    if not hasattr(rule, "factor"):
        raise ConfigError(
            f"param_scheduler.{index}: {entry['type']} is not an LR rule (it has no "
            "`factor(base_lr, it, progress)` method)."
        )
    return rule  # type: ignore[no-any-return]
