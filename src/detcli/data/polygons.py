"""Polygon geometry on flat vertex arrays: ranges and offsets, exact clipping to rectangles,
and rasterisation by pycocotools. `PolygonMasks` (detcli.data.masks) is built on these.

Polygons are stored flat: every vertex in one (V, 2) array, `offsets(n_verts)` from polygon to
vertices; each function works on all polygons at once rather than looping over them.
"""

from __future__ import annotations

import numpy as np
import torch


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions start[i] .. start[i] + count[i] - 1 for every i, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return (shift + np.arange(total)).astype(np.int64)


def offsets(counts: np.ndarray) -> np.ndarray:
    """[0, c0, c0 + c1, ...]: where each of the groups of `counts` starts (and the end)."""
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def next_vertex(n_verts: np.ndarray) -> np.ndarray:
    """For each vertex, the index of the next one around its polygon (the last wraps)."""
    starts = offsets(n_verts)[:-1]
    nxt = np.arange(int(n_verts.sum())) + 1
    closed = n_verts > 0
    nxt[(starts + n_verts - 1)[closed]] = starts[closed]
    return nxt


def clip_polygons(
    coords: np.ndarray, n_verts: np.ndarray, windows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Clip every polygon to its own window (P, 4 xyxy): Sutherland-Hodgman, all at once.

    Exact for any polygon against a rectangle (clipping a concave one may leave zero-width
    slivers along the border, which rasterise to nothing). Returns the vertices and the new
    vertex count of each polygon (0: the polygon lay outside its window).
    """
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    n_verts = np.asarray(n_verts, dtype=np.int64)
    # (axis, which window edge, +1 keeps coords >= edge, -1 keeps coords <= edge)
    for axis, edge, sign in ((0, 0, 1.0), (0, 2, -1.0), (1, 1, 1.0), (1, 3, -1.0)):
        if coords.size == 0:
            break
        poly_of_vert = np.repeat(np.arange(len(n_verts)), n_verts)
        nxt = next_vertex(n_verts)
        bound = windows[poly_of_vert, edge]
        a = sign * (coords[:, axis] - bound)
        b = a[nxt]
        inside_a, inside_b = a >= 0, b >= 0
        crosses = inside_a != inside_b
        t = np.divide(a, a - b, out=np.zeros_like(a), where=crosses)
        inter = coords + t[:, None] * (coords[nxt] - coords)
        inter[crosses, axis] = bound[crosses]  # exactly on the edge, no rounding drift
        # each edge p_i -> p_i+1 gives p_i when inside, then the crossing point if it crosses
        candidates = np.stack((coords, inter), axis=1).reshape(-1, 2)
        keep = np.stack((inside_a, crosses), axis=1).reshape(-1)
        coords = candidates[keep]
        n_verts = np.bincount(np.repeat(poly_of_vert, 2)[keep], minlength=len(n_verts))
    return coords, n_verts


def rasterise(
    coords: np.ndarray,
    poly_offsets: np.ndarray,
    polys_per_mask: np.ndarray,
    height: int,
    width: int,
    union_in_rle: bool = True,
) -> torch.Tensor:
    """uint8 (N, h, w): the union of each mask's polygons, rasterised by pycocotools (the
    pixels COCO evaluation counts). Polygons under 3 vertices cover nothing.

    `union_in_rle`: merge each mask's polygons as RLE before the one decode (full-image
    masks: decoding each polygon at full size would cost more); otherwise decode every
    polygon and OR them with one index_add (small targets: no Python loop over masks).
    """
    from pycocotools import mask as mask_utils

    n_verts = np.diff(poly_offsets)
    usable = n_verts >= 3
    flat = [
        coords[a:b].reshape(-1).tolist()
        for a, b, ok in zip(poly_offsets[:-1], poly_offsets[1:], usable, strict=True)
        if ok
    ]
    n_out = len(polys_per_mask)
    if not flat:
        return torch.zeros((n_out, height, width), dtype=torch.uint8)
    # one call for every polygon (a list of polygons, each > 4 numbers: pycocotools' frPoly)
    rles = mask_utils.frPyObjects(flat, height, width)
    mask_of_poly = np.repeat(np.arange(n_out), polys_per_mask)[usable]
    if not union_in_rle:
        decoded = torch.from_numpy(mask_utils.decode(rles).T).transpose(1, 2)  # (P, h, w)
        out = torch.zeros((n_out, height, width), dtype=torch.uint8)
        out.index_add_(0, torch.from_numpy(mask_of_poly), decoded)
        return out.clamp_(max=1)
    usable_per_mask = np.bincount(mask_of_poly, minlength=n_out)
    empty = mask_utils.frPyObjects(
        {"size": [height, width], "counts": [height * width]}, height, width
    )
    merged, start = [], 0
    for count in usable_per_mask.tolist():
        group = rles[start : start + count]
        merged.append(empty if not group else group[0] if count == 1 else mask_utils.merge(group))
        start += count
    decoded = mask_utils.decode(merged)  # (h, w, N) column-major: its transpose is contiguous
    return torch.from_numpy(decoded.T).transpose(1, 2)
