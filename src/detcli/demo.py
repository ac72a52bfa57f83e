"""`detcli.run_demo(out_dir)`: the whole product in one call, on data it makes itself.

It writes a synthetic shapes set (real PNGs + COCO json), trains the small Faster R-CNN of
`configs/demo/shapes.yaml` from scratch, evaluates the best checkpoint on the val split (COCO
table, per-class AP, precision-recall plots, results json) and draws predictions on a few val
images. Everything lands under `out_dir`:

    data/        train.json, train/, val.json, val/
    train/       the training work dir (config.yaml, logs, TensorBoard events, checkpoints)
    eval/        results.json, metrics.json, pr_curves/
    predictions/ one PNG + one JSON per drawn image
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from detcli.errors import ConfigError

if TYPE_CHECKING:
    from detcli.engine.training import TrainResult
    from detcli.inference.evaluate import EvalResult
    from detcli.inference.predict import PredictResult

DEMO_CONFIG = Path("configs") / "demo" / "shapes.yaml"


@dataclass(frozen=True)
class DemoData:
    """The synthetic set the demo writes: sizes the config's anchors and schedule are tuned for."""

    train_images: int = 500
    val_images: int = 100
    num_classes: int = 3
    image_size: int = 128
    seed: int = 0


@dataclass
class DemoResult:
    """What the demo produced, and how long each stage took (seconds)."""

    out_dir: Path
    config: Path
    train: TrainResult
    evaluation: EvalResult
    predictions: PredictResult
    seconds: dict[str, float] = field(default_factory=dict)


def find_demo_config() -> Path:
    """`configs/demo/shapes.yaml` of the working directory or of the checkout detcli runs from."""
    checkout = Path(__file__).resolve().parents[2]  # src/detcli/demo.py -> the repository root
    for root in (Path.cwd(), checkout):
        if (root / DEMO_CONFIG).is_file():
            return root / DEMO_CONFIG
    raise ConfigError(
        f"The demo's config {DEMO_CONFIG} was found neither under {Path.cwd()} nor under "
        f"{checkout}. detcli's configs/ folder ships with its source checkout: run the demo "
        "from there (`pip install -e .` keeps the link), or pass --config PATH."
    )


def run_demo(
    out_dir: str | Path = "runs/demo",
    *,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    device: str | None = None,
    data: DemoData = DemoData(),  # frozen, so one shared default is safe
    num_drawn: int = 8,
    on_stage: Callable[[str], None] | None = None,
    threads: int | Literal["auto"] | None = None,
) -> DemoResult:
    """Write the data, train, evaluate and draw predictions under `out_dir` (see module doc).

    `threads`: torch CPU threads for all three stages, as `detcli.train`'s."""
    import detcli
    from detcli.config import load_config
    from detcli.data.synthetic import write_shapes_coco

    out = Path(out_dir)
    config_path = Path(config) if config is not None else find_demo_config()
    seconds: dict[str, float] = {}
    stage = on_stage or (lambda _text: None)

    start = time.perf_counter()
    data_root = out / "data"
    stage(f"writing {data.train_images} train + {data.val_images} val images to {data_root}")
    for split, count in (("train", data.train_images), ("val", data.val_images)):
        write_shapes_coco(
            data_root,
            num_images=count,
            num_classes=data.num_classes,
            image_size=data.image_size,
            seed=data.seed,
            split=split,
        )
    seconds["data"] = time.perf_counter() - start

    # `data_root` first, so an explicit --set data_root=... from the user still wins.
    cfg = load_config(config_path, [f"data_root={data_root}", *overrides])
    start = time.perf_counter()
    stage(f"training {config_path} (work dir {out / 'train'})")
    # The demo regenerates everything it shows: a rerun starts anew (the earlier run is kept
    # in train/previous-<time>/).
    trained = detcli.train(
        cfg, work_dir=out / "train", device=device, overwrite=True, threads=threads
    )
    # Evaluation keeps training's count: the mAP depends on it (float sums in another order).
    used = _torch_threads()
    seconds["train"] = time.perf_counter() - start
    checkpoint = trained.best_checkpoint or trained.last_checkpoint
    if checkpoint is None:  # only when a run stopped before its first checkpoint
        raise ConfigError(
            f"Training in {out / 'train'} wrote no checkpoint (stopped: {trained.stop_reason}); "
            "there is nothing to evaluate."
        )

    start = time.perf_counter()
    stage(f"evaluating {checkpoint} on the val split")
    evaluated = detcli.evaluate(
        cfg,
        checkpoint,
        split="val",
        out=out / "eval" / "results.json",
        metrics_file=out / "eval" / "metrics.json",
        plot_dir=out / "eval" / "pr_curves",
        device=device,
        threads=used,
    )
    seconds["eval"] = time.perf_counter() - start

    start = time.perf_counter()
    val_images = sorted((data_root / "val").glob("*.png"))[:num_drawn]
    stage(f"drawing predictions on {len(val_images)} val images")
    predicted = detcli.predict(
        cfg, checkpoint, val_images, out_dir=out / "predictions", device=device, threads=used
    )
    seconds["predict"] = time.perf_counter() - start
    return DemoResult(out, config_path, trained, evaluated, predicted, seconds)


def _torch_threads() -> int:
    """The intra-op thread count torch uses now."""
    import torch

    return torch.get_num_threads()
