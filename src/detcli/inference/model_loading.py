"""A trained detector ready for inference: config + checkpoint, checked, on a device.

Everything that can be wrong with the pair is reported before any image is read: a missing or
corrupt file, weights for a different model (the keys that do not fit are named), and class
counts that disagree between the config, its dataset and the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from detcli.config.settings import RunSettings
from detcli.data.classes import NUM_CLASSES_KEY, check_class_count, config_classes
from detcli.engine.checkpoint import (
    fit_checkpoint,
    load_checkpoint,
    weights_of,
)
from detcli.errors import CheckpointError, ConfigError

SHOWN = 8  # keys listed per kind in a "does not fit" message


@dataclass(frozen=True)
class Precision:
    """Inference numerics: `bf16` autocast (CPU or CUDA), `fp16` autocast (CUDA only),
    `channels_last` memory format for the convolutions."""

    bf16: bool = False
    fp16: bool = False
    channels_last: bool = False

    def check(self, device: torch.device) -> None:
        """Refuse combinations the device cannot run, before any work."""
        if self.bf16 and self.fp16:
            raise ConfigError("--bf16 and --fp16 exclude each other; choose one.")
        if self.fp16 and device.type != "cuda":
            raise ConfigError(
                "--fp16 runs on CUDA GPUs only (CPU float16 kernels are missing or slow); on "
                "the CPU use --bf16 (and --channels-last), or pass --device cuda on a GPU machine."
            )

    def autocast(self, device: torch.device) -> Callable[[], Any] | None:
        """The per-batch autocast context factory `detcli.engine.inference` takes, or None."""
        dtype = torch.bfloat16 if self.bf16 else torch.float16 if self.fp16 else None
        if dtype is None:
            return None
        return lambda: torch.autocast(device_type=device.type, dtype=dtype)

    def describe(self) -> str:
        """`fp32`, `bf16 + channels-last`, ..."""
        parts = ["bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"]
        if self.channels_last:
            parts.append("channels-last")
        return " + ".join(parts)


class ChannelsLast(nn.Module):
    """Feeds the wrapped detector channels-last images (each view of a TTA batch too)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, img: Any, img_metas: Any, return_loss: bool = False) -> Any:
        if isinstance(img, torch.Tensor):
            img = img.contiguous(memory_format=torch.channels_last)
        else:
            img = [v.contiguous(memory_format=torch.channels_last) for v in img]
        return self.model(img=img, img_metas=img_metas, return_loss=return_loss)


def checkpoint_classes(checkpoint: dict[str, Any]) -> list[str] | None:
    """Class names a checkpoint was trained with: `meta.CLASSES` (detcli, mmdet 2.x) or
    `meta.dataset_meta.classes` (mmdet 3.x), if recorded."""
    from detcli.models.checkpoint_import.mmdet import mmdet_classes

    classes: list[str] | None = mmdet_classes(checkpoint)
    return classes


def _class_name_error(
    path: Path, source: str, trained: Sequence[str], wanted: Sequence[str]
) -> CheckpointError:
    diff = [
        f"{i}: {a!r} vs {b!r}"
        for i, (a, b) in enumerate(zip(trained, wanted, strict=True))
        if a != b
    ]
    return CheckpointError(
        f"Checkpoint {path} ({source}) was trained on other classes than the config's dataset "
        f"has (same count, {len(wanted)}, but different names or order; index: checkpoint vs "
        f"config: {'; '.join(diff[:SHOWN])}{' ...' if len(diff) > SHOWN else ''}). Its class "
        "rows would be scored under the wrong names. Set the config's `classes` (2.x) or "
        "`metainfo.classes` (3.x) to the checkpoint's list "
        f"{list(trained)[:SHOWN]}{' ...' if len(trained) > SHOWN else ''}, or fine-tune on your "
        "classes with `detcli train --load-from` (rows are taken by class name)."
    )


def _listed(keys: Sequence[str]) -> str:
    shown = "; ".join(keys[:SHOWN])
    return shown + (f"; ... ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else "")


def _class_count_error(
    path: Path, num_classes: int, trained: int, names: Sequence[str] | None, where: str
) -> CheckpointError:
    listed = f" {list(names)}" if names else ""
    return CheckpointError(
        f"Checkpoint {path} was trained for {trained} classes{listed}, but the config's model "
        f"predicts {num_classes} ({NUM_CLASSES_KEY}; {where}). Evaluate with the config the "
        f"checkpoint was trained with (its work dir's config.yaml), or set num_classes and "
        f"`classes` to match it (--set {NUM_CLASSES_KEY}={trained})."
    )


def load_detector(
    settings: RunSettings,
    checkpoint: str | Path,
    *,
    device: torch.device,
    dataset_classes: Sequence[str] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The config's model with the checkpoint's weights, in eval mode on `device`.

    Returns (model, checkpoint meta). CheckpointError when the file is missing, unreadable
    or does not fit the model; ModelError when the config's classes and model disagree.
    """
    from detcli.model_config import build_model

    path = Path(checkpoint)
    data = load_checkpoint(path)
    model = build_model(settings.model)
    num_classes = getattr(model, "num_classes", None)
    check_class_count(num_classes, dataset_classes, "the config's dataset")
    fitted = fit_checkpoint(model, data, path)
    trained = fitted.classes
    wanted = list(dataset_classes) if dataset_classes is not None else config_classes(settings)
    same_count = trained is not None and wanted is not None and len(trained) == len(wanted)
    if same_count and list(trained or []) != list(wanted or []):
        raise _class_name_error(path, fitted.source, trained or [], wanted or [])
    if num_classes is not None and trained is not None and len(trained) != num_classes:
        raise _class_count_error(path, num_classes, len(trained), trained, "meta.CLASSES")
    report = fitted.report
    if not report.complete:
        cls_rows = _classifier_rows(model, data)
        if num_classes is not None and cls_rows is not None:
            key, theirs, ours = cls_rows
            trained_n = num_classes + theirs - ours
            raise _class_count_error(
                path, num_classes, trained_n, None, f"{key} has {theirs} rows, the model {ours}"
            )
        raise CheckpointError(
            f"Checkpoint {path} ({fitted.source} format) is for a different model than the "
            f"config's (model.type {settings.model.get('type')!r}): tensors loaded per part: "
            f"{report.summary()}; {report.counts()}. What does not fit:\n"
            + "\n".join(report.table(limit=SHOWN * 3))
            + "\nUse the config the checkpoint was trained with (its work dir's config.yaml), "
            "or for MMDetection/torchvision files a config with the same architecture and "
            "widths (README: Coming from MMDetection)."
        )
    model.to(device)
    model.eval()
    meta = dict(data.get("meta") or {}) if isinstance(data.get("meta"), dict) else {}
    if trained is not None:
        meta["CLASSES"] = list(trained)  # mmdet 3.x / torchvision names, where predict reads them
    meta["checkpoint_format"] = fitted.source
    return model, meta


def _classifier_rows(model: nn.Module, data: dict[str, Any]) -> tuple[str, int, int] | None:
    """(key, checkpoint rows, model rows) of a classification layer whose class count differs."""
    from detcli.models.checkpoint_import import import_weights

    own = model.state_dict()
    weights = import_weights(data, weights_of(data), own.keys()).weights
    for key, value in weights.items():
        if not key.endswith(("fc_cls.weight", "conv_cls.weight", "cls_score.weight")):
            continue
        if key.startswith("rpn_head."):
            continue  # the RPN's objectness layer counts anchors, not classes
        if key in own and own[key].shape[1:] == value.shape[1:] and own[key].shape != value.shape:
            return key, int(value.shape[0]), int(own[key].shape[0])
    return None


def prepare(model: nn.Module, precision: Precision) -> nn.Module:
    """The module to run: channels-last wrapped when asked (weights stay fp32 under autocast)."""
    return ChannelsLast(model) if precision.channels_last else model
