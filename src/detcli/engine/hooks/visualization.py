"""DetVisualizationHook: the val predictions drawn on their images after each evaluation.

MMDetection 3.x's hook (`default_hooks.visualization`), with its arguments and defaults:
nothing happens unless `draw: true`. Then, after every evaluation during training, every
`interval`-th val image (indices 0, interval, 2 x interval, ...) is drawn with its
detections of score >= `score_thr`, in the dataset's palette when it has one, and written to
`<work_dir>/vis_data/epoch_<n>/<image stem>.png` (`iter_<n>` for iteration-based runs) and,
when a TensorboardLoggerHook is registered, into its event file as image `val/<image stem>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from torchvision.io import write_png

from detcli.data.inspect.show import _locate
from detcli.data.transforms.loading import load_image
from detcli.engine.hooks.base import Hook
from detcli.engine.hooks.logger import TensorboardLoggerHook
from detcli.errors import ConfigError
from detcli.registry import HOOKS
from detcli.structures import Detections
from detcli.visualization import draw_detections

if TYPE_CHECKING:
    from detcli.engine.runner import Runner


@HOOKS.register()
class DetVisualizationHook(Hook):
    """Draws every `interval`-th val image's predictions after each evaluation (rank 0)."""

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {
        "wait_time": "there is no screen; drawings are written to the work dir",
        "test_out_dir": "`detcli predict --out` draws test images",
        "backend_args": "detcli reads local files",
    }

    def __init__(
        self,
        draw: bool = False,
        interval: int = 50,
        score_thr: float = 0.3,
        show: bool = False,
        wait_time: float = 0.0,
        test_out_dir: str | None = None,
        backend_args: dict[str, Any] | None = None,
    ):
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise ConfigError(
                "DetVisualizationHook.interval must be a positive integer (draw every n-th val "
                f"image), got {interval!r}."
            )
        self.draw = draw
        self.interval = interval
        self.score_thr = float(score_thr)
        self.show = show
        self.wait_time = wait_time  # only meaningful with a screen, which a run never has
        self.test_out_dir = test_out_dir  # mmdet's test loop writes there; detcli eval has no hooks
        self.backend_args = backend_args  # images are read as the val dataset reads them

    def before_run(self, runner: Runner) -> None:
        if self.show and self.draw and runner.dist.is_main:
            runner.log.warning(
                "DetVisualizationHook: show: true asks for a window, but a detcli run has no "
                "screen; the drawn images go to the work dir's vis_data/ (and TensorBoard) "
                "instead. Set show: false to silence this."
            )

    def after_val(self, runner: Runner, metrics: dict[str, float]) -> None:
        if not self.draw or not runner.dist.is_main:
            return
        detections = runner.val_outputs
        if runner.val_loader is None or detections is None:
            return
        dataset = runner.val_loader.dataset
        step = f"epoch_{runner.epoch}" if runner.by_epoch else f"iter_{runner.iter}"
        out_dir = runner.work_dir / "vis_data" / step
        out_dir.mkdir(parents=True, exist_ok=True)
        classes = list(getattr(dataset, "CLASSES", None) or [])
        palette = _palette(dataset, len(classes))
        writer = _tensorboard_writer(runner)
        for idx in range(0, len(detections), self.interval):
            path, img_id = _image_path(dataset, idx)
            det = _above(detections[idx], self.score_thr)
            drawn = draw_detections(
                load_image(path, img_id), det, classes, colours=palette, score_thr=self.score_thr
            )
            write_png(drawn, str(out_dir / f"{Path(path).stem}.png"))
            if writer is not None:
                writer.add_image(f"val/{Path(path).stem}", drawn, runner.iter)
        if writer is not None:
            writer.flush()


def _above(det: Detections, score_thr: float) -> Detections:
    keep = det.scores >= score_thr
    return Detections(det.boxes[keep], det.scores[keep], det.labels[keep])


def _palette(dataset: Any, num_classes: int) -> list[tuple[int, int, int]] | None:
    """The dataset's `PALETTE` / `palette` when it gives one colour per class, else None."""
    leaf, _ = _locate(dataset, 0) if len(dataset) else (dataset, 0)
    for owner in (dataset, leaf):
        palette = getattr(owner, "PALETTE", None) or getattr(owner, "palette", None)
        if palette is not None and len(palette) == num_classes:
            return [tuple(int(v) for v in colour) for colour in palette]  # type: ignore[misc]
    return None


def _image_path(dataset: Any, idx: int) -> tuple[str, int | None]:
    """The file of val image `idx` (through dataset wrappers) and its image id."""
    leaf, j = _locate(dataset, idx)
    info = leaf.results(j)["img_info"]
    prefix = getattr(leaf, "img_prefix", "") or ""
    return str(Path(prefix) / info["filename"]) if prefix else info["filename"], info.get("id")


def _tensorboard_writer(runner: Runner) -> Any:
    """The registered TensorboardLoggerHook's writer: one events file per run, not two."""
    for hook in runner.hooks:
        if isinstance(hook, TensorboardLoggerHook) and hook.writer is not None:
            return hook.writer
    return None
