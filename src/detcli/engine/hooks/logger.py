"""Logger hooks: every `interval` iterations, the window's mean losses, lr, times, ETA, memory.

TextLoggerHook writes the console (a rich progress bar on a terminal, plain lines otherwise),
`train.log` and `log.jsonl`; TensorboardLoggerHook writes event files for TensorBoard.
Both average over the iterations since their last line (and across ranks when distributed).
"""

from __future__ import annotations

import datetime
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

import torch

from detcli.engine.dist import mean_across_ranks
from detcli.engine.hooks.base import Hook
from detcli.registry import HOOKS

if TYPE_CHECKING:
    from rich.progress import Progress

    from detcli.engine.runner import Runner

# Printed first, in this order; losses and anything else follow.
_LEAD = ("lr", "eta", "time", "data_time", "memory")


class LoggerHook(Hook):
    """Base: sums each numeric log var per iteration, averages at every `interval`-th one."""

    priority = "VERY_LOW"

    def __init__(self, interval: int = 10, ignore_last: bool = False, by_epoch: bool | None = None):
        self.interval = interval
        self.ignore_last = ignore_last
        self.by_epoch = by_epoch
        self._sums: dict[str, float] = {}
        self._count = 0

    def before_run(self, runner: Runner) -> None:
        if self.by_epoch is None:
            self.by_epoch = runner.by_epoch

    def after_train_iter(self, runner: Runner) -> None:
        for key, value in runner.log_vars.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        self._count += 1
        end_of_epoch = runner.inner_iter == runner.iters_per_epoch
        due = runner.iter % self.interval == 0
        last = runner.iter == runner.max_iters or (end_of_epoch and self.by_epoch)
        if due or (last and not self.ignore_last):
            means = {k: v / self._count for k, v in self._sums.items()}
            means = mean_across_ranks(means)
            means["lr"] = runner.log_vars.get("lr", means.get("lr", 0.0))  # the current lr
            self._sums, self._count = {}, 0
            self.write(runner, means)

    def write(self, runner: Runner, means: dict[str, float]) -> None:
        """Output the window's averages."""
        raise NotImplementedError


@HOOKS.register()
class TextLoggerHook(LoggerHook):
    """Console lines (and a progress bar on a terminal), `train.log` and `log.jsonl`."""

    def __init__(self, interval: int = 10, ignore_last: bool = False, by_epoch: bool | None = None):
        super().__init__(interval, ignore_last, by_epoch)
        self._progress: Progress | None = None
        self._task: Any = None
        self._t0 = time.monotonic()

    def before_run(self, runner: Runner) -> None:
        super().before_run(runner)
        self._t0 = time.monotonic()
        if runner.log.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=runner.log.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=runner.max_iters, completed=runner.iter
            )

    def after_train_iter(self, runner: Runner) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=runner.iter, total=runner.max_iters,
                description=self._where(runner),
            )  # fmt: skip
        super().after_train_iter(runner)

    def write(self, runner: Runner, means: dict[str, float]) -> None:
        done = runner.iter - runner.start_iter
        per_iter = (time.monotonic() - self._t0) / max(done, 1)
        eta = int(per_iter * (runner.max_iters - runner.iter))
        memory = _memory_mb()
        record: dict[str, Any] = {
            "mode": "train",
            "epoch": runner.epoch + (0 if runner.inner_iter == 0 else 1),
            "iter": runner.iter,
            "lr": means.pop("lr"),
            "eta": str(datetime.timedelta(seconds=eta)),
            **{k: means.pop(k) for k in ("time", "data_time") if k in means},
            "memory": memory,
            **means,
        }
        runner.log.record(record)
        parts = [f"lr: {record['lr']:.3e}", f"eta: {record['eta']}"]
        parts += [f"{k}: {record[k]:.3f}" for k in ("time", "data_time") if k in record]
        parts.append(f"memory: {memory}")
        parts += [f"{k}: {v:.4f}" for k, v in means.items()]
        runner.log.info(f"{self._where(runner)}  " + ", ".join(parts))

    def after_run(self, runner: Runner) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _where(self, runner: Runner) -> str:
        if self.by_epoch:
            epoch = runner.epoch if runner.inner_iter == 0 else runner.epoch + 1
            inner = runner.inner_iter or runner.iters_per_epoch
            return f"Epoch [{epoch}/{runner.max_epochs}][{inner}/{runner.iters_per_epoch}]"
        return f"Iter [{runner.iter}/{runner.max_iters}]"


@HOOKS.register()
class TensorboardLoggerHook(LoggerHook):
    """TensorBoard event files (`<work_dir>/tf_logs` unless `log_dir` says otherwise)."""

    def __init__(
        self,
        interval: int = 10,
        ignore_last: bool = False,
        by_epoch: bool | None = None,
        log_dir: str | None = None,
    ):
        super().__init__(interval, ignore_last, by_epoch)
        self.log_dir = log_dir
        self._writer: Any = None

    def before_run(self, runner: Runner) -> None:
        super().before_run(runner)
        if runner.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self.log_dir or str(runner.work_dir / "tf_logs"))

    def write(self, runner: Runner, means: dict[str, float]) -> None:
        if self._writer is None:
            return
        for key, value in means.items():
            self._writer.add_scalar(f"train/{key}", value, runner.iter)
        self._writer.flush()

    def after_val(self, runner: Runner, metrics: dict[str, float]) -> None:
        if self._writer is None:
            return
        for key, value in metrics.items():
            self._writer.add_scalar(f"val/{key}", value, runner.iter)
        self._writer.flush()

    def after_run(self, runner: Runner) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _memory_mb() -> int:
    """Peak memory in MB: CUDA allocations on a GPU, the process's resident set on a CPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.max_memory_allocated() / 2**20)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak / 2**20 if sys.platform == "darwin" else peak / 2**10)  # bytes vs KiB
