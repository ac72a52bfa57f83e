"""TwoStageDetector / FasterRCNN / MaskRCNN / CascadeRCNN: backbone -> neck -> RPN proposals ->
RoI head (boxes, and masks with a mask head)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.data_preprocessor import DetDataPreprocessor
from detcli.models.dense_heads.rpn_head import RPNHead
from detcli.models.detectors.tta import aug_test
from detcli.models.meta import img_hw, pad_hw
from detcli.models.roi_heads.cascade_roi_head import CascadeRoIHead
from detcli.models.roi_heads.standard_roi_head import StandardRoIHead
from detcli.models.run_cfgs import ProposalCfg
from detcli.models.shapes import FeatureMaps, Wiring
from detcli.models.weight_init import init_weights
from detcli.registry import MODELS, Model
from detcli.structures import Detections, ImgMeta, InstanceMasks


class TwoStageDetector(nn.Module):
    """Backbone -> neck -> RPN proposals -> RoI head; each part is given built.

    Shapes flow at construction: the neck is wired from the backbone's feature maps, the RPN
    and RoI heads from the neck's, so `in_channels`, `featmap_strides`, ... may be left out;
    given values that disagree are reported together (`WiringError`, one line per key).
    `train_proposals` is `train_cfg.rpn_proposal` (default: the RPN's test-time settings).
    """

    needs_mask_head: ClassVar[bool] = False  # MaskRCNN: a RoI head without masks is an error

    def __init__(
        self,
        *,
        backbone: Model[nn.Module],
        neck: Model[nn.Module] | None = None,
        rpn_head: Model[RPNHead],
        roi_head: Model[StandardRoIHead | CascadeRoIHead],
        train_proposals: ProposalCfg | None = None,
        data_preprocessor: Model[DetDataPreprocessor] | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.rpn_head = rpn_head
        self.roi_head = roi_head
        # Training proposals default to the test-time settings, as in mmdet.
        self.proposal_cfg = train_proposals or rpn_head.test_cfg
        self.init_cfg = init_cfg
        # 3.x configs normalise and pad in the model; 2.x pipelines already did (None).
        self.data_preprocessor = data_preprocessor
        if self.needs_mask_head and not self.with_mask:
            raise ModelError(
                f"{type(self).__name__} needs model.roi_head.mask_roi_extractor and "
                "model.roi_head.mask_head (see configs/_base_/models/mask_rcnn_r50_fpn.yaml); "
                "without them use FasterRCNN."
            )
        wire_parts(
            self.backbone, [("neck", self.neck), ("rpn_head", rpn_head), ("roi_head", roi_head)]
        )

    @property
    def with_mask(self) -> bool:
        """Whether the RoI head predicts masks (`Detections.masks`)."""
        return bool(getattr(self.roi_head, "with_mask", False))

    @property
    def num_classes(self) -> int:
        """Object classes the detector predicts (from the box head)."""
        return int(self.roi_head.num_classes)

    def init_weights(self) -> None:
        """Apply every part's `init_cfg` (pretrained backbone weights, fills), before training."""
        init_weights(self)

    def extract_feat(self, img: Tensor) -> list[Tensor]:
        """Backbone then neck feature maps, finest first."""
        feats = self.backbone(img)
        return list(self.neck(feats) if self.neck is not None else feats)

    def forward(
        self,
        img: Tensor | Sequence[Tensor],
        img_metas: Sequence[ImgMeta] | Sequence[Sequence[ImgMeta]],
        gt_bboxes: Sequence[Tensor] | None = None,
        gt_labels: Sequence[Tensor] | None = None,
        gt_bboxes_ignore: Sequence[Tensor] | None = None,
        gt_masks: Sequence[InstanceMasks] | None = None,
        return_loss: bool = True,
        rescale: bool = True,
    ) -> dict[str, Tensor] | list[Detections]:
        """Losses for a batch (`return_loss`), else detections per image (original pixels).

        With a `data_preprocessor`, it normalises and pads `img` (every view) first.
        `gt_masks` trains a mask head; a detector without one ignores them.
        """
        if self.data_preprocessor is not None:
            img, img_metas = self.data_preprocessor(img, img_metas)
        if return_loss:
            if gt_bboxes is None or gt_labels is None:
                raise ModelError(
                    "training needs gt_bboxes and gt_labels in the batch (Collect keys)."
                )
            return self.forward_train(
                img,  # type: ignore[arg-type]
                img_metas,  # type: ignore[arg-type]
                gt_bboxes,
                gt_labels,
                gt_bboxes_ignore,
                gt_masks,
            )
        if isinstance(img, Tensor):
            return self.simple_test(img, img_metas, rescale=rescale)  # type: ignore[arg-type]
        return self.aug_test(list(img), img_metas, rescale=rescale)  # type: ignore[arg-type]

    def forward_train(
        self,
        img: Tensor,
        img_metas: Sequence[ImgMeta],
        gt_bboxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
        gt_bboxes_ignore: Sequence[Tensor] | None = None,
        gt_masks: Sequence[InstanceMasks] | None = None,
    ) -> dict[str, Tensor]:
        """`loss_rpn_cls`, `loss_rpn_bbox`, `loss_cls`, `loss_bbox` (scalars), `acc` (logged),
        and `loss_mask` with a mask head."""
        batch_hw = (int(img.shape[-2]), int(img.shape[-1]))
        sizes = img_hw(img_metas, batch_hw, img.device)
        gt_bboxes = [b.to(img.device, torch.float32) for b in gt_bboxes]
        gt_labels = [lab.to(img.device, torch.long) for lab in gt_labels]
        if gt_bboxes_ignore is not None:
            gt_bboxes_ignore = [b.to(img.device, torch.float32) for b in gt_bboxes_ignore]
        feats = self.extract_feat(img)
        scores, deltas = self.rpn_head(feats)
        losses = self.rpn_head.loss(
            scores,
            deltas,
            gt_bboxes,
            sizes,
            pad_hw(img_metas, batch_hw, img.device),
            gt_bboxes_ignore,
        )
        proposals = self.rpn_head.proposals(scores, deltas, sizes, self.proposal_cfg)
        args = (feats, proposals, gt_bboxes, gt_labels, gt_bboxes_ignore, sizes)
        if self.with_mask:
            losses.update(self.roi_head.loss(*args, gt_masks=gt_masks))
        else:
            losses.update(self.roi_head.loss(*args))
        return losses

    def simple_test(
        self, img: Tensor, img_metas: Sequence[ImgMeta], rescale: bool = True
    ) -> list[Detections]:
        """Detections per image; with `rescale`, in original pixels (flip and resize undone)."""
        sizes = img_hw(img_metas, (int(img.shape[-2]), int(img.shape[-1])), img.device)
        feats = self.extract_feat(img)
        scores, deltas = self.rpn_head(feats)
        proposals = self.rpn_head.proposals(scores, deltas, sizes)
        return self.roi_head.predict(feats, proposals, sizes, img_metas, rescale=rescale)

    def aug_test(
        self, imgs: Sequence[Tensor], img_metas: Sequence[Sequence[ImgMeta]], rescale: bool = True
    ) -> list[Detections]:
        """Test-time augmentation: `imgs[v]` is view v (a scale or flip) of the batch.

        Detections are merged over views in original image pixels (mmdet's aug_test).
        """
        if len(imgs) == 1:
            return self.simple_test(imgs[0], img_metas[0], rescale=rescale)
        if not rescale:
            raise ModelError(
                "test-time augmentation merges views in original image pixels; it cannot "
                "return boxes in the pixels of one view (rescale=False)."
            )
        return aug_test(self, imgs, img_metas)


@MODELS.register()
class FasterRCNN(TwoStageDetector):
    """Faster R-CNN: RPN + StandardRoIHead (mmdet config keys)."""


@MODELS.register()
class MaskRCNN(TwoStageDetector):
    """Mask R-CNN: Faster R-CNN whose RoI head also has a mask branch (mmdet config keys)."""

    needs_mask_head = True


@MODELS.register()
class CascadeRCNN(TwoStageDetector):
    """Cascade R-CNN: RPN + CascadeRoIHead (mmdet config keys)."""


def wire_parts(backbone: nn.Module, parts: Sequence[tuple[str, nn.Module | None]]) -> None:
    """Wire each part from the feature maps of the part before it, and raise every mismatch.

    A part without `wire` (a plugin's) is used as configured; after it, shapes are unknown and
    the parts downstream need their own `in_channels`.
    """
    maps: FeatureMaps | None = getattr(backbone, "feature_maps", None)
    wiring = Wiring()
    for name, part in parts:
        if part is None:
            continue
        wire = getattr(part, "wire", None)
        if maps is None or wire is None:
            maps = None
            continue
        out = wire(maps, wiring.child(name))
        if isinstance(out, FeatureMaps):  # a neck; heads output no maps for the next part
            maps = out
    wiring.raise_problems()
