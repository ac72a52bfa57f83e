"""Precision-recall curves per class (matplotlib PNGs), from COCOeval's accumulated precision.

COCOeval samples each curve at 101 recall points with interpolated (monotone) precision;
the area under the IoU=0.5 curve is the class's AP50, the mean over all IoUs its AP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detcli.evaluation.coco_metric import CocoScores

CURVES = ((0.5, "IoU 0.50"), (0.75, "IoU 0.75"))


def _safe(name: str) -> str:
    """A class name usable in a file name (`Paper pack` -> `Paper_pack`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "class"


def pr_curve(scores: CocoScores, label: int, iou: float | None) -> np.ndarray | None:
    """Precision at each of COCO's recall points for one class (area all, most detections);
    `iou=None` averages over every IoU threshold. None when the class has no ground truth."""
    p = scores.precision[:, :, label, 0, -1]  # (T, R)
    if iou is not None:
        rows = np.flatnonzero(np.isclose(scores.iou_thrs, iou))
        if not rows.size:
            return None
        p = p[rows]
    if (p <= -1).all():
        return None
    curve: np.ndarray = np.where(p > -1, p, 0.0).mean(axis=0)
    return curve


def plot_pr_curves(scores: CocoScores, classes: Sequence[str], out_dir: Path) -> list[Path]:
    """Write `pr_<k>_<class>.png` per class with ground truth (`pr_segm_<k>_<class>.png` for
    masks); returns the files written."""
    # The object-oriented API with an Agg canvas: no pyplot state, no GUI backend chosen.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    recall = scores.rec_thrs
    written = []
    for k, name in enumerate(classes):
        curves = [(pr_curve(scores, k, iou), text) for iou, text in CURVES]
        curves.append((pr_curve(scores, k, None), "IoU 0.50:0.95 (mean)"))
        if all(c is None for c, _ in curves):
            continue  # no ground truth for this class: there is no curve to draw
        fig = Figure(figsize=(5, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for precision, text in curves:
            if precision is not None:
                # the area under the sampled curve is the AP COCOeval reports
                ax.plot(recall, precision, label=f"{text}: AP {precision.mean():.3f}")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
        what = "" if scores.iou_type == "bbox" else f" ({scores.iou_type})"
        ax.set_title(f"{name}: precision-recall{what}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        kind = "" if scores.iou_type == "bbox" else f"{scores.iou_type}_"
        path = out_dir / f"pr_{kind}{k:02d}_{_safe(str(name))}.png"
        fig.savefig(path)
        written.append(path)
    return written
