"""Small built-in hooks: LR scheduler stepping, iteration timer, sampler seeding, class-number
check, CUDA cache emptying."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

import torch

from detcli.data.classes import check_class_count
from detcli.engine.hooks.base import Hook
from detcli.registry import HOOKS

if TYPE_CHECKING:
    from detcli.engine.runner import Runner


@HOOKS.register()
class ParamSchedulerHook(Hook):
    """Steps the LR schedule after every iteration (the schedule is per iteration)."""

    priority = "VERY_HIGH"

    def after_train_iter(self, runner: Runner) -> None:
        # With float16 AMP the gradient scaler skips the optimizer step of an iteration whose
        # gradients overflowed (always the first few, while it finds its scale). The schedule
        # still advances, by design (iterations, not optimizer steps, define it), so torch's
        # "lr_scheduler.step() before optimizer.step()" warning is noise here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            runner.scheduler.step()


@HOOKS.register()
class IterTimerHook(Hook):
    """Records `data_time` (waiting for the batch) and `time` (the whole iteration)."""

    priority = "LOW"

    def __init__(self) -> None:
        self._t = time.perf_counter()

    def before_train_epoch(self, runner: Runner) -> None:
        self._t = time.perf_counter()

    def before_train_iter(self, runner: Runner) -> None:
        runner.log_vars["data_time"] = time.perf_counter() - self._t

    def after_train_iter(self, runner: Runner) -> None:
        now = time.perf_counter()
        runner.log_vars["time"] = now - self._t
        self._t = now


@HOOKS.register()
class DistSamplerSeedHook(Hook):
    """Re-seeds the training sampler each epoch, so every epoch (and rank) gets its own order."""

    priority = "NORMAL"

    def before_train_epoch(self, runner: Runner) -> None:
        from detcli.data import set_epoch

        set_epoch(runner.train_loader, runner.epoch)


HOOKS.add(DistSamplerSeedHook, name="SamplerSeedHook")


@HOOKS.register()
class NumClassCheckHook(Hook):
    """Before training: the head's num_classes must equal the datasets' number of classes."""

    priority = "NORMAL"

    def before_run(self, runner: Runner) -> None:
        num_classes = getattr(runner.raw_model, "num_classes", None)
        if num_classes is None:
            return
        for split, loader in (("train", runner.train_loader), ("val", runner.val_loader)):
            classes = getattr(getattr(loader, "dataset", None), "CLASSES", None)
            check_class_count(num_classes, classes, f"data.{split}")


@HOOKS.register()
class EmptyCacheHook(Hook):
    """Releases cached CUDA memory at the chosen points (fragmentation relief on long runs)."""

    def __init__(
        self, before_epoch: bool = False, after_epoch: bool = True, after_iter: bool = False
    ):
        self.before_epoch, self.after_epoch, self.after_iter = before_epoch, after_epoch, after_iter

    def _empty(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def before_train_epoch(self, runner: Runner) -> None:
        if self.before_epoch:
            self._empty()

    def after_train_epoch(self, runner: Runner) -> None:
        if self.after_epoch:
            self._empty()

    def after_train_iter(self, runner: Runner) -> None:
        if self.after_iter:
            self._empty()
