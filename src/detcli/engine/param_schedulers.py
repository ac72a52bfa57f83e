"""The `param_scheduler` list (mmengine's spelling): LR schedulers by epoch or iteration.

```yaml
param_scheduler:
  - {type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, end: 500}
  - {type: MultiStepLR, by_epoch: true, begin: 0, end: 12, milestones: [8, 11], gamma: 0.1}
```

Each entry is a rule giving the LR factor at a step; a rule is active for steps in
[begin, end) (epochs when `by_epoch`, else iterations), holds its last value after `end`,
and is neutral (factor 1) before `begin`. Several rules multiply, which is what mmengine's
chained updates amount to for these schedulers (CosineAnnealingLR with a non-zero `eta_min`
overlapping another rule is the one case where mmengine's recursion differs slightly).
`end` defaults to the run's max_epochs / max_iters, as in mmengine.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from detcli.registry import SCHEDULERS


@dataclass(frozen=True)
class Progress:
    """How long the run is: what a rule needs to turn an iteration into its step."""

    iters_per_epoch: int
    max_iters: int

    @property
    def max_epochs(self) -> int:
        return math.ceil(self.max_iters / self.iters_per_epoch)


@dataclass(kw_only=True)
class ParamScheduler:
    """Base of the `param_scheduler` rules: maps an iteration to a step in [begin, end).

    A dataclass, so each rule declares only its own arguments and inherits these four as
    keyword-only fields: the constructor signature (what `check` reads) still lists them all.
    """

    by_epoch: bool = True
    begin: int = 0
    end: int | None = None
    convert_to_iter_based: bool = False

    def factor(self, base_lr: float, it: int, progress: Progress) -> float:
        """The LR multiplier at global iteration `it` (0-based) for a group whose lr is base_lr."""
        ipe = progress.iters_per_epoch
        if self.by_epoch and not self.convert_to_iter_based:
            step, default_end, unit = it // ipe, progress.max_epochs, 1
        elif self.by_epoch:  # epoch settings, applied at iteration granularity
            step, default_end, unit = it, progress.max_iters, ipe
        else:
            step, default_end, unit = it, progress.max_iters, 1
        begin = self.begin * unit
        end = self.end * unit if self.end is not None else default_end
        if step < begin:
            return 1.0
        return self._factor(base_lr, min(step, end - 1) - begin, end - begin, unit)

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        """Factor at step `t` counted from `begin`; `span` = end - begin; `unit`: steps per
        configured unit (iterations per epoch under `convert_to_iter_based`, else 1)."""
        raise NotImplementedError


@SCHEDULERS.register()
@dataclass
class LinearLR(ParamScheduler):
    """LR factor going linearly from start_factor to end_factor over [begin, end)."""

    start_factor: float = 1.0 / 3
    end_factor: float = 1.0

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        total = max(span - 1, 1)
        return self.start_factor + (self.end_factor - self.start_factor) * min(t, total) / total


@SCHEDULERS.register()
@dataclass(init=False)
class ConstantLR(ParamScheduler):
    """LR x factor for the first (end - begin - 1) steps, then the base LR."""

    constant: float

    # mmengine's key `factor` would shadow the rule's `factor` method as a field, so this one
    # rule spells its constructor out.
    def __init__(
        self,
        factor: float = 1.0 / 3,
        *,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        super().__init__(
            by_epoch=by_epoch, begin=begin, end=end, convert_to_iter_based=convert_to_iter_based
        )
        self.constant = factor

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        return self.constant if t < span - 1 else 1.0


@SCHEDULERS.register()
@dataclass
class MultiStepLR(ParamScheduler):
    """LR x gamma at each milestone (steps counted from `begin`)."""

    milestones: list[int]
    gamma: float = 0.1

    def __post_init__(self) -> None:
        self.milestones = sorted(self.milestones)

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        passed = bisect.bisect_right([m * unit for m in self.milestones], t)
        return float(self.gamma**passed)


@SCHEDULERS.register()
@dataclass
class StepLR(ParamScheduler):
    """LR x gamma every `step_size` steps."""

    step_size: int
    gamma: float = 0.1

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        return float(self.gamma ** (t // (self.step_size * unit)))


@SCHEDULERS.register()
@dataclass
class ExponentialLR(ParamScheduler):
    """LR x gamma**step."""

    gamma: float

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        return float(self.gamma ** (t / unit))


@SCHEDULERS.register()
@dataclass
class CosineAnnealingLR(ParamScheduler):
    """Half a cosine from the base LR down to eta_min (or base x eta_min_ratio) over T_max steps."""

    T_max: int | None = None  # mmengine's config key, capital T included
    eta_min: float | None = None
    eta_min_ratio: float | None = None

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        t_max = self.T_max * unit if self.T_max is not None else span
        ratio = self.eta_min_ratio
        if ratio is None:
            ratio = (self.eta_min or 0.0) / base_lr if base_lr else 0.0
        return ratio + (1 - ratio) * (1 + math.cos(math.pi * t / t_max)) / 2


@SCHEDULERS.register()
@dataclass
class PolyLR(ParamScheduler):
    """LR decaying polynomially to eta_min: (1 - t / (end - begin - 1)) ** power."""

    eta_min: float = 0.0
    power: float = 1.0

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        total = max(span - 1, 1)
        floor = self.eta_min / base_lr if base_lr else 0.0
        decay = float((1 - min(t, total) / total) ** self.power)  # float ** float is Any
        return floor + (1 - floor) * decay
