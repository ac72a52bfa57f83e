"""The `categories` of a COCO file without loading its annotations, and the config's class
names checked against them (for `detcli check`).

Torch- and numpy-free, so `check` stays fast. A small file is parsed whole. A large one is
read where `categories` usually sits: its tail (COCO's own files put it last) is parsed and
verified to close the top-level object; otherwise the file is streamed once in chunks with a
tokenizer that tracks nesting, so only a top-level `"categories"` key counts and memory stays
bounded (Roboflow-style files, categories first, stop after the first chunk).
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from detcli.config.paths import join_root
from detcli.data.classes import read_class_names
from detcli.errors import DataError
from detcli.suggest import did_you_mean

SMALL_FILE_BYTES = 8 * 2**20  # parsed whole: quicker than any scanning
TAIL_BYTES = 2**20
CHUNK_BYTES = 2**20

# A complete JSON string, a string cut by the end of the buffer, or a bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|"(?:[^"\\]|\\.)*\\?\Z|[{}\[\]]')
_KEY_IN_TAIL = re.compile(r'"categories"\s*:\s*\[')
_SPACE = re.compile(r"\s*")


def _skip(text: str, pos: int) -> int:
    """The position of the first non-whitespace character at or after `pos`."""
    return _SPACE.match(text, pos).end()  # type: ignore[union-attr]  # \s* always matches


_DECODER = json.JSONDecoder()


def read_categories(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The top-level `categories` list of a COCO json; DataError if there is none."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        if size <= SMALL_FILE_BYTES:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            found = data.get("categories") if isinstance(data, dict) else None
        else:
            found = _from_tail(path, size)
            if found is None:
                found = _streamed(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"Annotation file {path} cannot be read as JSON: {exc}.") from None
    if found is None:
        raise DataError(
            f"Annotation file {path} has no top-level 'categories' list; a COCO detection file "
            "needs images, annotations and categories."
        )
    if not isinstance(found, list) or not all(
        isinstance(c, dict) and "id" in c and "name" in c for c in found
    ):
        raise DataError(
            f"Annotation file {path}: `categories` must be a list of {{id, name}} entries."
        )
    return found


def category_names(path: str | os.PathLike[str]) -> list[str]:
    """The category names of a COCO json, in file order."""
    return [str(c["name"]) for c in read_categories(path)]


def _from_tail(path: str, size: int) -> list[Any] | None:
    """`categories` when it is the last-but-some key of the top-level object, else None.

    In valid JSON an unescaped `"categories":` is a key; when the rest of the file after its
    array is only `, "key": value` pairs and the final `}`, that key is the top-level one.
    """
    with open(path, "rb") as f:
        f.seek(max(0, size - TAIL_BYTES))
        text = f.read().decode("utf-8", errors="ignore")
    for match in reversed(list(_KEY_IN_TAIL.finditer(text))):
        if _escaped(text, match.start()):
            continue
        try:
            value, end = _DECODER.raw_decode(text, match.end() - 1)
        except json.JSONDecodeError:
            continue
        if _closes_object(text, end):
            return value  # type: ignore[no-any-return]
    return None


def _escaped(text: str, quote: int) -> bool:
    slashes = 0
    while quote - slashes - 1 >= 0 and text[quote - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1


def _closes_object(text: str, pos: int) -> bool:
    """Is text[pos:] `(, "key": value)* }` and nothing else?"""
    try:
        while True:
            pos = _skip(text, pos)
            if text[pos : pos + 1] == "}":
                return not text[pos + 1 :].strip()
            if text[pos : pos + 1] != ",":
                return False
            key, pos = _DECODER.raw_decode(text, _skip(text, pos + 1))
            pos = _skip(text, pos)
            if not isinstance(key, str) or text[pos : pos + 1] != ":":
                return False
            _, pos = _DECODER.raw_decode(text, _skip(text, pos + 1))
    except json.JSONDecodeError:
        return False


def _streamed(path: str) -> list[Any] | None:
    """One pass over the file in chunks, tracking depth; the value of the top-level key."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    buf, pos, depth = "", 0, 0
    capture: int | None = None  # where the categories value starts in buf
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            buf += decoder.decode(chunk, final=not chunk)
            while True:
                match = _TOKEN.search(buf, pos)
                if match is None:
                    pos = len(buf)
                    break
                token = match.group()
                if token[0] == '"':
                    cut = len(token) == 1 or token[-1] != '"' or _escaped(token, len(token) - 1)
                    if cut and match.end() == len(buf):
                        pos = match.start()  # read on: the string goes on in the next chunk
                        break
                    after = _skip(buf, match.end())
                    if after == len(buf) and chunk:
                        pos = match.start()  # is it a key? the next chunk says
                        break
                    pos = after
                    top_key = depth == 1 and buf[after : after + 1] == ":"
                    if top_key and capture is None and token == '"categories"':
                        capture = _skip(buf, after + 1)
                        if buf[capture : capture + 1] not in ("[", ""):
                            return None  # categories is not a list
                    continue
                pos = match.end()
                depth += 1 if token in "{[" else -1
                if capture is not None and depth == 1:
                    return json.loads(buf[capture:pos])  # type: ignore[no-any-return]
            if not chunk:
                return None
            keep = pos if capture is None else min(pos, capture)
            buf, pos = buf[keep:], pos - keep
            if capture is not None:
                capture -= keep


def class_problems(
    dataset_cfg: Mapping[str, Any], dataset_path: tuple[Any, ...]
) -> list[tuple[tuple[Any, ...], str]]:
    """(config path, message) for each configured class name (`classes` or
    `metainfo.classes`) that is not a category of the dataset's annotation file; wrappers
    (`dataset`, `datasets`) are followed. Missing files are left to `check`'s file test."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    for leaf, path in _leaves(dataset_cfg, dataset_path):
        if leaf.get("type") != "CocoDataset":
            continue  # another dataset's annotation file need not be COCO json
        classes, key = _configured_classes(leaf)
        ann_file = leaf.get("ann_file")
        if classes is None or not isinstance(ann_file, str):
            continue
        ann = join_root(leaf.get("data_root"), ann_file)
        if not os.path.isfile(ann):
            continue
        try:
            names = read_class_names(classes) or []
        except DataError as exc:
            problems.append((path + key, str(exc)))
            continue
        try:
            categories = category_names(ann)
        except DataError as exc:
            problems.append(((*path, "ann_file"), str(exc)))
            continue
        known = set(categories)
        listed = isinstance(classes, (list, tuple))
        for index, name in enumerate(names):
            if name in known:
                continue
            where = path + key + ((index,) if listed else ())
            problems.append(
                (
                    where,
                    f"class {name!r} is not a category of {ann}.{did_you_mean(name, categories)} "
                    f"The file's categories are: {', '.join(categories) or '(none)'}. Fix the "
                    f"class name or use the matching annotation file.",
                )
            )
    return problems


def _configured_classes(leaf: Mapping[str, Any]) -> tuple[Any, tuple[str, ...]]:
    if leaf.get("classes") is not None:
        return leaf["classes"], ("classes",)
    metainfo = leaf.get("metainfo")
    if isinstance(metainfo, Mapping) and metainfo.get("classes") is not None:
        return metainfo["classes"], ("metainfo", "classes")
    return None, ()


def _leaves(
    cfg: Mapping[str, Any], path: tuple[Any, ...]
) -> Iterator[tuple[Mapping[str, Any], tuple[Any, ...]]]:
    """Each leaf dataset config (with its path) under wrappers like RepeatDataset/Concat."""
    if isinstance(cfg.get("dataset"), Mapping):
        yield from _leaves(cfg["dataset"], (*path, "dataset"))
    elif isinstance(cfg.get("datasets"), list):
        for index, part in enumerate(cfg["datasets"]):
            if isinstance(part, Mapping):
                yield from _leaves(part, (*path, "datasets", index))
    else:
        yield cfg, path


def count_images(path: str | os.PathLike[str]) -> int | None:
    """How many entries a COCO json's top-level `images` list has; None when it is not known
    cheaply (a file over SMALL_FILE_BYTES is not parsed for `check`) or cannot be read."""
    path = os.fspath(path)
    try:
        if os.path.getsize(path) > SMALL_FILE_BYTES:
            return None
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # `check` reports unreadable files elsewhere
    images = data.get("images") if isinstance(data, dict) else None
    return len(images) if isinstance(images, list) else None


def dataset_image_count(dataset_cfg: Mapping[str, Any]) -> int | None:
    """The image count of a plain CocoDataset config (wrappers change it: None), for `check`."""
    if dataset_cfg.get("type") != "CocoDataset" or not isinstance(dataset_cfg.get("ann_file"), str):
        return None
    ann = join_root(dataset_cfg.get("data_root"), dataset_cfg["ann_file"])
    return count_images(ann) if os.path.isfile(ann) else None
