"""Faster and Mask R-CNN R50-FPN speed: detcli next to torchvision's, same run.

`--model faster_rcnn` compares with torchvision's `fasterrcnn_resnet50_fpn`, `--model mask_rcnn`
with its `maskrcnn_resnet50_fpn`; by default both, so their detcli/torchvision ratios come from
one run on one machine.

Both models get the same input (batch of 512x512 images, random GT boxes), the same class
count and the settings of configs/_base_/models/faster_rcnn_r50_fpn.yaml: RPN 256 anchors
(1/2 positive), 2000 pre-NMS per level and 1000 proposals in training, 1000/1000 at test,
NMS 0.7; RoI head 512 RoIs (1/4 positive), score 0.05, NMS 0.5, 100 detections. torchvision's
internal resize and normalisation are no-ops (min_size = max_size = 512, mean 0, std 1), its
RoIAlign samples adaptively like detcli's `sampling_ratio: 0`, and, like detcli's
`frozen_stages: 1, norm_eval: true`, its stem and first stage are frozen and its BatchNorms
stay in eval mode. torchvision starts from a copy of detcli's random weights, so both models
see the same features, proposals and detections, hence the same amount of work (no network
needed for pretrained weights); the copy is checked by mapping torchvision's weights back
with detcli's own torchvision checkpoint import.

Mask R-CNN adds configs/_base_/models/mask_rcnn_r50_fpn.yaml's mask branch on both sides:
RoIAlign 14 (adaptive sampling), four 3x3 convs, a 2x deconvolution, 28 x 28 targets from the
positive RoIs. Each GT box gets a polygon mask inside it: torchvision reads it as a uint8
(N, H, W) bitmap, detcli as BitmapMasks of the same pixels (and, in a second train row, as
PolygonMasks, how `poly2mask: false` loads COCO polygons). The memory of the mask-target step
on the same positives follows the timings (see mask_targets.py).

Timed, interleaved, median of `--repeat` rounds after warm-up:
  train step  forward + backward + SGD step on one batch (`--batch`, default 2)
  inference   one image (batch 1), no grad

    python benchmarks/model_speed.py --device cpu --repeat 5 [--model mask_rcnn]
    python benchmarks/model_speed.py --device cuda --repeat 30 [--amp]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn
from torchvision.ops import MultiScaleRoIAlign

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mask_targets import random_polygons
from mask_targets import report as mask_target_report

from detcli.config import load_config
from detcli.data.masks import BitmapMasks, PolygonMasks
from detcli.models import build_model
from detcli.models.checkpoint_import.torchvision import rename_torchvision

REPO = Path(__file__).resolve().parents[1]
MODEL_CFGS = {
    "faster_rcnn": REPO / "configs/_base_/models/faster_rcnn_r50_fpn.yaml",
    "mask_rcnn": REPO / "configs/_base_/models/mask_rcnn_r50_fpn.yaml",
}


def detcli_model(num_classes: int, model: str = "faster_rcnn") -> nn.Module:
    """The reference R50-FPN config with `num_classes` and no pretrained weights."""
    cfg = load_config(MODEL_CFGS[model]).model.to_dict()
    cfg["backbone"]["init_cfg"] = None
    cfg["roi_head"]["bbox_head"]["num_classes"] = num_classes
    if "mask_head" in cfg["roi_head"]:
        cfg["roi_head"]["mask_head"]["num_classes"] = num_classes
    return build_model(cfg)


def torchvision_model(num_classes: int, size: int, model: str = "faster_rcnn") -> nn.Module:
    """torchvision's Faster (or Mask) R-CNN with the same settings (its class count includes
    background)."""
    build, extra = fasterrcnn_resnet50_fpn, {}
    if model == "mask_rcnn":  # RoIAlign 14 sampling adaptively, as detcli's sampling_ratio: 0
        build = maskrcnn_resnet50_fpn
        extra = {"mask_roi_pool": MultiScaleRoIAlign(["0", "1", "2", "3"], 14, sampling_ratio=0)}
    net = build(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes + 1,
        min_size=size,
        max_size=size,
        rpn_pre_nms_top_n_train=2000,
        rpn_pre_nms_top_n_test=1000,
        rpn_post_nms_top_n_train=1000,
        rpn_post_nms_top_n_test=1000,
        rpn_nms_thresh=0.7,
        rpn_fg_iou_thresh=0.7,
        rpn_bg_iou_thresh=0.3,
        rpn_batch_size_per_image=256,
        rpn_positive_fraction=0.5,
        box_score_thresh=0.05,
        box_nms_thresh=0.5,
        box_detections_per_img=100,
        box_fg_iou_thresh=0.5,
        box_bg_iou_thresh=0.5,
        box_batch_size_per_image=512,
        box_positive_fraction=0.25,
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 7, sampling_ratio=0),
        image_mean=[0.0, 0.0, 0.0],
        image_std=[1.0, 1.0, 1.0],
        **extra,
    )
    for name, p in net.backbone.body.named_parameters():  # = frozen_stages: 1
        if name.startswith(("conv1.", "bn1.", "layer1.")):
            p.requires_grad_(False)
    return net


def copy_weights(ours: nn.Module, ref: nn.Module, num_classes: int) -> None:
    """Give torchvision's model detcli's weights (same architecture, other names and layouts)."""
    src = ours.state_dict()
    dst = ref.state_dict()
    renames = {
        "backbone.fpn.inner_blocks.{i}.0.": "neck.lateral_convs.{i}.conv.",
        "backbone.fpn.layer_blocks.{i}.0.": "neck.fpn_convs.{i}.conv.",
    }
    fixed = {
        "rpn.head.conv.0.0.": "rpn_head.rpn_conv.0.",
        "rpn.head.cls_logits.": "rpn_head.rpn_cls.",
        "rpn.head.bbox_pred.": "rpn_head.rpn_reg.",
        "roi_heads.box_head.fc6.": "roi_head.bbox_head.shared_fcs.0.",
        "roi_heads.box_head.fc7.": "roi_head.bbox_head.shared_fcs.1.",
        "roi_heads.mask_predictor.conv5_mask.": "roi_head.mask_head.upsample.",
    }
    renames["roi_heads.mask_head.{i}.0."] = "roi_head.mask_head.convs.{i}.conv."
    for i in range(4):
        fixed.update({k.format(i=i): v.format(i=i) for k, v in renames.items()})
    out = {}
    for key in dst:
        if key.startswith("backbone.body."):
            out[key] = src[key]
        elif key.startswith("roi_heads.box_predictor.cls_score."):
            w = src["roi_head.bbox_head.fc_cls." + key.rsplit(".", 1)[1]]
            out[key] = torch.cat([w[num_classes:], w[:num_classes]])  # background first
        elif key.startswith("roi_heads.box_predictor.bbox_pred."):
            w = src["roi_head.bbox_head.fc_reg." + key.rsplit(".", 1)[1]]
            out[key] = torch.cat([torch.zeros_like(w[:4]), w])  # an unused background slot
        elif key.startswith("roi_heads.mask_predictor.mask_fcn_logits."):
            w = src["roi_head.mask_head.conv_logits." + key.rsplit(".", 1)[1]]
            out[key] = torch.cat([torch.zeros_like(w[:1]), w])  # background's mask, unused
        else:
            prefix = next(p for p in fixed if key.startswith(p))
            out[key] = src[fixed[prefix] + key[len(prefix) :]]
    ref.load_state_dict(out)
    # The same weights, whichever way they are named: detcli's own import maps them back.
    back, _ = rename_torchvision(ref.state_dict())
    wrong = [k for k, v in src.items() if not torch.equal(back[k], v)]
    if wrong or back.keys() != src.keys():
        raise RuntimeError(f"weights differ after the copy: {wrong[:5]}")


def train_mode(model: nn.Module) -> None:
    """Train mode with every BatchNorm in eval mode (torchvision side of norm_eval)."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def random_targets(
    batch: int, size: int, num_classes: int, n: int, gen: torch.Generator
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """`n` random boxes (16 to 256 px) and labels per image."""
    boxes, labels = [], []
    for _ in range(batch):
        xy = torch.rand(n, 2, generator=gen) * (size - 32)
        wh = 16 + torch.rand(n, 2, generator=gen) * 240
        b = torch.cat([xy, (xy + wh).clamp(max=size - 1)], 1)
        boxes.append(b)
        labels.append(torch.randint(0, num_classes, (n,), generator=gen))
    return boxes, labels


class Runner:
    """Builds the two models and the steps to time, on one device."""

    def __init__(self, args: argparse.Namespace, model: str = "faster_rcnn"):
        self.device = torch.device(args.device)
        self.amp = args.amp
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.with_mask = model == "mask_rcnn"
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        self.ours = detcli_model(args.num_classes, model).to(self.device)
        self.ref = torchvision_model(args.num_classes, args.size, model)
        copy_weights(self.ours, self.ref, args.num_classes)
        self.ref.to(self.device)
        size, b = args.size, args.batch
        self.img = torch.randn(b, 3, size, size, generator=gen).to(self.device)
        self.metas: list[dict[str, Any]] = [
            {
                "img_shape": (size, size, 3),
                "pad_shape": (size, size, 3),
                "ori_shape": (size, size, 3),
                "scale_factor": [1.0, 1.0, 1.0, 1.0],
                "flip": False,
            }
            for _ in range(b)
        ]
        boxes, labels = random_targets(b, size, args.num_classes, args.boxes, gen)
        self.gt_bboxes = [x.to(self.device) for x in boxes]
        self.gt_labels = [x.to(self.device) for x in labels]
        self.ref_targets: list[dict[str, torch.Tensor]] = [
            {"boxes": x, "labels": y + 1}
            for x, y in zip(self.gt_bboxes, self.gt_labels, strict=True)
        ]
        # Masks (Mask R-CNN): one polygon per box; the same pixels as bitmaps on both sides.
        self.gt_polygons: list[PolygonMasks] = []
        self.gt_bitmaps: list[BitmapMasks] = []
        if self.with_mask:
            self.gt_polygons = [random_polygons(b, size, gen) for b in boxes]
            self.gt_bitmaps = [p.to_bitmap() for p in self.gt_polygons]
            for target, bitmap in zip(self.ref_targets, self.gt_bitmaps, strict=True):
                target["masks"] = bitmap.masks.to(self.device)
        # foreach: what CUDA picks by default; on the CPU too, so op counts match the GPU's.
        self.opt_ours = torch.optim.SGD(
            [p for p in self.ours.parameters() if p.requires_grad],
            lr=1e-4,
            momentum=0.9,
            foreach=True,
        )
        self.opt_ref = torch.optim.SGD(
            [p for p in self.ref.parameters() if p.requires_grad],
            lr=1e-4,
            momentum=0.9,
            foreach=True,
        )
        enabled = self.amp and self.device.type == "cuda"
        self.scaler_ours = torch.amp.GradScaler("cuda", enabled=enabled)
        self.scaler_ref = torch.amp.GradScaler("cuda", enabled=enabled)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            yield

    def _step(self, losses: dict[str, torch.Tensor], opt: Any, scaler: Any) -> None:
        total = sum(v for k, v in losses.items() if k.startswith("loss"))
        opt.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt)
        scaler.update()

    def train_ours(self, polygons: bool = False) -> None:
        self.ours.train()
        masks = (self.gt_polygons if polygons else self.gt_bitmaps) if self.with_mask else None
        with self.autocast():
            losses = self.ours(self.img, self.metas, self.gt_bboxes, self.gt_labels, gt_masks=masks)
        self._step(losses, self.opt_ours, self.scaler_ours)

    def train_ours_polygons(self) -> None:
        self.train_ours(polygons=True)

    def train_ref(self) -> None:
        train_mode(self.ref)
        with self.autocast():
            losses = self.ref(list(self.img), self.ref_targets)
        self._step({f"loss_{k}": v for k, v in losses.items()}, self.opt_ref, self.scaler_ref)

    @torch.no_grad()
    def infer_ours(self) -> None:
        self.ours.eval()
        with self.autocast():
            self.ours.simple_test(self.img[:1], self.metas[:1])

    @torch.no_grad()
    def infer_ref(self) -> None:
        self.ref.eval()
        with self.autocast():
            self.ref([self.img[0]])


@torch.no_grad()
def detections(run: Runner) -> tuple[int, int]:
    """How many detections each side gives on the inference image (the same weights should
    give the same count, so the inference rows time the same amount of box and mask work)."""
    run.ours.eval()
    run.ref.eval()
    with run.autocast():
        ours = run.ours.simple_test(run.img[:1], run.metas[:1])[0]
        ref = run.ref([run.img[0]])[0]
    return len(ours), int(ref["boxes"].shape[0])


def timed(fn: Callable[[], None], device: torch.device) -> float:
    """Wall time of one call, in milliseconds (synchronised on CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1000


def time_pairs(
    pairs: dict[str, tuple[Callable[[], None], Callable[[], None]]],
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, tuple[float, float]]:
    """Median ms of each (detcli, torchvision) pair, interleaved after warm-up."""
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
    for name, (ours, ref) in pairs.items():
        for _ in range(args.warmup):
            ours()
            ref()
        for i in range(args.repeat):  # interleaved, alternating who goes first
            first, second = (ours, ref) if i % 2 == 0 else (ref, ours)
            t_first = timed(first, device)
            t_second = timed(second, device)
            t_ours, t_ref = (t_first, t_second) if i % 2 == 0 else (t_second, t_first)
            times[name][0].append(t_ours)
            times[name][1].append(t_ref)
    return {k: (statistics.median(a), statistics.median(b)) for k, (a, b) in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--amp", action="store_true", help="autocast (fp16 on CUDA, bf16 on CPU)")
    parser.add_argument(
        "--model",
        nargs="+",
        default=list(MODEL_CFGS),
        choices=list(MODEL_CFGS),
        help="the models to compare (default: both, in one run)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--boxes", type=int, default=8, help="GT boxes per image")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--only", choices=["train", "infer"], help="time one of the two")
    parser.add_argument(
        "--no-polygons", action="store_true", help="Mask R-CNN: skip the PolygonMasks train row"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results: dict[str, tuple[float, float]] = {}
    memory_reports: list[str] = []
    counts: dict[str, tuple[int, int]] = {}
    for model in args.model:
        run = Runner(args, model)
        train = f"{model} train step (batch {args.batch}, {args.size}px)"
        pairs = {
            train: (run.train_ours, run.train_ref),
            f"{model} inference (1 image, {args.size}px)": (run.infer_ours, run.infer_ref),
        }
        if run.with_mask and not args.no_polygons:
            pairs[train + ", polygons"] = (run.train_ours_polygons, run.train_ref)
        if args.only:
            pairs = {k: v for k, v in pairs.items() if args.only in k}
        results.update(time_pairs(pairs, args, device))
        counts[model] = detections(run)
        if run.with_mask:
            memory_reports.append(mask_target_report(run))
        del run  # one pair of R50 models in memory at a time
    dev = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    )
    print(f"device: {dev}   amp: {args.amp}   repeats: {args.repeat}   torch {torch.__version__}")
    print(f"{'':52} {'detcli ms':>10} {'torchvision ms':>15} {'ratio':>7}")
    for name, (m_ours, m_ref) in results.items():
        print(f"{name:52} {m_ours:10.1f} {m_ref:15.1f} {m_ours / m_ref:7.3f}")
    for model, (ours, ref) in counts.items():
        print(f"{model} detections on the inference image: detcli {ours}, torchvision {ref}")
    for text in memory_reports:
        print("\n" + text)


if __name__ == "__main__":
    main()
