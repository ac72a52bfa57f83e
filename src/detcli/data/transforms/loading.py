"""LoadImageFromFile and LoadAnnotations: the first steps of every pipeline."""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_image

from detcli.data.masks import from_coco, segmentation_is_usable
from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS

# Pillow's decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS, about 89.5 million pixels):
# a 100 kB PNG can declare 30000x30000 pixels and take gigabytes to decode.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
MAX_PIXELS_ENV = "DETCLI_MAX_IMAGE_PIXELS"
_PILLOW_LIMIT_LOCK = threading.Lock()

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec, which is not a
# dependency here; they remain the fastest JPEG/PNG decoders available to this package.
warnings.filterwarnings(
    "ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning
)


class BadImageError(DataError):
    """An image file that is missing or cannot be decoded (the dataset may skip it)."""


def max_image_pixels(given: int | None = None) -> int | None:
    """The pixel limit: `given`, else $DETCLI_MAX_IMAGE_PIXELS, else Pillow's; 0 or less: none."""
    if given is None:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        try:
            given = int(text) if text else DEFAULT_MAX_IMAGE_PIXELS
        except ValueError:
            raise DataError(
                f"${MAX_PIXELS_ENV} is {text!r}; set it to a number of pixels (e.g. 200000000), "
                f"or 0 for no limit."
            ) from None
    return given if given > 0 else None


def header_size(data: bytes | str) -> tuple[int, int] | None:
    """(width, height) from an image's header (no decode; before EXIF orientation); None if
    Pillow cannot tell (the decoder then reports the file)."""
    from PIL import Image

    try:
        return _open_size(data)
    except Image.DecompressionBombError:
        # Pillow refuses headers over twice its own limit; detcli applies its own limit, so
        # read the size with Pillow's check off (rare path, one thread at a time).
        with _PILLOW_LIMIT_LOCK:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return _open_size(data)
            except Exception:
                return None
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except Exception:  # not an image Pillow reads
        return None


def _open_size(data: bytes | str) -> tuple[int, int]:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: the limit is detcli's
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            return im.size


def refuse_huge(which: str, size: tuple[int, int] | None, limit: int | None) -> None:
    """BadImageError when an image's header declares more pixels than `limit`."""
    if size is None or limit is None or size[0] * size[1] <= limit:
        return
    raise BadImageError(
        f"Image file {which} declares {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels, over "
        f"the limit of {limit:,} (decoding it would take {size[0] * size[1] * 3 / 2**30:.1f} GiB; "
        f"it may be a decompression bomb). Replace or remove the image, or raise the limit with "
        f"${MAX_PIXELS_ENV} or LoadImageFromFile's `max_pixels` (0: no limit); "
        f"`on_bad_image: warn` on the dataset skips such images."
    )


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
        max_pixels: int | None = None,
    ):
        _local_only("LoadImageFromFile", "file_client_args", file_client_args)
        _local_only("LoadImageFromFile", "backend_args", backend_args)
        self.to_float32 = to_float32
        self.color_type = color_type
        # torchvision decodes every file; mmcv's choice of decoder gives the same pixels
        self.imdecode_backend = imdecode_backend
        self.ignore_empty = ignore_empty
        # None: $DETCLI_MAX_IMAGE_PIXELS or Pillow's limit, read when the pipeline is built
        self.max_pixels = max_image_pixels(max_pixels)

    def __call__(self, results: Results) -> Results | None:
        info = results["img_info"]
        prefix = results.get("img_prefix") or ""
        filename = os.path.join(prefix, info["filename"]) if prefix else info["filename"]
        try:
            img = load_image(
                filename,
                info.get("id"),
                grayscale=self.color_type == "grayscale",
                max_pixels=self.max_pixels if self.max_pixels is not None else 0,
            )
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


def load_image(
    filename: str, img_id: int | None = None, grayscale: bool = False, max_pixels: int | None = None
) -> torch.Tensor:
    """A (3, H, W) uint8 RGB tensor from an image file; BadImageError names file and id.

    Train, eval, predict and `lint --decode` all decode here: 16-bit PNGs are scaled to 0-255
    like 8-bit ones, and a header declaring more than `max_pixels` pixels (None: the
    $DETCLI_MAX_IMAGE_PIXELS / Pillow limit, 0: no limit) is refused before decoding.
    """
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
    refuse_huge(which, header_size(data), max_image_pixels(max_pixels))
    try:
        # GRAY then expand keeps 3 channels for a colour-blind model; RGB also turns grayscale
        # and palette files into 3 channels.
        mode = ImageReadMode.GRAY if grayscale else ImageReadMode.RGB
        img: torch.Tensor = decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode, True
        )
    except (RuntimeError, ValueError) as exc:
        # torchvision prefixes its message with the C++ function and source line: drop them.
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = re.split(r"\.cpp:\d+, ", text)[-1]
        raise BadImageError(
            f"Image file {which} cannot be decoded ({reason}): it is corrupt, truncated or not a "
            f"JPEG/PNG. Replace the file or remove the image from the annotation file, or set "
            f"`on_bad_image: warn` on the dataset to skip such images."
        ) from None
    if img.dtype == torch.uint16:  # 16-bit PNG: 0-65535 -> 0-255, as Pillow's 8-bit view
        img = (img.to(torch.int32) * 255 + 32767).div(65535, rounding_mode="floor").to(torch.uint8)
    return img.expand(3, -1, -1) if img.shape[0] == 1 else img


@TRANSFORMS.register()
class LoadAnnotations:
    """Put the image's boxes (xyxy float32), labels (int64) and crowd/ignore boxes in results.

    `with_mask`: `gt_masks`, one mask per row of `gt_bboxes` (crowd regions stay ignore boxes
    and get none), as bitmaps, or as polygons when `poly2mask` is false (RLE masks are always
    bitmaps). An instance whose segmentation covers nothing (no polygon of 3 points) becomes
    an ignore box, as MMDetection 3.x ignores it.
    """

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
        if with_seg:
            raise DataError(
                "LoadAnnotations: semantic maps (with_seg) are not supported by detcli (they come "
                "with panoptic and semantic models). Set with_seg to false (or remove it) in the "
                "pipeline; instance masks (with_mask) are supported."
            )
        if box_type not in ("hbox", None):
            raise DataError(
                f"LoadAnnotations: box_type {box_type!r} is not supported; detcli handles "
                f"horizontal boxes only (box_type: hbox)."
            )
        _local_only("LoadAnnotations", "backend_args", backend_args)
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.with_mask = with_mask
        self.poly2mask = poly2mask

    def __call__(self, results: Results) -> Results:
        ann = results["ann_info"]
        fields = results.setdefault("bbox_fields", [])
        if self.with_bbox:
            results["gt_bboxes"] = torch.from_numpy(ann["bboxes"])
            results["gt_bboxes_ignore"] = torch.from_numpy(ann["bboxes_ignore"])
            fields += [k for k in ("gt_bboxes", "gt_bboxes_ignore") if k not in fields]
        if self.with_label:
            results["gt_labels"] = torch.from_numpy(ann["labels"])
        if self.with_mask:
            self._load_masks(results, ann)
        return results

    def _load_masks(self, results: Results, ann: dict[str, Any]) -> None:
        info = results["img_info"]
        which = f"image {info.get('filename')} (image id {info.get('id')})"
        segs = ann.get("masks")
        if segs is None:
            raise DataError(
                f"LoadAnnotations(with_mask=True): the dataset gave no segmentations for {which}. "
                f"CocoDataset reads them when LoadAnnotations with_mask: true is in its pipeline; "
                f"another dataset must put `masks` (one COCO segmentation per box) in ann_info."
            )
        h, w = int(info["height"]), int(info["width"])
        shape = results.get("img_shape")
        if shape is not None and tuple(shape[:2]) != (h, w):
            raise DataError(
                f"{which}: the file decodes to {shape[1]}x{shape[0]} pixels but the annotation "
                f"file says {w}x{h}; its masks would not fit the image. Fix `width`/`height` "
                f"(`detcli dataset lint --decode` lists every such image)."
            )
        usable = np.fromiter((segmentation_is_usable(s) for s in segs), bool, len(segs))
        if not usable.all() and "gt_bboxes" in results:
            keep = torch.from_numpy(usable)
            boxes = results["gt_bboxes"]
            results["gt_bboxes_ignore"] = torch.cat([results["gt_bboxes_ignore"], boxes[~keep]])
            results["gt_bboxes"] = boxes[keep]
            if "gt_labels" in results:
                results["gt_labels"] = results["gt_labels"][keep]
        try:
            masks = from_coco(
                [s for s, u in zip(segs, usable, strict=True) if u], h, w, self.poly2mask
            )
        except DataError as exc:
            raise DataError(f"{which}: {exc}") from None
        results["gt_masks"] = masks
        fields = results.setdefault("mask_fields", [])
        if "gt_masks" not in fields:
            fields.append("gt_masks")

    def __repr__(self) -> str:
        return (
            f"LoadAnnotations(with_bbox={self.with_bbox}, with_label={self.with_label}, "
            f"with_mask={self.with_mask}, poly2mask={self.poly2mask})"
        )


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
