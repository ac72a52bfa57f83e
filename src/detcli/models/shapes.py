"""Shapes flowing from one model part to the next, so channels and strides are typed once.

A backbone says what it outputs (`FeatureMaps`: channels and stride per level); a neck takes
that, and says what it outputs in turn; heads take the last. A part whose `in_channels` (or
`featmap_strides`, `roi_feat_size`, ...) was left out gets it here; one given by hand is
compared, and every disagreement is recorded on a `Wiring` and raised together, each naming
the config key and the part it disagrees with (`detcli check` lists them one per key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from detcli.errors import ModelError

T = TypeVar("T")
Path = tuple[str | int, ...]

# A part built without its input shape runs only once a detector (or `wire`) supplied it.
UNWIRED = (
    "{part} was built without in_channels and has not been wired to the part before it: "
    "put it in a detector (which wires it from the backbone) or give in_channels."
)


@dataclass(frozen=True)
class FeatureMaps:
    """Feature maps a part outputs, finest first: channels and stride (input px per map px)."""

    channels: tuple[int, ...]
    strides: tuple[int, ...]
    source: str  # who outputs them, for messages: "the ResNet backbone (resnet50)"

    @property
    def uniform_channels(self) -> int | None:
        """The channel count shared by every level, or None when they differ."""
        return self.channels[0] if len(set(self.channels)) == 1 else None


@dataclass(frozen=True)
class RoIFeatures:
    """What an RoI extractor gives each RoI: `channels` maps of `size` (h, w)."""

    channels: int
    size: tuple[int, int]
    source: str = "the RoI extractor"


@dataclass(frozen=True)
class WiringProblem:
    """One key whose given value disagrees with the part before it."""

    path: Path  # below `model`, e.g. ("neck", "in_channels")
    message: str


class WiringError(ModelError):
    """The parts of a model do not fit together; `problems` lists each disagreeing key."""

    def __init__(self, problems: Sequence[WiringProblem]):
        self.problems = list(problems)
        lines = "\n".join(f"- model.{_dotted(p.path)}: {p.message}" for p in self.problems)
        super().__init__(f"The parts of the model do not fit together:\n{lines}")


@dataclass
class Wiring:
    """Where a part sits in the model (`at`), and the problems found so far (shared)."""

    at: Path = ()
    problems: list[WiringProblem] = field(default_factory=list)

    def child(self, *keys: str | int) -> Wiring:
        """The wiring of a sub-part (`wiring.child("roi_head", "bbox_head")`)."""
        return Wiring((*self.at, *keys), self.problems)

    def report(self, key: str | int | Path, message: str) -> None:
        """Record a problem at `key` (one key, or a sub-path) of this part."""
        keys = key if isinstance(key, tuple) else (key,)
        self.problems.append(WiringProblem((*self.at, *keys), message))

    def agree(self, key: str, given: T | None, implied: T, why: str) -> T:
        """`given` if set (a problem is recorded when it differs from `implied`), else `implied`.

        `why` says where `implied` comes from: "the FPN neck outputs 256 channels".
        """
        if given is None:
            return implied
        if given != implied:
            self.report(key, f"{key} is {given}, but {why}; set {key}: {implied}, or leave it out.")
        return given

    def raise_problems(self) -> None:
        """Raise every problem found together (a WiringError), if there is any."""
        if self.problems:
            raise WiringError(self.problems)


class TakesFeatureMaps(Protocol):
    """A part wired from the feature maps before it (a neck, a dense head, an RoI head)."""

    def wire(self, inputs: FeatureMaps, wiring: Wiring) -> FeatureMaps | None:
        """Fill or compare its input shapes; return what it outputs (None: nothing downstream)."""
        ...


def _dotted(path: Path) -> str:
    return ".".join(str(k) for k in path)
