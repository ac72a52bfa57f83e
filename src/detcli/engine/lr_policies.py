"""`lr_config` (mmdet 2.x / mmcv's LrUpdaterHook): a policy plus an optional warm-up.

```yaml
lr_config: {policy: step, warmup: linear, warmup_iters: 500, warmup_ratio: 0.001, step: [8, 11]}
```

The formulas are mmcv's, so a ported config keeps its LR curve to the last digit:
the policy gives the regular LR from the epoch (`by_epoch`, the default) or the iteration;
during the first `warmup_iters` iterations the warm-up scales that regular LR:
linear `1 - (1 - ratio) * (1 - it / warmup_iters)`, constant `ratio`,
exp `ratio ** (1 - it / warmup_iters)`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

from detcli.engine.param_schedulers import Progress
from detcli.errors import ConfigError
from detcli.suggest import did_you_mean


class _Policy:
    def __init__(self, by_epoch: bool = True):
        self.by_epoch = by_epoch

    def factor(self, base_lr: float, it: int, progress: Progress) -> float:
        """LR multiplier at global iteration `it`."""
        if base_lr == 0:
            return 1.0  # a group frozen by lr 0 stays at 0 whatever the policy
        if self.by_epoch:
            return self._lr(base_lr, it // progress.iters_per_epoch, progress.max_epochs) / base_lr
        return self._lr(base_lr, it, progress.max_iters) / base_lr

    def _lr(self, base_lr: float, progress: int, max_progress: int) -> float:
        raise NotImplementedError


class StepPolicy(_Policy):
    """x gamma at each epoch (or iteration) in `step`, or every `step` when it is one number."""

    def __init__(
        self,
        step: int | list[int],
        gamma: float = 0.1,
        min_lr: float | None = None,
        by_epoch: bool = True,
    ):
        super().__init__(by_epoch)
        self.step, self.gamma, self.min_lr = step, gamma, min_lr

    def _lr(self, base_lr: float, progress: int, max_progress: int) -> float:
        if isinstance(self.step, int):
            exp = progress // self.step
        else:
            exp = next((i for i, s in enumerate(self.step) if progress < s), len(self.step))
        lr = base_lr * self.gamma**exp
        return max(lr, self.min_lr) if self.min_lr is not None else lr


class FixedPolicy(_Policy):
    """The base LR throughout."""

    def _lr(self, base_lr: float, progress: int, max_progress: int) -> float:
        return base_lr


class ExpPolicy(_Policy):
    """base x gamma ** progress."""

    def __init__(self, gamma: float, by_epoch: bool = True):
        super().__init__(by_epoch)
        self.gamma = gamma

    def _lr(self, base_lr: float, progress: int, max_progress: int) -> float:
        return float(base_lr * self.gamma**progress)


class InvPolicy(_Policy):
    """base x (1 + gamma x progress) ** -power."""

    def __init__(self, gamma: float, power: float = 1.0, by_epoch: bool = True):
        super().__init__(by_epoch)
        self.gamma, self.power = gamma, power

    def _lr(self, base_lr: float, progress: int, max_progress: int) -> float:
        return float(base_lr * (1 + self.gamma * progress) ** (-self.power))


class PolyPolicy(_Policy):
    """(base - min_lr) x (1 - progress / max_progress) ** power + min_lr."""

    def __init__(self, power: float = 1.0, min_lr: float = 0.0, by_epoch: bool = True):
        super().__init__(by_epoch)
        self.power, self.min_lr = power, min_lr

    def _lr(self, base_lr: float, progress: int, max_progress: int) -> float:
        coeff = float((1 - progress / max_progress) ** self.power)  # float ** float is Any
        return (base_lr - self.min_lr) * coeff + self.min_lr


class CosineAnnealingPolicy(_Policy):
    """Half a cosine from the base LR to min_lr (or base x min_lr_ratio) over the run."""

    def __init__(
        self, min_lr: float | None = None, min_lr_ratio: float | None = None, by_epoch: bool = True
    ):
        super().__init__(by_epoch)
        if (min_lr is None) == (min_lr_ratio is None):
            raise ConfigError(
                "lr_config with policy CosineAnnealing needs exactly one of min_lr and "
                "min_lr_ratio (e.g. min_lr_ratio: 0.001)."
            )
        self.min_lr, self.min_lr_ratio = min_lr, min_lr_ratio

    def _lr(self, base_lr: float, progress: int, max_progress: int) -> float:
        target = base_lr * self.min_lr_ratio if self.min_lr_ratio is not None else self.min_lr
        assert target is not None
        return target + (base_lr - target) * (math.cos(math.pi * progress / max_progress) + 1) / 2


class Warmup:
    """Scales the regular LR during the first `iters` iterations (mmcv's get_warmup_lr)."""

    def __init__(self, kind: Literal["linear", "constant", "exp"], iters: int, ratio: float):
        self.kind, self.iters, self.ratio = kind, iters, ratio

    def factor(self, base_lr: float, it: int, progress: Progress) -> float:
        """Multiplier on the regular LR at iteration `it` (1 once warm-up is over)."""
        if it >= self.iters:
            return 1.0
        if self.kind == "linear":
            return 1 - (1 - self.ratio) * (1 - it / self.iters)
        if self.kind == "constant":
            return self.ratio
        return float(self.ratio ** (1 - it / self.iters))


POLICIES: dict[str, Callable[..., _Policy]] = {
    "step": StepPolicy,
    "fixed": FixedPolicy,
    "exp": ExpPolicy,
    "inv": InvPolicy,
    "poly": PolyPolicy,
    "cosineannealing": CosineAnnealingPolicy,
    "cosine": CosineAnnealingPolicy,
}
# What users write (mmcv title-cases lower-case names: step -> Step): for messages and `check`.
POLICY_NAMES = ("step", "fixed", "exp", "inv", "poly", "CosineAnnealing", "cosine")
WARMUP_KEYS = ("warmup", "warmup_iters", "warmup_ratio", "warmup_by_epoch")


def policy_keys(name: str) -> tuple[str, ...] | None:
    """The `lr_config` keys policy `name` takes (its own, then warm-up's); None: unknown policy.

    Torch-free, so `detcli check` reads the same table the engine validates with.
    """
    policy_cls = POLICIES.get(str(name).lower())
    if policy_cls is None:
        return None
    return (*inspect.signature(policy_cls).parameters, *WARMUP_KEYS)


def policy_key_message(name: str, key: str) -> str:
    """Why `lr_config.<key>` is refused under policy `name`, and what that policy takes."""
    accepted = policy_keys(name) or ()
    return (
        f"lr_config has no key {key!r} for policy {name!r}.{did_you_mean(key, accepted)} "
        f"It accepts: {', '.join(accepted)}. A key a base config set for another policy "
        "stays when you merge: write `_delete_: true` in your lr_config to replace the base's "
        "instead of merging into it."
    )


def lr_config_rules(lr_config: Mapping[str, Any], iters_per_epoch: int) -> list[Any]:
    """The rules (policy, then warm-up if any) an `lr_config` mapping describes."""
    args = dict(lr_config)
    name = str(args.pop("policy", ""))
    policy_cls = POLICIES.get(name.lower())
    if policy_cls is None:
        raise ConfigError(
            f"lr_config.policy: unknown policy {name!r}.{did_you_mean(name, POLICY_NAMES)} "
            f"Known: {', '.join(POLICY_NAMES)}."
        )
    warmup_args = {k: args.pop(k) for k in WARMUP_KEYS if k in args}
    accepted = policy_keys(name) or ()
    for key in args:
        if key not in accepted:
            raise ConfigError(policy_key_message(name, key))
    try:
        rules: list[Any] = [policy_cls(**args)]
    except TypeError as exc:
        raise ConfigError(f"lr_config (policy {name!r}): {exc}.") from None
    kind = warmup_args.get("warmup")
    if kind is not None:
        if kind not in ("linear", "constant", "exp"):
            raise ConfigError(
                f"lr_config.warmup must be linear, constant, exp or null, got {kind!r}."
            )
        iters = int(warmup_args.get("warmup_iters", 0))
        if warmup_args.get("warmup_by_epoch", False):
            iters *= iters_per_epoch
        if iters <= 0:
            raise ConfigError("lr_config.warmup_iters must be a positive number with a warmup.")
        rules.append(Warmup(kind, iters, float(warmup_args.get("warmup_ratio", 0.1))))
    return rules
