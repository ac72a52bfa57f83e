"""The training loop: epochs (or passes) of iterations, hooks at fixed points, checkpoints, resume.

Counters count finished work: in `after_train_iter`, `runner.iter` includes the iteration
that just ended; in `after_train_epoch`, `runner.epoch` includes the epoch that just ended
and `inner_iter` is back to 0. So a checkpoint written from any hook describes a state the
loop can continue from exactly, and `every_n_iters(n)` is `runner.iter % n == 0`.

An epoch-based run is an iteration-based run whose length is max_epochs x len(loader); both
walk the loader epoch by epoch, re-seeding its sampler each time, so resume works the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from detcli import __version__
from detcli.config import ConfigDict
from detcli.engine.batches import dataset_of, parse_losses, skip_batches, to_device
from detcli.engine.checkpoint import (
    is_numbered,
    link_latest,
    load_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unwrap,
    weights_of,
)
from detcli.engine.dist import DistInfo, any_across_ranks, broadcast_buffers
from detcli.engine.hooks.base import Hook, HookEvent, priority_value
from detcli.engine.lr_scheduler import RuleScheduler
from detcli.engine.optim_wrapper import OptimWrapper
from detcli.engine.run_log import RunLog
from detcli.errors import CheckpointError, TrainingError
from detcli.structures import Batch, Detections, LossDict, Sample


class TrainingInterrupted(TrainingError):
    """Ctrl-C or SIGTERM: a checkpoint was written; the message says how to resume."""

    exit_code = 130

    def __init__(self, message: str, checkpoint: Path | None):
        super().__init__(message)
        self.checkpoint = checkpoint


class NonFiniteLoss(TrainingError):
    """A loss became NaN or infinite; the step was not taken."""


class Runner:
    """Runs `max_iters` iterations over `train_loader`, calling hooks, until done or stopped."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optim_wrapper: OptimWrapper,
        scheduler: RuleScheduler,
        train_loader: DataLoader[Sample],
        work_dir: Path,
        cfg: ConfigDict,
        device: torch.device,
        log: RunLog,
        dist_info: DistInfo,
        by_epoch: bool,
        max_iters: int,
        max_time: float | None = None,
        val_loader: DataLoader[Any] | None = None,
        seed: int | None = None,
    ):
        self.model = model  # what trains: DDP-wrapped when distributed
        self.optim_wrapper = optim_wrapper
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.work_dir = work_dir
        self.cfg = cfg
        self.device = device
        self.log = log
        self.dist = dist_info
        self.by_epoch = by_epoch
        self.iters_per_epoch = len(train_loader)
        self.max_iters = max_iters
        self.max_time = max_time
        self.seed = seed
        self.epoch = self.iter = self.inner_iter = 0
        self.log_vars: dict[str, float] = {}  # this iteration's numbers, for logger hooks
        self.metrics: dict[str, float] = {}  # the latest evaluation
        self.val_outputs: list[Detections] | None = None  # its detections per val image
        self.last_checkpoint: Path | None = None
        # Numbered checkpoints (epoch_N.pth / iter_N.pth) this run wrote, oldest first: the only
        # files retention (`max_keep_ckpts`) may delete. Kept across resume in the checkpoint.
        self.own_checkpoints: list[str] = []
        self.saved_iter = -1  # the iteration the newest checkpoint holds
        self.best_checkpoint: Path | None = None
        self.stop_reason: str | None = None
        self.signal_received: str | None = None  # set by the signal handler
        self._stop_now = False
        self._hooks: list[tuple[int, int, Hook]] = []
        self._resume_rng: dict[str, Any] | None = None
        self._epoch_start_rng: dict[str, Any] | None = None
        self._start_time = time.monotonic()
        self.start_iter = 0

    # -- hooks -------------------------------------------------------------------------------

    @property
    def raw_model(self) -> nn.Module:
        """The model itself (without DistributedDataParallel)."""
        return unwrap(self.model)

    @property
    def max_epochs(self) -> int:
        return math.ceil(self.max_iters / self.iters_per_epoch)

    @property
    def hooks(self) -> list[Hook]:
        return [h for _, _, h in self._hooks]

    def register_hook(self, hook: Hook, priority: int | str | None = None) -> None:
        """Add `hook`; equal priorities keep registration order."""
        value = priority_value(hook.priority if priority is None else priority)
        self._hooks.append((value, len(self._hooks), hook))
        self._hooks.sort(key=lambda t: (t[0], t[1]))

    def call_hook(self, event: HookEvent, *args: object) -> None:
        """Call `event` on every hook, in priority order."""
        for _, _, hook in self._hooks:
            getattr(hook, event)(self, *args)

    def request_stop(self, reason: str, *, immediate: bool = False) -> None:
        """End training after this epoch (or, `immediate`, after this iteration)."""
        self.stop_reason = self.stop_reason or reason
        self._stop_now = self._stop_now or immediate
        if not immediate:  # at an epoch boundary (or iteration-based): stop right here
            end = self.iter if self.inner_iter == 0 or not self.by_epoch else None
            end = end if end is not None else (self.epoch + 1) * self.iters_per_epoch
            self.max_iters = min(self.max_iters, end)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """Train until `max_iters`, a stop request, an interrupt or an error."""
        self._start_time = time.monotonic()
        self.start_iter = self.iter
        self.optim_wrapper.initialize_count_status(self.iter, self.max_iters)
        try:
            self.call_hook("before_run")
            while self.iter < self.max_iters and not self._stop_now:
                self._train_epoch()
            if self._stop_now and self.inner_iter:  # stopped mid-epoch: keep a resumable state
                self.save_checkpoint(f"iter_{self.iter}.pth")
            broadcast_buffers(self.raw_model)  # all ranks end with rank 0's model
        finally:
            self.call_hook("after_run")

    def _train_epoch(self) -> None:
        self.model.train()
        self.call_hook("before_train_epoch")
        batches = self._epoch_iterator()
        while self.inner_iter < self.iters_per_epoch and self.iter < self.max_iters:
            batch = next(batches)
            self._train_iter(batch)
            if self._stop_now:
                return
        del batches  # shuts down this epoch's workers
        if self.inner_iter == self.iters_per_epoch:
            self.epoch += 1
            self.inner_iter = 0
            try:
                self.call_hook("after_train_epoch")  # evaluation, checkpoint, early stopping
            except Exception:
                self._keep_finished_epoch()
                raise

    def _keep_finished_epoch(self) -> None:
        """An end-of-epoch hook failed (an unreadable val image, a bad metric name): the epoch's
        training is not lost with it. Its checkpoint is written unless one already holds it."""
        if not self.dist.is_main or self.saved_iter == self.iter:
            return
        try:
            path = self.save_checkpoint(f"epoch_{self.epoch}.pth")
        except Exception as exc:  # the original error matters more; say why this failed too
            self.log.warning(f"could not keep epoch {self.epoch}'s checkpoint either: {exc}")
            return
        self.log.warning(
            f"an end-of-epoch step failed after epoch {self.epoch}; its training is kept in "
            f"{path} (continue with --resume auto once the cause is fixed)."
        )

    def _epoch_iterator(self) -> Iterator[Batch]:
        """This epoch's batches; after a mid-epoch resume, the rest of the same order."""
        generator = self.train_loader.generator
        after = None
        if self._resume_rng is not None:
            rng, self._resume_rng = self._resume_rng, None
            if self.inner_iter and rng.get("epoch_start") is not None:
                set_rng_state(rng["epoch_start"], generator)  # replay the epoch's shuffle...
                after = rng["current"]  # ...then continue the random streams where they were
            else:
                set_rng_state(rng["current"], generator)
        self._epoch_start_rng = rng_state(generator)
        loader = self.train_loader
        if self.inner_iter:
            loader = skip_batches(loader, self.inner_iter)
        batches = iter(loader)
        if after is not None:
            set_rng_state(after, generator)
        return batches

    def _train_iter(self, batch: Batch) -> None:
        self.log_vars = {}
        self.call_hook("before_train_iter")
        batch = to_device(batch, self.device)
        with self.optim_wrapper.optim_context(self.model):
            losses: LossDict = self.model(**batch)
        loss, names, values = parse_losses(losses)
        numbers = values.tolist()
        bad = [f"{n}={v}" for n, v in zip(names, numbers, strict=True) if not math.isfinite(v)]
        nonfinite, interrupted, over_time = any_across_ranks(
            [bool(bad), self.signal_received is not None, self._over_time()]
        )
        if nonfinite:
            self._non_finite(bad)
        lr = self.optim_wrapper.param_groups[0]["lr"]
        extra = self.optim_wrapper.update(loss)
        self.log_vars.update(zip(names, numbers, strict=True))
        self.log_vars["lr"] = lr
        self.log_vars.update({k: float(v) for k, v in extra.items()})
        self.iter += 1
        self.inner_iter += 1
        self.call_hook("after_train_iter")
        if interrupted:
            self._interrupted()
        if over_time:
            self.request_stop(f"max_time ({self.max_time:g} s) reached", immediate=True)

    def _over_time(self) -> bool:
        return self.max_time is not None and time.monotonic() - self._start_time > self.max_time

    def _non_finite(self, bad: list[str]) -> None:
        where = f"epoch {self.epoch + 1}, iteration {self.iter + 1}"
        what = ", ".join(bad) if bad else "on another rank"
        good = self.last_checkpoint
        keep = (
            f"The last good checkpoint is {good} (resume: --resume {good})."
            if good
            else "No checkpoint was written before it."
        )
        raise NonFiniteLoss(
            f"The loss became non-finite at {where}: {what}. The step was not taken. {keep} "
            "Lower the learning rate, lengthen the warm-up, or set optimizer_config.grad_clip."
        )

    def _interrupted(self) -> None:
        path = self.save_checkpoint(f"iter_{self.iter}.pth")
        self.stop_reason = f"interrupted by {self.signal_received}"
        raise TrainingInterrupted(
            f"Training interrupted by {self.signal_received} at epoch {self.epoch + 1}, "
            f"iteration {self.iter}; checkpoint written to {path}. Resume with --resume auto "
            f"(or --resume {path}).",
            path,
        )

    # -- checkpoints -------------------------------------------------------------------------

    def checkpoint_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here (tensors and plain values only)."""
        generator = self.train_loader.generator
        state = self.optim_wrapper.state_dict()
        dataset = dataset_of(self.train_loader)
        return {
            "meta": {
                "epoch": self.epoch,
                "iter": self.iter,
                "inner_iter": self.inner_iter,
                "iters_per_epoch": self.iters_per_epoch,
                "config": self.cfg.to_dict(),
                "CLASSES": list(getattr(dataset, "CLASSES", []) or []),
                "seed": self.seed,
                "detcli_version": __version__,
                "torch_version": str(torch.__version__),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "hooks": self._hook_states(),
                "own_checkpoints": list(self.own_checkpoints),
            },
            "state_dict": self.raw_model.state_dict(),
            "optimizer": state["optimizer"],
            "scaler": state.get("scaler"),
            "accumulation": state.get("accumulation"),
            "scheduler": self.scheduler.state_dict(),
            "rng": {
                "current": rng_state(generator),
                "epoch_start": self._epoch_start_rng if self.inner_iter else None,
            },
        }

    def save_checkpoint(self, filename: str, *, latest: bool = True) -> Path | None:
        """Write a checkpoint into the work dir (rank 0 only); returns its path there."""
        if not self.dist.is_main:
            return None
        if is_numbered(filename) and filename not in self.own_checkpoints:
            self.own_checkpoints.append(filename)
        checkpoint = self.checkpoint_dict()
        self.saved_iter = self.iter
        self.call_hook("before_save_checkpoint", checkpoint)
        path = save_checkpoint(checkpoint, self.work_dir / filename)
        if latest:
            link_latest(self.work_dir, path)
            self.last_checkpoint = path
        return path

    def prune_checkpoints(self, keep: int) -> None:
        """Delete this run's numbered checkpoints but the newest `keep` (never another run's,
        never the one `latest.pth` or `best.pth` points at)."""
        if keep <= 0 or not self.dist.is_main or len(self.own_checkpoints) <= keep:
            return
        old, self.own_checkpoints = self.own_checkpoints[:-keep], self.own_checkpoints[-keep:]
        best = self.work_dir / "best.pth"  # a link to a numbered checkpoint (engine/hooks/best.py)
        kept = (self.last_checkpoint, self.best_checkpoint, best if best.exists() else None)
        protected = {p.resolve() for p in kept if p}
        for name in old:
            path = self.work_dir / name
            if path.resolve() not in protected:
                path.unlink(missing_ok=True)

    def resume(self, checkpoint: dict[str, Any], source: Path) -> None:
        """Continue from `checkpoint`: weights, optimizer, schedule, counters, hooks, RNG."""
        meta = checkpoint.get("meta", {})
        missing = [k for k in ("optimizer", "scheduler", "rng") if k not in checkpoint]
        if missing or "iter" not in meta:
            raise CheckpointError(
                f"{source} cannot be resumed from: it lacks {', '.join(missing) or 'meta.iter'} "
                "(a weights-only file?). Use --load-from to start from its weights instead."
            )
        report = load_weights(self.raw_model, weights_of(checkpoint))
        if any(report.values()):
            raise CheckpointError(
                f"{source} does not fit the model: {_describe(report)}. Resume needs the "
                "same model; use --load-from to start from its weights instead."
            )
        self.optim_wrapper.load_state_dict(checkpoint)
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.epoch, self.iter = int(meta["epoch"]), int(meta["iter"])
        self.inner_iter = int(meta.get("inner_iter", 0))
        if self.inner_iter and meta.get("iters_per_epoch") != self.iters_per_epoch:
            raise CheckpointError(
                f"{source} was written mid-epoch with {meta.get('iters_per_epoch')} iterations "
                f"per epoch, but the training set now gives {self.iters_per_epoch}; the rest of "
                "that epoch cannot be replayed. Resume from an end-of-epoch checkpoint."
            )
        self.scheduler.apply()
        self._load_hook_states(meta.get("hooks", {}))
        self.own_checkpoints = [str(n) for n in meta.get("own_checkpoints", [])]
        self._resume_rng = checkpoint["rng"]
        self.last_checkpoint = source
        self.call_hook("after_load_checkpoint", checkpoint)

    def _hook_states(self) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for key, hook in self._keyed_hooks():
            state = hook.state_dict()
            if state:
                states[key] = state
        return states

    def _load_hook_states(self, states: dict[str, Any]) -> None:
        for key, hook in self._keyed_hooks():
            if key in states:
                hook.load_state_dict(states[key])

    def _keyed_hooks(self) -> list[tuple[str, Hook]]:
        counts: dict[str, int] = {}
        keyed = []
        for hook in self.hooks:
            name = type(hook).__name__
            counts[name] = counts.get(name, 0) + 1
            keyed.append((name if counts[name] == 1 else f"{name}.{counts[name]}", hook))
        return keyed


def _describe(report: dict[str, list[str]]) -> str:
    parts = []
    for kind, keys in report.items():
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            parts.append(f"{len(keys)} {kind} ({shown})")
    return "; ".join(parts)
