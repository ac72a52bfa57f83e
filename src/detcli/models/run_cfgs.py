"""The detector's `train_cfg` / `test_cfg` sections, read into typed settings with clear errors.

These are plain mappings in the config (mmdet's shape), so no signature describes them; an
unknown or misspelled key here would otherwise be ignored in silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from detcli.errors import ModelError
from detcli.registry import MODELS
from detcli.suggest import did_you_mean

T = TypeVar("T")

NMS_TYPES = ("nms",)


@dataclass(frozen=True)
class NmsCfg:
    """`nms: {type: nms, iou_threshold: 0.7}`; class_agnostic merges classes (RoI head only)."""

    type: str = "nms"
    iou_threshold: float = 0.5
    class_agnostic: bool = False


@dataclass(frozen=True)
class ProposalCfg:
    """RPN proposals: `train_cfg.rpn_proposal` and `test_cfg.rpn`."""

    nms_pre: int = 1000  # best-scored anchors kept per level before NMS
    max_per_img: int = 1000  # proposals kept per image after NMS
    nms: NmsCfg = NmsCfg(iou_threshold=0.7)
    min_bbox_size: float = 0  # proposals not wider and taller than this are dropped


@dataclass(frozen=True)
class RCNNTestCfg:
    """`test_cfg.rcnn`: final detections per image."""

    score_thr: float = 0.05
    nms: NmsCfg = NmsCfg(iou_threshold=0.5)
    max_per_img: int = 100
    min_bbox_size: float = 0  # boxes narrower or lower than this are dropped (torchvision: 0.01)


@dataclass(frozen=True)
class StageTrainCfg:
    """`train_cfg.rpn` / `train_cfg.rcnn`: the built assigner and sampler and target settings."""

    assigner: Any
    sampler: Any
    allowed_border: float = (
        -1
    )  # RPN: anchors further outside the image are not trained; -1 keeps all
    pos_weight: float = -1  # weight of a positive in the classification loss; -1 means 1
    debug: bool = False


def read_cfg(cls: type[T], cfg: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass `cls` from a config mapping, rejecting unknown keys with near names."""
    if cfg is None:
        return cls()
    if not isinstance(cfg, Mapping):
        raise ModelError(f"{where} must be a mapping, got {cfg!r}.")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in cfg.items():
        if key not in known:
            raise ModelError(
                f"{where} has no setting {key!r}.{did_you_mean(key, known)} "
                f"It accepts: {', '.join(known)}."
            )
        values[key] = value
    if "nms" in values:
        values["nms"] = read_nms(values["nms"], f"{where}.nms")
    return cls(**values)


def read_nms(cfg: Any, where: str) -> NmsCfg:
    """An `nms:` mapping as NmsCfg; only `type: nms` exists (no compiled ops beyond torchvision)."""
    nms = read_cfg(NmsCfg, cfg, where)
    if nms.type not in NMS_TYPES:
        raise ModelError(
            f"{where}.type is {nms.type!r}; detcli supports {', '.join(NMS_TYPES)} "
            "(torchvision's batched NMS)."
        )
    return nms


def read_stage_train_cfg(cfg: Mapping[str, Any] | None, where: str) -> StageTrainCfg:
    """`train_cfg.rpn` or `train_cfg.rcnn` with its assigner and sampler built from MODELS."""
    if not isinstance(cfg, Mapping) or "assigner" not in cfg or "sampler" not in cfg:
        raise ModelError(
            f"{where} needs an `assigner` and a `sampler` (e.g. MaxIoUAssigner, RandomSampler) "
            "to train; see configs/_base_/models/faster_rcnn_r50_fpn.yaml."
        )
    values = dict(cfg)
    values["assigner"] = MODELS.build(cfg["assigner"])
    values["sampler"] = MODELS.build(cfg["sampler"])
    return read_cfg(StageTrainCfg, values, where)
