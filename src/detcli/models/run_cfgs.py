"""The heads' training and test settings: mmdet's `train_cfg` / `test_cfg` sections, typed.

These are plain mappings in the config (mmdet's shape), so no signature describes them; an
unknown or misspelled key here would otherwise be ignored in silence. The config edge
(`detcli.model_config`) reads them and hands each head its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from detcli.errors import ModelError
from detcli.suggest import did_you_mean

if TYPE_CHECKING:
    from torch import Tensor

    from detcli.models.task_modules.assign_result import BatchAssignResult
    from detcli.models.task_modules.random_sampler import BatchSample

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
    mask_thr_binary: float = 0.5  # a mask head's pasted probability at least this is the object
    mask_paste: str = "bilinear"  # or "torchvision": its paste, pixel for pixel (its checkpoints)


class Assigner(Protocol):
    """Matches candidate boxes to GT boxes for a padded batch (MaxIoUAssigner)."""

    def assign_batch(
        self,
        bboxes: Tensor,
        valid: Tensor | None,
        gt_bboxes: Tensor,
        gt_valid: Tensor | None,
        gt_labels: Tensor | None = None,
        gt_bboxes_ignore: Tensor | None = None,
        ignore_valid: Tensor | None = None,
    ) -> BatchAssignResult: ...


class Sampler(Protocol):
    """Keeps some of the assigned candidates of each image (RandomSampler)."""

    add_gt_as_proposals: bool

    def sample_batch(self, gt_inds: Tensor) -> BatchSample: ...


@dataclass(frozen=True)
class StageTrainCfg:
    """`train_cfg.rpn` / `train_cfg.rcnn`: the built assigner and sampler and target settings."""

    assigner: Assigner
    sampler: Sampler
    allowed_border: float = (
        -1
    )  # RPN: anchors further outside the image are not trained; -1 keeps all
    pos_weight: float = -1  # weight of a positive in the classification loss; -1 means 1
    mask_size: int | tuple[int, int] = 28  # RCNN with a mask head: side of its mask targets
    soft_mask_target: bool = False  # keep the resized GT masks' fractions, not 0/1 targets
    debug: bool = False  # mmdet's; has no effect here (`detcli check` says so)


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
