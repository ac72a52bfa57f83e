"""Logger hooks: every `interval` iterations, the window's mean losses, lr, times, ETA, memory.

TextLoggerHook writes the console (a rich progress bar on a terminal, plain lines otherwise),
`train.log` and `log.jsonl`; TensorboardLoggerHook writes event files for TensorBoard.
By default both average over the iterations since their last line; `window_size`
(mmengine's `log_processor.window_size`) averages losses, times and grad_norm over the last
N iterations, the epoch so far (`'epoch'`) or the whole run (`'global'`) instead, and shows
the latest value of anything else. Values are averaged across ranks when distributed.
"""

from __future__ import annotations

import datetime
import re
import resource
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch

from detcli.engine.dist import mean_across_ranks
from detcli.engine.hooks.base import Hook
from detcli.errors import ConfigError
from detcli.registry import HOOKS

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from torch.utils.tensorboard import SummaryWriter

    from detcli.engine.runner import Runner

# Printed first, in this order; losses and anything else follow.
_LEAD = ("lr", "eta", "time", "data_time", "memory")
# mmengine's LogProcessor.mean_pattern: these are smoothed over the window, the rest is current.
_MEAN_PATTERN = re.compile(r".*(loss|time|data_time|grad_norm).*")

WindowSize = int | Literal["epoch", "global"] | None


class LogWindow:
    """Per-key history of the logged numbers, summarised as `window_size` says.

    None: the mean of every key since the last `summary` (mmdet 2.x's interval mean). An int
    keeps the last N values per key (a deque); `'epoch'` and `'global'` keep running sums.
    Each key is averaged over the iterations that reported it (grad_norm only exists on the
    iterations that step under gradient accumulation).
    """

    def __init__(self, window_size: WindowSize = None):
        positive_int = (
            isinstance(window_size, int) and not isinstance(window_size, bool) and window_size > 0
        )
        if not (window_size is None or window_size in ("epoch", "global") or positive_int):
            raise ConfigError(
                "log_processor.window_size must be a positive integer (the number of "
                f"iterations each logged value averages), 'epoch' or 'global', got {window_size!r}."
            )
        self.window_size = window_size
        self._recent: dict[str, deque[float]] = {}
        self._sums: dict[str, list[float]] = {}  # key -> [sum, count]
        self._latest: dict[str, float] = {}

    def add(self, values: Mapping[str, float]) -> None:
        """Record one iteration's numbers."""
        for key, value in values.items():
            self._latest[key] = value
            if isinstance(self.window_size, int):
                self._recent.setdefault(key, deque(maxlen=self.window_size)).append(value)
            else:
                total = self._sums.setdefault(key, [0.0, 0])
                total[0] += value
                total[1] += 1

    def summary(self) -> dict[str, float]:
        """The values of a log line; with the default window, starts the next interval."""
        out: dict[str, float] = {}
        for key, latest in self._latest.items():
            if self.window_size is not None and not _MEAN_PATTERN.search(key):
                out[key] = latest
            elif isinstance(self.window_size, int):
                recent = self._recent[key]
                out[key] = sum(recent) / len(recent)
            else:
                total, count = self._sums[key]
                out[key] = total / count
        if self.window_size is None:
            self.reset()
        return out

    def new_epoch(self) -> None:
        """An epoch starts: the `'epoch'` window starts over."""
        if self.window_size == "epoch":
            self.reset()

    def reset(self) -> None:
        """Forget everything recorded."""
        self._recent, self._sums, self._latest = {}, {}, {}


@dataclass(eq=False)
class LoggerHook(Hook):
    """Base: records each numeric log var per iteration, summarises at every `interval`-th one.

    `window_size` (None, N, 'epoch' or 'global') says what a line's values average; see
    LogWindow. A dataclass, so a subclass declares only the arguments it adds.
    """

    priority = "VERY_LOW"

    interval: int = 10
    ignore_last: bool = False
    by_epoch: bool | None = None
    window_size: WindowSize = None

    def __post_init__(self) -> None:
        self.window = LogWindow(self.window_size)

    def before_run(self, runner: Runner) -> None:
        if self.by_epoch is None:
            self.by_epoch = runner.by_epoch

    def before_train_epoch(self, runner: Runner) -> None:
        self.window.new_epoch()

    def after_train_iter(self, runner: Runner) -> None:
        self.window.add(runner.log_vars)
        end_of_epoch = runner.inner_iter == runner.iters_per_epoch
        due = runner.iter % self.interval == 0
        last = runner.iter == runner.max_iters or (end_of_epoch and self.by_epoch)
        if due or (last and not self.ignore_last):
            means = mean_across_ranks(self.window.summary())
            means["lr"] = runner.log_vars.get("lr", means.get("lr", 0.0))  # the current lr
            self.write(runner, means)

    def write(self, runner: Runner, means: dict[str, float]) -> None:
        """Output the window's averages."""
        raise NotImplementedError


@HOOKS.register()
@dataclass(eq=False)
class TextLoggerHook(LoggerHook):
    """Console lines (and a progress bar on a terminal), `train.log` and `log.jsonl`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
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
        if self._progress is not None and self._task is not None:
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
@dataclass(eq=False)
class TensorboardLoggerHook(LoggerHook):
    """TensorBoard event files (`<work_dir>/tf_logs` unless `log_dir` says otherwise)."""

    log_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._writer: SummaryWriter | None = None

    @property
    def writer(self) -> SummaryWriter | None:
        """The run's SummaryWriter (None off rank 0 or outside a run), for other hooks' images."""
        return self._writer

    def before_run(self, runner: Runner) -> None:
        super().before_run(runner)
        if runner.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self.log_dir or str(runner.work_dir / "tf_logs"))

    def write(self, runner: Runner, means: dict[str, float]) -> None:
        self._scalars("train", means, runner.iter)

    def after_val(self, runner: Runner, metrics: dict[str, float]) -> None:
        self._scalars("val", metrics, runner.iter)

    def _scalars(self, group: str, values: Mapping[str, float], step: int) -> None:
        if self._writer is None:
            return
        for key, value in values.items():
            self._writer.add_scalar(f"{group}/{key}", value, step)
        self._writer.flush()

    def after_run(self, runner: Runner) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _memory_mb() -> int:
    """Peak memory in MB: CUDA allocations on a GPU, the process's resident set on a CPU."""
    # torch.cuda.is_initialized carries no annotations.
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        return int(torch.cuda.max_memory_allocated() / 2**20)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak / 2**20 if sys.platform == "darwin" else peak / 2**10)  # bytes vs KiB
