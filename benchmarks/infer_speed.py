"""Inference speed: `detcli predict` next to the bare model forward on the same images, same run.

Images: `--images` synthetic shapes PNGs of `--size` px (real files on disk). Model: the
config's detector (default: the R50-FPN COCO config with a `--scale` px test pipeline) with
random weights saved as a checkpoint, or `--checkpoint` (weights do not change the work much,
only how many boxes are drawn and written).

  bare     the model forward alone, `model(img, img_metas, return_loss=False)`, over batches
           that were decoded, resized and normalised beforehand (untimed)
  predict  `detcli.predict(...)` as the CLI runs it: decode + test pipeline + forward + one
           JSON and one PNG (boxes drawn) per image; model loading is timed separately
  CLI      `detcli predict` as a process, whole wall time (imports, model build included)

Rounds alternate bare / predict; each side's best round is compared. The CLI's own overhead
is predict / bare - 1 (goal: under 10%).

    python benchmarks/infer_speed.py [--device cpu|cuda] [--images 16] [--scale 512]
    python benchmarks/infer_speed.py --config configs/shapes/faster_rcnn_r18_fpn_shapes.yaml \
        --checkpoint runs/shapes/latest.pth --size 128 --scale 128 --images 64
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from detcli.config.settings import read_run_settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs/faster_rcnn/faster_rcnn_r50_fpn_1x_coco.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--checkpoint", type=Path, help="default: the model's random weights")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=640, help="side of the image files")
    parser.add_argument("--scale", type=int, default=512, help="test img_scale (square)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0, help="predict's loader processes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--score-thr", type=float, default=0.3, help="as `detcli predict`")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI process run")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import detcli
    from detcli.config import load_config
    from detcli.data.synthetic import write_shapes_coco
    from detcli.engine.inference_loop import inference
    from detcli.inference.inputs import collect_images, image_loader
    from detcli.inference.model_loading import load_detector
    from detcli.models import build_model

    cfg = load_config(args.config)
    split = "test" if "test" in cfg.data else "val"
    msfa = cfg.data[split].pipeline[1]  # LoadImageFromFile, then MultiScaleFlipAug
    msfa["img_scale"] = [args.scale, args.scale]
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, img_dir = write_shapes_coco(root, num_images=args.images, image_size=args.size)
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = root / "random.pth"
            torch.manual_seed(0)
            torch.save({"state_dict": build_model(cfg.model).state_dict()}, checkpoint)
        files = collect_images([img_dir])

        start = time.perf_counter()
        model, _ = load_detector(read_run_settings(cfg), checkpoint, device=device)
        load_seconds = time.perf_counter() - start
        loader = image_loader(files, read_run_settings(cfg), args.batch_size, workers=0)
        batches = [dict(b) for b in loader]  # decoded and pre-processed once, untimed
        for b in batches:
            b.pop("failed")

        def bare() -> float:
            sync(device)
            start = time.perf_counter()
            with torch.no_grad():
                for b in batches:
                    img = [v.to(device) for v in b["img"]]
                    model(img=img, img_metas=b["img_metas"], return_loss=False)
            sync(device)
            return time.perf_counter() - start

        def predict(out_dir: Path) -> tuple[float, int]:
            result = detcli.predict(
                cfg, checkpoint, [img_dir], out_dir=out_dir, score_thr=args.score_thr,
                device=args.device, batch_size=args.batch_size, workers=args.workers,
            )  # fmt: skip
            return result.seconds, sum(len(p.detections) for p in result.predictions)

        inference(model, loader, device=device)  # warm-up (allocator, kernels, caches)
        bare_times, predict_times = [], []
        for r in range(args.rounds):
            seconds = bare()
            bare_times.append(seconds)
            seconds, predict_boxes = predict(root / f"out{r}")
            predict_times.append(seconds)
        cli_seconds = None if args.no_cli else run_cli(args, cfg, checkpoint, img_dir, root)

    n = len(files)
    b, p = min(bare_times), min(predict_times)
    threads = torch.get_num_threads()
    print(
        f"config {args.config.name}, {n} images {args.size}px -> test scale {args.scale}, "
        f"batch {args.batch_size}, device {args.device}, torch threads {threads}, "
        f"predict workers {args.workers}"
    )
    print(f"model load (build + checkpoint): {load_seconds:.2f} s")
    print(f"bare forward     {n / b:7.2f} img/s  ({b:.2f} s; rounds {fmt(bare_times)})")
    print(
        f"detcli predict   {n / p:7.2f} img/s  ({p:.2f} s; rounds {fmt(predict_times)}); "
        f"{predict_boxes} boxes >= score-thr written as JSON + PNG"
    )
    print(f"predict overhead: {100 * (p / b - 1):+.1f}% over the bare forward")
    if cli_seconds is not None:
        print(
            "`detcli predict` as a process, whole wall time with imports and model build: "
            f"{cli_seconds:.2f} s"
        )


def run_cli(args: argparse.Namespace, cfg, checkpoint: Path, img_dir: Path, root: Path) -> float:
    """Wall time of `python -m detcli predict ...` as a user runs it."""
    config = root / "cfg.yaml"
    cfg.dump(config)
    command = [
        sys.executable, "-m", "detcli", "predict", str(config), str(checkpoint), str(img_dir),
        "--out", str(root / "cli_out"), "--score-thr", str(args.score_thr), "--device", args.device,
        "--batch-size", str(args.batch_size), "--workers", str(args.workers),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


if __name__ == "__main__":
    main()
