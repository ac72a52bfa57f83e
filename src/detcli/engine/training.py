"""`detcli.train(cfg, ...)`: build everything a config describes and run the training loop.

Also what `detcli train` and `torchrun -m detcli train` call. The work dir receives the merged
`config.yaml`, `train.log`, `log.jsonl`, `tf_logs/`, checkpoints and evaluation results.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from detcli.config import ConfigDict, format_path, resolve_config
from detcli.config.origins import Origins
from detcli.config.settings import RunSettings, read_run_settings
from detcli.engine import dist as dist_utils
from detcli.engine.checkpoint import fit_checkpoint, load_checkpoint
from detcli.engine.hook_config import config_hooks
from detcli.engine.lr_scheduler import build_lr_scheduler
from detcli.engine.optim_wrapper import build_optim_wrapper
from detcli.engine.param_schedulers import Progress
from detcli.engine.resume import config_changes, resolve_resume
from detcli.engine.run_log import RunLog
from detcli.engine.runner import Runner
from detcli.engine.setup import resolve_device, set_random_seed, stop_on_signals
from detcli.engine.work_dir import (
    check_free_space,
    prepare_work_dir,
    refuse_or_archive_previous_run,
    work_dir_lock,
)
from detcli.errors import CheckpointError, ConfigError, DetcliError


@dataclass
class TrainResult:
    """What a finished (or stopped) run left behind."""

    work_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)  # the last evaluation
    epoch: int = 0
    iter: int = 0
    stop_reason: str | None = None  # early stopping, max_time; None when it ran to the end


def train(
    cfg: ConfigDict | str | Path,
    *,
    work_dir: str | Path | None = None,
    resume: str | Path | None = None,
    load_from: str | Path | None = None,
    amp: bool | None = None,
    device: str | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    allow_config_change: bool = False,
    overwrite: bool = False,
    threads: int | Literal["auto"] | None = None,
) -> TrainResult:
    """Train the model `cfg` describes; `resume` is a checkpoint path or "auto".

    `threads`: torch CPU threads; else the config's `threads`; "auto" (what `detcli train`
    passes) chooses from the cores (engine/threads.py); None leaves torch's setting.

    A work dir holding an earlier run is refused unless `resume` continues it or `overwrite`
    moves it aside (see engine/work_dir.py)."""
    cfg, name, origins = _as_config(cfg)
    settings = read_run_settings(cfg, origins)
    device_type = resolve_device(device or settings.env.device).type
    backend = settings.env.dist_backend
    joined_here = not torch.distributed.is_initialized()
    info = dist_utils.init_distributed(device_type, backend)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(
            cfg,
            settings,
            name,
            info,
            device_type,
            work_dir=work_dir,
            resume=resume,
            load_from=load_from,
            amp=amp,
            seed=seed,
            deterministic=deterministic,
            allow_config_change=allow_config_change,
            overwrite=overwrite,
            threads=threads,
        )
    finally:
        torch.use_deterministic_algorithms(was_deterministic)  # a library call leaves no trace
        if joined_here:
            dist_utils.cleanup()


def _train(
    cfg: ConfigDict,
    settings: RunSettings,
    name: str,
    info: dist_utils.DistInfo,
    device_type: str,
    *,
    work_dir: str | Path | None,
    resume: str | Path | None,
    load_from: str | Path | None,
    amp: bool | None,
    seed: int | None,
    deterministic: bool,
    allow_config_change: bool,
    overwrite: bool,
    threads: int | Literal["auto"] | None = None,
) -> TrainResult:
    from detcli.data import build_dataloader
    from detcli.engine.threads import configure_threads
    from detcli.model_config import build_model
    from detcli.plugins import load_plugins

    # First, so that everything below (model building included) runs with the chosen count.
    workers = settings.loaders["train"].num_workers if "train" in settings.loaders else 0
    thread_choice = configure_threads(threads, settings.env.threads, workers=workers)

    device = torch.device("cuda", info.local_rank) if device_type == "cuda" else torch.device("cpu")
    env = settings.env
    wd = Path(work_dir or env.work_dir or Path("work_dirs") / name)
    cfg.work_dir = str(wd)
    _on_main(info, lambda: prepare_work_dir(wd))
    moved: list[Path | None] = []
    resume = resume if resume is not None else env.resume
    with contextlib.ExitStack() as hold:
        # One run per work dir: the lock, then no silent mixing with an earlier run's files.
        _on_main(info, lambda: hold.enter_context(work_dir_lock(wd)))
        if resume is None:
            _on_main(
                info, lambda: moved.append(refuse_or_archive_previous_run(wd, overwrite=overwrite))
            )
        seed = _resolve_seed(seed, env.seed)
        cfg.seed = seed
        deterministic = deterministic or env.deterministic
        set_random_seed(seed + info.rank, deterministic)
        if env.cudnn_benchmark and not deterministic:
            torch.backends.cudnn.benchmark = True
        log = RunLog(wd, enabled=info.is_main, level=env.log_level)
        try:
            if info.is_main:
                cfg.dump(wd / "config.yaml")
            mode = ", deterministic" if deterministic else ""
            log.info(
                f"detcli train: work dir {wd}, device {device}, "
                f"{info.world_size} process(es), seed {seed}{mode}"
            )
            log.info(thread_choice.describe())
            if moved and moved[0] is not None:
                log.info(f"the earlier run's files in {wd} moved to {moved[0]}")
            for note in settings.notes:
                log.info(f"note: {format_path(note.path)}: {note.message}")
            load_plugins()
            loop = settings.loop
            train_settings = settings.loader("train")
            train_loader = build_dataloader(train_settings, distributed=info.distributed, seed=seed)
            if len(train_loader) == 0:
                raise ConfigError(
                    f"{format_path(train_settings.dataset_path)} yields no batches: the "
                    "training set is empty after filtering."
                )
            val_loader = None
            if settings.evaluation.during_training:
                val_loader = build_dataloader(
                    settings.loader("val"), distributed=info.distributed, seed=seed
                )

            model = build_model(settings.model)
            init_weights = getattr(model, "init_weights", None)
            if callable(init_weights):
                init_weights()  # every part's init_cfg: pretrained backbone weights, fills
            model.to(device)
            _on_main(info, lambda: check_free_space(wd, model))
            load_from = load_from if load_from is not None else env.load_from
            if load_from and resume is None:
                classes = getattr(train_loader.dataset, "CLASSES", None)
                _load_from(model, Path(load_from), log, classes)
            if env.sync_bn and info.distributed:
                if device_type != "cuda":
                    raise ConfigError("sync_bn needs CUDA GPUs (SyncBatchNorm has no CPU kernel).")
                # convert_sync_batchnorm carries no annotations.
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]

            if settings.optim is None:
                raise ConfigError(
                    "The config has no optimizer: set `optimizer` (2.x) or "
                    "`optim_wrapper.optimizer` (3.x), e.g. {type: SGD, lr: 0.02, momentum: 0.9, "
                    "weight_decay: 0.0001}."
                )
            optim, scaled = settings.optim.scaled(info.world_size * train_settings.batch_size)
            if scaled:
                log.info(scaled)
            optim_wrapper = build_optim_wrapper(model, optim, amp=amp, device_type=device_type)
            if optim_wrapper.amp is not None:
                log.info(f"mixed precision: autocast to {optim_wrapper.amp.dtype}")
            train_model: nn.Module = model
            if info.distributed:
                train_model = nn.parallel.DistributedDataParallel(
                    model,
                    device_ids=[info.local_rank] if device_type == "cuda" else None,
                    find_unused_parameters=env.find_unused_parameters,
                )

            ipe = len(train_loader)
            max_iters = loop.max_epochs * ipe if loop.by_epoch else loop.max_iters
            scheduler = build_lr_scheduler(
                settings.schedule, optim_wrapper.optimizer, Progress(ipe, max_iters)
            )
            runner = Runner(
                model=train_model,
                optim_wrapper=optim_wrapper,
                scheduler=scheduler,
                train_loader=train_loader,
                val_loader=val_loader,
                work_dir=wd,
                cfg=cfg,
                device=device,
                log=log,
                dist_info=info,
                by_epoch=loop.by_epoch,
                max_iters=max_iters,
                max_time=loop.max_time,
                seed=seed,
            )
            for hook, priority in config_hooks(settings):
                runner.register_hook(hook, priority)

            resume_path = resolve_resume(resume, wd)
            if resume is not None and resume_path is None:
                log.info(f"--resume auto: no checkpoint in {wd} yet, starting from scratch.")
            if resume_path is not None:
                checkpoint = load_checkpoint(resume_path)
                _check_config(checkpoint, settings, resume_path, allow_config_change, log)
                runner.resume(checkpoint, resume_path)
                log.info(
                    f"resumed from {resume_path} at epoch {runner.epoch}, iteration {runner.iter} "
                    f"(+{runner.inner_iter} into the epoch)"
                )
            with stop_on_signals(runner):
                runner.run()
            if runner.stop_reason:
                log.info(f"stopped: {runner.stop_reason}")
            log.info(f"done: {runner.iter} iterations; work dir {wd}")
            return TrainResult(
                work_dir=wd,
                last_checkpoint=runner.last_checkpoint,
                best_checkpoint=runner.best_checkpoint,
                metrics=dict(runner.metrics),
                epoch=runner.epoch,
                iter=runner.iter,
                stop_reason=runner.stop_reason,
            )
        finally:
            log.close()


def _as_config(cfg: ConfigDict | str | Path) -> tuple[ConfigDict, str, Origins | None]:
    if isinstance(cfg, (str, Path)):
        resolved = resolve_config(cfg)
        return resolved.cfg, Path(cfg).stem, resolved.origins
    if not isinstance(cfg, dict):
        raise ConfigError(
            f"train() takes a config (ConfigDict or file path), got {type(cfg).__name__}."
        )
    return ConfigDict(copy.deepcopy(dict(cfg))), "run", None


def _on_main(info: dist_utils.DistInfo, check: Any) -> None:
    """Run a check on rank 0; a failure there is raised on every rank (none waits forever)."""
    message = None
    if info.is_main:
        try:
            check()
        except DetcliError as exc:
            message = (type(exc).__name__, str(exc))
    message = dist_utils.broadcast_object(message)
    if message is not None:
        from detcli import errors

        raise getattr(errors, message[0], errors.TrainingError)(message[1])


def _resolve_seed(seed: int | None, cfg_seed: Any) -> int:
    """The seed to use: --seed, else the config's, else a random one all ranks share."""
    chosen = seed if seed is not None else cfg_seed
    if chosen is None:
        chosen = random.SystemRandom().randrange(2**31)
    elif not isinstance(chosen, int) or isinstance(chosen, bool):
        raise ConfigError(f"seed must be an integer, got {chosen!r}.")
    return int(dist_utils.broadcast_object(chosen))


def _load_from(
    model: nn.Module, path: Path, log: RunLog, classes: Sequence[str] | None = None
) -> None:
    """Initialise from a checkpoint's weights only (detcli, MMDetection or torchvision).

    Logs what was reused per part, the class rows taken by name, and one table of what did
    not fit; a file for another network is refused (CheckpointError) by `fit_checkpoint`.
    """
    fitted = fit_checkpoint(model, load_checkpoint(path), path, classes=classes, fine_tune=True)
    report = fitted.report
    log.info(f"loaded weights from {path} ({fitted.source} format): reused {report.summary()}")
    for note in fitted.notes:
        log.info(f"load_from: {note}")
    if fitted.class_mapping is not None:
        m = fitted.class_mapping
        log.info(
            f"load_from: the checkpoint's classes differ from the config's; {m.reused} of "
            f"{len(m.rows)} classes reuse the checkpoint's rows of the same name:"
        )
        for line in m.lines():
            log.info(line)
    if not report.complete:
        log.warning(
            f"load_from {path}: {len(report.rows())} tensors did not fit (missing and "
            "mismatched ones keep their initial values; unexpected ones are ignored):"
        )
        for line in report.table():
            log.warning(line)


def _check_config(
    checkpoint: dict[str, Any], settings: RunSettings, path: Path, allow: bool, log: RunLog
) -> None:
    old = (checkpoint.get("meta") or {}).get("config")
    if not isinstance(old, dict):
        return
    changes = config_changes(old, settings)
    if not changes:
        return
    listed = "; ".join(changes)
    if not allow:
        raise CheckpointError(
            f"Cannot resume from {path}: the config's model or schedule differs from the one the "
            f"checkpoint was trained with: {listed}. Resume with the same settings, pass "
            "--allow-config-change to continue anyway, or use --load-from to start a new run "
            "from its weights."
        )
    log.warning(f"resuming with a changed config (--allow-config-change): {listed}")
