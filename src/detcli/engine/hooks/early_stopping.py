"""EarlyStoppingHook: stop when a metric has not improved for `patience` evaluations."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from detcli.engine.hooks.base import Hook
from detcli.engine.hooks.best import infer_rule, resolve_key
from detcli.registry import HOOKS

if TYPE_CHECKING:
    from detcli.engine.runner import Runner


@HOOKS.register()
class EarlyStoppingHook(Hook):
    """Ends the run (after the current epoch) once `monitor` stalls or reaches a threshold.

    An improvement must beat the best value by more than `min_delta`; `rule` (greater/less)
    is guessed from the name when not given (mAP, AR: greater; loss: less).
    """

    priority = "LOW"

    def __init__(
        self,
        monitor: str = "bbox_mAP",
        rule: str | None = None,
        min_delta: float = 0.0,
        patience: int = 5,
        stopping_threshold: float | None = None,
    ):
        self.monitor, self.rule, self.min_delta = monitor, rule, min_delta
        self.patience, self.stopping_threshold = patience, stopping_threshold
        self.best: float | None = None
        self.wait = 0

    def after_val(self, runner: Runner, metrics: dict[str, float]) -> None:
        key = resolve_key(self.monitor, metrics, "EarlyStoppingHook.monitor")
        rule = infer_rule(key, self.rule, "EarlyStoppingHook.rule")
        value = metrics[key]
        sign = 1.0 if rule == "greater" else -1.0
        if math.isfinite(value) and (
            self.best is None or sign * (value - self.best) > self.min_delta
        ):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.stopping_threshold is not None and sign * (value - self.stopping_threshold) >= 0:
            runner.request_stop(f"early stopping: {key} reached {self.stopping_threshold}")
        elif self.wait >= self.patience:
            runner.request_stop(
                f"early stopping: {key} has not improved for {self.wait} evaluations "
                f"(best {self.best})"
            )
        if runner.stop_reason:
            runner.log.info(runner.stop_reason)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state.get("best"), int(state.get("wait", 0))
