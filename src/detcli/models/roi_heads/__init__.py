"""RoI heads (MODELS registry): RoI feature extractors, box heads, standard and cascade heads."""

from detcli.models.roi_heads.bbox_head import Shared2FCBBoxHead
from detcli.models.roi_heads.cascade_roi_head import CascadeRoIHead
from detcli.models.roi_heads.roi_extractor import RoIAlign, RoIPool, SingleRoIExtractor
from detcli.models.roi_heads.standard_roi_head import StandardRoIHead

__all__ = [
    "CascadeRoIHead",
    "RoIAlign",
    "RoIPool",
    "Shared2FCBBoxHead",
    "SingleRoIExtractor",
    "StandardRoIHead",
]
