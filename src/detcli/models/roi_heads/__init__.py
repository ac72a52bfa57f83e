"""RoI heads (MODELS registry): RoI feature extractors, box and mask heads, standard and cascade
heads."""

from detcli.models.roi_heads.bbox_head import Shared2FCBBoxHead
from detcli.models.roi_heads.cascade_roi_head import CascadeRoIHead
from detcli.models.roi_heads.fcn_mask_head import FCNMaskHead
from detcli.models.roi_heads.mask_paste import paste_masks
from detcli.models.roi_heads.roi_extractor import RoIAlign, RoIPool, SingleRoIExtractor
from detcli.models.roi_heads.standard_roi_head import StandardRoIHead

__all__ = [
    "CascadeRoIHead",
    "FCNMaskHead",
    "RoIAlign",
    "RoIPool",
    "Shared2FCBBoxHead",
    "SingleRoIExtractor",
    "StandardRoIHead",
    "paste_masks",
]
