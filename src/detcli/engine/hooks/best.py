"""`best.pth`: the checkpoint of the best evaluation so far, by one metric.

`best.pth` is a relative symlink to the numbered checkpoint (`epoch_N.pth` / `iter_N.pth`)
that holds the best iteration, not a second copy of it; a real file only when no numbered
checkpoint holds that iteration (the checkpoint interval skips it), and a copy where the
filesystem has no symlinks. `max_keep_ckpts` never deletes the file it points at.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detcli.engine.checkpoint import link_checkpoint
from detcli.errors import ConfigError
from detcli.suggest import did_you_mean

if TYPE_CHECKING:
    from detcli.engine.runner import Runner

BEST = "best.pth"
# mmcv's rule inference: a key containing one of these is better when greater / smaller.
GREATER_KEYS = ("acc", "top", "AR@", "auc", "precision", "mAP", "mDice", "mIoU", "mAcc", "aAcc")
LESS_KEYS = ("loss",)


def infer_rule(key: str, rule: str | None, where: str) -> str:
    """`greater` or `less` for `key`: the given rule, else guessed from the metric's name."""
    if rule is not None:
        if rule not in ("greater", "less"):
            raise ConfigError(f"{where}: rule must be 'greater' or 'less', got {rule!r}.")
        return rule
    if any(k in key for k in LESS_KEYS):
        return "less"
    if any(k in key for k in GREATER_KEYS):
        return "greater"
    raise ConfigError(
        f"{where}: cannot tell whether a larger {key!r} is better; set rule: greater or less."
    )


def resolve_key(key: str, metrics: dict[str, float], where: str) -> str:
    """`auto` is the first metric (bbox_mAP for COCO); any other key must be in `metrics`."""
    if key == "auto":
        return next(iter(metrics))
    if key.startswith("coco/") and key[5:] in metrics:
        return key[5:]  # MMDetection 3.x prefixes CocoMetric's names with `coco/`
    if key not in metrics:
        names = [k for k in metrics if "/" not in k]
        raise ConfigError(
            f"{where}: {key!r} is not an evaluation result.{did_you_mean(key, names)} "
            f"Results are: {', '.join(names)}."
        )
    return key


class BestCheckpoint:
    """Tracks the best value of one metric and writes `best.pth` whenever it improves."""

    def __init__(self, key: str, rule: str | None = None, where: str = "save_best"):
        self.key, self.rule, self.where = key, rule, where
        self.best: float | None = None
        self.best_iter: int | None = None
        self._target: Path | None = None  # the numbered file this process linked best.pth to

    def update(self, runner: Runner, metrics: dict[str, float]) -> None:
        """Compare the new metrics with the best so far; save `best.pth` when better."""
        if runner.best_checkpoint is None and (runner.work_dir / BEST).exists():
            # a resumed run: keep pruning away from the file best.pth links to
            runner.best_checkpoint = runner.work_dir / BEST
            if runner.best_checkpoint.is_symlink():  # released when the best moves on
                self._target = runner.best_checkpoint.resolve()
        key = resolve_key(self.key, metrics, self.where)
        rule = infer_rule(key, self.rule, self.where)
        value = metrics[key]
        if not math.isfinite(value):
            return
        better = (
            self.best is None
            or (rule == "greater" and value > self.best)
            or (rule == "less" and value < self.best)
        )
        if not better:
            return
        self.best, self.best_iter = value, runner.iter
        if not runner.dist.is_main:
            return
        held = runner.last_checkpoint if runner.saved_iter == runner.iter else None
        due = _numbered_checkpoint_due(runner) if held is None else None
        if held is None and due is None:
            path = runner.save_checkpoint(BEST, latest=False)  # nothing else holds this state
            runner.best_checkpoint = path
            self._release(runner, None)
        else:
            # Evaluation runs before CheckpointHook at the same iteration: write the numbered
            # file now (that hook rewrites the same name), so best.pth links to a real file.
            target = held or runner.save_checkpoint(due)  # type: ignore[arg-type]
            assert target is not None
            path = link_checkpoint(runner.work_dir, BEST, target)
            runner.best_checkpoint = path  # resolves to the file prune_checkpoints must keep
            self._release(runner, target)
        runner.log.info(f"best {key} so far: {value:.4f} (iteration {runner.iter}) -> {path}")

    def _release(self, runner: Runner, target: Path | None) -> None:
        """Delete the previous best's file once nothing needs it: max_keep_ckpts pruning
        skipped it only because best.pth pointed at it (it left `own_checkpoints` then)."""
        old, self._target = self._target, target
        if old is None or old.name in runner.own_checkpoints:
            return
        if target is not None and old.resolve() == target.resolve():
            return
        latest = runner.last_checkpoint
        if latest is not None and latest.resolve() == old.resolve():
            return
        old.unlink(missing_ok=True)

    def state_dict(self) -> dict[str, Any]:
        """The best value and where it was reached."""
        return {} if self.best is None else {"best": self.best, "best_iter": self.best_iter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value after a resume."""
        self.best, self.best_iter = state.get("best"), state.get("best_iter")


def _numbered_checkpoint_due(runner: Runner) -> str | None:
    """The numbered checkpoint CheckpointHook will write at this iteration, after evaluation."""
    from detcli.engine.hooks.checkpoint import CheckpointHook  # it imports this module

    last = runner.iter >= runner.max_iters
    for hook in runner.hooks:
        if not isinstance(hook, CheckpointHook):
            continue
        by_epoch = runner.by_epoch if hook.by_epoch is None else hook.by_epoch
        if by_epoch:
            # epoch checkpoints are written in after_train_epoch, i.e. with no partial epoch
            n, at_boundary = runner.epoch, runner.inner_iter == 0
        else:
            n, at_boundary = runner.iter, True
        due = (hook.interval > 0 and n % hook.interval == 0) or (last and hook.save_last)
        if at_boundary and due:
            return f"{'epoch' if by_epoch else 'iter'}_{n}.pth"
    return None
