"""CheckpointHook: `epoch_N.pth` / `iter_N.pth` every `interval`, the last K kept, `latest.pth`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from detcli.engine.hooks.base import Hook
from detcli.engine.hooks.best import BestCheckpoint
from detcli.registry import HOOKS

if TYPE_CHECKING:
    from detcli.engine.runner import Runner


@HOOKS.register()
class CheckpointHook(Hook):
    """Save every `interval` epochs (or iterations when not `by_epoch`) and at the end.

    `max_keep_ckpts` > 0 deletes this run's older numbered checkpoints (epoch_N and iter_N;
    never another run's files); `save_best` (a metric name or
    `auto`) also keeps `best.pth` for the best evaluation so far (mmengine's spelling; the
    mmdet one is `evaluation.save_best`).
    """

    priority = "NORMAL"

    def __init__(
        self,
        interval: int = 1,
        by_epoch: bool | None = None,
        max_keep_ckpts: int = -1,
        save_last: bool = True,
        save_best: str | None = None,
        rule: str | None = None,
    ):
        self.interval = interval
        self.by_epoch = by_epoch
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.best = BestCheckpoint(save_best, rule) if save_best else None

    def before_run(self, runner: Runner) -> None:
        if self.by_epoch is None:
            self.by_epoch = runner.by_epoch

    def after_train_epoch(self, runner: Runner) -> None:
        if not self.by_epoch:
            return
        last = runner.iter >= runner.max_iters
        if (self.interval > 0 and runner.epoch % self.interval == 0) or (last and self.save_last):
            self._save(runner, "epoch", runner.epoch)

    def after_train_iter(self, runner: Runner) -> None:
        if self.by_epoch:
            return
        last = runner.iter >= runner.max_iters
        if (self.interval > 0 and runner.iter % self.interval == 0) or (last and self.save_last):
            self._save(runner, "iter", runner.iter)

    def after_val(self, runner: Runner, metrics: dict[str, float]) -> None:
        if self.best is not None:
            self.best.update(runner, metrics)

    def _save(self, runner: Runner, kind: str, number: int) -> None:
        # Written even when best.pth's hook wrote this file during the evaluation: hooks that
        # swap weights for evaluation (EMA) have only now put the training state back.
        runner.save_checkpoint(f"{kind}_{number}.pth")
        runner.prune_checkpoints(self.max_keep_ckpts)

    def state_dict(self) -> dict[str, float]:
        return self.best.state_dict() if self.best is not None else {}

    def load_state_dict(self, state: dict[str, float]) -> None:
        if self.best is not None:
            self.best.load_state_dict(state)
