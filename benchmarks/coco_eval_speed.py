"""COCO bbox evaluation speed: detcli's evaluator next to classic pycocotools COCOeval, same run.

A realistic synthetic ground truth: `--images` (5000) images of 640x480, `--classes` (10)
classes, about 7 boxes per image (Poisson) spread over COCO's small / medium / large areas,
a few crowd regions; and 100 detections per image (jittered true boxes with some wrong
labels, plus false positives), written to a COCO json and an .npy file.

Each evaluator then runs in its own fresh process, so peak memory is its own:
  detcli       `detcli.evaluation.evaluate_detections(dataset, detections)` (Detections in,
               faster-coco-eval inside), as `detcli eval` and training evaluation call it
  pycocotools  the classic path: a list of result dicts, `COCO.loadRes`, `COCOeval`
               evaluate / accumulate / summarize
Timed: from detections in memory to the 12 numbers (ground-truth loading excluded for both).
Memory: peak RSS of the whole process, and the RSS the evaluation adds on top of what the
process held before it (sampled every 5 ms).

    python benchmarks/coco_eval_speed.py [--images 5000] [--classes 10] [--dets 100]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SIZE = (640, 480)


def make_data(folder: Path, images: int, classes: int, dets: int, seed: int) -> None:
    """Write gt.json (COCO) and dets.npy ([image_id, x, y, w, h, score, category_id] rows)."""
    rng = np.random.default_rng(seed)
    w, h = SIZE
    counts = rng.poisson(7, images)
    n = int(counts.sum())
    img_of = np.repeat(np.arange(1, images + 1), counts)
    # areas: a third each below 32^2, up to 96^2, and above (COCO's size classes)
    side = np.concatenate(
        [
            rng.uniform(8, 31, n // 3),
            rng.uniform(33, 95, n // 3),
            rng.uniform(97, 300, n - 2 * (n // 3)),
        ]
    )
    rng.shuffle(side)
    aspect = rng.uniform(0.5, 2.0, n)
    bw = np.minimum(side * np.sqrt(aspect), w - 1)
    bh = np.minimum(side / np.sqrt(aspect), h - 1)
    x = rng.uniform(0, w - bw)
    y = rng.uniform(0, h - bh)
    cat = rng.integers(1, classes + 1, n)
    crowd = rng.random(n) < 0.01
    gt = {
        "images": [
            {"id": i, "file_name": f"{i:06d}.jpg", "width": w, "height": h}
            for i in range(1, images + 1)
        ],
        "categories": [{"id": c, "name": f"class_{c}"} for c in range(1, classes + 1)],
        "annotations": [
            {"id": k + 1, "image_id": int(img_of[k]), "category_id": int(cat[k]),
             "bbox": [float(x[k]), float(y[k]), float(bw[k]), float(bh[k])],
             "area": float(bw[k] * bh[k]), "iscrowd": int(crowd[k])}
            for k in range(n)
        ],
    }  # fmt: skip
    (folder / "gt.json").write_text(json.dumps(gt))

    # detections: per image, its true boxes jittered (15% relabelled) then random boxes up to `dets`
    start = np.concatenate([[0], np.cumsum(counts)])
    rows = []
    for i in range(images):
        lo, hi = start[i], start[i + 1]
        k = min(hi - lo, dets)
        jitter = rng.normal(0, 0.08, (k, 4)) * np.stack([bw, bh, bw, bh], 1)[lo : lo + k]
        true = np.stack([x, y, bw, bh], 1)[lo : lo + k] + jitter
        labels = np.where(rng.random(k) < 0.15, rng.integers(1, classes + 1, k), cat[lo : lo + k])
        m = dets - k
        fw, fh = rng.uniform(8, 200, m), rng.uniform(8, 200, m)
        false = np.stack([rng.uniform(0, w - fw), rng.uniform(0, h - fh), fw, fh], 1)
        boxes = np.concatenate([true, false])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], 1)
        scores = np.concatenate([rng.uniform(0.3, 1.0, k), rng.uniform(0.0, 0.6, m)])
        cats = np.concatenate([labels, rng.integers(1, classes + 1, m)])
        rows.append(np.column_stack([np.full(dets, i + 1), boxes, scores, cats]))
    np.save(folder / "dets.npy", np.concatenate(rows).astype(np.float64))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakRss:
    """The highest RSS seen (sampled every 5 ms) while the block runs."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def run_detcli(folder: Path) -> dict:
    """detcli's evaluator on Detections per image, as `detcli eval` calls it."""
    import torch

    from detcli.data.coco import CocoDataset
    from detcli.evaluation import evaluate_detections
    from detcli.structures import Detections

    dataset = CocoDataset(str(folder / "gt.json"), [], test_mode=True)
    rows = np.load(folder / "dets.npy")
    index = {img_id: i for i, img_id in enumerate(dataset.img_ids)}
    order = np.argsort([index[int(i)] for i in rows[:, 0]], kind="stable")
    rows = rows[order]
    counts = np.bincount([index[int(i)] for i in rows[:, 0]], minlength=len(dataset))
    label_of = {c: k for k, c in enumerate(dataset.cat_ids)}
    xyxy = np.concatenate([rows[:, 1:3], rows[:, 1:3] + rows[:, 3:5]], 1)
    labels = np.array([label_of[int(c)] for c in rows[:, 6]])
    bounds = np.concatenate([[0], np.cumsum(counts)])
    detections = [
        Detections(
            torch.from_numpy(xyxy[a:b].astype(np.float32)),
            torch.from_numpy(rows[a:b, 5].astype(np.float32)),
            torch.from_numpy(labels[a:b]),
        )
        for a, b in itertools.pairwise(bounds)
    ]
    with PeakRss() as rss:
        start = time.perf_counter()
        metrics = evaluate_detections(dataset, detections, classwise=True)
        seconds = time.perf_counter() - start
    stats = [v for k, v in metrics.items() if "/" not in k]
    return {"seconds": seconds, "stats": stats, "rss_before": rss.before, "rss_peak": rss.peak}


def run_pycocotools(folder: Path) -> dict:
    """Classic pycocotools: result dicts, loadRes, COCOeval evaluate/accumulate/summarize."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(folder / "gt.json"))
    rows = np.load(folder / "dets.npy")
    results = [
        {"image_id": int(r[0]), "bbox": [float(v) for v in r[1:5]], "score": float(r[5]),
         "category_id": int(r[6])}
        for r in rows
    ]  # fmt: skip
    with PeakRss() as rss, contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        coco_eval = COCOeval(gt, gt.loadRes(results), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
        seconds = time.perf_counter() - start
    stats = coco_eval.stats.tolist()
    return {"seconds": seconds, "stats": stats, "rss_before": rss.before, "rss_peak": rss.peak}


def child(which: str, folder: Path) -> None:
    out = run_detcli(folder) if which == "detcli" else run_pycocotools(folder)
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--dets", type=int, default=100, help="detections per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=["detcli", "pycocotools"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(folder, args.images, args.classes, args.dets, args.seed)
        gt = json.loads((folder / "gt.json").read_text())
        print(
            f"{args.images} images, {args.classes} classes, {len(gt['annotations'])} boxes "
            f"({len(gt['annotations']) / args.images:.1f} per image), {args.dets} detections "
            "per image"
        )
        runs = {}
        for which in ("pycocotools", "detcli"):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", which, "--folder", str(folder)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs[which] = json.loads(proc.stdout.strip().splitlines()[-1])
    ref, ours = runs["pycocotools"], runs["detcli"]
    diff = max(abs(a - b) for a, b in zip(ref["stats"], ours["stats"], strict=True))
    names = [
        "mAP",
        "AP50",
        "AP75",
        "APs",
        "APm",
        "APl",
        "AR1",
        "AR10",
        "AR100",
        "ARs",
        "ARm",
        "ARl",
    ]
    print("metric   pycocotools   detcli")
    for name, a, b in zip(names, ref["stats"], ours["stats"], strict=True):
        print(f"{name:<8} {a:11.6f} {b:8.6f}")
    print(f"largest difference of the 12 numbers: {diff:.2e}")
    print(f"{'':13}{'seconds':>9}{'process peak RSS MiB':>22}{'added during eval MiB':>23}")
    for which, run in runs.items():
        growth = run["rss_peak"] - run["rss_before"]
        print(f"{which:<13}{run['seconds']:9.2f}{run['peak_rss']:22.0f}{growth:23.0f}")
    print(f"speed-up: {ref['seconds'] / ours['seconds']:.1f}x")


if __name__ == "__main__":
    main()
