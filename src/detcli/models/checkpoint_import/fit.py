"""What of a checkpoint fits a model: loaded counts per part and one table of what does not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import Tensor

PARTS = ("backbone", "neck", "rpn_head", "roi_head")
# BatchNorm's step counter: torchvision's FrozenBatchNorm2d and some exports have none, and
# it never changes a forward pass, so its absence is no misfit.
OPTIONAL = ("num_batches_tracked",)
# Below this share of the backbone's and neck's weights (counted in numbers, not tensors:
# BatchNorm vectors of another depth often fit where its convolutions do not), the file is
# for another network.
MIN_FEATURE_SHARE = 0.5


@dataclass
class FitReport:
    """Per part (backbone, neck, ...): tensors loaded of the model's; keys that do not fit."""

    loaded: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key (checkpoint [..], model [..])"
    feature_numel: int = 0  # numbers in the backbone's and neck's tensors
    feature_loaded: int = 0  # ... of them loaded from the checkpoint
    neck_in_file: bool = False  # the checkpoint has neck tensors

    @property
    def complete(self) -> bool:
        """Every model tensor loaded and nothing left over."""
        return not (self.missing or self.unexpected or self.mismatched)

    def feature_share(self) -> float:
        """Share of the backbone's and neck's weights (in numbers) the checkpoint fills."""
        return self.feature_loaded / self.feature_numel if self.feature_numel else 1.0

    def other_network(self) -> str | None:
        """Why the checkpoint is for another network, or None when it is for this one.

        Two signs: it fills under MIN_FEATURE_SHARE of the backbone's and neck's weights, or
        nothing of its neck fits and the backbone is incomplete too (the neck's inputs are the
        backbone's outputs; some 3x3 convolutions of another depth share shapes, as
        ResNet-50's do with ResNet-18's, but its neck then fits nowhere). A full backbone under
        a neck of other widths is worth fine-tuning from: that is reported, not refused.
        """
        if self.feature_share() < MIN_FEATURE_SHARE:
            return (
                f"it fills {self.feature_share():.0%} of the backbone's and neck's weights, "
                f"fewer than {MIN_FEATURE_SHARE:.0%}"
            )
        backbone_full = self.loaded.get("backbone", 0) == self.total.get("backbone", 0)
        no_neck = self.neck_in_file and self.total.get("neck") and not self.loaded.get("neck")
        if no_neck and not backbone_full:
            return (
                "none of its neck tensors fits the config's neck and the backbone loads only "
                f"in part ({self.loaded.get('backbone', 0)} of {self.total.get('backbone', 0)} "
                "tensors): another backbone"
            )
        return None

    def summary(self) -> str:
        """`backbone 122/122, neck 16/16, rpn_head 6/6, roi_head 6/8` (tensors loaded)."""
        return ", ".join(
            f"{p} {self.loaded.get(p, 0)}/{self.total[p]}" for p in self.total if self.total[p]
        )

    def counts(self) -> str:
        """`2 missing, 16 mismatched (first: key ...), 0 unexpected` on one line."""
        parts = []
        for kind, keys in (
            ("missing", self.missing),
            ("mismatched", self.mismatched),
            ("unexpected", self.unexpected),
        ):
            first = f" (first: {keys[0].split(' ')[0]})" if keys else ""
            parts.append(f"{len(keys)} {kind}{first}")
        return ", ".join(parts)

    def rows(self) -> list[tuple[str, str]]:
        """(kind, key and detail) for every tensor that does not fit, one table."""
        return (
            [("missing", k) for k in self.missing]
            + [("shape mismatch", k) for k in self.mismatched]
            + [("unexpected", k) for k in self.unexpected]
        )

    def table(self, limit: int | None = None) -> list[str]:
        """The `rows` as aligned text lines (the first `limit` of them, then a count)."""
        rows = self.rows()
        shown = rows if limit is None else rows[:limit]
        lines = [f"  {kind:<14}  {key}" for kind, key in shown]
        if len(shown) < len(rows):
            lines.append(f"  ... {len(rows) - len(shown)} more")
        return lines


def _part(key: str) -> str:
    head = key.split(".", 1)[0]
    return head if head in PARTS else "other"


def fit_report(weights: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> FitReport:
    """Compare checkpoint tensors (detcli names) with the model's state dict `own`."""
    report = FitReport()
    for key, tensor in own.items():
        part = _part(key)
        theirs = weights.get(key)
        if theirs is None and key.endswith(OPTIONAL):
            continue
        report.total[part] = report.total.get(part, 0) + 1
        fits = theirs is not None and theirs.shape == tensor.shape
        if part in ("backbone", "neck"):
            report.feature_numel += tensor.numel()
            report.feature_loaded += tensor.numel() if fits else 0
        if theirs is None:
            report.missing.append(key)
        elif theirs.shape != tensor.shape:
            report.mismatched.append(
                f"{key} (checkpoint {list(theirs.shape)}, model {list(tensor.shape)})"
            )
        else:
            report.loaded[part] = report.loaded.get(part, 0) + 1
    report.unexpected = [k for k in weights if k not in own]
    report.neck_in_file = any(k.startswith("neck.") for k in weights)
    return report
