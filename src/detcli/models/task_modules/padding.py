"""Per-image box lists padded into one batch tensor, so the batch is assigned in one call."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


def pad_boxes(boxes: Sequence[Tensor], width: int = 4) -> tuple[Tensor, Tensor]:
    """(B, M, width) float boxes padded with zeros and (B, M) bool: the row is a real box.

    M is the longest list; an empty batch gives M = 0.
    """
    rows = [b[:, :width].float() for b in boxes]
    # NaN marks the padding: the mask then costs one op, not one per image (a real box with
    # NaN coordinates would poison the loss anyway).
    padded = pad_sequence(rows, batch_first=True, padding_value=float("nan"))
    valid = ~torch.isnan(padded[..., 0])
    return torch.nan_to_num(padded, nan=0.0), valid


def pad_labels(labels: Sequence[Tensor]) -> Tensor:
    """(B, M) int64 labels padded with -1."""
    return pad_sequence([lab.long() for lab in labels], batch_first=True, padding_value=-1)
