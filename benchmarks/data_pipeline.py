"""Images/s of the reference train pipeline: detcli vs a plain PIL + numpy version, same run.

Two settings from the reference configs: `Resize img_scale [512, 512]` on 1024x1024 JPEGs
(the trash set) and `[1333, 800]` on 640x480 JPEGs (COCO-like). Each pipeline runs in this
one process with one intra-op thread, which is what one DataLoader worker gets. Both do
the same steps: decode, RGB, resize keeping the ratio (boxes too), random flip, normalize,
pad to a multiple of 32, a float32 CHW tensor with its boxes and labels. Then a real
DataLoader with 2 workers loads batches of 4: the time to the first batch (worker start
included) and per batch after that, to compare with a training step.

    python benchmarks/data_pipeline.py [--images 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from detcli.config import load_config
from detcli.data import build_dataloader, build_dataset
from detcli.data.synthetic import write_shapes_coco


def split_loader(data: dict, split: str):
    """The LoaderSettings of `split` of a config whose `data` section is `data`."""
    from detcli.config.settings import read_run_settings

    return read_run_settings({"data": data}).loader(split)


REPO = Path(__file__).resolve().parents[1]
SETTINGS = {  # name: (reference config, image (w, h) on disk)
    "512x512 (trash.yaml)": ("configs/trash.yaml", (1024, 1024)),
    "1333x800 (coco_detection)": (
        "configs/faster_rcnn/faster_rcnn_r50_fpn_1x_coco.yaml",
        (640, 480),
    ),
}


class PlainPipeline:
    """The same train steps written with PIL and numpy only (what a hand-rolled loader does)."""

    def __init__(self, ann_file: Path, img_prefix: Path, scale: tuple[int, int], mean, std):
        data = json.loads(ann_file.read_text())
        self.images = data["images"]
        by_img: dict[int, list[Any]] = {}
        for a in data["annotations"]:
            by_img.setdefault(a["image_id"], []).append(a)
        self.anns = by_img
        self.cat = {c["id"]: k for k, c in enumerate(data["categories"])}
        self.prefix, self.scale = img_prefix, scale
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        info = self.images[idx]
        with Image.open(self.prefix / info["file_name"]) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            w, h = im.size
            factor = min(max(self.scale) / max(w, h), min(self.scale) / min(w, h))
            nw, nh = int(w * factor + 0.5), int(h * factor + 0.5)
            im = im.resize((nw, nh), Image.BILINEAR)
        img = np.asarray(im)
        anns = self.anns.get(info["id"], [])
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes *= np.array([nw / w, nh / h] * 2, np.float32)
        labels = np.array([self.cat[a["category_id"]] for a in anns], np.int64)
        if random.random() < 0.5:
            img = img[:, ::-1]
            boxes = np.stack([nw - boxes[:, 2], boxes[:, 1], nw - boxes[:, 0], boxes[:, 3]], 1)
        img = (img.astype(np.float32) - self.mean) / self.std
        ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
        padded = np.zeros((ph, pw, 3), np.float32)
        padded[:nh, :nw] = img
        return {
            "img": torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))),
            "gt_bboxes": torch.from_numpy(boxes),
            "gt_labels": torch.from_numpy(labels),
        }


def images_per_second(dataset: Any, repeat: int) -> float:
    """Best of `repeat` passes over the dataset (the page cache is warm after the first)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(len(dataset)):
            dataset[i]
        best = min(best, time.perf_counter() - start)
    return len(dataset) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one DataLoader worker's share
    random.seed(0)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, size) in SETTINGS.items():
            root = Path(tmp) / f"{size[0]}x{size[1]}"
            ann, prefix = write_shapes_coco(
                root, num_images=args.images, num_classes=10, image_size=size, image_format="jpg"
            )
            classes = json.dumps([c["name"] for c in json.loads(ann.read_text())["categories"]])
            cfg = load_config(REPO / config, [
                f"data.train.ann_file={ann}", f"data.train.img_prefix={prefix}",
                f"data.train.classes={classes}",
            ])  # fmt: skip
            train = cfg.data.train
            resize = next(t for t in train.pipeline if t["type"] == "Resize")
            norm = next(t for t in train.pipeline if t["type"] == "Normalize")
            ours = build_dataset(train)
            plain = PlainPipeline(
                ann, prefix, tuple(resize["img_scale"]), norm["mean"], norm["std"]
            )
            sample, reference = ours[0], plain[0]
            assert sample["img"].shape == reference["img"].shape, (
                sample["img"].shape,
                reference["img"].shape,
            )
            detcli_ips = images_per_second(ours, args.repeat)
            plain_ips = images_per_second(plain, args.repeat)

            loader = build_dataloader(
                split_loader(cfg.data, "train"), batch_size=4, num_workers=2, seed=0
            )
            start = time.perf_counter()
            it = iter(loader)
            next(it)
            first = time.perf_counter() - start
            per_batch = []
            for _ in range(min(8, len(loader) - 1)):
                t0 = time.perf_counter()
                next(it)
                per_batch.append(time.perf_counter() - t0)
            del it
            rows.append(
                (
                    name,
                    tuple(sample["img"].shape),
                    detcli_ips,
                    plain_ips,
                    first,
                    statistics.median(per_batch),
                )
            )

    header = ["setting", "tensor", "detcli img/s", "PIL+numpy img/s", "speed-up"]
    header += ["1st batch of 4, 2 workers", "next batches"]
    print(" | ".join(header))
    for name, shape, ours_ips, plain_ips, first, per in rows:
        cells = [name, str(shape), f"{ours_ips:.1f}", f"{plain_ips:.1f}"]
        cells += [f"{ours_ips / plain_ips:.2f}x", f"{first * 1000:.0f} ms", f"{per * 1000:.0f} ms"]
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
