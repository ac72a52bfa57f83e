"""Weights-only checkpoints for deployment: `detcli export CHECKPOINT OUT.pth [--half]`.

A training checkpoint holds everything a resume needs (weights, optimizer state such as SGD
momentum or AdamW's two moments, the LR schedule, RNG states, the merged config); deployment
needs only the weights, the class names and the config. The exported file is
`{"state_dict": ..., "meta": {"CLASSES", "config", "detcli_version", ...}}` and loads in
`detcli eval` / `detcli predict` like any checkpoint (it cannot be resumed from).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detcli import __version__
from detcli.engine.checkpoint import load_checkpoint, save_checkpoint, weights_of
from detcli.errors import CheckpointError


@dataclass
class ExportResult:
    """What `export_weights` wrote: the file, its size and the source's, the tensor count."""

    path: Path
    bytes: int
    source_bytes: int
    tensors: int
    dtype: str


def export_weights(checkpoint: str | Path, out: str | Path, *, half: bool = False) -> ExportResult:
    """Write the weights, class names and config of `checkpoint` to `out` (float16 if `half`)."""
    source, path = Path(checkpoint), Path(out)
    if path.exists() and path.resolve() == source.resolve():
        raise CheckpointError(
            f"export would overwrite its own input {source}; give another output file "
            "(e.g. model_weights.pth)."
        )
    data = load_checkpoint(source)
    weights = weights_of(data)
    if not weights:
        raise CheckpointError(f"Checkpoint {source} holds no weight tensors; nothing to export.")
    if half:
        # integer buffers (BatchNorm's num_batches_tracked) keep their dtype
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    save_checkpoint({"state_dict": weights, "meta": _meta(data, source, half)}, path)
    return ExportResult(
        path,
        path.stat().st_size,
        source.stat().st_size,
        len(weights),
        "float16" if half else "as trained",
    )


def _meta(data: dict[str, Any], source: Path, half: bool) -> dict[str, Any]:
    raw = data.get("meta")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    kept: dict[str, Any] = {k: meta[k] for k in ("CLASSES", "dataset_meta", "config") if k in meta}
    return {
        **kept,
        "detcli_version": __version__,
        "trained_with": meta.get("detcli_version"),
        "exported_from": source.name,
        "iter": meta.get("iter"),
        "epoch": meta.get("epoch"),
        "dtype": "float16" if half else "as trained",
        "weights_only": True,
    }
