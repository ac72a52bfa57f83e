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
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from detcli.errors import CheckpointError, TrainingError
from detcli.models.checkpoint_import import (
    ClassMapping,
    FitReport,
    fit_report,
    import_weights,
    map_class_rows,
)

LATEST = "latest.pth"
BEST = "best.pth"


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> Path:
    """Write `checkpoint` to `path` via a temp file + rename: a crash never leaves half a file.

    A failed write (full disk, a file-size limit, an unplugged drive) is one TrainingError
    naming the file and the free space; the temp file is removed and earlier checkpoints stay.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    writer = _WriteRecorder(os.fdopen(fd, "wb"))
    try:
        with writer.file:
            # torch.save asks for IO[bytes] but calls only write() (and flush()).
            torch.save(checkpoint, writer)  # type: ignore[arg-type]
            writer.file.flush()
            os.fsync(writer.file.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a checkpoint is not
        os.replace(tmp, path)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        failed = writer.error or (exc if isinstance(exc, OSError) else None)
        if failed is None:
            raise  # not a write failure: a bug, shown as one
        free = shutil.disk_usage(path.parent).free / 2**20
        raise TrainingError(
            f"Could not write checkpoint {path}: {failed.strerror or failed} ({free:.0f} MiB "
            f"free on that disk). Earlier checkpoints in {path.parent} are intact; free disk "
            "space or choose another --work-dir, then continue with --resume auto."
        ) from None
    return path


class _WriteRecorder:
    """A file for torch.save that remembers the OSError of a failed write: torch reports it
    as a RuntimeError about zip positions, which would hide a full disk."""

    def __init__(self, file: Any):
        self.file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return int(self.file.write(data))
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.file.flush()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (`weights_only=True`); errors name the file and what to do.

    MMDetection 3.x checkpoints also pickle mmengine/numpy objects (the message hub's
    history buffers); those are read as inert placeholders, never by importing their code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist (or is not a file).")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"Checkpoint {path} is an empty file (0 bytes): an interrupted copy or download? "
            "Copy it again, or point at another checkpoint."
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        data = _load_with_placeholders(path, exc)
    if not isinstance(data, dict):
        raise CheckpointError(f"Checkpoint {path} holds a {type(data).__name__}, not a dict.")
    return data


# Modules whose pickled objects a foreign checkpoint may hold outside its weights (numpy
# pickles some dtypes through `builtins.getattr`; here it is a placeholder like the rest).
FOREIGN_MODULES = ("mmengine.", "mmdet.", "mmcv.", "numpy.", "_codecs.", "builtins.getattr")


class _Inert:
    """An object of a foreign checkpoint, read as nothing: takes any arguments, runs no code."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _inert_call(*args: Any, **kwargs: Any) -> _Inert:
    return _Inert()


def _load_with_placeholders(path: Path, first_error: Exception) -> Any:
    """`torch.load(weights_only=True)` with mmengine/numpy globals mapped onto `_Inert`."""
    unreadable = CheckpointError(
        f"Cannot read checkpoint {path}: {str(first_error).splitlines()[0][:300]}. detcli "
        "loads detcli, MMDetection 2.x/3.x and torchvision checkpoints (files holding "
        "tensors and plain values, read with torch.load weights_only=True); is this a "
        "PyTorch checkpoint at all? Re-save other files with "
        "`torch.save({'state_dict': model.state_dict()}, path)`."
    )
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:
        raise unreadable from None
    if not names or any(not n.startswith(FOREIGN_MODULES) for n in names):
        raise unreadable
    stubs: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
        (_Inert if n[n.rfind(".") + 1 :][:1].isupper() else _inert_call, n) for n in names
    ]
    try:
        with torch.serialization.safe_globals(stubs):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise unreadable from None


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
    np_state = np.random.get_state(legacy=False)  # the global MT19937's state, as a dict
    state: dict[str, Any] = {
        "python": [version, list(mt), gauss],
        "numpy": {
            "keys": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "cached_gaussian": float(np_state["gauss"]),
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
    link_checkpoint(work_dir, LATEST, target)


_NUMBERED = re.compile(r"^(epoch|iter)_(\d+)\.pth$")


def is_numbered(name: str) -> bool:
    """True for `epoch_N.pth` and `iter_N.pth` (the files `max_keep_ckpts` counts)."""
    return _NUMBERED.match(name) is not None


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


@dataclass
class FittedCheckpoint:
    """What `fit_checkpoint` loaded: the file's format, its class names, what fit, class rows."""

    source: str  # detcli | mmdet 2.x | mmdet 3.x | torchvision
    classes: list[str] | None
    report: FitReport
    class_mapping: ClassMapping | None = None
    notes: list[str] = field(default_factory=list)


def fit_checkpoint(
    model: nn.Module,
    checkpoint: dict[str, Any],
    path: Path,
    *,
    classes: Sequence[str] | None = None,
    fine_tune: bool = False,
) -> FittedCheckpoint:
    """Load a detcli, MMDetection or torchvision checkpoint into `model`, in detcli's names.

    What fits loads; the returned report lists what does not (callers decide whether that
    is an error). With `fine_tune` and file class names that differ from `classes`,
    class-specific rows are taken by class name. A file filling fewer than half of the
    backbone's and neck's tensors is refused: it was made for another network, and training
    or evaluating from it would start from random weights.
    """
    weights = weights_of(checkpoint)
    if not weights:
        raise CheckpointError(f"Checkpoint {path} holds no weights (empty `state_dict`).")
    own = unwrap(model).state_dict()
    imported = import_weights(checkpoint, weights, own.keys())
    fitted = imported.weights
    mapping = None
    names = imported.classes
    if fine_tune and classes is not None and names is not None and list(names) != list(classes):
        fitted, mapping = map_class_rows(fitted, own, names, classes)
    report = fit_report(fitted, own)
    reason = report.other_network()
    if reason is not None:
        raise CheckpointError(
            f"Checkpoint {path} ({imported.source} format) is for another network: {reason} "
            f"(tensors loaded per part: {report.summary()}). detcli refuses it rather than "
            "train or evaluate from random weights. What does not fit:\n"
            + "\n".join(report.table(limit=12))
            + "\nUse a checkpoint of the config's architecture (model.backbone depth/type, "
            "neck widths), or the config the checkpoint was trained with."
        )
    fitting = {k: v for k, v in fitted.items() if k in own and own[k].shape == v.shape}
    unwrap(model).load_state_dict(fitting, strict=False)
    return FittedCheckpoint(imported.source, imported.classes, report, mapping, imported.notes)


def link_checkpoint(work_dir: Path, name: str, target: Path) -> Path:
    """Point `work_dir/name` at `target`, as `link_latest` does `latest.pth`: a relative
    symlink swapped atomically, a copy where the filesystem has no symlinks."""
    link = work_dir / name
    tmp = work_dir / f".{name}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(os.path.relpath(target, work_dir))
        os.replace(tmp, link)
    except OSError:  # filesystems without symlinks
        shutil.copyfile(target, tmp)
        os.replace(tmp, link)
    return link
