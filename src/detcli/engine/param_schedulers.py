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


class ParamScheduler:
    """Base of the `param_scheduler` rules: maps an iteration to a step in [begin, end)."""

    def __init__(
        self,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        self.by_epoch = by_epoch
        self.begin = begin
        self.end = end
        self.convert_to_iter_based = convert_to_iter_based

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
class LinearLR(ParamScheduler):
    """LR factor going linearly from start_factor to end_factor over [begin, end)."""

    def __init__(
        self,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        super().__init__(by_epoch, begin, end, convert_to_iter_based)
        self.start_factor, self.end_factor = start_factor, end_factor

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        total = max(span - 1, 1)
        return self.start_factor + (self.end_factor - self.start_factor) * min(t, total) / total


@SCHEDULERS.register()
class ConstantLR(ParamScheduler):
    """LR x factor for the first (end - begin - 1) steps, then the base LR."""

    def __init__(
        self,
        factor: float = 1.0 / 3,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        super().__init__(by_epoch, begin, end, convert_to_iter_based)
        self.constant = factor

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        return self.constant if t < span - 1 else 1.0


@SCHEDULERS.register()
class MultiStepLR(ParamScheduler):
    """LR x gamma at each milestone (steps counted from `begin`)."""

    def __init__(
        self,
        milestones: list[int],
        gamma: float = 0.1,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        super().__init__(by_epoch, begin, end, convert_to_iter_based)
        self.milestones, self.gamma = sorted(milestones), gamma

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        passed = bisect.bisect_right([m * unit for m in self.milestones], t)
        return float(self.gamma**passed)


@SCHEDULERS.register()
class StepLR(ParamScheduler):
    """LR x gamma every `step_size` steps."""

    def __init__(
        self,
        step_size: int,
        gamma: float = 0.1,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        super().__init__(by_epoch, begin, end, convert_to_iter_based)
        self.step_size, self.gamma = step_size, gamma

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        return float(self.gamma ** (t // (self.step_size * unit)))


@SCHEDULERS.register()
class ExponentialLR(ParamScheduler):
    """LR x gamma**step."""

    def __init__(
        self,
        gamma: float,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        super().__init__(by_epoch, begin, end, convert_to_iter_based)
        self.gamma = gamma

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        return float(self.gamma ** (t / unit))


@SCHEDULERS.register()
class CosineAnnealingLR(ParamScheduler):
    """Half a cosine from the base LR down to eta_min (or base x eta_min_ratio) over T_max steps."""

    def __init__(
        self,
        T_max: int | None = None,  # mmengine's config key, capital T included
        eta_min: float | None = None,
        eta_min_ratio: float | None = None,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        super().__init__(by_epoch, begin, end, convert_to_iter_based)
        self.T_max, self.eta_min, self.eta_min_ratio = T_max, eta_min, eta_min_ratio

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        t_max = self.T_max * unit if self.T_max is not None else span
        ratio = self.eta_min_ratio
        if ratio is None:
            ratio = (self.eta_min or 0.0) / base_lr if base_lr else 0.0
        return ratio + (1 - ratio) * (1 + math.cos(math.pi * t / t_max)) / 2


@SCHEDULERS.register()
class PolyLR(ParamScheduler):
    """LR decaying polynomially to eta_min: (1 - t / (end - begin - 1)) ** power."""

    def __init__(
        self,
        eta_min: float = 0.0,
        power: float = 1.0,
        by_epoch: bool = True,
        begin: int = 0,
        end: int | None = None,
        convert_to_iter_based: bool = False,
    ):
        super().__init__(by_epoch, begin, end, convert_to_iter_based)
        self.eta_min, self.power = eta_min, power

    def _factor(self, base_lr: float, t: int, span: int, unit: int) -> float:
        total = max(span - 1, 1)
        floor = self.eta_min / base_lr if base_lr else 0.0
        return floor + (1 - floor) * (1 - min(t, total) / total) ** self.power
