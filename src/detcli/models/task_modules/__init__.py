"""Anchor generation, box coding, assignment and sampling (MODELS registry, mmdet names)."""

from detcli.models.task_modules.anchor_generator import AnchorGenerator
from detcli.models.task_modules.assign_result import AssignResult, SamplingResult
from detcli.models.task_modules.bbox_coder import DeltaXYWHBBoxCoder, clip_boxes
from detcli.models.task_modules.max_iou_assigner import MaxIoUAssigner
from detcli.models.task_modules.nms import batch_nms, top_per_image
from detcli.models.task_modules.overlaps import bbox_overlaps
from detcli.models.task_modules.random_sampler import RandomSampler

__all__ = [
    "AnchorGenerator",
    "AssignResult",
    "DeltaXYWHBBoxCoder",
    "MaxIoUAssigner",
    "RandomSampler",
    "SamplingResult",
    "batch_nms",
    "bbox_overlaps",
    "clip_boxes",
    "top_per_image",
]
