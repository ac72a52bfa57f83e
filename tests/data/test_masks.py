"""BitmapMasks and PolygonMasks: exact bitmap arithmetic, and polygons agreeing with bitmaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from detcli.data.masks import BitmapMasks, PolygonMasks, from_coco
from detcli.data.polygons import clip_polygons
from detcli.errors import DataError

H, W = 64, 100
# a quadrilateral; two polygons of one instance (a rectangle and a triangle); an empty instance
POLYS = [
    [[10.0, 10, 50, 12, 40, 40, 12, 35]],
    [[60.0, 20, 90, 20, 90, 50, 60, 50], [5.0, 50, 20, 50, 20, 60]],
    [],
]


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.bool().flatten(1), b.bool().flatten(1)
    return (a & b).sum(1) / (a | b).sum(1).clamp(min=1)


@pytest.fixture
def polys() -> PolygonMasks:
    return PolygonMasks.from_polygons(POLYS, H, W)


@pytest.fixture
def bitmaps() -> BitmapMasks:
    return PolygonMasks.from_polygons(POLYS, H, W).to_bitmap()


def test_rasterising_matches_pycocotools_and_areas(polys: PolygonMasks) -> None:
    bm = polys.to_bitmap()
    for k, inst in enumerate(POLYS[:2]):
        rle = mask_utils.merge(mask_utils.frPyObjects(inst, H, W))
        assert torch.equal(bm.masks[k], torch.from_numpy(mask_utils.decode(rle)))
    assert bm.masks[2].sum() == 0
    # shoelace areas of the polygons: 915 (quad), 900 + 75 (rectangle + triangle)
    assert polys.areas.tolist() == pytest.approx([915.0, 975.0, 0.0])
    assert bm.areas.tolist() == pytest.approx([915.0, 975.0, 0.0], abs=15)


@pytest.mark.parametrize(
    "op",
    [
        lambda m: m.resize((192, 300)),
        lambda m: m.resize((80, 140)),
        lambda m: m.flip("horizontal"),
        lambda m: m.flip("vertical"),
        lambda m: m.flip("diagonal"),
        lambda m: m.pad((192, 256)),
        lambda m: m.crop([30, 10, 140, 90]),
        lambda m: m.crop([110, 50, 200, 128]),
    ],
    ids=["upscale", "downscale", "hflip", "vflip", "dflip", "pad", "crop", "crop-corner"],
)
def test_polygon_ops_agree_with_bitmap_ops(op) -> None:
    """Rasterise-after-op == op-after-rasterise, up to rasterisation (IoU > 0.95)."""
    big = [[[2 * v for v in p] for p in inst] for inst in POLYS]  # shapes of ~60 px
    polys = PolygonMasks.from_polygons(big, 2 * H, 2 * W)
    a, b = op(polys), op(polys.to_bitmap())
    assert (a.height, a.width) == (b.height, b.width)
    got = iou(a.to_bitmap().masks, b.masks)
    nonempty = b.masks.bool().flatten(1).any(1)
    assert (got[nonempty] > 0.95).all(), got
    assert not a.to_bitmap().masks[~nonempty].any()


def test_bitmap_flip_pad_crop_are_exact() -> None:
    m = torch.zeros((1, 6, 8), dtype=torch.uint8)
    m[0, 1:3, 2:5] = 1  # rows 1-2, cols 2-4: box (2, 1, 5, 3)
    bm = BitmapMasks(m, 6, 8)
    assert bm.bounding_boxes().tolist() == [[2, 1, 5, 3]]
    # a horizontal flip maps box x1, x2 to w - x2, w - x1: (3, 1, 6, 3), as boxes flip
    assert bm.flip("horizontal").bounding_boxes().tolist() == [[3, 1, 6, 3]]
    assert bm.flip("vertical").bounding_boxes().tolist() == [[2, 3, 5, 5]]
    assert bm.flip("diagonal").bounding_boxes().tolist() == [[3, 3, 6, 5]]
    padded = bm.pad((10, 12))
    assert (padded.height, padded.width) == (10, 12)
    assert torch.equal(padded.masks[:, :6, :8], m) and padded.masks[:, 6:].sum() == 0
    cropped = bm.crop([1, 1, 4, 5])  # the window keeps cols 1-3, rows 1-4
    assert (cropped.height, cropped.width) == (4, 3)
    assert torch.equal(cropped.masks[0], m[0, 1:5, 1:4])
    assert cropped.bounding_boxes().tolist() == [[1, 0, 3, 2]]
    # doubling the size doubles the box exactly (nearest-exact keeps pixel centres)
    assert bm.resize((12, 16)).bounding_boxes().tolist() == [[4, 2, 10, 6]]


def test_polygon_flip_and_resize_move_vertices_as_boxes(polys: PolygonMasks) -> None:
    flipped = polys.flip("horizontal")
    assert flipped.polygons[0][0][0::2].tolist() == [90.0, 50, 60, 88]
    assert flipped.bounding_boxes()[0].tolist() == [W - 50.0, 10, W - 10, 40]
    scaled = polys.resize((32, 200))  # x times 2, y times 0.5
    assert scaled.bounding_boxes()[0].tolist() == [20.0, 5, 100, 20]


def test_clip_polygons_is_exact() -> None:
    # a triangle cut by the window's right edge x = 10: a trapezoid, area checked exactly
    tri = np.array([[0.0, 0], [20, 0], [0, 20]])
    coords, n = clip_polygons(tri, np.array([3]), np.array([[0.0, 0, 10, 20]]))
    assert n.tolist() == [4]
    x, y = coords[:, 0], coords[:, 1]
    area = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
    assert area == pytest.approx(150.0)  # 200 minus the cut-off triangle of 50
    _, n = clip_polygons(tri, np.array([3]), np.array([[30.0, 30, 40, 40]]))
    assert n.tolist() == [0]


def test_selection_follows_rows(polys, bitmaps) -> None:
    keep = torch.tensor([True, False, True])
    assert len(polys[keep]) == 2 and len(bitmaps[keep]) == 2
    assert [len(p) for p in polys[keep].polygons] == [1, 0]
    assert torch.equal(polys[torch.tensor([1])].to_bitmap().masks, bitmaps[[1]].masks)
    assert len(polys[torch.zeros(3, dtype=torch.bool)]) == 0


@pytest.mark.parametrize("kind", ["bitmap", "polygon"])
def test_crop_and_resize_targets(polys, bitmaps, kind) -> None:
    masks = polys if kind == "polygon" else bitmaps
    boxes = torch.tensor([[10.0, 10, 50, 40], [60, 20, 90, 50], [0, 40, 30, 64], [0, 0, 8, 8]])
    inds = torch.tensor([0, 1, 1, 2])
    out = masks.crop_and_resize(boxes, inds, (28, 28))
    assert out.shape == (4, 28, 28) and out.dtype == torch.float32
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert out[1].mean() == 1  # RoI = the rectangle: all foreground
    assert out[3].sum() == 0  # an empty instance: all background
    # reference: the rasterised mask cut by hand and resized (nearest), IoU > 0.9
    full = bitmaps.masks[0, 10:40, 10:50][None, None].float()
    ref = torch.nn.functional.interpolate(full, (28, 28), mode="nearest-exact")[0]
    assert iou(out[:1], ref).item() > 0.9
    # the other kind agrees
    other = (bitmaps if kind == "polygon" else polys).crop_and_resize(boxes, inds, (28, 28))
    assert (iou(out[:3], other[:3]) > 0.9).all()
    assert masks.crop_and_resize(boxes[:0], inds[:0], (28, 28)).shape == (0, 28, 28)


def test_from_coco_polygons_rle_and_kinds() -> None:
    square = np.zeros((H, W), dtype=np.uint8, order="F")
    square[5:15, 20:30] = 1
    compressed = mask_utils.encode(square)
    compressed = {"size": compressed["size"], "counts": compressed["counts"].decode()}
    uncompressed = {"size": [H, W], "counts": _runs(square.flatten(order="F"))}
    polys = from_coco([POLYS[0]], H, W, poly2mask=False)
    assert isinstance(polys, PolygonMasks)
    assert isinstance(from_coco([POLYS[0]], H, W, poly2mask=True), BitmapMasks)
    mixed = from_coco([POLYS[0], compressed, uncompressed], H, W, poly2mask=False)
    assert isinstance(mixed, BitmapMasks)  # any RLE: the image's masks are bitmaps
    assert torch.equal(mixed.masks[1], torch.from_numpy(square))
    assert torch.equal(mixed.masks[2], torch.from_numpy(square))
    assert torch.equal(mixed.masks[0], polys.to_bitmap().masks[0])
    with pytest.raises(
        DataError, match=r"RLE `size` \[10, 10\] differs from the image's \[64, 100\]"
    ):
        from_coco([{"size": [10, 10], "counts": [100]}], H, W)
    # polygons under 3 points or with an odd count cover nothing and are left out
    degenerate = from_coco([[[1.0, 2, 3, 4], [1.0, 2, 3, 4, 5]]], H, W, poly2mask=False)
    assert degenerate.polygons == [[]]


def _runs(flat: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts of a column-major flattened mask (first run: zeros)."""
    edges = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs
