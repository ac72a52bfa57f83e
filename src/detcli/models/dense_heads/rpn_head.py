"""RPNHead: objectness and box deltas for every anchor, its training loss, and proposals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.dense_heads.anchor_targets import anchor_targets
from detcli.models.losses import CrossEntropyLoss, L1Loss
from detcli.models.run_cfgs import ProposalCfg, StageTrainCfg
from detcli.models.shapes import UNWIRED, FeatureMaps, Wiring
from detcli.models.task_modules.anchor_generator import AnchorGenerator
from detcli.models.task_modules.bbox_coder import DeltaXYWHBBoxCoder
from detcli.models.task_modules.nms import nms_per_image, top_per_image
from detcli.registry import MODELS, Model


@MODELS.register()
class RPNHead(nn.Module):
    """A 3x3 conv shared over levels, then 1x1 convs for objectness and deltas per anchor.

    `train_cfg` (assigner, sampler, allowed_border, pos_weight) and `test_cfg` (proposal
    settings) are the detector's `train_cfg.rpn` / `test_cfg.rpn`, read at the config edge
    (detcli.model_config). `in_channels` may be left out: the detector takes it from the neck.
    """

    def __init__(
        self,
        anchor_generator: Model[AnchorGenerator],
        in_channels: int | None = None,
        feat_channels: int = 256,
        num_convs: int = 1,
        bbox_coder: Model[DeltaXYWHBBoxCoder] | None = None,
        loss_cls: Model[nn.Module] | None = None,
        loss_bbox: Model[nn.Module] | None = None,
        reg_decoded_bbox: bool = False,
        train_cfg: StageTrainCfg | None = None,
        test_cfg: ProposalCfg | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        self.prior_generator = anchor_generator
        self.bbox_coder = bbox_coder or DeltaXYWHBBoxCoder()
        self.loss_cls = loss_cls or CrossEntropyLoss(use_sigmoid=True)
        self.loss_bbox = loss_bbox or L1Loss()
        self.reg_decoded_bbox = reg_decoded_bbox
        if getattr(self.loss_bbox, "needs_decoded_boxes", False) and not reg_decoded_bbox:
            raise ModelError(
                f"RPNHead: {type(self.loss_bbox).__name__} compares boxes, so set "
                "rpn_head.reg_decoded_bbox: true."
            )
        self.use_sigmoid = bool(getattr(self.loss_cls, "use_sigmoid", False))
        # One foreground class; softmax adds a background score.
        self.cls_out_channels = 1 if self.use_sigmoid else 2
        self.num_anchors = self.prior_generator.num_base_anchors
        if train_cfg is not None and train_cfg.sampler.add_gt_as_proposals:
            raise ModelError(
                "model.train_cfg.rpn.sampler.add_gt_as_proposals must be false: the RPN "
                "trains anchors, and GT boxes are not anchors."
            )
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg or ProposalCfg()
        self.feat_channels = feat_channels
        self.num_convs = num_convs
        self.init_cfg = init_cfg
        self._ids_cache: tuple[tuple[object, ...], Tensor, Tensor] | None = None
        self.in_channels: int | None = None
        if in_channels is not None:
            self._build(in_channels)

    def wire(self, inputs: FeatureMaps, wiring: Wiring) -> None:
        """Take `in_channels` from the maps it reads (or check it); check the anchor strides."""
        channels = inputs.uniform_channels
        if channels is None:
            wiring.report(
                "in_channels",
                f"{inputs.source} outputs levels with {list(inputs.channels)} channels, but the "
                "RPN shares one conv over all levels; put a neck (FPN) in front of it.",
            )
            return
        why = f"{inputs.source} outputs {channels} channels"
        in_channels = wiring.agree("in_channels", self.in_channels, channels, why)
        if self.in_channels is None:
            self._build(in_channels)
        anchor_strides = [s[0] for s in self.prior_generator.strides]
        if anchor_strides != list(inputs.strides):
            wiring.report(
                ("anchor_generator", "strides"),
                f"anchor strides are {anchor_strides}, but {inputs.source} outputs levels with "
                f"strides {list(inputs.strides)}; set strides: {list(inputs.strides)} "
                "(one per level).",
            )

    def _build(self, in_channels: int) -> None:
        self.in_channels = in_channels
        feat_channels = self.feat_channels
        convs: list[nn.Module] = []
        for i in range(self.num_convs):
            convs += [
                nn.Conv2d(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1),
                nn.ReLU(inplace=True),
            ]
        self.rpn_conv = nn.Sequential(*convs)
        self.rpn_cls = nn.Conv2d(feat_channels, self.num_anchors * self.cls_out_channels, 1)
        self.rpn_reg = nn.Conv2d(feat_channels, self.num_anchors * 4, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:  # always: every conv here is built with a bias
                    nn.init.zeros_(m.bias)

    def forward(self, feats: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: scores (B, A * C, H, W) and deltas (B, A * 4, H, W)."""
        if self.in_channels is None:
            raise ModelError(UNWIRED.format(part="RPNHead"))
        scores, deltas = [], []
        for x in feats:
            x = self.rpn_conv(x)
            scores.append(self.rpn_cls(x))
            deltas.append(self.rpn_reg(x))
        return scores, deltas

    def _flat(self, maps: Sequence[Tensor], width: int) -> Tensor:
        """(B, A * width, H, W) per level -> (B, sum(H * W * A), width), the anchors' order."""
        return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, width) for m in maps], 1)

    def loss(
        self,
        scores: Sequence[Tensor],
        deltas: Sequence[Tensor],
        gt_bboxes: Sequence[Tensor],
        img_hw: Tensor,
        pad_hw: Tensor,
        gt_bboxes_ignore: Sequence[Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """`loss_rpn_cls` and `loss_rpn_bbox`, normalised by the number of sampled anchors.

        `img_hw` / `pad_hw` (B, 2): each image's size before padding and its own padded size.
        """
        if self.train_cfg is None:
            raise ModelError(
                "RPNHead cannot train without model.train_cfg.rpn (assigner, sampler)."
            )
        sizes = [(int(s.shape[-2]), int(s.shape[-1])) for s in scores]
        anchors = self.prior_generator.flat_anchors(sizes, scores[0].device)
        valid = self.prior_generator.flat_valid_flags(sizes, pad_hw)
        t = anchor_targets(
            anchors,
            valid,
            img_hw,
            gt_bboxes,
            None,
            gt_bboxes_ignore,
            self.train_cfg,
            num_classes=1,
            encode=not self.reg_decoded_bbox,
            coder=self.bbox_coder,
        )
        # gather, not indexing: its backward is one scatter-add (indexing's sorts first).
        c = self.cls_out_channels
        cls = self._flat(scores, c).gather(1, t.inds[..., None].expand(-1, -1, c))
        loss_cls = self.loss_cls(
            cls.flatten(0, 1),
            t.labels.flatten(),
            t.label_weights.flatten(),
            avg_factor=t.num_samples,
        )
        pred = self._flat(deltas, 4).gather(1, t.pos_inds[..., None].expand(-1, -1, 4))
        if self.reg_decoded_bbox:
            pred = self.bbox_coder.decode(anchors[t.pos_inds], pred)
        loss_bbox = self.loss_bbox(
            pred.flatten(0, 1),
            t.bbox_targets.flatten(0, 1),
            t.bbox_weights.reshape(-1, 1),
            avg_factor=t.num_samples,
        )
        return {"loss_rpn_cls": loss_cls, "loss_rpn_bbox": loss_bbox}

    def _level_and_image_ids(
        self, counts: list[int], num_imgs: int, device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """Level and image index of every candidate proposal, image-major (cached per layout)."""
        key = (tuple(counts), num_imgs, str(device))
        if self._ids_cache is None or self._ids_cache[0] != key:
            levels = torch.arange(len(counts), device=device).repeat_interleave(
                torch.tensor(counts, device=device)
            )
            img_ids = torch.arange(num_imgs, device=device).repeat_interleave(sum(counts))
            self._ids_cache = (key, levels.repeat(num_imgs), img_ids)
        return self._ids_cache[1], self._ids_cache[2]

    @torch.no_grad()
    def proposals(
        self,
        scores: Sequence[Tensor],
        deltas: Sequence[Tensor],
        img_hw: Tensor,
        cfg: ProposalCfg | None = None,
    ) -> list[Tensor]:
        """Per image (K, 5) proposals `x1, y1, x2, y2, score`, best first, batched over images."""
        cfg = cfg or self.test_cfg
        sizes = [(int(s.shape[-2]), int(s.shape[-1])) for s in scores]
        num_imgs = scores[0].shape[0]
        device = scores[0].device
        anchors = self.prior_generator.grid_anchors(sizes, device)
        level_scores, level_anchors, level_deltas = [], [], []
        for s, d, a in zip(scores, deltas, anchors, strict=True):
            s = s.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels).float()
            obj = s[..., 0].sigmoid() if self.use_sigmoid else s.softmax(-1)[..., 0]
            d = d.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4)
            if 0 < cfg.nms_pre < obj.shape[1]:  # the best nms_pre anchors of this level
                obj, idx = obj.topk(cfg.nms_pre, dim=1)
                d = torch.gather(d, 1, idx[..., None].expand(-1, -1, 4))
                a = a[idx]
            else:
                a = a.expand(num_imgs, -1, -1)
            level_scores.append(obj)
            level_anchors.append(a)
            level_deltas.append(d)
        # Decoding is elementwise: one call for all levels launches a fifth of the kernels.
        boxes = self.bbox_coder.decode(
            torch.cat(level_anchors, 1), torch.cat(level_deltas, 1), max_shape=img_hw[:, None, :]
        ).reshape(-1, 4)
        obj = torch.cat(level_scores, 1).reshape(-1)
        levels, img_ids = self._level_and_image_ids(
            [x.shape[1] for x in level_scores], num_imgs, device
        )
        wh = boxes[:, 2:] - boxes[:, :2]
        # Boxes too small go to an extra image that nobody reads, in a group of their own
        # (they suppress nothing): dropping them by a mask would cost a host wait.
        small = (wh <= cfg.min_bbox_size).any(1)
        levels = torch.where(small, len(level_scores), levels)
        img_ids = torch.where(small, num_imgs, img_ids)
        keep = nms_per_image(boxes, obj, levels, num_imgs, cfg.nms.iou_threshold)
        keeps = top_per_image(keep, img_ids[keep], num_imgs + 1, cfg.max_per_img)[:num_imgs]
        return [torch.cat([boxes[k], obj[k, None]], 1) for k in keeps]
