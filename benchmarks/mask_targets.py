"""Mask R-CNN's mask targets, detcli next to torchvision: random instance masks for the speed
benchmark, and the memory each side's target step takes on the same positive RoIs.

torchvision (`roi_heads.project_masks_on_boxes`) turns every GT mask of an image into a float
(N, 1, H, W) tensor and RoI-aligns the positives' boxes out of it. detcli's FCNMaskHead asks
each image's `InstanceMasks` for `crop_and_resize`: bitmaps convert only the masks some RoI
uses; polygons are clipped and rasterised at 28 x 28 per RoI and never exist at image size.

Memory is measured around one call of each side's target step, fed the positives detcli's
sampler picked in a real train step (boxes, matched GT, the image's masks), so both sides do
the same work:
  CUDA  exact: peak bytes above the baseline and all bytes allocated (torch.cuda stats).
  CPU   torch.profiler's allocation records, per top-level op (an op's internal scratch that
        it frees before returning is not seen), plus numpy's allocations (tracemalloc) for the
        polygon path; pycocotools' C buffers (per-RoI RLEs) are not counted.
Both count the returned targets (P x 28 x 28 float32), which every side keeps for the loss.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.profiler import ProfilerActivity, profile
from torchvision.models.detection.roi_heads import project_masks_on_boxes

from detcli.data.masks import BitmapMasks, PolygonMasks

VERTICES = 16  # per instance polygon


def random_polygons(boxes: Tensor, size: int, gen: torch.Generator) -> PolygonMasks:
    """One star-shaped polygon per box, touching no more than the box (radii 60-100% of the
    half extents), so a mask's box is about its GT box, as in a real annotation."""
    n = boxes.shape[0]
    angle = torch.linspace(0, 2 * torch.pi, VERTICES + 1)[:VERTICES]
    radius = 0.6 + 0.4 * torch.rand(n, VERTICES, generator=gen)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2
    xy = centre[:, None] + half[:, None] * radius[..., None] * torch.stack(
        (angle.cos(), angle.sin()), 1
    )
    coords = xy.double().reshape(-1, 2).numpy()
    poly_offsets = np.arange(n + 1, dtype=np.int64) * VERTICES
    return PolygonMasks(coords, poly_offsets, np.arange(n + 1, dtype=np.int64), size, size)


@dataclass
class Positives:
    """What the mask-target step of one train step receives (detcli's, captured)."""

    boxes: list[Tensor]  # per image, (P_i, 4) positive RoIs in image pixels
    gt_inds: list[Tensor]  # per image, (P_i,) index of the matched GT mask
    size: tuple[int, int]  # mask_size


def capture_positives(runner: Any) -> Positives:
    """Run one detcli train step (bitmap masks) and keep the positives its mask head got."""
    head = runner.ours.roi_head.mask_head
    seen: list[Positives] = []
    original = head.get_targets

    def spy(
        boxes: Sequence[Tensor], gt_inds: Sequence[Tensor], gt_masks: Any, size: Any, **kw: Any
    ) -> Tensor:
        seen.append(Positives([b.detach() for b in boxes], list(gt_inds), tuple(size)))
        return original(boxes, gt_inds, gt_masks, size, **kw)

    head.get_targets = spy  # instance attribute: shadows the method for this one step
    try:
        runner.train_ours()
    finally:
        del head.get_targets
    return seen[0]


@dataclass
class Usage:
    peak: int  # bytes live at the worst moment, above what was live before
    allocated: int  # all bytes allocated, freed or not
    host_numpy: int  # numpy's peak (polygons' vertex arrays), CPU only
    ms: float  # median wall time of one call


def _cpu_usage(fn: Callable[[], Tensor]) -> tuple[int, int, int]:
    tracemalloc.start()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    _, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out
    top = [e for e in prof.events() if e.cpu_parent is None]
    live = peak = allocated = 0
    for e in sorted(top, key=lambda e: e.time_range.start):
        live += e.cpu_memory_usage
        peak = max(peak, live)
        allocated += max(e.cpu_memory_usage, 0)
    return peak, allocated, numpy_peak


def _cuda_usage(fn: Callable[[], Tensor], device: torch.device) -> tuple[int, int, int]:
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    before = torch.cuda.memory_stats(device)["allocated_bytes.all.allocated"]
    torch.cuda.reset_peak_memory_stats(device)
    out = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    allocated = torch.cuda.memory_stats(device)["allocated_bytes.all.allocated"] - before
    del out
    return peak, allocated, 0


def usage(fn: Callable[[], Tensor], device: torch.device, repeat: int = 5) -> Usage:
    """Memory of one call of `fn` (see the module docstring), and its median time."""
    fn()  # warm-up: lazy inits and caches are not the step's
    if device.type == "cuda":
        peak, allocated, host = _cuda_usage(fn, device)
    else:
        peak, allocated, host = _cpu_usage(fn)
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return Usage(peak, allocated, host, statistics.median(times))


def compare(runner: Any) -> tuple[dict[str, Usage], Positives]:
    """Each side's mask targets for the same captured positives: torchvision from its uint8
    (N, H, W) masks, detcli from BitmapMasks and from PolygonMasks."""
    pos = capture_positives(runner)
    head = runner.ours.roi_head.mask_head
    device = runner.device
    ref_masks = [t["masks"] for t in runner.ref_targets]
    # torchvision's maskrcnn_loss: one project_masks_on_boxes per image, then one cat.
    side_ref: Callable[[], Tensor] = lambda: torch.cat(  # noqa: E731
        [
            project_masks_on_boxes(m, b, i, pos.size[0])
            for m, b, i in zip(ref_masks, pos.boxes, pos.gt_inds, strict=True)
        ]
    )

    def side(masks: Sequence[BitmapMasks | PolygonMasks]) -> Callable[[], Tensor]:
        return lambda: head.get_targets(pos.boxes, pos.gt_inds, masks, pos.size)

    return {
        "torchvision (uint8 bitmaps)": usage(side_ref, device),
        "detcli BitmapMasks": usage(side(runner.gt_bitmaps), device),
        "detcli PolygonMasks": usage(side(runner.gt_polygons), device),
    }, pos


def report(runner: Any) -> str:
    """The mask-target memory table."""
    results, pos = compare(runner)
    n_pos = sum(int(b.shape[0]) for b in pos.boxes)
    n_gt = [len(m) for m in runner.gt_bitmaps]
    h, w = runner.gt_bitmaps[0].height, runner.gt_bitmaps[0].width
    lines = [
        f"mask targets, one train step: {n_pos} positive RoIs, GT masks per image {n_gt}, "
        f"{h}x{w} images, {pos.size[0]}x{pos.size[1]} targets ({runner.device.type})",
        f"{'':30} {'peak KiB':>10} {'allocated KiB':>14} {'numpy KiB':>10} {'ms':>8}",
    ]
    for name, u in results.items():
        lines.append(
            f"{name:30} {u.peak / 1024:10.0f} {u.allocated / 1024:14.0f} "
            f"{u.host_numpy / 1024:10.0f} {u.ms:8.2f}"
        )
    return "\n".join(lines)
