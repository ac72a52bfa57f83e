"""Instance masks as bitmaps or as polygons: both satisfy `detcli.structures.InstanceMasks`.

`BitmapMasks` holds a uint8 (N, H, W) tensor. `PolygonMasks` keeps COCO polygons as polygons
(a COCO-sized set must not hold a full-image bitmap per instance in RAM), stored flat: every
vertex in one (V, 2) float64 array, with offsets from polygon to vertices and from instance to
polygons, so resize, flip, selection and clipping are array operations, not loops over
instances. Both move with the image exactly as boxes do (`x -> w - x` on a horizontal flip,
coordinates times the scale factors on a resize), and both give the mask head its targets
through `crop_and_resize`. `from_coco` turns a list of COCO `segmentation` values into one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import torch
import torch.nn.functional as F

from detcli.data.polygons import clip_polygons, next_vertex, offsets, ranges, rasterise
from detcli.errors import DataError

Direction = Literal["horizontal", "vertical", "diagonal"]
Index: TypeAlias = "torch.Tensor | np.ndarray | Sequence[int] | slice | int"
Segmentation: TypeAlias = "list[list[float]] | dict[str, Any]"


def _index_array(index: Index, length: int) -> np.ndarray:
    """int64 positions from a bool mask, an index tensor/array/list, a slice or an int."""
    if isinstance(index, slice):
        return np.arange(length)[index]
    if isinstance(index, int):
        return np.array([index if index >= 0 else index + length])
    arr = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
    if arr.dtype == bool:
        if arr.shape != (length,):
            raise IndexError(f"a bool index of {arr.shape[0]} for {length} masks")
        return np.flatnonzero(arr)
    return arr.astype(np.int64).reshape(-1) % max(length, 1)


class BitmapMasks:
    """Masks as a uint8 (N, H, W) tensor (1 inside the instance), in image pixels."""

    def __init__(self, masks: torch.Tensor | np.ndarray, height: int, width: int):
        tensor = torch.as_tensor(masks)
        if tensor.numel() == 0:
            tensor = tensor.reshape(0, height, width)
        if tensor.ndim != 3 or tuple(tensor.shape[1:]) != (height, width):
            raise ValueError(f"masks of shape {tuple(tensor.shape)} for a {height}x{width} image")
        self.masks = tensor.to(torch.uint8)
        self._height, self._width = int(height), int(width)

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def __getitem__(self, index: Index) -> BitmapMasks:
        rows = torch.from_numpy(_index_array(index, len(self)))
        return BitmapMasks(self.masks[rows], self.height, self.width)

    def __repr__(self) -> str:
        return f"BitmapMasks(num_masks={len(self)}, height={self.height}, width={self.width})"

    def resize(self, size: tuple[int, int]) -> BitmapMasks:
        """The masks at (h, w). Nearest-exact (pixel centres) so they scale like the boxes."""
        h, w = size
        if (h, w) == (self.height, self.width):
            return self
        if len(self) == 0:
            return BitmapMasks(self.masks.new_zeros((0, h, w)), h, w)
        out = F.interpolate(self.masks[None], size=(h, w), mode="nearest-exact")[0]
        return BitmapMasks(out, h, w)

    def flip(self, direction: Direction = "horizontal") -> BitmapMasks:
        """Mirrored as RandomFlip mirrors the image."""
        dims = {"horizontal": [-1], "vertical": [-2], "diagonal": [-2, -1]}[direction]
        return BitmapMasks(self.masks.flip(dims), self.height, self.width)

    def pad(self, size: tuple[int, int], value: int = 0) -> BitmapMasks:
        """Grown to (h, w) at the bottom and right, as Pad grows the image."""
        h, w = size
        out = self.masks.new_full((len(self), h, w), value)
        out[:, : self.height, : self.width] = self.masks[:, :h, :w]
        return BitmapMasks(out, h, w)

    def crop(self, box: Sequence[int] | np.ndarray) -> BitmapMasks:
        """The window `box` (x1, y1, x2, y2 whole pixels, clipped to the image)."""
        x1, y1, x2, y2 = _crop_window(box, self.height, self.width)
        return BitmapMasks(self.masks[:, y1:y2, x1:x2], y2 - y1, x2 - x1)

    def to_bitmap(self) -> BitmapMasks:
        return self

    def to_tensor(self) -> torch.Tensor:
        """bool (N, H, W)."""
        return self.masks.bool()

    @property
    def areas(self) -> torch.Tensor:
        """float32 (N,): pixels inside each mask."""
        return self.masks.flatten(1).sum(1, dtype=torch.int64).float()

    def bounding_boxes(self) -> torch.Tensor:
        """float32 (N, 4) xyxy: the tightest box around each mask (zeros for an empty one)."""
        rows, cols = self.masks.bool().any(2), self.masks.bool().any(1)
        boxes = torch.zeros((len(self), 4))
        if len(self) == 0:
            return boxes
        ys = torch.arange(self.height)
        xs = torch.arange(self.width)
        big = max(self.height, self.width)
        boxes[:, 0] = torch.where(cols, xs, big).amin(1)
        boxes[:, 1] = torch.where(rows, ys, big).amin(1)
        boxes[:, 2] = torch.where(cols, xs + 1, 0).amax(1)
        boxes[:, 3] = torch.where(rows, ys + 1, 0).amax(1)
        return boxes * (cols.any(1, keepdim=True))

    def crop_and_resize(
        self,
        boxes: torch.Tensor,
        inds: torch.Tensor,
        size: tuple[int, int],
        binarize: bool = True,
    ) -> torch.Tensor:
        """Float (P, h, w): mask `inds[p]` inside `boxes[p]`, by RoIAlign (aligned, as mmdet).

        Only the masks some RoI uses are turned to float and moved to the boxes' device;
        `binarize` thresholds at 0.5 as MMDetection's mask targets are.
        """
        from torchvision.ops import roi_align

        device = boxes.device
        if boxes.shape[0] == 0:
            return torch.zeros((0, *size), device=device)
        used, which = torch.unique(inds.to(self.masks.device), return_inverse=True)
        masks = self.masks[used].to(device=device, dtype=torch.float32)[:, None]
        rois = torch.cat([which.to(device, boxes.dtype)[:, None], boxes], dim=1).float()
        out: torch.Tensor = roi_align(masks, rois, size, 1.0, 0, True)[:, 0]
        return (out >= 0.5).float() if binarize else out


class PolygonMasks:
    """Masks as polygons (each instance: a list of [x0, y0, x1, y1, ...] in image pixels)."""

    def __init__(
        self,
        coords: np.ndarray,
        poly_offsets: np.ndarray,
        inst_offsets: np.ndarray,
        height: int,
        width: int,
    ):
        self.coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        self.poly_offsets = np.asarray(poly_offsets, dtype=np.int64)  # polygon -> vertices
        self.inst_offsets = np.asarray(inst_offsets, dtype=np.int64)  # instance -> polygons
        self._height, self._width = int(height), int(width)

    @classmethod
    def from_polygons(
        cls, polygons: Sequence[Sequence[Sequence[float] | np.ndarray]], height: int, width: int
    ) -> PolygonMasks:
        """From nested lists: per instance, its polygons as flat [x0, y0, x1, y1, ...]."""
        flat = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for inst in polygons for p in inst]
        coords = np.concatenate(flat) if flat else np.zeros((0, 2))
        poly_offsets = offsets(np.array([len(p) for p in flat], dtype=np.int64))
        inst_offsets = offsets(np.array([len(inst) for inst in polygons], dtype=np.int64))
        return cls(coords, poly_offsets, inst_offsets, height, width)

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    def __len__(self) -> int:
        return len(self.inst_offsets) - 1

    def __repr__(self) -> str:
        return f"PolygonMasks(num_masks={len(self)}, height={self.height}, width={self.width})"

    @property
    def polygons(self) -> list[list[np.ndarray]]:
        """Per instance, its polygons as flat float64 arrays [x0, y0, x1, y1, ...]."""
        polys = [
            self.coords[a:b].reshape(-1)
            for a, b in zip(self.poly_offsets[:-1], self.poly_offsets[1:], strict=True)
        ]
        return [
            polys[a:b] for a, b in zip(self.inst_offsets[:-1], self.inst_offsets[1:], strict=True)
        ]

    def _with(self, coords: np.ndarray, height: int, width: int) -> PolygonMasks:
        return PolygonMasks(coords, self.poly_offsets, self.inst_offsets, height, width)

    def __getitem__(self, index: Index) -> PolygonMasks:
        rows = _index_array(index, len(self))
        n_polys = np.diff(self.inst_offsets)[rows]
        polys = ranges(self.inst_offsets[rows], n_polys)
        n_verts = np.diff(self.poly_offsets)[polys]
        verts = ranges(self.poly_offsets[polys], n_verts)
        return PolygonMasks(
            self.coords[verts], offsets(n_verts), offsets(n_polys), self.height, self.width
        )

    def resize(self, size: tuple[int, int]) -> PolygonMasks:
        """The polygons at (h, w): x times w / width, y times h / height (as the boxes)."""
        h, w = size
        scale = np.array([w / self.width, h / self.height])
        return self._with(self.coords * scale, h, w)

    def flip(self, direction: Direction = "horizontal") -> PolygonMasks:
        """Mirrored as RandomFlip mirrors boxes: x -> width - x, y -> height - y."""
        coords = self.coords.copy()
        if direction in ("horizontal", "diagonal"):
            coords[:, 0] = self.width - coords[:, 0]
        if direction in ("vertical", "diagonal"):
            coords[:, 1] = self.height - coords[:, 1]
        return self._with(coords, self.height, self.width)

    def pad(self, size: tuple[int, int], value: int = 0) -> PolygonMasks:
        """Bottom/right padding moves no vertex: only the canvas grows."""
        return self._with(self.coords, *size)

    def crop(self, box: Sequence[int] | np.ndarray) -> PolygonMasks:
        """The window `box` (x1, y1, x2, y2): polygons clipped to it exactly, then shifted."""
        x1, y1, x2, y2 = _crop_window(box, self.height, self.width)
        n_polys = len(self.poly_offsets) - 1
        window = np.tile(np.array([x1, y1, x2, y2], dtype=np.float64), (n_polys, 1))
        coords, n_verts = clip_polygons(self.coords, np.diff(self.poly_offsets), window)
        return PolygonMasks(
            coords - np.array([x1, y1]), offsets(n_verts), self.inst_offsets, y2 - y1, x2 - x1
        )

    def to_bitmap(self) -> BitmapMasks:
        """Rasterised with pycocotools (the pixels COCO evaluation counts)."""
        polys_per_inst = np.diff(self.inst_offsets)
        masks = rasterise(self.coords, self.poly_offsets, polys_per_inst, self.height, self.width)
        return BitmapMasks(masks, self.height, self.width)

    def to_tensor(self) -> torch.Tensor:
        """bool (N, H, W), rasterised."""
        return self.to_bitmap().to_tensor()

    @property
    def areas(self) -> torch.Tensor:
        """float32 (N,): the polygons' areas (shoelace), summed per instance."""
        n_verts = np.diff(self.poly_offsets)
        x, y = self.coords[:, 0], self.coords[:, 1]
        nxt = next_vertex(n_verts)
        poly_of_vert = np.repeat(np.arange(len(n_verts)), n_verts)
        per_poly = np.zeros(len(n_verts))
        np.add.at(per_poly, poly_of_vert, x * y[nxt] - x[nxt] * y)
        per_poly = np.abs(per_poly) / 2
        per_inst = np.zeros(len(self))
        np.add.at(per_inst, np.repeat(np.arange(len(self)), np.diff(self.inst_offsets)), per_poly)
        return torch.from_numpy(per_inst).float()

    def bounding_boxes(self) -> torch.Tensor:
        """float32 (N, 4) xyxy around each instance's vertices (zeros for one with none)."""
        boxes = np.zeros((len(self), 4))
        inst_of_vert = np.repeat(
            np.repeat(np.arange(len(self)), np.diff(self.inst_offsets)), np.diff(self.poly_offsets)
        )
        if inst_of_vert.size:
            boxes[:, :2] = np.inf
            boxes[:, 2:] = -np.inf
            np.minimum.at(boxes[:, 0], inst_of_vert, self.coords[:, 0])
            np.minimum.at(boxes[:, 1], inst_of_vert, self.coords[:, 1])
            np.maximum.at(boxes[:, 2], inst_of_vert, self.coords[:, 0])
            np.maximum.at(boxes[:, 3], inst_of_vert, self.coords[:, 1])
            boxes[~np.isfinite(boxes).all(1)] = 0
        return torch.from_numpy(boxes).float()

    def crop_and_resize(
        self,
        boxes: torch.Tensor,
        inds: torch.Tensor,
        size: tuple[int, int],
        binarize: bool = True,
    ) -> torch.Tensor:
        """Float (P, h, w): instance `inds[p]` clipped to `boxes[p]`, scaled into `size` and
        rasterised there (MMDetection's PolygonMasks.crop_and_resize, with exact clipping).

        Every RoI's polygons are gathered, clipped and scaled as one vertex array; pycocotools
        rasterises them in one call, and one index_add ORs the polygons of each RoI.
        """
        device = boxes.device
        out_h, out_w = size
        if boxes.shape[0] == 0:
            return torch.zeros((0, out_h, out_w), device=device)
        rois = boxes.detach().cpu().double().numpy()
        inst = inds.cpu().numpy().astype(np.int64)
        n_polys = np.diff(self.inst_offsets)[inst]
        polys = ranges(self.inst_offsets[inst], n_polys)  # polygons of RoI 0, RoI 1, ...
        roi_of_poly = np.repeat(np.arange(len(inst)), n_polys)
        n_verts = np.diff(self.poly_offsets)[polys]
        coords = self.coords[ranges(self.poly_offsets[polys], n_verts)]
        coords, n_verts = clip_polygons(coords, n_verts, rois[roi_of_poly])
        # into the RoI's frame, then its size: mmdet's (x - x1) * out_w / max(x2 - x1, 1)
        roi_of_vert = np.repeat(roi_of_poly, n_verts)
        x1y1 = rois[roi_of_vert, :2]
        wh = np.maximum(rois[roi_of_vert, 2:] - x1y1, 1.0)
        coords = (coords - x1y1) * (np.array([out_w, out_h]) / wh)
        masks = rasterise(coords, offsets(n_verts), n_polys, out_h, out_w, union_in_rle=False)
        return masks.to(device=device, dtype=torch.float32)


def _crop_window(box: Sequence[int] | np.ndarray, height: int, width: int) -> tuple[int, ...]:
    x1, y1, x2, y2 = (int(v) for v in box)
    x1, x2 = min(max(x1, 0), width), min(max(x2, 0), width)
    y1, y2 = min(max(y1, 0), height), min(max(y2, 0), height)
    return x1, y1, max(x2, x1), max(y2, y1)


def polygon_is_usable(polygon: Any) -> bool:
    """A COCO polygon pycocotools can rasterise: an even number (>= 6) of coordinates."""
    return isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0


def segmentation_is_usable(seg: Any) -> bool:
    """Whether a COCO `segmentation` describes a region: an RLE, or some usable polygon."""
    if isinstance(seg, dict):
        return "counts" in seg and "size" in seg
    return isinstance(seg, list) and any(polygon_is_usable(p) for p in seg)


def _rle(seg: dict[str, Any], height: int, width: int, which: int) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    size = [int(v) for v in seg["size"]]
    if size != [height, width]:
        raise DataError(
            f"segmentation {which}: its RLE `size` {size} differs from the image's "
            f"[{height}, {width}] (height, width). Fix the annotation; `detcli dataset lint` "
            f"lists every such mask."
        )
    if isinstance(seg["counts"], list):  # uncompressed RLE (crowd regions are often written so)
        rle: dict[str, Any] = mask_utils.frPyObjects(seg, height, width)
        return rle
    counts = seg["counts"]
    return {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}


def from_coco(
    segmentations: Sequence[Segmentation], height: int, width: int, poly2mask: bool = True
) -> BitmapMasks | PolygonMasks:
    """Masks from COCO `segmentation` values (polygons, or RLE compressed or not).

    Polygons stay polygons unless `poly2mask`; RLE always becomes bitmaps, and so does an
    image holding any RLE (one image's masks are one kind). Polygons with fewer than 3
    points or an odd number of coordinates are left out (they cover nothing; lint names them).
    """
    from pycocotools import mask as mask_utils

    segs = list(segmentations)
    has_rle = any(isinstance(s, dict) for s in segs)
    polys = [[p for p in s if polygon_is_usable(p)] if isinstance(s, list) else [] for s in segs]
    if not has_rle:
        masks = PolygonMasks.from_polygons(polys, height, width)
        return masks.to_bitmap() if poly2mask else masks
    rles = []
    for i, (seg, parts) in enumerate(zip(segs, polys, strict=True)):
        if isinstance(seg, dict):
            rles.append(_rle(seg, height, width, i))
        elif parts:
            rles.append(mask_utils.merge(mask_utils.frPyObjects(parts, height, width)))
        else:  # no region: an all-zero RLE
            rles.append(
                mask_utils.frPyObjects(
                    {"size": [height, width], "counts": [height * width]}, height, width
                )
            )
    decoded = mask_utils.decode(rles)  # (h, w, N) column-major: its transpose is contiguous
    return BitmapMasks(torch.from_numpy(decoded.T).transpose(1, 2), height, width)


def empty_masks(height: int, width: int, poly2mask: bool) -> BitmapMasks | PolygonMasks:
    """No instance: the kind `from_coco` would give an image with polygons."""
    return from_coco([], height, width, poly2mask)


if TYPE_CHECKING:  # both kinds satisfy the contract the mask head reads (checked by mypy)
    from detcli.structures import InstanceMasks

    _BITMAPS: type[InstanceMasks] = BitmapMasks
    _POLYGONS: type[InstanceMasks] = PolygonMasks
