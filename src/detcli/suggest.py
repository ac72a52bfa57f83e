"""Near-miss suggestions ("did you mean ...?") for names a user typed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_names(name: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Candidates closest to `name`, ignoring case (so `fPn` finds `FPN`), best first."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[m] for m in matches]


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """' Did you mean X?' (with a leading space), or '' when nothing is close."""
    close = close_names(name, candidates, cutoff=cutoff)
    if not close:
        return ""
    return f" Did you mean {' or '.join(repr(c) for c in close)}?"
