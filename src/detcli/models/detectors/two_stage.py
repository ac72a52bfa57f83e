"""TwoStageDetector / FasterRCNN: backbone -> neck -> RPN proposals -> RoI head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.detectors.tta import aug_test
from detcli.models.meta import img_hw, pad_hw
from detcli.models.run_cfgs import ProposalCfg, read_cfg
from detcli.registry import MODELS
from detcli.structures import Detections, ImgMeta


class TwoStageDetector(nn.Module):
    """mmdet's two-stage detector; `train_cfg` / `test_cfg` sections go to the heads using them."""

    def __init__(
        self,
        backbone: dict[str, Any],
        rpn_head: dict[str, Any],
        roi_head: dict[str, Any],
        neck: dict[str, Any] | None = None,
        train_cfg: dict[str, Any] | None = None,
        test_cfg: dict[str, Any] | None = None,
        init_cfg: dict[str, Any] | None = None,
        data_preprocessor: dict[str, Any] | None = None,
    ):
        super().__init__()
        train_cfg = dict(train_cfg or {})
        test_cfg = dict(test_cfg or {})
        _only_keys(train_cfg, ("rpn", "rpn_proposal", "rcnn"), "model.train_cfg")
        _only_keys(test_cfg, ("rpn", "rcnn"), "model.test_cfg")
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.rpn_head = MODELS.build(
            {**rpn_head, "train_cfg": train_cfg.get("rpn"), "test_cfg": test_cfg.get("rpn")}
        )
        self.roi_head = MODELS.build(
            {**roi_head, "train_cfg": train_cfg.get("rcnn"), "test_cfg": test_cfg.get("rcnn")}
        )
        # Training proposals default to the test-time settings, as in mmdet.
        self.proposal_cfg = (
            read_cfg(ProposalCfg, train_cfg["rpn_proposal"], "model.train_cfg.rpn_proposal")
            if "rpn_proposal" in train_cfg
            else self.rpn_head.test_cfg
        )
        self.init_cfg = init_cfg
        # 3.x configs normalise and pad in the model; 2.x pipelines already did (None).
        self.data_preprocessor = (
            MODELS.build(data_preprocessor) if data_preprocessor is not None else None
        )

    @property
    def num_classes(self) -> int:
        """Object classes the detector predicts (from the box head)."""
        return int(self.roi_head.num_classes)

    def init_weights(self) -> None:
        """Load pretrained backbone weights named by `backbone.init_cfg` (call before training)."""
        init = getattr(self.backbone, "init_weights", None)
        if init is not None:
            init()

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
        return_loss: bool = True,
        rescale: bool = True,
    ) -> dict[str, Tensor] | list[Detections]:
        """Losses for a batch (`return_loss`), else detections per image (original pixels).

        With a `data_preprocessor`, it normalises and pads `img` (every view) first.
        """
        if self.data_preprocessor is not None:
            img, img_metas = self.data_preprocessor(img, img_metas)
        if return_loss:
            if gt_bboxes is None or gt_labels is None:
                raise ModelError(
                    "training needs gt_bboxes and gt_labels in the batch (Collect keys)."
                )
            return self.forward_train(img, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore)  # type: ignore[arg-type]
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
    ) -> dict[str, Tensor]:
        """`loss_rpn_cls`, `loss_rpn_bbox`, `loss_cls`, `loss_bbox` (scalars) and `acc` (logged)."""
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
        losses.update(self.roi_head.loss(feats, proposals, gt_bboxes, gt_labels, gt_bboxes_ignore))
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


def _only_keys(cfg: dict[str, Any], allowed: Sequence[str], where: str) -> None:
    extra = [k for k in cfg if k not in allowed]
    if extra:
        raise ModelError(f"{where} has unknown sections {extra}; it takes {', '.join(allowed)}.")
