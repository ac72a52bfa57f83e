"""Before the first iteration: device, seeds, determinism, the work dir, signal handling."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from detcli.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    from detcli.engine.runner import Runner


def resolve_device(requested: str | None) -> torch.device:
    """`cpu`, `cuda` or `cuda:N` as a torch device (default: cuda when a GPU is visible).

    Anything else is a ConfigError; asking for a GPU torch cannot see is a TrainingError.
    """
    name = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device: torch.device | None = torch.device(name)
    except RuntimeError:  # not a device string torch knows
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be cpu, cuda or cuda:N, got {requested!r}.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "device cuda was asked for, but torch sees no CUDA GPU here; use --device cpu."
        )
    return torch.device("cpu") if device.type == "cpu" else device


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
