"""Checkpoint files: written atomically, readable with `torch.load(weights_only=True)`.

A checkpoint is a dict of tensors and plain Python values only (no pickled classes), so
loading one never runs code from the file:

    meta:        epoch, iter, inner_iter, config (plain dict), CLASSES, versions, time, seed, hooks
    state_dict:  model weights (without DDP's `module.` prefix)
    optimizer:   optimizer state;  scaler: AMP gradient scaler state (float16 only)
    scheduler:   LR scheduler counters
    rng:         python / numpy / torch / CUDA generator states, now and at the epoch's start
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from detcli.errors import CheckpointError, TrainingError

LATEST = "latest.pth"
BEST = "best.pth"


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> Path:
    """Write `checkpoint` to `path` via a temp file + rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a checkpoint is not
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise TrainingError(
            f"Could not write checkpoint {path}: {exc.strerror or exc}. Earlier checkpoints in "
            f"{path.parent} are intact; free disk space or choose another --work-dir."
        ) from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (`weights_only=True`); errors name the file and what to do."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist (or is not a file).")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"Cannot read checkpoint {path}: {str(exc).splitlines()[0]}. detcli only loads "
            "files holding tensors and plain values (torch.load weights_only=True); re-save "
            "other files with `torch.save({'state_dict': model.state_dict()}, path)`."
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"Checkpoint {path} holds a {type(data).__name__}, not a dict.")
    return data


def weights_of(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint (detcli/mmdet `state_dict`, or a bare state dict)."""
    state = checkpoint.get("state_dict", checkpoint.get("model", checkpoint))
    if not isinstance(state, dict):
        raise CheckpointError("The checkpoint has no `state_dict` mapping of weights.")
    return {
        (k[7:] if k.startswith("module.") else k): v
        for k, v in state.items()
        if isinstance(v, torch.Tensor)
    }


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Load what fits; returns `mismatched` (shape differs), `missing`, `unexpected` keys."""
    own = unwrap(model).state_dict()
    mismatched = [
        f"{k} (checkpoint {list(v.shape)}, model {list(own[k].shape)})"
        for k, v in weights.items()
        if k in own and own[k].shape != v.shape
    ]
    fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    result = unwrap(model).load_state_dict(fitting, strict=False)
    return {
        "mismatched": mismatched,
        "missing": [k for k in result.missing_keys if k not in weights],
        "unexpected": [k for k in weights if k not in own],
    }


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random generator's state, as tensors and ints (weights_only-safe)."""
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt), gauss],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if generator is not None:
        state["loader"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what `rng_state` returned."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "loader" in state:
        generator.set_state(state["loader"])


def link_latest(work_dir: Path, target: Path) -> None:
    """Point `latest.pth` at `target` (a relative symlink, swapped atomically; a copy if none)."""
    link = work_dir / LATEST
    tmp = work_dir / f".{LATEST}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(os.path.relpath(target, work_dir))
        os.replace(tmp, link)
    except OSError:  # filesystems without symlinks
        import shutil

        shutil.copyfile(target, tmp)
        os.replace(tmp, link)


_NUMBERED = re.compile(r"^(epoch|iter)_(\d+)\.pth$")


def numbered_checkpoints(work_dir: Path, kind: str) -> list[Path]:
    """`epoch_N.pth` (or `iter_N.pth`) files in `work_dir`, oldest first."""
    found = []
    for p in work_dir.glob(f"{kind}_*.pth"):
        m = _NUMBERED.match(p.name)
        if m and m.group(1) == kind:
            found.append((int(m.group(2)), p))
    return [p for _, p in sorted(found)]


def find_latest(work_dir: Path) -> Path | None:
    """The checkpoint `--resume auto` continues from: `latest.pth`, else the newest numbered one."""
    link = work_dir / LATEST
    if link.exists():
        return link.resolve()
    candidates = numbered_checkpoints(work_dir, "epoch") + numbered_checkpoints(work_dir, "iter")
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime)
