"""Which checkpoint `--resume` means, and whether the config still matches it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detcli.engine.checkpoint import find_latest
from detcli.errors import CheckpointError

# Resuming continues a schedule with a model: a change here makes "continue exactly" untrue.
RESUME_KEYS: tuple[tuple[str, ...], ...] = (
    ("model",),
    ("optimizer",),
    ("optim_wrapper",),
    ("optimizer_config",),
    ("lr_config",),
    ("param_scheduler",),
    ("runner",),
    ("auto_scale_lr",),
    ("fp16",),
    ("data", "samples_per_gpu"),
)


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


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`path: old -> new` for every model/schedule setting that differs between two configs."""
    changes: list[str] = []
    for key in RESUME_KEYS:
        a, b = _get(old, key), _get(new, key)
        flat_a, flat_b = _flatten(a, ".".join(key)), _flatten(b, ".".join(key))
        for path in sorted(set(flat_a) | set(flat_b)):
            va, vb = flat_a.get(path, "<unset>"), flat_b.get(path, "<unset>")
            if va != vb:
                changes.append(f"{path}: {va!r} -> {vb!r}")
    return changes


def _get(cfg: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(cfg, dict) or part not in cfg:
            return None
        cfg = cfg[part]
    return cfg


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
