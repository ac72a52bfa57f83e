"""Before the first iteration: device, seeds, determinism, the work dir, signal handling."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from detcli.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    from detcli.engine.runner import Runner


def resolve_device(requested: str | None) -> str:
    """`cpu` or `cuda` (the default when a GPU is visible); asking for a missing GPU is an error."""
    name = (requested or ("cuda" if torch.cuda.is_available() else "cpu")).split(":")[0]
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device must be cpu or cuda, got {requested!r}.")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "device cuda was asked for, but torch sees no CUDA GPU here; use --device cpu."
        )
    return name


def set_random_seed(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; `deterministic` also pins torch to deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # warn_only: a GPU kernel without a deterministic version warns instead of failing
        torch.use_deterministic_algorithms(True, warn_only=True)


def prepare_work_dir(work_dir: Path) -> None:
    """Create the work dir and prove it writable now, not when the first checkpoint is due."""
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        probe = work_dir / ".detcli_write_test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise TrainingError(
            f"The work dir {work_dir} is not writable ({exc.strerror or exc}); training has "
            "not started. Choose another with --work-dir (or `work_dir` in the config)."
        ) from None


def check_free_space(work_dir: Path, model: torch.nn.Module) -> None:
    """A checkpoint (weights + optimizer state) must fit on the work dir's disk."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    needed = 3 * weights + 2**20  # weights, up to two optimizer moments, and the config
    free = shutil.disk_usage(work_dir).free
    if free < needed:
        raise TrainingError(
            f"Only {free / 2**20:.1f} MiB are free on the disk of {work_dir}, and one checkpoint "
            f"of this model needs about {needed / 2**20:.1f} MiB; training has not started. "
            "Free some space or choose another --work-dir."
        )


@contextlib.contextmanager
def stop_on_signals(runner: Runner) -> Iterator[None]:
    """SIGINT/SIGTERM ask the runner to checkpoint and stop after the current iteration;
    a second Ctrl-C stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if runner.signal_received is not None:
            raise KeyboardInterrupt
        runner.signal_received = name
        runner.log.warning(
            f"{name} received: finishing this iteration, then writing a checkpoint "
            "(Ctrl-C again stops at once, without one)."
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
