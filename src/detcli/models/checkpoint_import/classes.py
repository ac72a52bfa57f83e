"""Class-specific rows (classifier, per-class box regression, per-class mask channels)
re-ordered by class name.

Fine-tuning from a checkpoint trained on other classes keeps every row whose class name the
new config also has (e.g. `person` of a COCO model) and leaves the other rows at their fresh
initial values; the background row (detcli: last) is always kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from torch import Tensor

CLS = "roi_head.bbox_head.fc_cls."
REG = "roi_head.bbox_head.fc_reg."
MASK = "roi_head.mask_head.conv_logits."  # one mask channel per object class
PLACEHOLDERS = ("N/A", "__background__")  # torchvision's unused COCO ids are no class


@dataclass
class ClassMapping:
    """Which config class took which checkpoint row (None: freshly initialised)."""

    rows: list[tuple[str, int | None]] = field(default_factory=list)

    @property
    def reused(self) -> int:
        """How many of the config's classes took a row from the checkpoint."""
        return sum(1 for _, row in self.rows if row is not None)

    def lines(self) -> list[str]:
        """One line per config class: `name <- checkpoint row i` or `name: new`."""
        width = max((len(n) for n, _ in self.rows), default=0)
        return [
            f"  {name:<{width}}  <- checkpoint class row {row}"
            if row is not None
            else f"  {name:<{width}}  new (initialised, not in the checkpoint's classes)"
            for name, row in self.rows
        ]


def map_class_rows(
    weights: Mapping[str, Tensor],
    own: Mapping[str, Tensor],
    source_classes: Sequence[str] | None,
    target_classes: Sequence[str],
) -> tuple[dict[str, Tensor], ClassMapping]:
    """`weights` with fc_cls / fc_reg rebuilt for `target_classes` from rows of the same name.

    `own` is the model's state dict (its fresh rows fill classes the checkpoint lacks). Rows
    are mapped only for a softmax classifier (C + 1 rows, background last) whose names are
    known; otherwise the layers are left out and keep their initial values.
    """
    out = {k: v for k, v in weights.items() if not k.startswith((CLS, REG, MASK))}
    index = {
        n: i for i, n in reversed(list(enumerate(source_classes or []))) if n not in PLACEHOLDERS
    }
    mapping = ClassMapping([(n, index.get(n)) for n in target_classes])
    n_src, n_dst = len(source_classes or []), len(target_classes)
    for suffix in ("weight", "bias"):
        cls, own_cls = weights.get(CLS + suffix), own.get(CLS + suffix)
        softmax_rows = (
            cls is not None
            and own_cls is not None
            and cls.shape[0] == n_src + 1
            and own_cls.shape[0] == n_dst + 1
            and cls.shape[1:] == own_cls.shape[1:]
        )
        if source_classes and softmax_rows:
            assert cls is not None and own_cls is not None
            new = own_cls.clone()
            for j, (_, i) in enumerate(mapping.rows):
                if i is not None:
                    new[j] = cls[i]
            new[n_dst] = cls[n_src]  # background
            out[CLS + suffix] = new
        reg, own_reg = weights.get(REG + suffix), own.get(REG + suffix)
        if (
            source_classes
            and reg is not None
            and own_reg is not None
            and reg.shape[1:] == own_reg.shape[1:]
        ):
            if reg.shape[0] == 4 * n_src and own_reg.shape[0] == 4 * n_dst:
                out[REG + suffix] = _by_class(reg, own_reg, mapping, 4)
            elif reg.shape == own_reg.shape:  # class-agnostic regression: shared by all
                out[REG + suffix] = reg
        mask, own_mask = weights.get(MASK + suffix), own.get(MASK + suffix)
        if source_classes and mask is not None and own_mask is not None:
            if mask.shape[0] == n_src and own_mask.shape[0] == n_dst:
                out[MASK + suffix] = _by_class(mask, own_mask, mapping, 1)
            elif mask.shape == own_mask.shape:  # class-agnostic masks: shared by all
                out[MASK + suffix] = mask
    return out, mapping


def _by_class(rows: Tensor, own: Tensor, mapping: ClassMapping, per_class: int) -> Tensor:
    """`own` with each mapped class's `per_class` rows taken from `rows`."""
    new = own.clone()
    for j, (_, i) in enumerate(mapping.rows):
        if i is not None:
            new[per_class * j : per_class * (j + 1)] = rows[per_class * i : per_class * (i + 1)]
    return new
