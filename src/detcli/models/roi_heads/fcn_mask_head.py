"""FCNMaskHead: a small fully convolutional net predicting a mask per RoI and class (Mask R-CNN).

RoI features (C, 14, 14) -> `num_convs` 3x3 conv + ReLU -> 2x upsampling (a stride-2 deconv +
ReLU by default) -> a 1x1 conv to one logit map per class (or one, `class_agnostic`): 28 x 28
logits per RoI. It trains on the positive RoIs of the box branch against the GT mask of the
instance each matched, cut to the RoI and resized to `mask_size` (mmdet's `mask_target`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.layers import ConvModule
from detcli.models.losses import CrossEntropyLoss
from detcli.models.shapes import UNWIRED, RoIFeatures, Wiring
from detcli.registry import MODELS, Model
from detcli.structures import InstanceMasks

UPSAMPLE_TYPES = ("deconv", "nearest", "bilinear", None)


@MODELS.register()
class FCNMaskHead(nn.Module):
    """mmdet's FCNMaskHead (parameter names `convs.{i}.conv`, `upsample`, `conv_logits`).

    `in_channels` and `roi_feat_size` may be left out: the mask RoI extractor gives them.
    """

    def __init__(
        self,
        num_classes: int,
        num_convs: int = 4,
        roi_feat_size: int | None = None,
        in_channels: int | None = None,
        conv_kernel_size: int = 3,
        conv_out_channels: int = 256,
        class_agnostic: bool = False,
        upsample_cfg: Mapping[str, Any] | None = None,
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] | None = None,
        loss_mask: Model[nn.Module] | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        where = "FCNMaskHead"
        if num_classes < 1:
            raise ModelError(f"{where}: num_classes must be at least 1, got {num_classes}.")
        if conv_cfg is not None and dict(conv_cfg).get("type", "Conv2d") != "Conv2d":
            raise ModelError(f"{where}: conv_cfg {dict(conv_cfg)!r}: only plain Conv2d exists.")
        if conv_kernel_size % 2 == 0:
            raise ModelError(
                f"{where}: conv_kernel_size must be odd (the convs keep the RoI size), "
                f"got {conv_kernel_size}."
            )
        upsample = dict(upsample_cfg or {"type": "deconv", "scale_factor": 2})
        kind = upsample.pop("type", None)
        if kind not in UPSAMPLE_TYPES:
            raise ModelError(
                f"{where}: upsample_cfg.type {kind!r} is not supported; use deconv, nearest, "
                "bilinear or null (carafe needs mmcv's compiled ops)."
            )
        scale = int(upsample.pop("scale_factor", 2)) if kind is not None else 1
        if upsample:
            raise ModelError(f"{where}: upsample_cfg has unknown keys {sorted(upsample)}.")
        self.num_classes = num_classes
        self.num_convs = num_convs
        self.conv_kernel_size = conv_kernel_size
        self.conv_out_channels = conv_out_channels
        self.class_agnostic = class_agnostic
        self.upsample_method = kind
        self.scale_factor = scale
        self.norm_cfg = norm_cfg
        self.loss_mask = loss_mask or CrossEntropyLoss(use_mask=True)
        if not getattr(self.loss_mask, "use_mask", True):
            raise ModelError(
                f"{where}: loss_mask scores class logits, not masks; give it `use_mask: true`."
            )
        self.init_cfg = init_cfg
        self.in_channels = in_channels
        self.roi_feat_size = roi_feat_size
        self._built = False
        if in_channels is not None and roi_feat_size is not None:
            self._build(in_channels)

    def wire(self, rois: RoIFeatures, wiring: Wiring) -> None:
        """Take `in_channels` and `roi_feat_size` from the mask RoI extractor (or check them)."""
        why = f"{rois.source} gives {rois.channels} channels"
        in_channels = wiring.agree("in_channels", self.in_channels, rois.channels, why)
        if rois.size[0] != rois.size[1]:
            wiring.report("roi_feat_size", f"the mask RoIs are pooled to {list(rois.size)}; "
                          "make roi_layer.output_size square.")  # fmt: skip
        self.roi_feat_size = wiring.agree(
            "roi_feat_size",
            self.roi_feat_size,
            rois.size[0],
            f"the mask RoI extractor pools {rois.size[0]} x {rois.size[0]}",
        )
        if not self._built:
            self._build(in_channels)

    @property
    def output_size(self) -> int:
        """Side of the predicted masks: `roi_feat_size * scale_factor` (28 in mmdet's configs)."""
        if self.roi_feat_size is None:
            raise ModelError(UNWIRED.format(part="FCNMaskHead"))
        return self.roi_feat_size * self.scale_factor

    def _build(self, in_channels: int) -> None:
        self.in_channels = in_channels
        self._built = True
        out = self.conv_out_channels
        padding = (self.conv_kernel_size - 1) // 2
        self.convs = nn.ModuleList(
            ConvModule(
                in_channels if i == 0 else out,
                out,
                self.conv_kernel_size,
                padding=padding,
                norm_cfg=self.norm_cfg,
                relu=True,
                where=f"FCNMaskHead.convs.{i}",
            )
            for i in range(self.num_convs)
        )
        last = out if self.num_convs > 0 else in_channels
        self.upsample: nn.Module | None
        if self.upsample_method == "deconv":
            scale = self.scale_factor
            self.upsample = nn.ConvTranspose2d(last, out, scale, stride=scale)
            last = out
        elif self.upsample_method is not None:
            align = None if self.upsample_method == "nearest" else False
            self.upsample = nn.Upsample(
                scale_factor=self.scale_factor, mode=self.upsample_method, align_corners=align
            )
        else:
            self.upsample = None
        self.conv_logits = nn.Conv2d(last, 1 if self.class_agnostic else self.num_classes, 1)
        self.relu = nn.ReLU(inplace=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fresh random weights, as mmdet initialises them (no-op until the layers exist)."""
        # mmdet: Kaiming (fan_out, ReLU) weights and zero biases for every conv.
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Mask logits (K, C, s, s) (agnostic: C = 1) of RoI features (K, in_channels, r, r)."""
        if not self._built:
            raise ModelError(UNWIRED.format(part="FCNMaskHead"))
        if x.shape[1] != self.in_channels:
            raise ModelError(
                f"FCNMaskHead expects RoI features with {self.in_channels} channels but gets "
                f"{x.shape[1]}; match in_channels to the mask RoI extractor's out_channels."
            )
        for conv in self.convs:
            x = conv(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == "deconv":
                x = self.relu(x)
        logits: Tensor = self.conv_logits(x)
        return logits

    def own_class(self, mask_pred: Tensor, labels: Tensor) -> Tensor:
        """(K, s, s): each RoI's logits for its class `labels` (K,) (agnostic: the one map)."""
        if self.class_agnostic:
            return mask_pred[:, 0]
        index = labels.long().reshape(-1, 1, 1, 1).expand(-1, 1, *mask_pred.shape[2:])
        return mask_pred.gather(1, index).squeeze(1)

    def get_targets(
        self,
        boxes: Sequence[Tensor],
        gt_inds: Sequence[Tensor],
        gt_masks: Sequence[InstanceMasks],
        size: tuple[int, int],
        binarize: bool = True,
    ) -> Tensor:
        """Targets (P, h, w) of the positive RoIs, image after image: GT mask `gt_inds[i][p]`
        of image i cut to RoI `boxes[i][p]` (image pixels) and resized to `size`.

        One `crop_and_resize` per image, over all its RoIs at once.
        """
        # mmdet binarises the resized masks at 0.5 unless `soft_mask_target`.
        parts = [
            masks.crop_and_resize(b, inds, size, binarize=binarize)
            for b, inds, masks in zip(boxes, gt_inds, gt_masks, strict=True)
            if b.shape[0] > 0
        ]
        if not parts:
            return torch.zeros((0, *size), device=boxes[0].device if boxes else None)
        return torch.cat([p.to(boxes[0].device, torch.float32) for p in parts])

    def loss(self, mask_pred: Tensor, targets: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """`loss_mask`: the loss of each positive RoI's own-class logits against its target."""
        if mask_pred.shape[0] == 0:  # no positives in the batch: a zero that keeps the graph
            return {"loss_mask": mask_pred.sum() * 0}
        if mask_pred.shape[2:] != targets.shape[1:]:
            raise ModelError(
                f"FCNMaskHead predicts {list(mask_pred.shape[2:])} masks but the targets are "
                f"{list(targets.shape[1:])}: set model.train_cfg.rcnn.mask_size to "
                f"{mask_pred.shape[-1]} (roi_feat_size x upsample scale_factor)."
            )
        loss: Tensor = self.loss_mask(self.own_class(mask_pred, labels), targets)
        return {"loss_mask": loss}

    def predict(self, x: Tensor, labels: Tensor) -> Tensor:
        """Mask probabilities (K, s, s) of RoI features `x` for each RoI's class `labels`."""
        return self.own_class(self(x), labels).float().sigmoid()
