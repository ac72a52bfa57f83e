"""Shared test helpers: writing config trees, running the CLI in-process or as a real process."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_PLUGINS = Path(__file__).parent / "fixtures" / "plugins"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """`write("a/b.yaml", text)` writes dedented text under tmp_path and returns the path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `detcli ARGS` in this process (fast); returns exit code, stdout and stderr."""
    from detcli.cli import main

    def _run(*args: str) -> Result:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


def run_detcli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> Result:
    """Run `python -m detcli ARGS` as a real process (what plugin discovery needs)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "detcli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def pip_install_target(target: Path, *packages: Path) -> None:
    """A real `pip install` of fixture plugin packages into `target` (then put on PYTHONPATH)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *map(str, packages),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )


def clean_copy(package: Path, dest: Path) -> Path:
    """A copy of a plugin's source folder without build leftovers, so pip builds outside the repo."""
    import shutil

    target = dest / package.name
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    return target


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread in every test: the tiny models gain nothing from two, and two
    OpenMP threads stall badly (10-20x slower steps) whenever another process holds one of the
    machine's two cores. Tests that need torch import it anyway; the others pay one import."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, str]]:
    """`plugin_env("detcli-toy", ...)`: env whose PYTHONPATH holds those fixture plugins, pip-installed.

    A name may also be a Path to a plugin folder elsewhere (e.g. `plugins/detcli-plugin-example`);
    it is installed from a clean copy.
    """
    installed: dict[tuple[str, ...], Path] = {}

    def _env(*names: str | Path) -> dict[str, str]:
        key = tuple(sorted(str(n) for n in names))
        if key not in installed:
            target = tmp_path_factory.mktemp("site-" + "-".join(Path(n).name for n in key))
            packages = [
                clean_copy(n, tmp_path_factory.mktemp("src")) if isinstance(n, Path)
                else FIXTURE_PLUGINS / n
                for n in names
            ]  # fmt: skip
            pip_install_target(target, *packages)
            installed[key] = target
        return {
            "PYTHONPATH": os.pathsep.join([str(installed[key]), os.environ.get("PYTHONPATH", "")])
        }

    return _env


@dataclass(frozen=True)
class ShapesCoco:
    """A tiny synthetic COCO set on disk (16 train + 8 val images, 128 px, 3 classes)."""

    root: Path
    train_ann: Path
    train_img: Path
    val_ann: Path
    val_img: Path
    classes: tuple[str, ...]


@pytest.fixture(scope="session")
def shapes_coco(tmp_path_factory: pytest.TempPathFactory) -> ShapesCoco:
    """Real PNG files and real COCO json written by `write_shapes_coco`; shared by the session."""
    from detcli.data.synthetic import shape_names, write_shapes_coco

    root = tmp_path_factory.mktemp("shapes")
    train_ann, train_img = write_shapes_coco(root, num_images=16, image_size=128, split="train")
    val_ann, val_img = write_shapes_coco(root, num_images=8, image_size=128, split="val")
    return ShapesCoco(root, train_ann, train_img, val_ann, val_img, shape_names(3))


def write_bomb_png(path: Path, width: int = 30000, height: int = 30000) -> None:
    """A valid 1-bit PNG of `width` x `height` black pixels: ~100 kB on disk, GBs decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\0" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    body = [comp.compress(row * 1000) for _ in range(height // 1000)]
    body += [comp.compress(row * (height % 1000)), comp.flush()]
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(body))
        + chunk(b"IEND", b"")
    )
