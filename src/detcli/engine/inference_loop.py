"""Run a detector over a loader and return its detections per image, in dataset order.

Shared by evaluation during training, `detcli eval` and `detcli predict`. Distributed: each
rank runs its shard of the loader, the shards are gathered, and every rank returns the full
list, so ranks can score it themselves instead of idling in a collective while rank 0 does.
Duplicates a sampler pads shards with are dropped by dataset index.
A mask head's bitmaps are encoded as COCO RLE right after each batch (`on_results` still sees
the bitmaps): the returned detections hold `rles`, never a whole set's full-size masks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from detcli.engine.batches import dataset_of, to_device
from detcli.engine.dist import all_gather_objects
from detcli.errors import ModelError
from detcli.evaluation.masks import encode_masks
from detcli.structures import Detections, ImgMeta, TestBatch


@dataclass
class BatchResults:
    """One batch's results, handed to `on_results` as soon as they exist."""

    indices: list[int]  # dataset indices of the batch's images
    detections: list[Detections]  # one per image (empty if it failed); masks and their rles
    img_metas: list[ImgMeta | None]  # per image (the first view's with TTA); None if failed
    failed: dict[int, str]  # dataset index -> why its sample could not be loaded


def _empty() -> Detections:
    return Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))


@torch.no_grad()
def inference(
    model: nn.Module,
    loader: DataLoader[Any],
    *,
    device: torch.device | str = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_results: Callable[[BatchResults], None] | None = None,
) -> list[Detections]:
    """`model(img, img_metas, return_loss=False)` over `loader`: one Detections per image.

    The model is put in eval mode (the caller restores train mode). `autocast` makes the
    precision context for each batch (e.g. `optim_wrapper.autocast`). `on_batch(n)` is called
    with the number of images done on this rank, for progress display. `on_results` gets each
    batch's `BatchResults` as soon as they exist (results files stream from it). A batch may
    carry `failed`: {position in the batch: message} for samples its collate could not load
    (see `detcli.inference.inputs`); those images get empty Detections and are named in
    `BatchResults.failed`.
    """
    model.eval()
    device = torch.device(device)
    if loader.batch_sampler is None:
        raise ValueError("inference needs a loader that batches (it has no batch_sampler)")
    batches = [[int(i) for i in b] for b in loader.batch_sampler]
    indices = [i for b in batches for i in b]
    results: list[Detections] = []
    batch: TestBatch
    for batch_indices, batch in zip(batches, loader, strict=False):
        failed = batch.pop("failed", None) or {}
        detections: list[Detections] = []
        metas: list[ImgMeta | None] = []
        if len(failed) < len(batch_indices):
            batch = to_device(batch, device)
            with autocast() if autocast is not None else contextlib.nullcontext():
                out = model(img=batch["img"], img_metas=batch["img_metas"], return_loss=False)
            detections = [_on_cpu(d) for d in out]
            metas = list(_first_view(batch["img_metas"]))
        for pos in sorted(failed):
            detections.insert(pos, _empty())
            metas.insert(pos, None)
        if on_results is not None:
            lost = {batch_indices[p]: m for p, m in failed.items()}
            on_results(BatchResults(batch_indices, detections, metas, lost))
        # Full-size masks live for one batch only: the whole set keeps their RLE.
        results.extend(_without_bitmaps(d) for d in detections)
        if on_batch is not None:
            on_batch(len(results))
    if len(results) != len(indices):
        raise ModelError(
            f"The model returned {len(results)} detection lists for {len(indices)} images; "
            "a test forward must return one Detections per image."
        )
    ordered: list[Detections | None] = [None] * len(dataset_of(loader))
    for shard_indices, shard_results in all_gather_objects((indices, results)):
        for index, detections in zip(shard_indices, shard_results, strict=True):
            if ordered[index] is None:  # padding repeats images: keep the first copy
                ordered[index] = detections
    missing = [i for i, d in enumerate(ordered) if d is None]
    if missing:
        raise ModelError(
            f"No rank produced detections for {len(missing)} images (first: index {missing[0]}); "
            "the evaluation sampler must cover the whole dataset."
        )
    return [d for d in ordered if d is not None]  # all present: checked just above


def _on_cpu(det: Detections) -> Detections:
    """A model's detections on the CPU in float32; masks (if any) also as RLE."""
    cpu = Detections(det.boxes.float().cpu(), det.scores.float().cpu(), det.labels.cpu())
    if det.masks is None:
        return cpu
    cpu.masks = det.masks.cpu()
    cpu.rles = encode_masks(cpu).rles
    return cpu


def _without_bitmaps(det: Detections) -> Detections:
    if det.masks is None:
        return det
    return Detections(det.boxes, det.scores, det.labels, None, det.rles)


def _first_view(img_metas: list[ImgMeta] | list[list[ImgMeta]]) -> list[ImgMeta]:
    """Each image's metadata (of the first view, under test-time augmentation)."""
    first = img_metas[0] if img_metas else None
    if isinstance(first, list):
        return first
    return [m for m in img_metas if not isinstance(m, list)]  # all of them: one view
