"""LoadImageFromFile and LoadAnnotations: the first steps of every pipeline."""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Literal

import torch
from torchvision.io import ImageReadMode, decode_image

from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec, which is not a
# dependency here; they remain the fastest JPEG/PNG decoders available to this package.
warnings.filterwarnings(
    "ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning
)


class BadImageError(DataError):
    """An image file that is missing or cannot be decoded (the dataset may skip it)."""


@TRANSFORMS.register()
class LoadImageFromFile:
    """Decode a JPEG/PNG into a (3, H, W) uint8 RGB tensor, EXIF orientation applied."""

    def __init__(
        self,
        to_float32: bool = False,
        color_type: Literal["color", "grayscale"] = "color",
        file_client_args: dict[str, Any] | None = None,
    ):
        if file_client_args and file_client_args.get("backend", "disk") != "disk":
            raise DataError(
                f"LoadImageFromFile reads local files only; file_client_args={file_client_args!r} "
                f"asks for another backend. Remove file_client_args or copy the images locally."
            )
        self.to_float32 = to_float32
        self.color_type = color_type

    def __call__(self, results: Results) -> Results:
        info = results["img_info"]
        prefix = results.get("img_prefix") or ""
        filename = os.path.join(prefix, info["filename"]) if prefix else info["filename"]
        img = load_image(filename, info.get("id"), grayscale=self.color_type == "grayscale")
        if self.to_float32:
            img = img.float()
        shape = (int(img.shape[1]), int(img.shape[2]), int(img.shape[0]))
        results.update(
            filename=filename,
            ori_filename=info["filename"],
            img=img,
            img_shape=shape,
            ori_shape=shape,
            img_fields=["img"],
        )
        return results

    def __repr__(self) -> str:
        return f"LoadImageFromFile(to_float32={self.to_float32}, color_type={self.color_type!r})"


def load_image(filename: str, img_id: int | None = None, grayscale: bool = False) -> torch.Tensor:
    """A (3, H, W) uint8 RGB tensor from an image file; BadImageError names file and id."""
    which = f"{filename} (image id {img_id})" if img_id is not None else filename
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise BadImageError(
            f"Image file {which} cannot be read: {exc.strerror or exc}. Check `img_prefix` and "
            f"the image's `file_name` in the annotation file (`detcli dataset lint` lists every "
            f"missing file), or set `on_bad_image: warn` on the dataset to skip such images."
        ) from None
    try:
        # GRAY then expand keeps 3 channels for a colour-blind model; RGB also turns grayscale
        # and palette files into 3 channels.
        mode = ImageReadMode.GRAY if grayscale else ImageReadMode.RGB
        img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode, True)
    except (RuntimeError, ValueError) as exc:
        # torchvision prefixes its message with the C++ function and source line: drop them.
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = re.split(r"\.cpp:\d+, ", text)[-1]
        raise BadImageError(
            f"Image file {which} cannot be decoded ({reason}): it is corrupt, truncated or not a "
            f"JPEG/PNG. Replace the file or remove the image from the annotation file, or set "
            f"`on_bad_image: warn` on the dataset to skip such images."
        ) from None
    return img.expand(3, -1, -1) if img.shape[0] == 1 else img


@TRANSFORMS.register()
class LoadAnnotations:
    """Put the image's boxes (xyxy float32), labels (int64) and crowd/ignore boxes in results."""

    def __init__(
        self,
        with_bbox: bool = True,
        with_label: bool = True,
        with_mask: bool = False,
        with_seg: bool = False,
    ):
        if with_mask or with_seg:
            raise DataError(
                "LoadAnnotations: detcli trains box detectors only; with_mask / with_seg are not "
                "supported. Set them to false (or remove them) in the pipeline."
            )
        self.with_bbox = with_bbox
        self.with_label = with_label

    def __call__(self, results: Results) -> Results:
        ann = results["ann_info"]
        fields = results.setdefault("bbox_fields", [])
        if self.with_bbox:
            results["gt_bboxes"] = torch.from_numpy(ann["bboxes"])
            results["gt_bboxes_ignore"] = torch.from_numpy(ann["bboxes_ignore"])
            fields += [k for k in ("gt_bboxes", "gt_bboxes_ignore") if k not in fields]
        if self.with_label:
            results["gt_labels"] = torch.from_numpy(ann["labels"])
        return results

    def __repr__(self) -> str:
        return f"LoadAnnotations(with_bbox={self.with_bbox}, with_label={self.with_label})"
