"""Which checkpoint `--resume` means, and whether the config still matches it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detcli.config.settings import RunSettings, collect_run_settings
from detcli.engine.checkpoint import find_latest
from detcli.errors import CheckpointError, DetcliError


def resolve_resume(resume: str | Path | None, work_dir: Path) -> Path | None:
    """`auto`: the work dir's latest checkpoint (None when there is none); a path must exist."""
    if resume is None:
        return None
    if str(resume) == "auto":
        return find_latest(work_dir)
    path = Path(resume)
    if not path.is_file():
        raise CheckpointError(
            f"--resume {path}: no such checkpoint file. Use --resume auto to continue from the "
            f"latest checkpoint in {work_dir}."
        )
    return path


def config_changes(old: dict[str, Any], new: RunSettings) -> list[str]:
    """`setting: old -> new` for every model/schedule setting that differs from a checkpoint's.

    Both sides are read through the run settings, so a change of spelling alone (2.x `runner`
    to 3.x `train_cfg`) is no change, and the train batch size is the one the loader uses.
    """
    try:
        before, _ = collect_run_settings(old)
    except DetcliError:
        return []  # a config this version cannot read: nothing to compare it with
    a = _flatten(before.resume_signature(), "")
    b = _flatten(new.resume_signature(), "")
    changes = []
    for path in sorted(set(a) | set(b)):
        va, vb = a.get(path, "<unset>"), b.get(path, "<unset>")
        if va != vb:
            changes.append(f"{path.lstrip('.')}: {va!r} -> {vb!r}")
    return changes


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}.{i}"))
        return out
    return {prefix: value} if value is not None else {}
