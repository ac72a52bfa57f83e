"""Path rules shared by the config side and the datasets (torch- and numpy-free)."""

from __future__ import annotations

import os


def join_root(root: str | None, path: str) -> str:
    """`path` under `root` unless it is absolute or there is no root (mmengine's _join_prefix).

    An empty `path` becomes the root itself, as in MMDetection 2.x and mmengine: an empty
    `img_prefix` / `data_prefix.img` means the images lie directly under `data_root`.
    """
    return os.path.join(root, path) if root and not os.path.isabs(path) else path
