"""LoadImageFromFile and LoadAnnotations: the first steps of every pipeline."""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, ClassVar, Literal

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

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {
        "imdecode_backend": "images are decoded by torchvision/Pillow",
    }

    def __init__(
        self,
        to_float32: bool = False,
        color_type: Literal["color", "grayscale"] = "color",
        file_client_args: dict[str, Any] | None = None,
        imdecode_backend: str = "cv2",
        backend_args: dict[str, Any] | None = None,
        ignore_empty: bool = False,
    ):
        _local_only("LoadImageFromFile", "file_client_args", file_client_args)
        _local_only("LoadImageFromFile", "backend_args", backend_args)
        self.to_float32 = to_float32
        self.color_type = color_type
        # torchvision decodes every file; mmcv's choice of decoder gives the same pixels
        self.imdecode_backend = imdecode_backend
        self.ignore_empty = ignore_empty

    def __call__(self, results: Results) -> Results | None:
        info = results["img_info"]
        prefix = results.get("img_prefix") or ""
        filename = os.path.join(prefix, info["filename"]) if prefix else info["filename"]
        try:
            img = load_image(filename, info.get("id"), grayscale=self.color_type == "grayscale")
        except BadImageError:
            if self.ignore_empty:  # mmcv 2.x: an unreadable file rejects the sample
                return None
            raise
        if self.to_float32:
            img = img.float()
        shape = (int(img.shape[1]), int(img.shape[2]), int(img.shape[0]))
        results.update(
            filename=filename,
            img_path=filename,
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
        poly2mask: bool = True,
        box_type: str | None = "hbox",
        backend_args: dict[str, Any] | None = None,
        imdecode_backend: str = "cv2",
    ):
        if with_mask or with_seg:
            what = "instance masks (with_mask)" if with_mask else "semantic maps (with_seg)"
            raise DataError(
                f"LoadAnnotations: {what} are not supported by detcli yet (they come with Mask "
                f"R-CNN); detcli trains box detectors. Set with_mask / with_seg to false (or "
                f"remove them) in the pipeline."
            )
        if box_type not in ("hbox", None):
            raise DataError(
                f"LoadAnnotations: box_type {box_type!r} is not supported; detcli handles "
                f"horizontal boxes only (box_type: hbox)."
            )
        _local_only("LoadAnnotations", "backend_args", backend_args)
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.poly2mask = poly2mask  # masks are refused above: no effect

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


def _local_only(owner: str, key: str, args: dict[str, Any] | None) -> None:
    """detcli reads local files: a file backend other than disk/local is a clear error."""
    if args is None:
        return
    if not isinstance(args, dict):
        raise DataError(f"{owner}: {key} must be a mapping or null, not {args!r}.")
    if args.get("backend", "disk") not in ("disk", "local"):
        raise DataError(
            f"{owner} reads local files only; {key}={args!r} asks for another backend. "
            f"Remove {key} (or set it to null) and copy the images to a local disk."
        )
