"""Dataset statistics: counts per class, COCO size classes, box shapes, empty images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detcli.data.protocol import DetectionDataset, checked_coco_style
from detcli.data.wrappers import leaf_datasets

SMALL, MEDIUM = 32**2, 96**2  # COCO's area limits for small / medium / large objects


@dataclass
class DatasetStats:
    """What `detcli dataset stats` reports for one split (every image, classes as configured)."""

    classes: tuple[str, ...]
    num_images: int
    boxes_per_class: np.ndarray  # (C,) boxes of each class (crowd regions not counted)
    images_per_class: np.ndarray  # (C,) images holding at least one box of each class
    num_crowd: int
    images_without_boxes: int
    boxes_per_image: np.ndarray  # (num_images,)
    areas: np.ndarray  # (num_boxes,) box area in original pixels
    aspect_ratios: np.ndarray  # (num_boxes,) width / height
    image_sizes: np.ndarray  # (num_images, 2) width, height as the json gives them
    # (C,) boxes of each class with a usable mask; None when the pipeline loads no masks
    masks_per_class: np.ndarray | None = None

    @property
    def num_masks(self) -> int | None:
        return None if self.masks_per_class is None else int(self.masks_per_class.sum())

    @property
    def num_boxes(self) -> int:
        return int(self.boxes_per_class.sum())

    def size_counts(self) -> dict[str, int]:
        """COCO small / medium / large counts by box area."""
        return {
            "small": int((self.areas < SMALL).sum()),
            "medium": int(((self.areas >= SMALL) & (self.areas < MEDIUM)).sum()),
            "large": int((self.areas >= MEDIUM).sum()),
        }

    def aspect_summary(self) -> dict[str, float]:
        """Quantiles of box width / height."""
        if not self.aspect_ratios.size:
            return {}
        q = np.quantile(self.aspect_ratios, [0.0, 0.05, 0.5, 0.95, 1.0])
        return dict(zip(("min", "p5", "median", "p95", "max"), q.round(3).tolist(), strict=True))


def dataset_stats(dataset: DetectionDataset) -> DatasetStats:
    """Statistics of a dataset (of every leaf of a wrapper, each image counted once)."""
    leaves = [checked_coco_style(leaf, "dataset stats") for leaf in leaf_datasets(dataset)]
    boxes, labels, counts, sizes = [], [], [], []
    mask_labels: list[np.ndarray] | None = []
    num_crowd = 0
    for leaf in leaves:
        img_of_box, xyxy, label, crowd = leaf.box_table()
        flags = leaf.mask_flags() if hasattr(leaf, "mask_flags") else None
        if flags is None or mask_labels is None:
            mask_labels = None  # one split without masks: no mask count
        else:
            mask_labels.append(label[~crowd & flags])
        num_crowd += int(crowd.sum())
        boxes.append(xyxy[~crowd])
        labels.append(label[~crowd])
        counts.append(np.bincount(img_of_box[~crowd], minlength=len(leaf)))
        sizes.append(leaf.image_sizes())
    classes = tuple(leaves[0].CLASSES)
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    all_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    matrix = np.concatenate([leaf.image_class_matrix() for leaf in leaves])
    w = all_boxes[:, 2] - all_boxes[:, 0]
    h = all_boxes[:, 3] - all_boxes[:, 1]
    per_image = np.concatenate(counts)
    masks_per_class = (
        np.bincount(np.concatenate(mask_labels), minlength=len(classes)) if mask_labels else None
    )
    return DatasetStats(
        classes=classes,
        num_images=int(per_image.size),
        boxes_per_class=np.bincount(all_labels, minlength=len(classes)),
        images_per_class=matrix.sum(axis=0),
        num_crowd=num_crowd,
        images_without_boxes=int((per_image == 0).sum()),
        boxes_per_image=per_image,
        areas=(w * h).astype(np.float64),
        aspect_ratios=(w / np.maximum(h, 1e-6)).astype(np.float64),
        image_sizes=np.concatenate(sizes),
        masks_per_class=masks_per_class,
    )


def plot_stats(stats: DatasetStats, path: Path, title: str = "") -> None:
    """Histograms of the statistics as one PNG (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    ax = axes[0, 0]
    x = np.arange(len(stats.classes))
    ax.bar(x - 0.2, stats.boxes_per_class, 0.4, label="boxes")
    ax.bar(x + 0.2, stats.images_per_class, 0.4, label="images")
    ax.set_xticks(x, stats.classes, rotation=45, ha="right")
    ax.set_title("per class")
    ax.legend()
    ax = axes[0, 1]
    if stats.areas.size:
        ax.hist(np.sqrt(stats.areas), bins=50)
    for limit, name in ((32, "small|medium"), (96, "medium|large")):
        ax.axvline(limit, color="red", linestyle="--")
        ax.text(limit, ax.get_ylim()[1] * 0.9, f" {name}", color="red")
    ax.set_title("box size: sqrt(area) in pixels")
    ax = axes[1, 0]
    if stats.aspect_ratios.size:
        ax.hist(np.log2(stats.aspect_ratios), bins=50)
    ax.set_title("box aspect ratio: log2(width / height)")
    ax = axes[1, 1]
    top = int(stats.boxes_per_image.max()) if stats.boxes_per_image.size else 0
    ax.hist(stats.boxes_per_image, bins=np.arange(top + 2) - 0.5)
    ax.set_title("boxes per image")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
