"""The work dir of a run: created and proven writable, locked while a run uses it, and never
mixed with another run's files.

Two runs on one work dir would interleave their logs and overwrite each other's checkpoints,
so a run takes `.detcli.lock` (pid and host inside; a lock whose process is gone is stale and
taken over). A new run in a work dir that already holds one is refused unless it continues it
(`--resume auto`) or the user asks for a fresh start (`--overwrite`), which moves the previous
run's files into `previous-<time>/` instead of deleting anything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from detcli.errors import TrainingError

LOCK = ".detcli.lock"
# What a run writes into its work dir (see engine/training.py and the hooks).
RUN_FILES = ("*.pth", "log.jsonl", "train.log", "config.yaml", "eval_*.json", "tf_logs", "vis_data")


def prepare_work_dir(work_dir: Path) -> None:
    """Create the work dir and prove it writable now, not when the first checkpoint is due.

    Temporary files left by a write that was killed (`kill -9`, power loss) are removed: they
    were never renamed into place, so no checkpoint or log refers to them.
    """
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        probe = work_dir / ".detcli_write_test"
        probe.write_bytes(b"ok")
        probe.unlink()
        for stale in work_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
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


def previous_run(work_dir: Path) -> list[Path]:
    """The files an earlier run left in `work_dir` (checkpoints, logs, its config, events)."""
    found: list[Path] = []
    for pattern in RUN_FILES:
        found += [p for p in work_dir.glob(pattern) if not p.name.startswith(".")]
    return sorted(set(found))


def refuse_or_archive_previous_run(work_dir: Path, *, overwrite: bool) -> Path | None:
    """Refuse to start a new run over an earlier one's checkpoints, or (`overwrite`) move the
    earlier run aside. An earlier start that wrote no checkpoint (it failed at once) is moved
    aside without asking: its logs would otherwise mix with this run's.

    Returns the folder the previous run's files moved to (None when there were none).
    """
    files = previous_run(work_dir)
    if not files:
        return None
    checkpoints = [p for p in files if p.suffix == ".pth"]
    if checkpoints and not overwrite:
        shown = ", ".join(p.name for p in checkpoints[:4]) + (
            " ..." if len(checkpoints) > 4 else ""
        )
        raise TrainingError(
            f"The work dir {work_dir} already holds a run ({shown}). Continue it with "
            "--resume auto, start this one in another --work-dir, or pass --overwrite to "
            "start anew here (the earlier run's files move to a previous-<time>/ folder; "
            "nothing is deleted)."
        )
    archive = work_dir / time.strftime("previous-%Y%m%d-%H%M%S")
    suffix = 1
    while archive.exists():
        archive = archive.with_name(f"{archive.name.split('.')[0]}.{suffix}")
        suffix += 1
    archive.mkdir()
    for path in files:
        os.replace(path, archive / path.name)
    return archive


@contextlib.contextmanager
def work_dir_lock(work_dir: Path) -> Iterator[None]:
    """Hold `work_dir`'s lock for the duration of the block (released on any exit)."""
    path = work_dir / LOCK
    me = f"{os.getpid()} {socket.gethostname()}\n"
    for _ in range(2):  # a second try after removing a stale lock
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None:
                pid, host = holder
                raise TrainingError(
                    f"The work dir {work_dir} is in use by another detcli run (pid {pid} on "
                    f"{host}); two runs in one work dir overwrite each other's checkpoints. "
                    "Wait for it, stop it, or choose another --work-dir."
                ) from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        break
    else:
        raise TrainingError(f"Could not take the lock {path}; remove it if no run is using it.")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text() == me:
                path.unlink()


def _holder(path: Path) -> tuple[int, str] | None:
    """(pid, host) of a live lock holder; None when the lock is stale or unreadable."""
    try:
        pid_text, host = path.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if host != socket.gethostname():
        return pid, host  # cannot tell whether a process on another machine is alive
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return (pid, host) if exc.errno == errno.EPERM else None
    return pid, host
